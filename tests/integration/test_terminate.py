"""Terminate on one host: `wardenctl abort` stops a running job step (a
process group that ignores SIGTERM gets SIGKILL after kill_grace) and a
running action, halts the queue with job.terminated; an HTTP mutex that
answers {"held": true, "terminate": true} does the same on its own and
leaves an informing action (webhook) alone. No MariaDB needed: exec steps
that record their pid. The fleet-wide terminate over etcd, with a
`SELECT SLEEP()`, is test_terminate_fleet.py."""

import os
import time
import unittest

from harness import (HungPeer, MutexServer, Wardend, alive_groups, base_config, marking_action,
                     match, ran, read_pid, slack)

CONFIG = base_config("terminate-test", level="debug", mutex="{mutex}",
                     daemon="kill_grace = 1s") + marking_action("prep") + """
; Ignores SIGTERM, and so does its child: only SIGKILL ends them.
[action stubborn]
type    = exec
command = /bin/sh -c 'trap "" TERM; echo $$ > {dir}/stubborn.pid; sleep 600; echo late >> {dir}/ran'
timeout = 10m

; Ends at SIGTERM.
[action sleeper]
type    = exec
command = /bin/sh -c 'echo $$ > {dir}/sleeper.pid; exec sleep 600'
timeout = 10m
""" + marking_action("after") + """
[job long]
steps = prep, stubborn, after
"""


class Terminate(unittest.TestCase):
    def test_abort_kills_the_step_after_kill_grace_and_halts_the_queue(self):
        with Wardend() as wd:
            wd.start(CONFIG.format(mutex="mode = off", **wd.paths))
            wd.wait_event("daemon.start")
            p = wd.ctl("abort")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("nothing was running", p.stdout)
            p = wd.ctl("abort", "--job", "nosuch")
            self.assertEqual(p.returncode, 1)
            self.assertIn("no job named 'nosuch'", p.stderr)
            p = wd.ctl("abort", "--job", "long")
            self.assertEqual(p.returncode, 1)
            self.assertIn("job long is not running", p.stderr)

            self.assertEqual(wd.ctl("run", "long").returncode, 0)
            pgid = read_pid(os.path.join(wd.dir, "stubborn.pid"))
            self.assertTrue(alive_groups({pgid}))
            n = wd.mark()
            began = time.monotonic()
            p = wd.ctl("abort", "--job", "long")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("job long: terminating", p.stdout)
            t = wd.wait_event("job.terminated", job="long", since=n)[0]
            took = time.monotonic() - began
            self.assertFalse(alive_groups({pgid}))
            # SIGTERM was ignored: SIGKILL came kill_grace (1s) later.
            self.assertGreaterEqual(took, 0.9)
            self.assertLess(took, slack(1.0) + 5)
            self.assertEqual((t["step"], t["step_index"], t["result"]),
                             ("stubborn", 2, "terminated"))
            self.assertTrue(t["error"].startswith("wardenctl abort by uid "), t["error"])
            events = wd.events()[n:]
            fin = match(events, "action.finish", action="stubborn")[0]
            self.assertEqual((fin["result"], fin["signal"], fin["terminated"]), ("fail", 9, True))
            self.assertIn("terminated: killed by signal 9 (SIGKILL)", fin["error"])
            step = match(events, "job.step", step="stubborn", result="terminated")
            self.assertEqual(len(step), 1)
            term = match(events, "daemon.terminate")[0]
            self.assertEqual((term["cause"], term["job"], term["kill_grace"]),
                             ("abort", "long", "1s"))
            self.assertEqual(term["actions"], [])   # --job: the job's step only
            self.assertEqual(ran(wd), ["prep"])        # neither "late" nor "after"

            s = wd.status()
            self.assertTrue(s["halt"]["halted"])
            self.assertIn("job long was terminated at step 2/3 (stubborn)", s["halt"]["reason"])
            self.assertFalse(match(wd.events(), "job.rollback.start"))

            # One action alone (the halt blocks it: resume first). SIGTERM ends it.
            self.assertEqual(wd.ctl("resume").returncode, 0)
            self.assertEqual(wd.ctl("run", "sleeper").returncode, 0)
            pgid = read_pid(os.path.join(wd.dir, "sleeper.pid"))
            n = wd.mark()
            p = wd.ctl("abort", "--action", "sleeper")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("action sleeper: SIGTERM sent", p.stdout)
            fin = wd.wait_event("action.finish", action="sleeper", since=n)[0]
            self.assertEqual((fin["signal"], fin["terminated"]), (15, True))
            self.assertFalse(alive_groups({pgid}))
            self.assertFalse(wd.status()["halt"]["halted"])   # no job: no halt
            p = wd.ctl("abort", "--action", "sleeper")
            self.assertEqual(p.returncode, 1)
            self.assertIn("action sleeper is not running", p.stderr)

    def test_a_terminating_http_mutex_stops_the_job_but_not_a_webhook(self):
        with MutexServer() as mutex, HungPeer() as hung, Wardend() as wd:
            extra = """
[action tell]
type    = webhook
url     = http://127.0.0.1:%d/hook
timeout = 4s
""" % hung.port
            mutex_conf = "url = %s\ntimeout = 1s\ncache = 0s\npoll = 200ms" % mutex.url
            wd.start(CONFIG.format(mutex=mutex_conf, **wd.paths) + extra)
            wd.wait_event("mutex.state", held=False)
            self.assertEqual(wd.ctl("run", "long").returncode, 0)
            pgid = read_pid(os.path.join(wd.dir, "stubborn.pid"))
            self.assertEqual(wd.ctl("run", "tell").returncode, 0)
            wd.wait_event("action.start", action="tell")
            n = wd.mark()
            began = time.monotonic()
            mutex.set("terminate:bad package in the repository")
            held = wd.wait_event("mutex.state", held=True, since=n)[0]
            self.assertEqual((held["reason"], held["terminate"]),
                             ("bad package in the repository", True))
            t = wd.wait_event("job.terminated", job="long", since=n)[0]
            took = time.monotonic() - began
            self.assertFalse(alive_groups({pgid}))
            self.assertLess(took, slack(2.0) + 1 + 3)   # poll + kill_grace + margin
            self.assertEqual(t["error"],
                             "fleet halt (terminate): bad package in the repository")
            term = wd.wait_event("daemon.terminate", since=n)[0]
            self.assertEqual((term["cause"], term["job"]), ("mutex", "long"))
            self.assertNotIn("tell", term["actions"])
            # The webhook informs: it ran to its own end (the hung peer's
            # timeout), never terminated.
            fin = wd.wait_event("action.finish", action="tell", timeout=30)[0]
            self.assertNotIn("terminated", fin)
            self.assertEqual(len(match(wd.events(), "daemon.terminate")), 1)   # once per halt
            self.assertEqual(ran(wd), ["prep"])


if __name__ == "__main__":
    unittest.main()
