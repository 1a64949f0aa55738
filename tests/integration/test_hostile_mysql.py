"""Hostile MySQL peers: one sends a malformed handshake, one closes
the connection in the middle of a result set (for a query on a worker and
for the shared variables read on the loop) and answers SHOW GLOBAL STATUS
with no result set. Each check on them is in
error with the client's reason, runs again on time, and a healthy check on
a real MariaDB next to them keeps its cadence."""

import datetime
import json
import os
import time
import unittest

from harness import MariaDB, Wardend, base_config, match, mysql_peer, rss_margin_kb, slack
from hostile import HostileMysql, Ticks, rss_kb, timed

CONFIG = (base_config("itest-hostile-mysql", workers=3, mysql=True)
          + mysql_peer("bad_handshake", "handshake_port")
          + mysql_peer("truncated_handshake", "truncated_port")
          + mysql_peer("mid_result", "mid_port")) + """
[mutex]
mode = off

[check handshake_ping]
type       = mysql_ping
connection = bad_handshake
every      = 1s

[check truncated_ping]
type       = mysql_ping
connection = truncated_handshake
every      = 1s

[check mid_query]
type       = mysql_query
connection = mid_result
sql        = SELECT 1
every      = 1s

[check mid_variable]
type       = mysql_variable
connection = mid_result
variable   = max_connections
every      = 1s

[check mid_status]
type       = mysql_status
connection = mid_result
variable   = Uptime
every      = 1s

[check healthy_tick]
type    = mysql_query
sql     = SELECT warden_demo.tick('healthy')
every   = 1s
timeout = 3s
"""

MAX_GAP = 1.8
RSS_MARGIN_KB = rss_margin_kb(20 * 1024)


class HostileMysqlTest(unittest.TestCase):
    def test_malformed_handshake_and_close_mid_result(self):
        with MariaDB() as db, HostileMysql("bad_handshake") as handshake, \
                HostileMysql("truncated_handshake") as truncated, \
                HostileMysql("close_mid_result") as mid, Wardend() as wd:
            db.sql("CREATE DATABASE IF NOT EXISTS warden_demo")
            db.sql("CREATE TABLE warden_demo.ticks (id INT AUTO_INCREMENT PRIMARY KEY, "
                   "name VARCHAR(32), at DATETIME(6))")
            db.sql("DELIMITER //\n"
                   "CREATE FUNCTION warden_demo.tick(n VARCHAR(32)) RETURNS INT MODIFIES SQL DATA "
                   "BEGIN INSERT INTO warden_demo.ticks (name, at) VALUES (n, NOW(6)); "
                   "RETURN 1; END //")
            db.sql("GRANT EXECUTE ON warden_demo.* TO 'warden'@'%'")
            ticks = Ticks(wd.dir)
            wd.start(CONFIG.format(socket=db.socket, password_file=db.password_file,
                                   handshake_port=handshake.port, truncated_port=truncated.port,
                                   mid_port=mid.port,
                                   **wd.paths) + ticks.check())

            err = wd.wait_event("check.state", check="handshake_ping", state="error")[0]
            self.assertIn("[mysql bad_handshake]", err["error"])
            self.assertIn("Lost connection to server", err["error"])
            err = wd.wait_event("check.state", check="truncated_ping", state="error")[0]
            self.assertIn("[mysql truncated_handshake]", err["error"])
            self.assertIn("reading authorization packet", err["error"])
            err = wd.wait_event("check.state", check="mid_query", state="error")[0]
            self.assertIn("[mysql mid_result]", err["error"])
            self.assertIn("Lost connection to server during query", err["error"])
            err = wd.wait_event("check.state", check="mid_variable", state="error")[0]
            self.assertIn("[mysql mid_result]", err["error"])
            self.assertIn("Lost connection to server during query", err["error"])
            err = wd.wait_event("check.state", check="mid_status", state="error")[0]
            self.assertEqual(err["error"], "SHOW GLOBAL STATUS WHERE Variable_name IN ('uptime') "
                                           "returned 0 columns, expected 2")
            wd.wait_event("check.state", check="healthy_tick", state="ok")
            self.assertIn("SELECT 1", mid.queries)
            self.assertIn("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_connections')",
                          mid.queries)
            self.assertIn("SHOW GLOBAL STATUS WHERE Variable_name IN ('uptime')", mid.queries)
            time.sleep(2)
            since = time.time()
            rss_before = rss_kb(wd.proc.pid)
            n_hs, n_mid = len(handshake.connections), len(mid.connections)
            n_tr = len(truncated.connections)
            time.sleep(10)
            p, took = timed(wd.ctl, "status", "--json")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertLess(took, slack(1.0))
            checks = {c["name"]: c for c in json.loads(p.stdout)["checks"]}
            self.assertEqual(checks["mid_query"]["state"], "error")
            self.assertIn("Lost connection", checks["mid_query"]["last_error"])
            for name in ("mid_variable", "mid_status"):
                self.assertEqual(checks[name]["state"], "error")
                self.assertGreaterEqual(checks[name]["runs"], 8, name)
            rss_after = rss_kb(wd.proc.pid)
            self.assertEqual(wd.stop(), 0)

            # The hostile checks ran again and again, on time: every run
            # a new connection (the last one failed).
            # (libmariadb waits for more after a garbled or truncated
            # handshake: each run ends at connect_timeout, 2 s, and the next
            # starts when it ends.)
            for name, peer, before, bound in (("handshake", handshake, n_hs, 2 + MAX_GAP),
                                              ("truncated", truncated, n_tr, 2 + MAX_GAP),
                                              ("mid", mid, n_mid, MAX_GAP)):
                times = peer.connections[before:]
                gaps = [b - a for a, b in zip(times, times[1:])]
                self.assertGreaterEqual(len(times), 3, "%s: %d runs in 10 s" % (name, len(times)))
                self.assertLess(max(gaps), bound, "%s: largest gap %.2f s" % (name, max(gaps)))

            rows = db.sql("SELECT at FROM warden_demo.ticks WHERE name = 'healthy' ORDER BY id")
            times = [datetime.datetime.fromisoformat(r[0]).timestamp() for r in rows]
            times = [t for t in times if t >= since]
            gaps = [b - a for a, b in zip(times, times[1:])]
            self.assertGreaterEqual(len(gaps), 7, "healthy mysql check ran too rarely")
            self.assertLess(max(gaps), MAX_GAP, "largest gap between healthy runs: %.3f s" % max(gaps))
            pgaps = ticks.gaps(since)
            self.assertLess(max(pgaps), MAX_GAP)
            states = [e["state"] for e in match(wd.events(), "check.state", check="healthy_tick")]
            self.assertEqual(states, ["ok"])
            self.assertLess(rss_after - rss_before, RSS_MARGIN_KB)


    def test_a_server_that_refuses_the_filter_is_read_whole(self):
        """A peer that refuses SHOW ... WHERE (as a proxy in between may):
        the first read falls back to every row, the checks get their
        values, and every later read asks for every row at once."""
        config = (base_config("itest-no-filter", mysql=False) + mysql_peer("proxy", "port") + """
[mutex]
mode = off

[check uptime]
type       = mysql_status
connection = proxy
variable   = Uptime
every      = 1s
crit       = > 4000

[check maxconn]
type       = mysql_variable
connection = proxy
variable   = max_connections
every      = 1s
""")
        with HostileMysql("no_filter") as peer, Wardend() as wd:
            pw = os.path.join(wd.dir, "password")
            with open(pw, "w") as f:
                f.write("x\n")
            os.chmod(pw, 0o600)
            wd.start(config.format(port=peer.port, password_file=pw, **wd.paths))
            crit = wd.wait_event("check.state", check="uptime", state="crit")[0]
            self.assertEqual(crit["value"], "4242")
            ok = wd.wait_event("check.state", check="maxconn", state="ok")[0]
            self.assertEqual(ok["value"], "151")
            deadline = time.monotonic() + slack(10)
            while time.monotonic() < deadline and len(peer.queries) < 6:
                time.sleep(0.2)
            self.assertEqual(wd.stop(), 0)
        shows = [q for q in peer.queries if q.upper().startswith("SHOW GLOBAL")]
        self.assertGreaterEqual(len(shows), 6, peer.queries)
        # One refused filter (status and variables share the connection),
        # then whole reads only.
        filtered = [q for q in shows if "WHERE" in q]
        self.assertEqual(len(filtered), 1, shows)
        self.assertEqual(shows[0], filtered[0])
        self.assertTrue(set(shows[1:]) <= {"SHOW GLOBAL STATUS", "SHOW GLOBAL VARIABLES"}, shows)


if __name__ == "__main__":
    unittest.main()
