"""Checks of the integration harness itself (no wardend needed)."""

import json
import os
import socket
import stat
import tempfile
import textwrap
import time
import unittest

import harness


class MariaDBTest(unittest.TestCase):
    def test_start_sql_tcp_user_restart(self):
        t0 = time.monotonic()
        with harness.MariaDB() as db:
            self.assertLess(time.monotonic() - t0, 15)
            self.assertTrue(os.path.exists(db.socket))
            mode = stat.S_IMODE(os.stat(db.password_file).st_mode)
            self.assertEqual(mode, 0o600)
            self.assertEqual(db.sql("SELECT 1+1, 'x'"), [["2", "x"]])

            # The warden user logs in over TCP with its password, as wardend will.
            p = harness.run(["mariadb", "--no-defaults", "-h127.0.0.1", "-P%d" % db.port,
                             "-u" + db.user, "-p" + db.password, "--batch",
                             "--skip-column-names", "-e", "SELECT CURRENT_USER()"])
            self.assertEqual(p.stdout.strip(), "warden@%")
            db.sql("CREATE TABLE warden_demo.t (i INT)", as_warden=True)
            grants = " ".join(r[0] for r in db.sql("SHOW GRANTS FOR 'warden'@'%'"))
            for priv in ("PROCESS", "RELOAD", "SUPER", "SELECT", "CONNECTION ADMIN"):
                self.assertIn(priv, grants)

            # A wrong password is refused.
            p = harness.run(["mariadb", "--no-defaults", "-h127.0.0.1", "-P%d" % db.port,
                             "-u" + db.user, "-pwrong", "-e", "SELECT 1"], check=False)
            self.assertNotEqual(p.returncode, 0)

            # Restart on the same data dir keeps port, data and password.
            port, path = db.port, db.dir
            db.stop()
            with self.assertRaises(AssertionError):
                db.sql("SELECT 1")
            db.start()
            self.assertEqual(db.port, port)
            self.assertEqual(db.sql("SHOW TABLES FROM warden_demo"), [["t"]])
            self.assertEqual(db.sql("SELECT 1", as_warden=True), [["1"]])
        self.assertFalse(os.path.exists(path))


class HungPeerTest(unittest.TestCase):
    def test_accepts_and_stays_silent(self):
        with harness.HungPeer() as peer:
            with socket.create_connection(("127.0.0.1", peer.port), timeout=2) as c:
                c.settimeout(0.3)
                with self.assertRaises(socket.timeout):
                    c.recv(1)
                c.sendall(b"hello?")
                with self.assertRaises(socket.timeout):
                    c.recv(1)
            deadline = time.monotonic() + 2
            while not peer.connections and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertEqual(len(peer.connections), 1)


class HelpersTest(unittest.TestCase):
    def test_free_port_and_run(self):
        port = harness.free_port()
        self.assertTrue(0 < port < 65536)
        self.assertEqual(harness.run(["echo", "hi"]).stdout, "hi\n")
        with self.assertRaises(AssertionError):
            harness.run(["false"])

    def test_events_tolerate_partial_last_line(self):
        wd = harness.Wardend()
        try:
            self.assertEqual(wd.events(), [])
            with open(wd.paths["events"], "w") as f:
                f.write(json.dumps({"event": "a", "seq": 1}) + "\n")
                f.write(json.dumps({"event": "b", "seq": 2}) + "\n")
                f.write('{"event": "c", "se')
            self.assertEqual([e["event"] for e in wd.events()], ["a", "b"])
            self.assertEqual(wd.wait_event("b", since=0, timeout=1)[0]["seq"], 2)
            with self.assertRaises(AssertionError):
                wd.wait_event("c", since=0, timeout=0.2)
        finally:
            wd.__exit__(None, None, None)
        self.assertFalse(os.path.exists(wd.dir))

    def test_mutex_server_control(self):
        # Against a stand-in script that follows mutex_server.py's interface
        # (the real one is tested by the tests that use it).
        stub = textwrap.dedent("""\
            import http.server, sys
            control, log = sys.argv[1], sys.argv[2]
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    mode = open(control).read().strip()
                    open(log, "a").write(self.path + "\\n")
                    body = b'{"held": %s}' % (b"false" if mode == "clear" else b"true")
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *a):
                    pass
            s = http.server.HTTPServer(("127.0.0.1", 0), H)
            print(s.server_address[1], flush=True)
            s.serve_forever()
            """)
        import urllib.request
        with tempfile.TemporaryDirectory() as d:
            script = os.path.join(d, "stub.py")
            with open(script, "w") as f:
                f.write(stub)
            with harness.MutexServer(script=script) as m:
                self.assertEqual(json.load(urllib.request.urlopen(m.url)), {"held": False})
                m.set("held:maintenance")
                self.assertEqual(json.load(urllib.request.urlopen(m.url)), {"held": True})
                self.assertEqual(m.requests(), ["/mutex.json", "/mutex.json"])


if __name__ == "__main__":
    unittest.main()
