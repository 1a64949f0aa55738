"""The core loop end to end: a real MariaDB, real checks, thresholds that
trip, guarded actions that run, and the events that say so."""

import os
import re
import time
import unittest

from harness import MariaDB, MutexServer, Wardend, base_config, match, run, WARDENCTL

BASE = base_config("itest-db", workers=3, level="debug",
                   mysql="connect_timeout = 2s\nquery_timeout   = 5s",
                   mutex="url   = {mutex_url}\ncache = 500ms\npoll  = 1s")


class CoreLoop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = MariaDB().__enter__()
        cls.db.sql("CREATE DATABASE IF NOT EXISTS warden_demo")
        cls.db.sql("CREATE TABLE IF NOT EXISTS warden_demo.queue (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")

    @classmethod
    def tearDownClass(cls):
        cls.db.__exit__(None, None, None)

    def setUp(self):
        self.db.sql("DELETE FROM warden_demo.queue")

    def config(self, wd, mutex_url, extra):
        return (BASE + extra).format(mutex_url=mutex_url, socket=self.db.socket,
                                     password_file=self.db.password_file, **wd.paths)

    def test_threshold_trips_action_runs_and_recovers(self):
        with MutexServer("clear") as mutex, Wardend() as wd:
            marker = os.path.join(wd.dir, "remediated")
            wd.start(self.config(wd, mutex.url, """
[check alive]
type = mysql_ping

[check uptime]
type = mysql_status
variable = Uptime
warn = < 0

[check backlog]
type = mysql_query
sql = SELECT COUNT(*)
        FROM warden_demo.queue
crit = > 5
trip = 2
depends = alive
on_crit = drain_queue, tell
on_recover = tell

[action drain_queue]
type = exec
command = /bin/sh -c 'echo "draining $QUEUE"; touch {marker}; echo oops >&2'
shell = no
env = QUEUE=warden_demo.queue

[action tell]
type = notify
severity = critical
message = {{check}} is {{state}} on {{host}} with {{value}}
""".replace("{marker}", marker)))
            wd.wait_event("check.state", check="backlog", state="ok")
            start = wd.wait_event("daemon.start")[0]
            self.assertEqual(start["host"], "itest-db")
            self.assertRegex(start["config_digest"], r"^[0-9a-f]{16}$")
            wd.wait_event("check.state", check="uptime", state="ok")
            alive = wd.wait_event("check.state", check="alive", state="ok")[0]
            self.assertGreaterEqual(float(alive["value"]), 0)

            self.db.sql("INSERT INTO warden_demo.queue (v) VALUES " + ",".join(["(1)"] * 10))
            crit = wd.wait_event("check.state", check="backlog", state="crit")[0]
            self.assertEqual(crit["prev_state"], "ok")
            self.assertEqual(crit["value"], "10")
            self.assertEqual(crit["threshold"], "> 5")
            fin = wd.wait_event("action.finish", action="drain_queue")[0]
            self.assertEqual(fin["result"], "ok")
            self.assertEqual(fin["exit_code"], 0)
            self.assertEqual(fin["trigger"], "check")
            self.assertEqual(fin["check"], "backlog")
            self.assertIn("draining warden_demo.queue", fin["stdout_tail"])
            self.assertIn("oops", fin["stderr_tail"])
            self.assertTrue(os.path.exists(marker))
            told = wd.wait_event("action.finish", action="tell")[0]
            self.assertEqual(told["message"], "backlog is crit on itest-db with 10")
            # on_crit runs in order: drain_queue finished before tell started.
            events = wd.events()
            order = [e["seq"] for e in events if e["event"] == "action.finish" and e["action"] == "drain_queue"]
            tell_start = [e["seq"] for e in events if e["event"] == "action.start" and e["action"] == "tell"]
            self.assertLess(order[0], tell_start[0])

            self.db.sql("DELETE FROM warden_demo.queue")
            wd.wait_event("check.state", check="backlog", state="ok", prev_state="crit")
            rec = wd.wait_for(lambda ev: [e for e in match(ev, "action.finish", action="tell")
                                          if e.get("state") == "ok"])
            self.assertEqual(rec[0]["message"], "backlog is ok on itest-db with 0")
            self.assertEqual(wd.stop(), 0)
            self.assertTrue(match(wd.events(), "daemon.stop"))

            # Common fields on every event; seq strictly increasing.
            events = wd.events()
            seqs = [e["seq"] for e in events]
            self.assertEqual(seqs, sorted(set(seqs)))
            for e in events:
                for field in ("host", "event", "seq", "time", "version"):
                    self.assertIn(field, e)
                self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            # The password never appears in events or the log.
            with open(wd.paths["events"]) as f:
                self.assertNotIn(self.db.password, f.read())
            self.assertNotIn(self.db.password, wd.log())

    def test_mutex_held_blocks_and_clear_lets_through(self):
        with MutexServer("held:upgrade window") as mutex, Wardend() as wd:
            flag = wd.write("flag", "0\n")
            marker = os.path.join(wd.dir, "ran")
            wd.start(self.config(wd, mutex.url, """
[check flag]
type = program
command = cat {flag}
value = stdout
every = 300ms
crit = > 0
on_crit = fix

[action fix]
type = exec
command = touch {marker}
""".format(flag=flag, marker=marker)))
            held = wd.wait_event("mutex.state", held=True)[0]
            self.assertEqual(held["reason"], "upgrade window")
            wd.wait_event("check.state", check="flag", state="ok")
            wd.write("flag", "1\n")
            blocked = wd.wait_event("action.blocked", action="fix")[0]
            self.assertEqual(blocked["reason"], "mutex")
            self.assertIn("upgrade window", blocked["detail"])
            self.assertFalse(os.path.exists(marker))
            self.assertFalse(match(wd.events(), "action.start", action="fix"))

            mutex.set("clear")
            wd.wait_event("mutex.state", held=False)
            wd.write("flag", "0\n")
            wd.wait_event("check.state", check="flag", state="ok", prev_state="crit")
            wd.write("flag", "1\n")
            fin = wd.wait_event("action.finish", action="fix")[0]
            self.assertEqual(fin["result"], "ok")
            self.assertTrue(os.path.exists(marker))

    def test_mutex_failures_are_held(self):
        # Each broken answer must block the action (fail closed).
        for mode, reason in [("slow:5", "timed out"), ("close", ""), ("status:503", "503"),
                             ("malformed", "malformed"), ("string_false", ""),
                             ("oversized", "64 KB")]:
            with self.subTest(mode=mode), MutexServer(mode) as mutex, Wardend() as wd:
                flag = wd.write("flag", "1\n")
                wd.start(self.config(wd, mutex.url, """
[check flag]
type = program
command = cat {flag}
value = stdout
every = 500ms
crit = > 0
on_crit = fix

[action fix]
type = exec
command = /bin/true
""".format(flag=flag)).replace("cache = 500ms", "cache = 500ms\ntimeout = 1s"))
                blocked = wd.wait_event("action.blocked", action="fix", timeout=30)[0]
                self.assertEqual(blocked["reason"], "mutex")
                self.assertIn(reason, blocked["detail"])
                self.assertFalse(match(wd.events(), "action.start", action="fix"))

    def test_cooldown_budget_and_running(self):
        with MutexServer("clear") as mutex, Wardend() as wd:
            flag = wd.write("flag", "0\n")
            wd.start(self.config(wd, mutex.url, """
[check flag]
type = program
command = cat {flag}
value = stdout
every = 200ms
crit = > 0
on_crit = slow, cooled

[action slow]
type = exec
command = sleep 3
budget = 2 per 1h

[action cooled]
type = exec
command = /bin/true
cooldown = 1h
""".format(flag=flag)))
            wd.wait_event("check.state", check="flag", state="ok")

            def trip():
                n = wd.mark()
                wd.write("flag", "1\n")
                wd.wait_event("check.state", check="flag", state="crit", since=n)
                wd.write("flag", "0\n")
                wd.wait_event("check.state", check="flag", state="ok", since=n)
                return n

            trip()                       # slow starts (3 s), cooled waits its turn
            n = trip()                   # slow still running
            wd.wait_event("action.blocked", action="slow", reason="running", since=n)
            wd.wait_event("action.finish", action="slow", timeout=20)
            wd.wait_event("action.finish", action="cooled", timeout=20)
            n = trip()                   # slow: second of 2 per hour; cooled: cooldown
            cool = wd.wait_event("action.blocked", action="cooled", reason="cooldown", since=n,
                                 timeout=20)[0]
            self.assertIn("left", cool["detail"])
            wd.wait_event("action.finish", action="slow", since=n, timeout=20)
            n = trip()
            budget = wd.wait_event("action.blocked", action="slow", reason="budget", since=n)[0]
            self.assertIn("2 per 1h", budget["detail"])
            self.assertEqual(len(match(wd.events(), "action.start", action="slow")), 2)
            self.assertEqual(len(match(wd.events(), "action.start", action="cooled")), 1)

    def test_dry_run_and_errors(self):
        with MutexServer("clear") as mutex, Wardend() as wd:
            wd.start(self.config(wd, mutex.url, """
[check replica]
type = mysql_replica
field = lag
on_error = would_restart

[check bad_sql]
type = mysql_query
sql = SELECT nope FROM warden_demo.nowhere

[action would_restart]
type = mysql_sql
sql = STOP REPLICA; START REPLICA
dry_run = yes
"""))
            err = wd.wait_event("check.state", check="replica", state="error")[0]
            self.assertIn("not a replica", err["error"])
            blocked = wd.wait_event("action.blocked", action="would_restart")[0]
            self.assertEqual(blocked["reason"], "dry_run")
            bad = wd.wait_event("check.state", check="bad_sql", state="error")[0]
            self.assertRegex(bad["error"], r"ERROR 1146 \(42S02\): Table .warden_demo.nowhere. doesn.t exist")

    def test_seq_continues_across_restart_and_kill(self):
        with Wardend() as wd:
            config = self.config(wd, "file:///nonexistent", """
[check alive]
type = mysql_ping
""").replace("url   = file:///nonexistent\n", "mode = off\n")
            wd.start(config)
            wd.wait_event("check.state", check="alive", state="ok")
            self.assertEqual(wd.stop(), 0)
            first = [e["seq"] for e in wd.events()]
            wd.start()
            wd.wait_event("check.state", check="alive", state="ok")
            wd.kill()
            wd.start()
            wd.wait_event("check.state", check="alive", state="ok")
            self.assertEqual(wd.stop(), 0)
            seqs = [e["seq"] for e in wd.events()]
            self.assertGreater(len(seqs), len(first))
            self.assertEqual(seqs, sorted(set(seqs)), "seq must strictly increase across restarts")
            self.assertEqual(seqs[0], 1)
            # Rotated events file: seq keeps going from the reservation.
            last = seqs[-1]
            os.rename(wd.paths["events"], wd.paths["events"] + ".1")
            wd.start()
            wd.wait_event("daemon.start", since=0)
            self.assertEqual(wd.stop(), 0)
            self.assertGreater(wd.events()[0]["seq"], last)


class Validation(unittest.TestCase):
    def test_validate_reports_every_problem(self):
        with Wardend() as wd:
            wd.write_config("""[daemon]
interval = 10
[check a]
type = mysql_ping
on_crit = nothing
[action b]
type = exec
command = echo 'unterminated
""")
            p = wd.ctl("validate")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            cfg = wd.paths["config"]
            self.assertIn(cfg + ":2: interval: duration '10' needs a unit", p.stdout)
            self.assertIn("no [mutex] section", p.stdout)
            self.assertIn("on_crit can never fire", p.stdout)
            self.assertIn(cfg + ":8:", p.stdout)
            self.assertIn("no [mysql] section", p.stdout)
            # The daemon refuses the same file and says why.
            out = run([os.environ.get("WARDEND"), "-c", cfg], check=False, timeout=30)
            self.assertEqual(out.returncode, 1)
            self.assertIn(cfg + ":2:", out.stderr)

    def test_validate_ok_and_permissions(self):
        with Wardend() as wd:
            wd.write_config("[mutex]\nmode = off\n[check root]\ntype = disk\npath = /\n")
            p = wd.ctl("validate")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("ok", p.stdout)
            os.chmod(wd.paths["config"], 0o620)
            p = wd.ctl("validate")
            self.assertEqual(p.returncode, 1)
            self.assertIn("writable by group or others", p.stdout)

    def test_usage_errors_exit_2(self):
        p = run([WARDENCTL, "frobnicate"], check=False)
        self.assertEqual(p.returncode, 2)
        p = run([WARDENCTL], check=False)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
