"""A hung MySQL peer (accepts TCP, never answers) must not delay any other
check: each keeps its cadence while the hung ones fail at their timeout."""

import datetime
import os
import time
import unittest

from harness import HungPeer, MariaDB, Wardend, base_config, match, mysql_peer

CONFIG = base_config("itest-iso", mysql=True) + mysql_peer("hung", "hung_port") + """
[mutex]
mode = off

[check hung_ping]
type = mysql_ping
connection = hung

[check hung_status]
type = mysql_status
connection = hung
variable = Uptime

[check hung_query]
type = mysql_query
connection = hung
sql = SELECT 1

[check healthy_tick]
type = mysql_query
sql = SELECT warden_demo.tick('healthy')
every = 1s
timeout = 3s

[check healthy_status]
type = mysql_status
variable = Threads_connected
every = 1s

[check program_tick]
type = program
command = /bin/sh -c 'date +%s.%N >> {ticks}; echo 1'
value = stdout
every = 1s
"""


class HungPeerIsolation(unittest.TestCase):
    def test_healthy_checks_keep_their_cadence(self):
        with MariaDB() as db, HungPeer() as hung, Wardend() as wd:
            db.sql("CREATE DATABASE IF NOT EXISTS warden_demo")
            db.sql("CREATE TABLE warden_demo.ticks (id INT AUTO_INCREMENT PRIMARY KEY, "
                   "name VARCHAR(32), at DATETIME(6))")
            db.sql("DELIMITER //\n"
                   "CREATE FUNCTION warden_demo.tick(n VARCHAR(32)) RETURNS INT MODIFIES SQL DATA "
                   "BEGIN INSERT INTO warden_demo.ticks (name, at) VALUES (n, NOW(6)); "
                   "RETURN 1; END //")
            db.sql("GRANT EXECUTE ON warden_demo.* TO 'warden'@'%'")
            ticks = os.path.join(wd.dir, "ticks")
            wd.start(CONFIG.format(socket=db.socket, password_file=db.password_file,
                                   hung_port=hung.port, ticks=ticks, **wd.paths))
            for name in ("hung_ping", "hung_status", "hung_query"):
                err = wd.wait_event("check.state", check=name, state="error", timeout=30)[0]
                self.assertTrue(err["error"], err)
            wd.wait_event("check.state", check="healthy_tick", state="ok")
            time.sleep(12)
            self.assertEqual(wd.stop(), 0)

            # The hung peer really was hung: it got connections, answered none.
            self.assertGreater(len(hung.connections), 0)

            rows = db.sql("SELECT at FROM warden_demo.ticks WHERE name = 'healthy' ORDER BY id")
            times = [datetime.datetime.fromisoformat(r[0]).timestamp() for r in rows]
            self.assertGreaterEqual(len(times), 10, "healthy mysql check ran too rarely")
            gaps = [b - a for a, b in zip(times, times[1:])]
            # Cadence 1 s; the hung checks time out after 2 s each. A generous
            # bound: a healthy check is never held up by them.
            self.assertLess(max(gaps), 1.8, "largest gap between healthy runs: %.3f s" % max(gaps))

            with open(ticks) as f:
                ptimes = [float(line) for line in f if line.strip()]
            self.assertGreaterEqual(len(ptimes), 10)
            pgaps = [b - a for a, b in zip(ptimes, ptimes[1:])]
            self.assertLess(max(pgaps), 1.8, "largest gap between program runs: %.3f s" % max(pgaps))

            # Healthy checks never left ok.
            for name in ("healthy_tick", "healthy_status", "program_tick"):
                states = [e["state"] for e in match(wd.events(), "check.state", check=name)]
                self.assertEqual(states, ["ok"], name)


if __name__ == "__main__":
    unittest.main()
