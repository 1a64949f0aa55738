"""A real replica: two mariadbd in temp dirs on loopback, GTID replication
set up here, Debian's percona-toolkit pt-heartbeat --update --utc writing on
the primary. heartbeat_lag tells the truth where Seconds_Behind_Master does
not: it grows while the IO thread is stopped (SBM is NULL), and while the SQL
thread is stopped by an error, which io_running, sql_running, last_error and
lag report from the real server. A missing row and a missing table are
errors that say so."""

import json
import os
import shutil
import subprocess
import time
import unittest

from harness import MariaDB, Wardend, base_config

PT_HEARTBEAT = shutil.which("pt-heartbeat")


@unittest.skipUnless(PT_HEARTBEAT, "pt-heartbeat (percona-toolkit) is not installed")
class Replica(unittest.TestCase):
    def setUp(self):
        self.primary = MariaDB(["--log-bin=primary-bin", "--server-id=1", "--binlog-format=ROW"])
        self.primary.__enter__()
        self.addCleanup(self.primary.__exit__, None, None, None)
        self.replica = MariaDB(["--server-id=2"])
        self.replica.__enter__()
        self.addCleanup(self.replica.__exit__, None, None, None)
        self.primary.sql("CREATE USER repl@'%' IDENTIFIED BY 'replpw'; "
                         "GRANT REPLICATION SLAVE ON *.* TO repl@'%'")
        # Start from where the primary is now: what the sandboxes did to
        # both (users) is not replayed.
        pos = self.primary.sql("SELECT @@gtid_binlog_pos")[0][0]
        self.replica.sql(
            "SET GLOBAL gtid_slave_pos = '%s'; "
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %d, "
            "MASTER_USER = 'repl', MASTER_PASSWORD = 'replpw', MASTER_USE_GTID = slave_pos; "
            "START SLAVE" % (pos, self.primary.port))
        self.wait_replica(lambda s: s["Slave_IO_Running"] == "Yes"
                          and s["Slave_SQL_Running"] == "Yes", "replication running")
        self.primary.sql("CREATE DATABASE percona; CREATE DATABASE app; "
                         "CREATE TABLE app.t (id INT PRIMARY KEY)")
        self.heartbeat = subprocess.Popen(
            [PT_HEARTBEAT, "--update", "--utc", "--create-table", "--database", "percona",
             "--interval", "0.5", "--socket", self.primary.socket, "--user",
             self.primary.admin_user],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.stop_heartbeat)
        deadline = time.monotonic() + 30
        while not self.replica.sql("SELECT COUNT(*) FROM information_schema.TABLES "
                                   "WHERE TABLE_SCHEMA = 'percona'")[0][0] == "1" or \
                not self.replica.sql("SELECT COUNT(*) FROM percona.heartbeat")[0][0] != "0":
            self.assertIsNone(self.heartbeat.poll(), "pt-heartbeat died: %s"
                              % (self.heartbeat.stderr.read() if self.heartbeat.poll() is not None
                                 else ""))
            self.assertLess(time.monotonic(), deadline, "no heartbeat reached the replica")
            time.sleep(0.3)
        self.wd = Wardend()
        self.addCleanup(self.wd.__exit__, None, None, None)

    def stop_heartbeat(self):
        if self.heartbeat.poll() is None:
            self.heartbeat.terminate()
            self.heartbeat.wait(10)

    def replica_status(self):
        p = subprocess.run(["mariadb", "--no-defaults", "--socket=" + self.replica.socket,
                            "-u" + self.replica.admin_user, "-E", "-e", "SHOW SLAVE STATUS"],
                           capture_output=True, text=True, check=True)
        out = {}
        for line in p.stdout.splitlines():
            key, _, value = line.strip().partition(": ")
            if key and not key.startswith("*"):
                out[key] = value
        return out

    def wait_replica(self, pred, what, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            s = self.replica_status()
            if s and pred(s):
                return s
            self.assertLess(time.monotonic(), deadline, "%s: %s" % (what, s))
            time.sleep(0.3)

    def checks(self):
        st = json.loads(self.wd.ctl("status", "--json", check=True).stdout)
        return {c["name"]: c for c in st["checks"]}

    def wait_checks(self, pred, what, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            c = self.checks()
            if pred(c):
                return c
            self.assertLess(time.monotonic(), deadline, "%s: %s" % (what, {
                n: (x["state"], x["value"], x["last_error"]) for n, x in c.items()}))
            time.sleep(0.5)

    def test_heartbeat_lag_tells_the_truth_on_a_real_replica(self):
        self.wd.start((base_config("replica-test", workers=None, level=None, mutex_off=True) + """
[mysql]
host          = 127.0.0.1
port          = {port}
user          = {user}
password_file = {password_file}

[check hb]
type  = mysql_replica
field = heartbeat_lag
crit  = > 5

[check lag]
type  = mysql_replica
field = lag

[check io]
type  = mysql_replica
field = io_running

[check sql]
type  = mysql_replica
field = sql_running

[check err]
type  = mysql_replica
field = last_error

[check no_row]
type                = mysql_replica
field               = heartbeat_lag
heartbeat_server_id = 99

[check no_table]
type            = mysql_replica
field           = heartbeat_lag
heartbeat_table = percona.nope
""").format(port=self.replica.port, user=self.replica.user,
            password_file=self.replica.password_file, **self.wd.paths))
        self.wd.wait_event("daemon.start")

        # Healthy: a heartbeat under a few seconds old, SBM 0, threads Yes.
        c = self.wait_checks(lambda c: c["hb"]["state"] == "ok" and c["io"]["value"] == "Yes"
                             and c["lag"]["state"] == "ok", "healthy")
        self.assertLess(float(c["hb"]["value"]), 3)
        self.assertEqual(c["sql"]["value"], "Yes")
        self.assertEqual(c["no_row"]["state"], "error")
        self.assertIn("no heartbeat in percona.heartbeat for server_id 99", c["no_row"]["last_error"])
        self.assertEqual(c["no_table"]["state"], "error")
        self.assertIn("heartbeat table percona.nope", c["no_table"]["last_error"])
        self.assertIn("doesn't exist", c["no_table"]["last_error"])

        # The IO thread stops: SBM is NULL (lag says so, with the threads),
        # the heartbeat's age grows past crit.
        self.replica.sql("STOP SLAVE IO_THREAD")
        c = self.wait_checks(lambda c: c["hb"]["state"] == "crit", "heartbeat_lag growing")
        self.assertGreater(float(c["hb"]["value"]), 5)
        self.assertEqual(c["io"]["value"], "No")
        self.assertEqual(c["lag"]["state"], "error")
        self.assertIn("Seconds_Behind_Master is NULL", c["lag"]["last_error"])
        self.assertIn("IO thread No", c["lag"]["last_error"])
        self.replica.sql("START SLAVE IO_THREAD")
        self.wait_checks(lambda c: c["hb"]["state"] == "ok", "heartbeat back", timeout=60)

        # The SQL thread stops on an error (a row the replica already has).
        self.replica.sql("INSERT INTO app.t VALUES (1)")
        self.primary.sql("INSERT INTO app.t VALUES (1)")
        c = self.wait_checks(lambda c: c["sql"]["value"] == "No" and c["hb"]["state"] == "crit",
                             "SQL thread stopped")
        self.assertIn("Duplicate entry", c["err"]["value"])
        self.assertEqual(c["lag"]["state"], "error")
        self.assertIn("Last_SQL_Error", c["lag"]["last_error"])
        self.assertIn("Duplicate entry", c["lag"]["last_error"])
        self.assertEqual(c["io"]["value"], "Yes")
        self.wd.stop()


if __name__ == "__main__":
    unittest.main()
