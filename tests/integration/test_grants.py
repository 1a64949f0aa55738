"""`wardenctl validate --grants` against a real MariaDB: a least-privileged
user, the exact lines for what it lacks, then the grants that fix it (one of
them through a role), a wrong password and a server that is not there."""

import json
import unittest

from harness import MariaDB, Wardend, free_port

CONFIG = """
[daemon]
host_id   = grants-db
state_dir = {state_dir}

[mysql]
host            = 127.0.0.1
port            = {port}
user            = lim
password_file   = {dir}/lim.pass
connect_timeout = 2s
query_timeout   = 5s

[mutex]
mode = off

[check alive]
type = mysql_ping

[check conns]
type     = mysql_status
variable = Threads_connected

[check version]
type     = mysql_variable
variable = version

[check rows]
type = mysql_query
sql  = SELECT v FROM app.t

[check lag]
type  = mysql_replica
field = lag

[action kill_sleepers]
type = mysql_sql
sql  = KILL 999999

[action restart_replication]
type = mysql_sql
sql  = STOP REPLICA; START REPLICA

[action rotate]
type = mysql_sql
sql  = FLUSH LOGS

[action warm]
type = mysql_sql
sql  = SELECT COUNT(*) FROM app.t
"""

HEAD = "(connection [mysql]): "
DENIED_SELECT = ("check rows " + HEAD + "missing SELECT — server said: ERROR 1142 (42000): "
                 "SELECT command denied to user 'lim'@'127.0.0.1' for table `app`.`t`")
DENIED_LAG = ("check lag " + HEAD + "missing SLAVE MONITOR (or SUPER){hint} — server said: "
              "ERROR 1227 (42000): Access denied; you need (at least one of) the SUPER, "
              "SLAVE MONITOR privilege(s) for this operation")
NO_ROLE = " (a role is granted but none is active at login: SET DEFAULT ROLE)"


def problems(out):
    """The lines that are problems: everything but ok lines, notes and headers."""
    return [line for line in out.splitlines()
            if " missing " in line or ": cannot connect" in line
            or "could not be tried" in line]


class Grants(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = MariaDB().__enter__()
        cls.db.sql("CREATE DATABASE app; CREATE TABLE app.t (v INT); INSERT INTO app.t VALUES (7)")

    @classmethod
    def tearDownClass(cls):
        cls.db.__exit__(None, None, None)

    def setUp(self):
        # Only RELOAD: enough for FLUSH LOGS, nothing else the config needs.
        self.db.sql("DROP USER IF EXISTS lim@'127.0.0.1'; DROP ROLE IF EXISTS mon; "
                    "CREATE USER lim@'127.0.0.1' IDENTIFIED BY 'limpw'; "
                    "GRANT RELOAD ON *.* TO lim@'127.0.0.1'")
        self.wd = Wardend().__enter__()
        self.wd.write("lim.pass", "limpw")

    def tearDown(self):
        self.wd.__exit__(None, None, None)

    def validate(self, text=CONFIG, **extra):
        self.wd.write_config(text.format(port=self.db.port, **dict(self.wd.paths, **extra)))
        return self.wd.ctl("validate", "--grants", timeout=120)

    def test_missing_then_granted(self):
        p = self.validate()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        out = p.stdout
        self.assertIn("warden.ini: ok (5 checks, 4 actions", out)
        self.assertIn("connection [mysql]: lim@127.0.0.1 on 10.", out)
        self.assertIn("privileges on *.*: RELOAD", out)
        self.assertEqual(problems(out), [
            DENIED_SELECT,
            DENIED_LAG.format(hint=""),
            "action kill_sleepers " + HEAD + "missing CONNECTION ADMIN (or SUPER) for "
            "statement 1 (KILL) — server grants on *.*: RELOAD",
            "action restart_replication " + HEAD + "missing REPLICATION SLAVE ADMIN (or SUPER) "
            "for statement 1 (STOP REPLICA) — server grants on *.*: RELOAD",
            "action restart_replication " + HEAD + "missing REPLICATION SLAVE ADMIN (or SUPER) "
            "for statement 2 (START REPLICA) — server grants on *.*: RELOAD",
        ])
        self.assertIn("check alive " + HEAD + "ok — needs no privilege beyond connecting", out)
        self.assertIn("check conns " + HEAD + "ok — needs no privilege beyond connecting", out)
        self.assertIn("check version " + HEAD + "ok — needs no privilege beyond connecting", out)
        self.assertIn("action rotate " + HEAD + "ok — RELOAD for FLUSH", out)
        self.assertIn("action warm " + HEAD + "not verified without running it: statement 1 "
                      "(SELECT): SELECT needs SELECT on the tables it names", out)
        self.assertTrue(out.rstrip().endswith("grants: 5 problem(s)"), out)
        # --json: the same report, line by line, and its verdict.
        p = self.wd.ctl("validate", "--grants", "--json", timeout=120)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual((j["schema"], j["ok"], j["grants"]["ok"]), (1, False, False))
        self.assertEqual(j["error"], "grants: 5 problem(s)")
        self.assertEqual(problems("\n".join(j["grants"]["lines"])), problems(out))
        self.assertEqual((j["checks"], j["actions"]), (5, 4))

        # The monitor privilege through a role that is granted but not active
        # at login: still missing, and the line says why.
        self.db.sql("CREATE ROLE mon; GRANT SLAVE MONITOR ON *.* TO mon; "
                    "GRANT mon TO lim@'127.0.0.1'; GRANT SELECT ON app.t TO lim@'127.0.0.1'; "
                    "GRANT CONNECTION ADMIN, REPLICATION SLAVE ADMIN ON *.* TO lim@'127.0.0.1'")
        p = self.validate()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual(problems(p.stdout), [DENIED_LAG.format(hint=NO_ROLE)])
        self.assertIn("roles granted: mon", p.stdout)

        self.db.sql("SET DEFAULT ROLE mon FOR lim@'127.0.0.1'")
        p = self.validate()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(problems(p.stdout), [])
        self.assertIn("active: mon", p.stdout)
        self.assertIn("check rows " + HEAD + "ok — needs what its SQL reads (ran it: allowed)",
                      p.stdout)
        # Not a replica: the read was allowed, the answer is not a grants problem.
        self.assertIn("check lag " + HEAD + "needs SLAVE MONITOR (or SUPER) (granted); note: the "
                      "check's run failed for another reason — not a replica", p.stdout)
        self.assertIn("action kill_sleepers " + HEAD + "ok — CONNECTION ADMIN for KILL", p.stdout)
        self.assertIn("action restart_replication " + HEAD + "ok — REPLICATION SLAVE ADMIN for "
                      "STOP REPLICA, REPLICATION SLAVE ADMIN for START REPLICA", p.stdout)
        self.assertTrue(p.stdout.rstrip().endswith("grants: ok (1 connection(s))"), p.stdout)

    def test_wrong_password(self):
        self.wd.write("lim.pass", "not-the-password")
        p = self.validate()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(problems(p.stdout), [
            "connection [mysql]: cannot connect to [mysql] 127.0.0.1:%d: ERROR 1045 (28000): "
            "Access denied for user 'lim'@'127.0.0.1' (using password: YES) (used by check "
            "alive, check conns, check version, check rows, check lag, action kill_sleepers, "
            "action restart_replication, action rotate, action warm)" % self.db.port])
        self.assertTrue(p.stdout.rstrip().endswith("grants: 1 problem(s)"), p.stdout)

    def test_unreachable_server_and_a_good_one(self):
        # Two connections: one to a port nobody listens on, one that works.
        self.db.sql("GRANT SELECT ON app.t TO lim@'127.0.0.1'")
        dead = free_port()
        text = """
[daemon]
state_dir = {state_dir}

[mysql]
host            = 127.0.0.1
port            = %d
user            = lim
password_file   = {dir}/lim.pass
connect_timeout = 1s

[mysql good]
host          = 127.0.0.1
port          = {port}
user          = lim
password_file = {dir}/lim.pass

[mutex]
mode = off

[check alive]
type = mysql_ping

[check rows]
type       = mysql_query
connection = good
sql        = SELECT v FROM app.t
""" % dead
        p = self.validate(text)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(problems(p.stdout), [
            "connection [mysql]: cannot connect to [mysql] 127.0.0.1:%d: ERROR 2002 (HY000): "
            "Can't connect to server on '127.0.0.1' (115) (used by check alive)" % dead])
        self.assertIn("check rows (connection good): ok", p.stdout)

    def test_usage_and_invalid_config(self):
        p = self.wd.ctl("status", "--grants")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("an option does not apply to 'status'", p.stderr)
        p = self.validate(CONFIG + "\n[check broken]\ntype = mysql_status\n")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("[check broken] needs 'variable'", p.stdout)
        self.assertNotIn("grants:", p.stdout)


if __name__ == "__main__":
    unittest.main()
