"""Rollback jobs end to end: `on_fail` runs another job right after a step
failed, past the halt the failure set; the queue stays halted and status
shows both results; a failing rollback is job.rollback.fail; after
`wardenctl abort` no rollback runs unless rollback_on_terminate = yes; with
rollback_interrupted = yes a job found interrupted at start-up (kill -9)
is rolled back. Config errors name file:line. Exec steps only."""

import os
import time
import unittest

from harness import Wardend, base_config, marking_action, match, ran, read_pid

CONFIG = base_config("rollback-test", level="debug", mutex_off=True,
                     daemon="kill_grace = 1s") \
    + marking_action("one") \
    + marking_action("broken", then="echo disk on fire >&2; exit 4") \
    + marking_action("hang", then="echo $$ > {dir}/hang.pid; exec sleep 600", timeout="10m") \
    + marking_action("undo_a") + marking_action("undo_b") \
    + marking_action("undo_broken", then="echo no old version >&2; exit 1") \
    + marking_action("other_step", mark="other") + """
[job undo]
steps = undo_a, undo_b

[job undo_fails]
steps = undo_broken

[job other]
steps = other_step
"""


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
            s = wd.status()
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
            self.assertIsNone(wd.status()["jobs"]["halt"])

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
            s = wd.status()
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
            read_pid(os.path.join(wd.dir, "hang.pid"))
            self.assertEqual(wd.ctl("abort").returncode, 0)
            wd.wait_event("job.terminated", job="deploy")
            time.sleep(1.5)
            self.assertFalse(match(wd.events(), "job.rollback.start"))
            self.assertIsNone(wd.status()["jobs"]["halt"].get("rollback"))
            self.assertIn("rollback_on_terminate = no", wd.log())

            os.unlink(os.path.join(wd.dir, "hang.pid"))
            self.assertEqual(wd.ctl("resume").returncode, 0)
            n = wd.mark()
            self.assertEqual(wd.ctl("run", "deploy_eager").returncode, 0)
            read_pid(os.path.join(wd.dir, "hang.pid"))
            self.assertEqual(wd.ctl("abort", "--job", "deploy_eager").returncode, 0)
            start = wd.wait_event("job.rollback.start", since=n)[0]
            self.assertEqual((start["rollback_of"], start["cause"]),
                             ("deploy_eager", "terminated"))
            wd.wait_event("job.rollback.finish", job="undo", since=n)
            self.assertTrue(wd.status()["halt"]["halted"])

    def test_rollback_interrupted_runs_it_after_a_kill(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps   = one, hang
on_fail = undo
rollback_interrupted = yes
""")
            self.assertEqual(wd.ctl("run", "deploy").returncode, 0)
            pgid = read_pid(os.path.join(wd.dir, "hang.pid"))
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
