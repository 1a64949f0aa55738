"""Rollouts that stop, on a real etcd (helpers in test_rollout.py): kill -9
of a host mid-rollout stops the rollout when its lease expires, and the
restarted host does not run the rollout again, nor a rollout's job that
was still queued when it stopped; `fleet cancel` stops the
hosts that have not started while the running one finishes; a fleet halt
holds a rollout's job at the guard. Bad input: an unknown group, a job a
member lacks, a malformed member, --parallel 0, a malformed rollout in
etcd, cancelling what is not there or no longer running."""

import json
import os
import signal
import time
import unittest

from harness import Etcd, match
from test_rollout import OTHER_JOB, Fleet, read, wait_until


class RolloutsThatStop(unittest.TestCase):
    def test_kill_9_mid_rollout_stops_it_and_a_restart_does_not_run_it_again(self):
        specs = [("k1", "g", 1, ""), ("k2", "g", 2, ""), ("k3", "g", 3, "")]
        began = time.monotonic()
        with Etcd() as etcd:
            etcd.put("/warden/armed", "yes")
            with Fleet(etcd, specs) as fleet:
                k2 = fleet.by_host("k2")
                with open(os.path.join(k2.dir, "sleep"), "w") as f:
                    f.write("60")
                rollout = fleet.run_rollout("--group", "g")
                k2.wait_event("rollout.host.start", rollout=rollout, timeout=30)
                pid_file = os.path.join(k2.dir, "step.pid")
                step_pid = int(wait_until("k2's step", lambda: read(pid_file), 30))
                killed_at = time.monotonic()
                k2.kill()
                try:
                    os.killpg(step_pid, signal.SIGKILL)   # the orphaned step
                except ProcessLookupError:
                    pass
                s = fleet.wait_state(rollout, ("stopped",), timeout=30)
                seen = time.monotonic() - killed_at
                states = {h["host"]: h["state"] for h in s["hosts"]}
                self.assertEqual(states, {"k1": "done", "k2": "died", "k3": "not started"})
                fleet.by_host("k3").wait_event("rollout.stopped", rollout=rollout)
                self.assertEqual(match(fleet.by_host("k3").events(), "job.queued"), [])

                # Restarted: it reports the rollout failed, and runs nothing.
                os.unlink(os.path.join(k2.dir, "sleep"))
                n = len(k2.events())
                k2.start()
                fin = k2.wait_event("rollout.host.finish", rollout=rollout, since=n, timeout=30)[0]
                self.assertEqual(fin["result"], "failed")
                self.assertIn("interrupted", fin["error"])
                time.sleep(2)
                self.assertEqual(match(k2.events()[n:], "job.start"), [])
                self.assertEqual(match(k2.events()[n:], "rollout.host.start"), [])
                host = {h["host"]: h for h in fleet.status(rollout)["hosts"]}["k2"]
                self.assertEqual(host["state"], "failed")
        print("\nkill -9: stopped %.1f s after the kill (lease 2s); whole test %.1f s"
              % (seen, time.monotonic() - began))

    def test_a_rollout_job_still_queued_at_a_restart_is_reported_failed_and_never_runs(self):
        specs = [("q1", "g", 1, ""), ("q2", "g", 2, "")]
        with Etcd() as etcd:
            etcd.put("/warden/armed", "yes")
            with Fleet(etcd, specs) as fleet:
                q1 = fleet.by_host("q1")
                # q1's queue halted by a failed job: the rollout's job waits in it.
                fail = os.path.join(q1.dir, "fail")
                with open(fail, "w") as f:
                    f.write("1")
                p = q1.ctl("run", "upgrade", "--wait")
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                os.unlink(fail)
                rollout = fleet.run_rollout("--group", "g")
                q1.wait_event("job.queued", trigger="rollout", trigger_name=rollout, timeout=30)
                host = {h["host"]: h for h in fleet.status(rollout)["hosts"]}["q1"]
                self.assertEqual(host["state"], "running")
                # wardenctl status on each host: q1 holds the rollout's job, q2 waits.
                mine = q1.status()["rollout"]
                self.assertEqual((mine["current"]["id"], mine["current"]["job"],
                                  mine["current"]["step"], mine["groups"], mine["member"]),
                                 (rollout, "upgrade", 0, ["g"], True), mine)
                self.assertEqual(mine["queued"][-1], rollout)
                self.assertIn("rollout   %s: upgrade here, waiting to start" % rollout,
                              q1.ctl("status").stdout)
                other = fleet.by_host("q2").status()["rollout"]
                self.assertEqual((other["current"], other["order"], other["error"]),
                                 (None, 2, None), other)
                self.assertIn("rollout   none here; member of g, order 2",
                              fleet.by_host("q2").ctl("status").stdout)
                starts = len(match(q1.events(), "job.start", job="upgrade"))

                # Restarted with the job still queued: reported failed, dropped.
                self.assertEqual(q1.stop(), 0)
                n = len(q1.events())
                q1.start()
                fin = q1.wait_event("rollout.host.finish", rollout=rollout, since=n, timeout=30)[0]
                self.assertEqual(fin["result"], "failed")
                self.assertIn("dropped from the queue, not run", fin["error"])
                dropped = q1.wait_event("job.fail", trigger="rollout", trigger_name=rollout,
                                        since=n, timeout=30)[0]
                self.assertIn("dropped from the queue without running", dropped["error"])
                s = fleet.wait_state(rollout, ("stopped",), timeout=30)
                self.assertEqual({h["host"]: h["state"] for h in s["hosts"]},
                                 {"q1": "failed", "q2": "not started"})

                # Resumed, the queue has nothing of the rollout's left to run.
                p = q1.ctl("resume")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                time.sleep(2)
                self.assertEqual(len(match(q1.events(), "job.start", job="upgrade")), starts)
                self.assertEqual(match(fleet.by_host("q2").events(), "job.queued"), [])

                # etcd out of reach: status says so, and stops saying it once back.
                q2 = fleet.by_host("q2")
                etcd.stop()

                def lease_error():
                    e = q2.status()["rollout"]["error"] or ""
                    return e if e.startswith(("lease keepalive: ", "no etcd lease: ")) else None
                down = wait_until("q2's lease error in its status", lease_error, 30)
                self.assertIn("          last problem: " + down.split(":")[0], q2.ctl("status").stdout)
                etcd.start()
                wait_until("q2's rollout error gone",
                           lambda: q2.status()["rollout"]["error"] is None, 30)

    def test_cancel_and_bad_input(self):
        specs = [("c1", "g", 1, OTHER_JOB), ("c2", "g", 2, OTHER_JOB), ("c3", "h", 1, "")]
        with Etcd() as etcd:
            etcd.put("/warden/armed", "yes")
            with Fleet(etcd, specs) as fleet:
                p = fleet.ctl("run", "upgrade", "--group", "nosuch")
                self.assertEqual(p.returncode, 1)
                self.assertIn("group nosuch has no member: nothing under /warden/members/nosuch/",
                              p.stderr)
                p = fleet.ctl("run", "upgrade", "--group", "g", "--parallel", "0")
                self.assertEqual(p.returncode, 2)
                self.assertIn("--parallel must be at least 1", p.stderr)
                # c3 (group h) lacks `other`; put it in g by hand? No: a
                # member of g without the job: c3 registers g too below.
                etcd.put("/warden/members/g/c3",
                         json.dumps({"host": "c3", "order": 3, "jobs": ["upgrade"]}))
                p = fleet.ctl("run", "other", "--group", "g")
                self.assertEqual(p.returncode, 1)
                self.assertIn("job other is not defined on c3 (member of g); nothing written",
                              p.stderr)
                etcd.put("/warden/members/g/c3", "not json")
                p = fleet.ctl("run", "other", "--group", "g")
                self.assertEqual(p.returncode, 1)
                self.assertIn("/warden/members/g/c3: malformed member: not JSON (value 'not json')",
                              p.stderr)
                etcd.delete("/warden/members/g/c3")

                etcd.put("/warden/rollouts/bad", "garbage")
                p = fleet.ctl("status", "bad")
                self.assertEqual(p.returncode, 1)
                self.assertIn("/warden/rollouts/bad: malformed rollout: not JSON (value 'garbage')",
                              p.stderr)
                self.assertIn("error     /warden/rollouts/bad: malformed rollout",
                              fleet.ctl("status").stdout)
                c1 = fleet.by_host("c1")
                c1.wait_for(lambda e: "/warden/rollouts/bad: malformed rollout" in c1.log(),
                            timeout=30)

                # Cancel while c1 runs: c2 never starts, c1 finishes.
                c1_sleep = os.path.join(c1.dir, "sleep")
                with open(c1_sleep, "w") as f:
                    f.write("3")
                rollout = fleet.run_rollout("--group", "g")
                c1.wait_event("rollout.host.start", rollout=rollout, timeout=30)
                p = fleet.ctl("cancel", rollout, "--reason", "wrong package")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertIn("1 running host(s) finish their job", p.stdout)
                p = fleet.ctl("cancel", rollout)
                self.assertEqual(p.returncode, 1)
                self.assertRegex(p.stderr, r"is cancelled: cancelled by \S+@\S+: wrong package")
                c1.wait_event("rollout.host.finish", rollout=rollout, result="done", timeout=30)
                s = fleet.status(rollout)
                self.assertEqual(s["rollout"]["state"], "cancelled")
                self.assertEqual({h["host"]: h["state"] for h in s["hosts"]},
                                 {"c1": "done", "c2": "not started"})
                fleet.by_host("c2").wait_event("rollout.stopped", rollout=rollout)
                self.assertEqual(match(fleet.by_host("c2").events(), "job.queued"), [])
                p = fleet.ctl("cancel", "nosuch")
                self.assertEqual(p.returncode, 1)
                self.assertIn("no rollout nosuch (/warden/rollouts/nosuch does not exist)",
                              p.stderr)

                # The job goes through the guard: a fleet halt holds it.
                os.unlink(c1_sleep)
                p = fleet.ctl("halt", "--reason", "freeze")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                c1.wait_event("mutex.state", held=True, timeout=30)
                n = c1.mark()
                held = fleet.run_rollout("--group", "g")
                c1.wait_event("job.paused", job="upgrade", since=n, timeout=30)
                host = {h["host"]: h for h in fleet.status(held)["hosts"]}["c1"]
                self.assertEqual(host["text"], "running (queued, no step yet)")
                self.assertEqual(match(c1.events()[n:], "job.step"), [])
                p = fleet.ctl("clear")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                fleet.wait_state(held, ("done",))


if __name__ == "__main__":
    unittest.main()
