"""The fleet's terminate switch on a real etcd: `wardenctl fleet halt
--terminate` (the halt record {"reason": ..., "terminate": true}) stops 12
wardend processes, each inside a long exec step that ignores SIGTERM, and
the time from the write of the halt to the last child gone is measured
(p99 < 2 s + kill_grace, with a margin for the loaded machine); and one
wardend inside a long `SELECT SLEEP(600)` mysql_sql action, whose query
must be gone from the server's processlist (KILL QUERY). RUN_SERIAL: 12
daemons and their children."""

import os
import subprocess
import time
import unittest

from harness import (WARDENCTL, Etcd, MariaDB, Wardend, alive_groups, base_config, etcd_mutex,
                     match, read_pid, run, slack)

HOSTS = 12
KILL_GRACE = 1.0
POLL = "250ms"

CONFIG = base_config("{host}", mutex=etcd_mutex(poll=POLL), daemon="kill_grace = 1s")

LONG_STEP = """
[action prep]
type    = exec
command = /bin/sh -c 'echo prep > {dir}/prep'

[action long]
type    = exec
command = /bin/sh -c 'trap "" TERM; echo $$ > {dir}/long.pid; sleep 600'
timeout = 10m

[job upgrade]
steps = prep, long
"""

SLEEPY = """
[mysql]
socket        = {socket}
user          = warden
password_file = {password_file}
query_timeout = 10m

[action sleepy]
type    = mysql_sql
sql     = SELECT SLEEP(600)
timeout = 10m

[job upgrade]
steps = sleepy
"""


def fleet_config(etcd, wd):
    """A wardenctl config that only names the etcd (fleet commands)."""
    return wd.write("fleet.ini", """
[mutex]
backend   = etcd
endpoints = %s
prefix    = /warden
""" % etcd.endpoint)


def percentile(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[k]


class TerminateFleet(unittest.TestCase):
    def test_halt_terminate_reaches_12_hosts_inside_a_long_step(self):
        with Etcd() as etcd:
            etcd.put("/warden/armed", "yes")
            daemons = [Wardend() for _ in range(HOSTS)]
            try:
                for i, wd in enumerate(daemons):
                    wd.start(CONFIG.format(host="fleet-%02d" % i, endpoint=etcd.endpoint,
                                           **wd.paths) + LONG_STEP.format(**wd.paths))
                for wd in daemons:
                    wd.wait_event("mutex.state", held=False, timeout=60)
                    self.assertEqual(wd.ctl("run", "upgrade").returncode, 0)
                pgids = {read_pid(os.path.join(wd.dir, "long.pid"), 60): wd for wd in daemons}
                self.assertEqual(len(pgids), HOSTS)
                time.sleep(0.5)
                self.assertEqual(alive_groups(set(pgids)), set(pgids))

                ctl_config = fleet_config(etcd, daemons[0])
                began = time.monotonic()
                p = run([WARDENCTL, "-c", ctl_config, "fleet", "halt", "--terminate",
                         "--reason", "bad rpm"], check=False)
                written = time.monotonic()
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertIn("terminating", p.stdout)
                gone = {}
                left = set(pgids)
                deadline = written + 60
                while left and time.monotonic() < deadline:
                    still = alive_groups(left)
                    now = time.monotonic()
                    for g in left - still:
                        gone[g] = now - began   # from before wardenctl wrote: an upper bound
                    left = still
                    time.sleep(0.01)
                self.assertFalse(left, "children still alive 60 s after the halt")
                times = sorted(gone.values())
                p99 = percentile(times, 99)
                print("\nterminate over etcd, %d hosts, poll %s, kill_grace %.0fs: "
                      "wardenctl fleet halt took %.3fs; from its start to a child gone: "
                      "median %.3fs, p99 %.3fs, max %.3fs"
                      % (HOSTS, POLL, KILL_GRACE, written - began,
                         percentile(times, 50), p99, times[-1]))
                # SIGTERM is ignored: each child lives at least kill_grace.
                self.assertGreaterEqual(times[0], KILL_GRACE - 0.1)
                self.assertLess(p99, 2.0 + KILL_GRACE + slack(1.0) + 1.0)
                for wd in daemons:
                    t = wd.wait_event("job.terminated", job="upgrade")[0]
                    self.assertEqual((t["step"], t["error"]),
                                     ("long", "fleet halt (terminate): bad rpm"))
                    fin = match(wd.events(), "action.finish", action="long")[0]
                    self.assertEqual((fin["signal"], fin["terminated"]), (9, True))

                p = run([WARDENCTL, "-c", ctl_config, "fleet", "status"], check=False)
                self.assertIn("HALTED, terminating: bad rpm", p.stdout)
            finally:
                for wd in daemons:
                    wd.__exit__(None, None, None)

    def test_halt_terminate_kills_a_running_select_sleep(self):
        with Etcd() as etcd, MariaDB() as db, Wardend() as wd:
            etcd.put("/warden/armed", "yes")
            wd.start(CONFIG.format(host="sleepy", endpoint=etcd.endpoint, **wd.paths)
                     + SLEEPY.format(socket=db.socket, password_file=db.password_file))
            wd.wait_event("mutex.state", held=False, timeout=60)
            self.assertEqual(wd.ctl("run", "upgrade").returncode, 0)
            query = ("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                     "WHERE INFO = 'SELECT SLEEP(600)'")
            deadline = time.monotonic() + 30
            while db.sql(query)[0][0] != "1":
                self.assertLess(time.monotonic(), deadline, "the statement never ran")
                time.sleep(0.1)
            n = wd.mark()
            p = run([WARDENCTL, "-c", fleet_config(etcd, wd), "fleet", "halt", "--terminate",
                     "--reason", "stop the SQL"], check=False)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            t = wd.wait_event("job.terminated", job="upgrade", since=n, timeout=30)[0]
            self.assertEqual(t["step"], "sleepy")
            fin = match(wd.events(), "action.finish", action="sleepy")[0]
            self.assertTrue(fin["terminated"])
            self.assertIn("terminated: ", fin["error"])
            self.assertIn("interrupted", fin["error"])   # ERROR 1317 ... execution was interrupted
            self.assertEqual(db.sql(query)[0][0], "0")
            term = match(wd.events(), "daemon.terminate")[0]
            self.assertEqual(term["actions"], ["sleepy"])


if __name__ == "__main__":
    unittest.main()
