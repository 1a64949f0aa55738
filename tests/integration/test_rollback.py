"""Rollback jobs end to end: `on_fail` runs another job right after a step
failed, past the halt the failure set; the queue stays halted and status
shows both results; a failing rollback is job.rollback.fail; after
`wardenctl abort` no rollback runs unless rollback_on_terminate = yes; with
rollback_interrupted = yes a job found interrupted at start-up (kill -9)
is rolled back. Config errors name file:line. Exec steps only."""

import json
import os
import time
import unittest

from harness import Wardend, match

CONFIG = """
[daemon]
host_id    = rollback-test
state_dir  = {state_dir}
interval   = 1s
jitter     = 0%
workers    = 2
kill_grace = 1s

[log]
level  = debug
events = {events}

[mutex]
mode = off

[action one]
type    = exec
command = /bin/sh -c 'echo one >> {dir}/ran'

[action broken]
type    = exec
command = /bin/sh -c 'echo broken >> {dir}/ran; echo disk on fire >&2; exit 4'

[action hang]
type    = exec
command = /bin/sh -c 'echo hang >> {dir}/ran; echo $$ > {dir}/hang.pid; exec sleep 600'
timeout = 10m

[action undo_a]
type    = exec
command = /bin/sh -c 'echo undo_a >> {dir}/ran'

[action undo_b]
type    = exec
command = /bin/sh -c 'echo undo_b >> {dir}/ran'

[action undo_broken]
type    = exec
command = /bin/sh -c 'echo undo_broken >> {dir}/ran; echo no old version >&2; exit 1'

[action other_step]
type    = exec
command = /bin/sh -c 'echo other >> {dir}/ran'

[job undo]
steps = undo_a, undo_b

[job undo_fails]
steps = undo_broken

[job other]
steps = other_step
"""


def ran(wd):
    try:
        with open(os.path.join(wd.dir, "ran")) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def status(wd):
    p = wd.ctl("status", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def wait_file(wd, name, timeout=30):
    path = os.path.join(wd.dir, name)
    deadline = time.monotonic() + timeout
    while not (os.path.exists(path) and os.path.getsize(path) > 0):
        if time.monotonic() > deadline:
            raise AssertionError("%s never written" % name)
        time.sleep(0.02)


class Rollback(unittest.TestCase):
    def start(self, wd, jobs):
        wd.start(CONFIG.format(**wd.paths) + jobs.format(**wd.paths))
        wd.wait_event("daemon.start")

    def test_a_failed_step_runs_the_rollback_and_the_queue_stays_halted(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps   = one, broken, one
on_fail = undo
""")
            p = wd.ctl("run", "deploy", "--wait", timeout=60)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            fin = wd.wait_event("job.rollback.finish", job="undo")[0]
            self.assertEqual((fin["rollback_of"], fin["result"], fin["steps"]),
                             ("deploy", "ok", 2))
            self.assertEqual(ran(wd), ["one", "broken", "undo_a", "undo_b"])
            events = wd.events()
            names = [e["event"] for e in events if e["event"].startswith("job.")
                     and e["event"] != "job.step"]
            self.assertEqual(names, ["job.queued", "job.start", "job.fail",
                                     "job.rollback.start", "job.rollback.finish"])
            start = match(events, "job.rollback.start")[0]
            self.assertEqual((start["job"], start["rollback_of"], start["cause"], start["step"]),
                             ("undo", "deploy", "fail", "broken"))
            self.assertIn("exit status 4", start["error"])
            self.assertEqual(start["plan"], ["undo_a", "undo_b"])
            steps = [(e["step"], e["result"]) for e in match(events, "job.step", job="undo")]
            self.assertEqual(steps, [("undo_a", "start"), ("undo_a", "ok"),
                                     ("undo_b", "start"), ("undo_b", "ok")])
            # Both results in status; the queue still halted.
            s = status(wd)
            self.assertTrue(s["halt"]["halted"])
            self.assertIn("job deploy failed at step 2/3 (broken)", s["halt"]["reason"])
            self.assertEqual(s["jobs"]["halt"]["rollback"],
                             {"job": "undo", "result": "ok", "error": ""})
            text = wd.ctl("status").stdout
            self.assertIn("HALTED: job deploy failed at step 2/3 (broken)", text)
            self.assertIn("rollback  undo: ok", text)
            # Nothing else runs until resume.
            self.assertEqual(wd.ctl("run", "other").returncode, 0)
            time.sleep(1.5)
            self.assertNotIn("other", ran(wd))
            self.assertEqual(wd.ctl("resume").returncode, 0)
            wd.wait_event("job.finish", job="other")
            self.assertIsNone(status(wd)["jobs"]["halt"])

    def test_a_failing_rollback_is_its_own_loud_event(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps   = broken
on_fail = undo_fails
""")
            self.assertEqual(wd.ctl("run", "deploy").returncode, 0)
            f = wd.wait_event("job.rollback.fail", job="undo_fails")[0]
            self.assertEqual((f["rollback_of"], f["result"], f["step"]),
                             ("deploy", "fail", "undo_broken"))
            self.assertIn("exit status 1", f["error"])
            self.assertIn("no old version", f["stderr_tail"])
            self.assertFalse(match(wd.events(), "job.rollback.finish"))
            s = status(wd)
            self.assertEqual(s["jobs"]["halt"]["rollback"]["result"], "fail")
            self.assertIn("rollback  undo_fails: FAILED (fail): exit status 1",
                          wd.ctl("status").stdout)
            self.assertIn("ROLLBACK job undo_fails", wd.log())

    def test_no_rollback_after_abort_unless_rollback_on_terminate(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps   = one, hang, one
on_fail = undo

[job deploy_eager]
steps   = one, hang
on_fail = undo
rollback_on_terminate = yes
""")
            self.assertEqual(wd.ctl("run", "deploy").returncode, 0)
            wait_file(wd, "hang.pid")
            self.assertEqual(wd.ctl("abort").returncode, 0)
            wd.wait_event("job.terminated", job="deploy")
            time.sleep(1.5)
            self.assertFalse(match(wd.events(), "job.rollback.start"))
            self.assertIsNone(status(wd)["jobs"]["halt"].get("rollback"))
            self.assertIn("rollback_on_terminate = no", wd.log())

            os.unlink(os.path.join(wd.dir, "hang.pid"))
            self.assertEqual(wd.ctl("resume").returncode, 0)
            n = len(wd.events())
            self.assertEqual(wd.ctl("run", "deploy_eager").returncode, 0)
            wait_file(wd, "hang.pid")
            self.assertEqual(wd.ctl("abort", "--job", "deploy_eager").returncode, 0)
            start = wd.wait_event("job.rollback.start", since=n)[0]
            self.assertEqual((start["rollback_of"], start["cause"]),
                             ("deploy_eager", "terminated"))
            wd.wait_event("job.rollback.finish", job="undo", since=n)
            self.assertTrue(status(wd)["halt"]["halted"])

    def test_rollback_interrupted_runs_it_after_a_kill(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps   = one, hang
on_fail = undo
rollback_interrupted = yes
""")
            self.assertEqual(wd.ctl("run", "deploy").returncode, 0)
            wait_file(wd, "hang.pid")
            with open(os.path.join(wd.dir, "hang.pid")) as f:
                pgid = int(f.read())
            wd.kill()
            os.killpg(pgid, 9)   # wardend's child outlives a kill -9 of wardend
            wd.start()
            wd.wait_event("job.interrupted", job="deploy")
            start = wd.wait_event("job.rollback.start")[0]
            self.assertEqual((start["job"], start["cause"], start["step"]),
                             ("undo", "interrupted", "hang"))
            wd.wait_event("job.rollback.finish", job="undo")
            self.assertEqual(ran(wd)[-2:], ["undo_a", "undo_b"])

    def test_on_fail_errors_name_the_line(self):
        with Wardend() as wd:
            for jobs, message in [
                    ("[job deploy]\nsteps = one\non_fail = nosuch\n",
                     "[job deploy] on_fail names 'nosuch', which is not a job"),
                    ("[job deploy]\nsteps = one\non_fail = deploy\n",
                     "[job deploy] on_fail names the job itself"),
                    ("[job deploy]\nsteps = one\non_fail = back\n"
                     "[job back]\nsteps = one\non_fail = deploy\n",
                     "[job deploy] on_fail makes a cycle (deploy -> back -> deploy)"),
                    ("[job deploy]\nsteps = one\nrollback_on_terminate = yes\n",
                     "rollback_on_terminate without on_fail = JOB means nothing")]:
                wd.write_config(CONFIG.format(**wd.paths) + jobs)
                p = wd.ctl("validate")
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertIn(message, p.stdout + p.stderr)
                line = CONFIG.count("\n") + jobs.split("\n").index(
                    next(l for l in jobs.split("\n") if l.startswith(("on_fail", "rollback")))) + 1
                self.assertIn("warden.ini:%d:" % line, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
