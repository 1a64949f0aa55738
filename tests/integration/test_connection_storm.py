"""A connection storm: a real MariaDB with max_connections = 20 and an
extra_port filled by sleepers (an application user's SELECT SLEEP) until it
refuses with "Too many connections", while 50 checks run every second.

- wardend keeps its established connections: every check keeps reporting;
- a restarted wardend without fallback_port cannot connect (ERROR 1040);
- with fallback_port (MariaDB's extra_port) it can, every check reports,
  and an action (KILL CONNECTION USER) still ends the storm."""

import os
import subprocess
import time
import unittest

from harness import MariaDB, Wardend, base_config, free_port

MAX_CONNECTIONS = 20
SLEEPERS = 40
WORKERS = 4


def config(wd, db, fallback_port):
    checks = []
    variables = ["Threads_connected", "Uptime", "Questions", "Com_select", "Bytes_received"]
    for i in range(20):
        checks.append("[check status_%d]\ntype = mysql_status\nvariable = %s\nevery = 1s\n"
                      % (i, variables[i % len(variables)]))
    for i in range(15):
        checks.append("[check query_%d]\ntype = mysql_query\nsql = SELECT %d\nevery = 1s\n"
                      % (i, i))
    for i in range(15):
        checks.append("[check ping_%d]\ntype = mysql_ping\nevery = 1s\n" % i)
    return (base_config("storm-test", workers=WORKERS, mutex_off=True) + """
[mysql]
host            = 127.0.0.1
port            = {port}
user            = {user}
password_file   = {password_file}
connect_timeout = 2s
query_timeout   = 30s   ; KILL of many connections: 0.1-0.5 s each on MariaDB 10.11
{fallback}

[check connections]
type     = mysql_status
variable = Threads_connected
every    = 1s

[action end_storm]
type = mysql_sql
sql  = KILL CONNECTION USER app
""").format(port=db.port, user=db.user, password_file=db.password_file,
                fallback="fallback_port = %d" % fallback_port if fallback_port else "",
                **wd.paths) + "\n".join(checks)


class ConnectionStorm(unittest.TestCase):
    def setUp(self):
        self.extra_port = free_port()
        self.db = MariaDB(["--max-connections=%d" % MAX_CONNECTIONS,
                           "--extra-port=%d" % self.extra_port, "--extra-max-connections=10"])
        self.db.__enter__()
        self.addCleanup(self.db.__exit__, None, None, None)
        self.db.sql("CREATE USER app@'%' IDENTIFIED BY 'app'")
        self.wd = Wardend()
        self.addCleanup(self.wd.__exit__, None, None, None)
        self.sleepers = []
        self.addCleanup(self.end_sleepers)

    def end_sleepers(self):
        for p in self.sleepers:
            if p.poll() is None:
                p.kill()
            p.wait()

    def checks(self):
        return {c["name"]: c for c in self.wd.status()["checks"]}

    def wait_all_report(self, since_runs, more, timeout):
        """Every check has run `more` times since `since_runs` and is ok."""
        deadline = time.monotonic() + timeout
        while True:
            checks = self.checks()
            behind = {n: (c["runs"], c["state"], c["last_error"]) for n, c in checks.items()
                      if c["runs"] < since_runs.get(n, 0) + more or c["state"] != "ok"}
            if not behind:
                return checks
            self.assertLess(time.monotonic(), deadline,
                            "%d checks not reporting: %s" % (len(behind), dict(
                                list(behind.items())[:6])))
            time.sleep(0.5)

    def storm(self):
        """Sleepers until the server refuses one: the limit is reached.
        Returns how many of them connected."""
        batch = [subprocess.Popen(
            ["mariadb", "--no-defaults", "--skip-ssl", "-h127.0.0.1", "-P%d" % self.db.port, "-uapp",
             "-papp", "-e", "SELECT SLEEP(600)"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True) for _ in range(SLEEPERS)]
        self.sleepers += batch
        deadline = time.monotonic() + 30
        while not any(p.poll() is not None for p in batch):
            self.assertLess(time.monotonic(), deadline, "the server never refused a sleeper")
            time.sleep(0.2)
        time.sleep(2)   # the rest settle: connected, or refused too
        refused = [p for p in batch if p.poll() is not None]
        errors = {p.stderr.read().strip() for p in refused}
        self.assertTrue(all("Too many connections" in e for e in errors), errors)
        return len(batch) - len(refused)

    def test_a_full_server_still_sees_and_is_seen_through_its_reserved_port(self):
        self.wd.start(config(self.wd, self.db, self.extra_port))
        self.wd.wait_event("daemon.start")
        before = self.wait_all_report({}, 2, timeout=60)
        self.assertEqual(len(before), 51)

        connected = self.storm()
        self.assertGreaterEqual(connected, MAX_CONNECTIONS - WORKERS - 3)

        # Established connections are kept: every check goes on reporting.
        runs = {n: c["runs"] for n, c in self.checks().items()}
        checks = self.wait_all_report(runs, 3, timeout=30)
        self.assertGreaterEqual(int(checks["connections"]["value"]), MAX_CONNECTIONS - 1)
        self.assertNotIn("fallback_port", self.wd.log())

        # A restart without fallback_port: the slots wardend let go are
        # taken by more sleepers, and the server refuses wardend.
        self.wd.stop()
        self.storm()
        self.wd.start(config(self.wd, self.db, 0))
        self.wd.wait_event("daemon.start")
        deadline = time.monotonic() + 30
        while True:
            errors = [c["last_error"] for c in self.checks().values() if c["state"] == "error"]
            if any("Too many connections" in e for e in errors):
                break
            self.assertLess(time.monotonic(), deadline, "no check refused: %s" % errors[:3])
            time.sleep(0.5)
        # ERROR 1040, or (ssl_mode preferred: TLS asked for) libmariadb's ERROR 2002
        # "... before completion of TLS handshake ...: 1040 - Too many connections".
        self.assertIn("1040", next(e for e in errors if "Too many" in e))

        # With fallback_port it connects through extra_port: all report again.
        self.wd.stop()
        self.storm()
        alive = sum(p.poll() is None for p in self.sleepers)
        self.wd.start(config(self.wd, self.db, self.extra_port))
        self.wd.wait_event("daemon.start")
        self.wait_all_report({}, 3, timeout=60)
        log = self.wd.log()
        self.assertIn("Too many connections; connected through fallback_port 127.0.0.1:%d instead"
                      % self.extra_port, log)
        # The sleepers are all still there: the storm is real.
        self.assertEqual(sum(p.poll() is None for p in self.sleepers), alive)

        # And an action still ends the storm.
        p = self.wd.ctl("run", "end_storm", "--wait", timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + str(
            [e for e in self.wd.events() if e["event"] == "action.finish"]))
        deadline = time.monotonic() + 60
        while any(s.poll() is None for s in self.sleepers):
            self.assertLess(time.monotonic(), deadline, "sleepers still connected")
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while int(self.checks()["connections"]["value"]) >= MAX_CONNECTIONS - WORKERS:
            self.assertLess(time.monotonic(), deadline, "Threads_connected did not drop")
            time.sleep(0.5)
        self.wd.stop()


if __name__ == "__main__":
    unittest.main()
