"""Jobs end to end: steps in order, the first failure halting the queue,
resume, the guard parking a job at a step boundary, the journal after
kill -9, waits, the FIFO queue, triggers (wardenctl, a check, a schedule)
and --dry-run. No MariaDB needed: exec steps that leave marks in files,
file checks for the waits. The upgrade against a real MariaDB behind a
real HAProxy is test_upgrade.py."""

import json
import os
import signal
import time
import unittest

from harness import MutexServer, Wardend, base_config, marking_action, match, ran

BASE = base_config("jobs-test", level="debug", mutex="{mutex}") + """
[check healthy]
type   = file
path   = {dir}/healthy
metric = exists
crit   = == 0
every  = 500ms
""" + "".join(marking_action(name) for name in ("one", "two", "three")) \
    + marking_action("broken", then="echo disk on fire >&2; exit 4") \
    + marking_action("slow", then="sleep {slow}; echo slow-done >> {dir}/ran", timeout="5m") + """
[wait wait_healthy]
checks  = healthy
for     = 1s
timeout = 6s
"""


class JobsTest(unittest.TestCase):
    def start(self, wd, jobs, mutex="mode = off", slow=20, extra=""):
        wd.start((BASE + jobs + extra).format(mutex=mutex, slow=slow, **wd.paths))
        wd.wait_event("daemon.start")

    def test_steps_run_in_order_and_wait_until_checks_are_ok(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps = one, two, wait_healthy, three
""")
            wd.write("healthy", "")
            p = wd.ctl("run", "deploy", "--wait", timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("job deploy: ok", p.stdout)
            self.assertEqual(ran(wd), ["one", "two", "three"])
            events = wd.events()
            self.assertEqual(len(match(events, "job.queued", job="deploy", trigger="ctl")), 1)
            start = match(events, "job.start", job="deploy")[0]
            self.assertEqual(start["plan"], ["one", "two", "wait_healthy", "three"])
            done = [(e["step"], e["step_index"], e["result"])
                    for e in match(events, "job.step", job="deploy") if e["result"] != "start"]
            self.assertEqual(done, [("one", 1, "ok"), ("two", 2, "ok"),
                                    ("wait_healthy", 3, "ok"), ("three", 4, "ok")])
            wait = match(events, "job.step", step="wait_healthy", result="ok")[0]
            self.assertGreaterEqual(wait["duration_ms"], 1000)   # ok continuously for 1s
            # Each action ran with the job as its trigger.
            self.assertEqual(len(match(events, "action.finish", trigger="job", job="deploy")), 3)
            finish = match(events, "job.finish", job="deploy")[0]
            self.assertEqual(finish["result"], "ok")
            self.assertFalse(wd.status()["halt"]["halted"])

    def test_a_failing_step_stops_the_job_and_halts_until_resume(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps = one, broken, two
""")
            p = wd.ctl("run", "deploy", "--wait", timeout=60)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("at step 2/3 (broken)", p.stdout)
            self.assertIn("exit", p.stdout)
            self.assertEqual(ran(wd), ["one", "broken"])      # two never ran
            fail = wd.wait_event("job.fail", job="deploy")[0]
            self.assertEqual((fail["step"], fail["step_index"], fail["result"]),
                             ("broken", 2, "fail"))
            self.assertIn("4", fail["error"])
            self.assertIn("disk on fire", fail["stderr_tail"])
            self.assertIn("disk on fire", p.stdout)
            finish = match(wd.events(), "action.finish", action="broken")[0]
            self.assertIn("disk on fire", finish["stderr_tail"])

            s = wd.status()
            self.assertTrue(s["halt"]["halted"])
            self.assertIn("job deploy failed at step 2/3 (broken)", s["halt"]["reason"])
            self.assertEqual(s["jobs"]["halt"]["step"], "broken")
            text = wd.ctl("status").stdout
            self.assertIn("HALTED: job deploy failed at step 2/3 (broken)", text)

            # Halted: actions are blocked too, and a new job only queues.
            p = wd.ctl("run", "one")
            self.assertEqual(p.returncode, 1)
            self.assertIn("halted", p.stdout + p.stderr)
            p = wd.ctl("run", "deploy", "--wait")
            self.assertEqual(p.returncode, 1)
            self.assertIn("halted", p.stdout + p.stderr)
            p = wd.ctl("run", "deploy")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("HALTED", p.stdout)
            time.sleep(1)
            self.assertEqual(ran(wd), ["one", "broken"])

            # Persisted: a restart keeps the halt and the queue.
            self.assertEqual(wd.stop(), 0)
            wd.start()
            wd.wait_event("daemon.start")
            s = wd.status()
            self.assertTrue(s["halt"]["halted"])
            self.assertEqual([q["job"] for q in s["jobs"]["queue"]], ["deploy"])

            p = wd.ctl("resume")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("resumed", p.stdout)
            resumed = wd.wait_event("job.resume")[0]
            self.assertEqual(resumed["job"], "deploy")
            # The queued run starts at once, and fails again at the same step.
            wd.wait_event("job.fail", job="deploy")
            self.assertEqual(ran(wd), ["one", "broken", "one", "broken"])
            p = wd.ctl("resume")
            self.assertIn("resumed", p.stdout)
            p = wd.ctl("resume")
            self.assertIn("was not halted", p.stdout)

    def test_a_held_mutex_pauses_the_job_at_the_next_step(self):
        with MutexServer("clear") as mutex, Wardend() as wd:
            self.start(wd, """
[job deploy]
steps = slow, two, three
""", mutex="url = %s\ntimeout = 2s\ncache = 0s\npoll = 500ms" % mutex.url, slow=3)
            p = wd.ctl("run", "deploy")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            # Once the step's action has passed the guard and started (job.step
            # start comes before the action's own guard check, which would
            # park the job at step 1 if the mutex were held by then).
            wd.wait_event("action.start", action="slow")
            mutex.set("held:fleet freeze")
            paused = wd.wait_event("job.paused", job="deploy", timeout=30)[0]
            # The step in flight finished; the next one waits at its boundary.
            self.assertEqual((paused["step"], paused["step_index"], paused["reason"]),
                             ("two", 2, "mutex"))
            self.assertIn("fleet freeze", paused["detail"])
            self.assertEqual(ran(wd), ["slow", "slow-done"])
            s = wd.status()["jobs"]["running"]
            self.assertEqual((s["phase"], s["step"]), ("paused", "two"))
            self.assertIn("PAUSED", wd.ctl("status").stdout)
            time.sleep(2)
            self.assertEqual(ran(wd), ["slow", "slow-done"])
            mutex.set("clear")
            finish = wd.wait_event("job.finish", job="deploy", timeout=30)[0]
            self.assertEqual(ran(wd), ["slow", "slow-done", "two", "three"])
            self.assertGreater(finish["paused_ms"], 1500)
            self.assertEqual(len(match(wd.events(), "job.paused")), 1)

    def test_a_step_parked_at_its_actions_guard_says_start_once_when_it_starts(self):
        with Wardend() as wd:
            self.start(wd, """
[check trigger]
type    = file
path    = {dir}/trigger
metric  = exists
crit    = == 1
every   = 500ms
on_crit = slow

[job deploy]
steps = slow, two
""", slow=3)
            wd.write("trigger", "")
            wd.wait_event("action.start", action="slow", trigger="check")
            self.assertEqual(wd.ctl("run", "deploy").returncode, 0)
            # The check's run of the same action is in flight: the step is
            # parked at the action's guard (running), and has not started.
            paused = wd.wait_event("job.paused", job="deploy", timeout=20)[0]
            self.assertEqual((paused["step"], paused["reason"]), ("slow", "running"))
            wd.wait_event("job.finish", job="deploy", timeout=30)
            events = wd.events()
            starts = [i for i, e in enumerate(events)
                      if e["event"] == "job.step" and e["step"] == "slow" and e["result"] == "start"]
            self.assertEqual(len(starts), 1, [e for e in events if e["event"] == "job.step"])
            first_finish = [i for i, e in enumerate(events)
                            if e["event"] == "action.finish" and e["action"] == "slow"][0]
            self.assertGreater(starts[0], first_finish)
            self.assertEqual(ran(wd), ["slow", "slow-done", "slow", "slow-done", "two"])

    def test_host_pause_parks_the_job_and_unpause_lets_it_go_on(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps = slow, two
""", slow=2)
            wd.ctl("run", "deploy")
            wd.wait_event("job.step", step="slow", result="start")
            self.assertEqual(wd.ctl("pause", "--reason", "investigating").returncode, 0)
            paused = wd.wait_event("job.paused", job="deploy", timeout=20)[0]
            self.assertEqual((paused["step"], paused["reason"]), ("two", "paused"))
            self.assertEqual(wd.ctl("unpause").returncode, 0)
            wd.wait_event("job.finish", job="deploy", timeout=20)
            self.assertEqual(ran(wd), ["slow", "slow-done", "two"])

    def test_killed_mid_step_reports_interrupted_and_runs_nothing_again(self):
        with Wardend() as wd:
            self.start(wd, """
[job upgrade]
steps = one, slow, two
""", slow=60)
            wd.ctl("run", "upgrade")
            wd.wait_event("job.step", step="slow", result="start")
            deadline = time.monotonic() + 10
            while ran(wd) != ["one", "slow"] and time.monotonic() < deadline:
                time.sleep(0.05)
            wd.kill()
            # The step's child lives on in its own process group: end it, as
            # systemd would with the unit's cgroup.
            os.system("pkill -f 'echo slow >> %s' || true" % wd.dir)
            wd.start()
            wd.wait_event("daemon.start")
            got = wd.wait_event("job.interrupted", job="upgrade")[0]
            self.assertEqual((got["step"], got["step_index"], got["result"]),
                             ("slow", 2, "interrupted"))
            self.assertIn("in flight", got["error"])
            s = wd.status()
            self.assertTrue(s["halt"]["halted"])
            self.assertIn("interrupted at step 2/3 (slow)", s["halt"]["reason"])
            self.assertIsNone(s["jobs"]["running"])
            time.sleep(2)
            # Nothing was run again: not slow, not two.
            self.assertEqual(ran(wd)[:2], ["one", "slow"])
            self.assertNotIn("two", ran(wd))
            self.assertEqual(len(match(wd.events(), "job.step", step="slow", result="start")), 1)
            # A restart after that reports nothing new.
            self.assertEqual(wd.stop(), 0)
            wd.start()
            wd.wait_event("daemon.start")
            time.sleep(1)
            self.assertEqual(len(match(wd.events(), "job.interrupted")), 1)
            self.assertTrue(wd.status()["halt"]["halted"])

    def test_graceful_stop_during_a_wait_interrupts_and_halts(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps = one, wait_healthy, two
""")
            wd.ctl("run", "deploy")
            wd.wait_event("job.step", step="wait_healthy", result="start")
            self.assertEqual(wd.stop(), 0)
            got = match(wd.events(), "job.interrupted", job="deploy")[0]
            self.assertEqual(got["step"], "wait_healthy")
            self.assertIn("stopping", got["error"])
            stop = [e["event"] for e in wd.events()][-2:]
            self.assertEqual(stop, ["job.interrupted", "daemon.stop"])
            wd.start()
            wd.wait_event("daemon.start")
            self.assertTrue(wd.status()["halt"]["halted"])
            self.assertEqual(len(match(wd.events(), "job.interrupted")), 1)

    def test_a_wait_that_times_out_fails_naming_the_check(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps = one, wait_healthy, two
""")
            p = wd.ctl("run", "deploy", "--wait", timeout=60)
            self.assertEqual(p.returncode, 1)
            fail = match(wd.events(), "job.fail", job="deploy")[0]
            self.assertEqual(fail["step"], "wait_healthy")
            self.assertIn("wait wait_healthy timed out after 6s", fail["error"])
            self.assertIn("healthy is crit (value 0)", fail["error"])
            self.assertEqual(ran(wd), ["one"])

    def test_a_step_that_times_out_or_is_killed_fails_the_job(self):
        with Wardend() as wd:
            self.start(wd, """
[action hang]
type    = exec
command = sleep 30
timeout = 1s

[action killed]
type    = exec
command = /bin/sh -c 'kill -KILL $$'
shell   = no

[job hangs]
steps = one, hang, two

[job dies]
steps = killed, two
""")
            p = wd.ctl("run", "hangs", "--wait", timeout=60)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            fail = match(wd.events(), "job.fail", job="hangs")[0]
            self.assertEqual(fail["step"], "hang")
            self.assertIn("timed out", fail["error"])
            self.assertEqual(wd.ctl("resume").returncode, 0)
            p = wd.ctl("run", "dies", "--wait", timeout=60)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            fail = match(wd.events(), "job.fail", job="dies")[0]
            self.assertEqual(fail["step"], "killed")
            self.assertIn("signal 9", fail["error"])
            self.assertEqual(ran(wd), ["one"])

    def test_fifo_queue_never_queues_the_same_job_twice(self):
        with Wardend() as wd:
            self.start(wd, """
[job first]
steps = slow
[job second]
steps = two
[job third]
steps = three
""", slow=8)   # long enough for the six wardenctl runs below on a slow (sanitized) build
            self.assertEqual(wd.ctl("run", "first").returncode, 0)
            wd.wait_event("job.start", job="first")
            p = wd.ctl("run", "second")
            self.assertIn("position 2", p.stdout)
            self.assertEqual(wd.ctl("run", "third").returncode, 0)
            p = wd.ctl("run", "second")
            self.assertEqual(p.returncode, 1)
            self.assertIn("already queued", p.stdout + p.stderr)
            p = wd.ctl("run", "first")
            self.assertEqual(p.returncode, 1)
            self.assertIn("already running", p.stdout + p.stderr)
            s = wd.status()["jobs"]
            self.assertEqual(s["running"]["job"], "first")
            self.assertEqual((s["running"]["step"], s["running"]["phase"]), ("slow", "running"))
            self.assertGreaterEqual(s["running"]["step_elapsed_ms"], 0)
            text = wd.ctl("status").stdout
            self.assertRegex(text, r"job +first running: step 1/1 slow for \d+s \(job \d+s of 2h\)")
            self.assertIn("queue     second (ctl), third (ctl)", text)
            self.assertEqual([q["job"] for q in s["queue"]], ["second", "third"])
            wd.wait_event("job.finish", job="third", timeout=30)
            order = [e["job"] for e in match(wd.events(), "job.start")]
            self.assertEqual(order, ["first", "second", "third"])
            self.assertEqual(ran(wd), ["slow", "slow-done", "two", "three"])

    def test_a_check_starts_a_job_and_a_schedule_does_too(self):
        with Wardend() as wd:
            self.start(wd, """
[check trigger]
type    = file
path    = {dir}/trigger
metric  = exists
crit    = == 1
on_crit = repair

[job repair]
steps = one, two

[job nightly]
steps    = three
schedule = * * * * *
""")
            s = wd.status()["jobs"]["schedules"]
            self.assertEqual(s[0]["job"], "nightly")
            self.assertEqual(s[0]["schedule"], "* * * * *")
            wd.write("trigger", "")
            q = wd.wait_event("job.queued", job="repair")[0]
            self.assertEqual((q["trigger"], q["check"], q["state"]), ("check", "trigger", "crit"))
            wd.wait_event("job.finish", job="repair")
            q = wd.wait_event("job.queued", job="nightly", timeout=75)[0]
            self.assertEqual((q["trigger"], q["trigger_name"]), ("schedule", "* * * * *"))
            wd.wait_event("job.finish", job="nightly")
            self.assertIn("three", ran(wd))

    def test_dry_run_prints_the_plan_and_runs_nothing(self):
        with Wardend() as wd:
            self.start(wd, """
[job deploy]
steps    = one, wait_healthy, two
schedule = 0 3 * * sun
timeout  = 30m
""")
            p = wd.ctl("run", "deploy", "--dry-run")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("job deploy (timeout 30m)", p.stdout)
            self.assertIn("schedule 0 3 * * sun", p.stdout)
            self.assertIn("1. one", p.stdout)
            self.assertIn("2. wait_healthy", p.stdout)
            self.assertIn("healthy ok for 1s, within 6s", p.stdout)
            self.assertIn("guard: allowed now", p.stdout)
            wd.ctl("pause", "--reason", "change freeze")
            p = wd.ctl("run", "deploy", "--dry-run")
            self.assertEqual(p.returncode, 1)
            self.assertIn("guard: would wait before the first step (paused)", p.stdout)
            time.sleep(0.5)
            self.assertEqual(ran(wd), [])
            self.assertEqual(match(wd.events(), "job.queued"), [])

    def test_an_unusable_journal_halts_instead_of_guessing(self):
        with Wardend() as wd:
            with open(os.path.join(wd.paths["state_dir"], "jobs.json"), "w") as f:
                f.write('{"format": 1, "queue": [')
            self.start(wd, """
[job deploy]
steps = one
""")
            s = wd.status()
            self.assertTrue(s["halt"]["halted"])
            self.assertIn("journal was unusable", s["halt"]["reason"])
            aside = [n for n in os.listdir(wd.paths["state_dir"])
                     if n.startswith("jobs.json.corrupt-")]
            self.assertEqual(len(aside), 1)
            self.assertEqual(wd.ctl("resume").returncode, 0)
            p = wd.ctl("run", "deploy", "--wait")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_bytes_that_are_not_utf8_reach_the_journal_replaced(self):
        # A Latin-1 byte in a command: the step fails with an error that
        # quotes it, and that error is the halt reason the journal keeps.
        with Wardend() as wd:
            wd.write_config((BASE + """
[action latin1]
type    = exec
command = /nonexistent/cafLATIN1
[job deploy]
steps = latin1
""").format(mutex="mode = off", slow=20, **wd.paths))
            with open(wd.paths["config"], "rb") as f:
                data = f.read()
            with open(wd.paths["config"], "wb") as f:
                f.write(data.replace(b"cafLATIN1", b"caf\xe9"))
            wd.start()
            wd.wait_event("daemon.start")
            p = wd.ctl("run", "deploy", "--wait")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertTrue(wd.running())
            with open(os.path.join(wd.paths["state_dir"], "jobs.json"), "rb") as f:
                journal = json.loads(f.read().decode("utf-8"))   # strict: valid UTF-8
            self.assertIn("/nonexistent/caf\ufffd", journal["halt"]["reason"])
            wd.stop()
            wd.start()   # and it loads again
            wd.wait_event("daemon.start")
            self.assertIn("caf\ufffd", wd.status()["halt"]["reason"])


if __name__ == "__main__":
    unittest.main()
