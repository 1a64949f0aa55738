"""The upgrade job for real: a MariaDB behind a real HAProxy, both started
here on loopback. wardend drains the server in HAProxy (waiting for a
client's session to end), stops MariaDB, runs a harmless package step that
records what it sees, starts MariaDB, runs the real mariadb-upgrade, waits
until the server is healthy, warms up with SQL from a file and puts the
server back to ready. HAProxy's own answer is asserted at each stage; then
a failing step leaves the server in maint with the queue halted until
wardenctl resume."""

import json
import os
import shutil
import socket
import sys
import threading
import time
import unittest

from harness import HAProxy, MariaDB, SANDBOX, Wardend, base_config, match

# Records, from inside the job, HAProxy's admin state of the server and
# whether MariaDB answers, as the package step of a real upgrade would see
# them.
RECORD = r'''
import socket, sys
hap, backend, server, dbsock, out = sys.argv[1:6]
s = socket.socket(socket.AF_UNIX)
s.connect(hap)
s.sendall(("show servers state %s\n" % backend).encode())
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
header = None
state = None
for line in data.decode().splitlines():
    if line.startswith("# be_id"):
        header = line[2:].split()
    elif header and line and not line.startswith("#"):
        row = dict(zip(header, line.split()))
        if row.get("srv_name") == server:
            state = row["srv_admin_state"]
db = socket.socket(socket.AF_UNIX)
try:
    db.connect(dbsock)
    up = "up"
except OSError:
    up = "down"
with open(out, "a") as f:
    f.write("admin_state=%s mysql=%s\n" % (state, up))
'''

CONFIG = base_config("upgrade-test", workers=3, level="debug", mutex_off=True,
                     daemon="service_command = {sandbox} {{op}} {dbdir}") + """
[mysql]
host          = 127.0.0.1
port          = {port}
user          = warden
password_file = {password_file}
connect_timeout = 1s
query_timeout   = 5s

[check mysql_alive]
type  = mysql_ping
every = 500ms
crit  = > 5000

[job upgrade]
steps   = drain, stop_mysql, update_packages, start_mysql, mysql_upgrade, wait_healthy, warmup, ready
timeout = 15m

[action drain]
type       = haproxy
socket     = {haproxy}
backend    = mysql
server     = db1
state      = drain
drain_wait = 30s

[action stop_mysql]
type    = service
name    = mariadb
op      = stop
timeout = 2m

[action update_packages]
type    = exec
command = {packages}
timeout = 30s

[action start_mysql]
type    = service
name    = mariadb
op      = start
timeout = 2m

[action mysql_upgrade]
type    = exec
command = mariadb-upgrade --no-defaults --force --socket={socket} --user={admin}
timeout = 5m

[wait wait_healthy]
checks  = mysql_alive
for     = 2s
timeout = 2m

[action warmup]
type    = mysql_sql
file    = {dir}/warmup.sql
timeout = 1m

[action ready]
type    = haproxy
socket  = {haproxy}
backend = mysql
server  = db1
state   = ready
"""

WARMUP = """
-- The hot table, read once; and a mark that the warm-up ran.
SELECT COUNT(*) FROM warden_demo.hot;
INSERT INTO warden_demo.warmed (at) VALUES (NOW());
"""


def hold_session(port, seconds):
    """A client connection through HAProxy's frontend, closed after `seconds`
    (in a thread); returns the thread."""
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.recv(4)   # MariaDB's greeting: the session reached the server

    def close_later():
        time.sleep(seconds)
        c.close()
    t = threading.Thread(target=close_later, daemon=True)
    t.start()
    return t


class UpgradeTest(unittest.TestCase):
    def setUp(self):
        if not shutil.which("mariadb-upgrade"):
            self.fail("mariadb-upgrade is not installed (scripts/setup installs mariadb-server)")

    def config(self, wd, db, hap, packages=None, drain_state="drain"):
        """The job's config; `packages` replaces the package step's command."""
        wd.write("record.py", RECORD)
        wd.write("warmup.sql", WARMUP)
        record = "%s %s/record.py\n  %s mysql db1\n  %s\n  %s/seen" % (
            sys.executable, wd.dir, hap.socket, db.socket, wd.dir)
        text = CONFIG.format(sandbox=SANDBOX, dbdir=db.dir, port=db.port,
                             password_file=db.password_file, socket=db.socket,
                             admin=db.admin_user, haproxy=hap.socket,
                             packages=packages or record, **wd.paths)
        return text.replace("state      = drain", "state      = " + drain_state)

    def test_the_whole_upgrade_against_mariadb_behind_haproxy(self):
        with MariaDB() as db:
            db.sql("CREATE TABLE IF NOT EXISTS warden_demo.hot (id INT PRIMARY KEY);"
                   "INSERT IGNORE INTO warden_demo.hot VALUES (1),(2),(3);"
                   "CREATE TABLE IF NOT EXISTS warden_demo.warmed (at DATETIME)")
            with HAProxy(target_port=db.port) as hap, Wardend() as wd:
                self.assertEqual(hap.admin_state(), 0)
                wd.start(self.config(wd, db, hap))
                wd.wait_event("check.state", check="mysql_alive", state="ok")
                client = hold_session(hap.frontend_port, 2.0)
                p = wd.ctl("run", "upgrade", "--wait", timeout=600)
                client.join()
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr + wd.log()[-4000:])
                self.assertIn("job upgrade: ok", p.stdout)
                events = wd.events()

                # 1. drain: HAProxy said drain (8) and the step waited for
                # the client's session to end.
                drain = match(events, "action.finish", action="drain")[0]
                self.assertEqual(drain["result"], "ok")
                self.assertEqual(drain["admin_state"] & 8, 8)
                self.assertGreaterEqual(drain["sessions"], 1)
                self.assertEqual(drain["sessions_left"], 0)
                self.assertGreaterEqual(drain["waited_ms"], 1000)
                # 2-3. While the packages were "updated": still drained in
                # HAProxy, and MariaDB was down.
                with open(os.path.join(wd.dir, "seen")) as f:
                    self.assertEqual(f.read().split(), ["admin_state=8", "mysql=down"])
                # 4-5. Started again and upgraded by the real mariadb-upgrade.
                up = match(events, "action.finish", action="mysql_upgrade")[0]
                self.assertEqual(up["exit_code"], 0)
                self.assertIn("Phase", up["stdout_tail"])
                # 6. The wait saw mysql_alive ok for 2s.
                wait = match(events, "job.step", step="wait_healthy", result="ok")[0]
                self.assertGreaterEqual(wait["duration_ms"], 2000)
                # 7. The warm-up SQL ran.
                self.assertEqual(db.sql("SELECT COUNT(*) FROM warden_demo.warmed"), [["1"]])
                # 8. Back to ready, as HAProxy itself says.
                self.assertEqual(hap.admin_state(), 0)
                ready = match(events, "action.finish", action="ready")[0]
                self.assertEqual(ready["admin_state"], 0)

                steps = [(e["step_index"], e["step"], e["result"])
                         for e in match(events, "job.step") if e["result"] != "start"]
                self.assertEqual([s[1] for s in steps],
                                 ["drain", "stop_mysql", "update_packages", "start_mysql",
                                  "mysql_upgrade", "wait_healthy", "warmup", "ready"])
                self.assertTrue(all(s[2] == "ok" for s in steps))
                self.assertEqual([s[0] for s in steps], list(range(1, 9)))
                # Through HAProxy the server takes clients again.
                c = socket.create_connection(("127.0.0.1", hap.frontend_port), timeout=10)
                self.assertTrue(c.recv(4))
                c.close()

    def test_a_failing_step_leaves_the_server_in_maint_and_the_queue_halted(self):
        with MariaDB() as db:
            with HAProxy(target_port=db.port) as hap, Wardend() as wd:
                wd.start(self.config(
                    wd, db, hap, drain_state="maint",
                    packages="/bin/sh -c 'echo repo unreachable >&2; exit 1'"))
                wd.wait_event("check.state", check="mysql_alive", state="ok")
                p = wd.ctl("run", "upgrade", "--wait", timeout=600)
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                fail = match(wd.events(), "job.fail", job="upgrade")[0]
                self.assertEqual((fail["step"], fail["step_index"]), ("update_packages", 3))
                self.assertIn("status 1", fail["error"])
                # Left exactly as it was: out of HAProxy (maint), MariaDB down.
                self.assertEqual(hap.admin_state() & 1, 1)
                self.assertNotIn("start_mysql", [e.get("action") for e in
                                                 match(wd.events(), "action.start")])
                status = json.loads(wd.ctl("status", "--json").stdout)
                self.assertTrue(status["halt"]["halted"])
                self.assertIn("update_packages", status["halt"]["reason"])
                # Nothing guarded runs while halted, not even by hand.
                p = wd.ctl("run", "ready")
                self.assertEqual(p.returncode, 1)
                self.assertIn("halted", p.stdout + p.stderr)
                self.assertEqual(hap.admin_state() & 1, 1)
                # The operator fixed the host; resume lets actions run again.
                db.start()
                self.assertEqual(wd.ctl("resume").returncode, 0)
                p = wd.ctl("run", "ready", "--wait")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertEqual(hap.admin_state(), 0)

    def test_an_sql_error_fails_the_step_with_the_servers_answer(self):
        with MariaDB() as db:
            with HAProxy(target_port=db.port) as hap, Wardend() as wd:
                wd.start(self.config(wd, db, hap) + """
[action bad_sql]
type = mysql_sql
sql  = SELECT 1; SELECT * FROM warden_demo.no_such_table

[job sql]
steps = bad_sql, ready
""")
                wd.wait_event("check.state", check="mysql_alive", state="ok")
                p = wd.ctl("run", "sql", "--wait", timeout=120)
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                fail = match(wd.events(), "job.fail", job="sql")[0]
                self.assertEqual(fail["step"], "bad_sql")
                self.assertIn("no_such_table", fail["error"])
                self.assertIn("doesn't exist", fail["error"])
                self.assertEqual(match(wd.events(), "action.start", action="ready"), [])


if __name__ == "__main__":
    unittest.main()
