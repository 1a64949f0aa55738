"""The haproxy action end to end: wardend drives a real HAProxy 2.6 over its
runtime API (unix and TCP stats sockets), and every outcome is asserted from
HAProxy's own answer and from the action.finish event."""

import os
import threading
import time
import unittest

from harness import HAProxy, Wardend, base_config, match

CONFIG = base_config("haproxy-test", level="debug", mutex_off=True) + """
[action drain]
type    = haproxy
socket  = {socket}
backend = mysql
server  = db1
state   = drain

[action maint]
type    = haproxy
socket  = {socket}
backend = mysql
server  = db1
state   = maint

[action ready]
type    = haproxy
socket  = {socket}
backend = mysql
server  = db1
state   = ready

[action drain_wait]
type       = haproxy
socket     = {socket}
backend    = mysql
server     = db1
state      = drain
drain_wait = 20s

[action drain_short]
type       = haproxy
socket     = {socket}
backend    = mysql
server     = db1
state      = drain
drain_wait = 2s

[action unknown_backend]
type    = haproxy
socket  = {socket}
backend = nosuch
server  = db1
state   = drain

[action unknown_server]
type    = haproxy
socket  = {socket}
backend = mysql
server  = db9
state   = drain

[action missing_socket]
type    = haproxy
socket  = {dir}/no-such-admin.sock
backend = mysql
server  = db1
state   = drain

[action user_level]
type    = haproxy
socket  = {user_socket}
backend = mysql
server  = db1
state   = maint

[action over_tcp]
type    = haproxy
address = {address}
backend = mysql
server  = db1
state   = maint
"""

READY, MAINT, DRAIN = 0, 0x01, 0x08


class HAProxyAction(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.haproxy = HAProxy().__enter__()
        try:
            cls.wd = Wardend()
            cls.wd.start(CONFIG.format(socket=cls.haproxy.socket,
                                       user_socket=cls.haproxy.user_socket,
                                       address=cls.haproxy.address, **cls.wd.paths))
            cls.wd.wait_event("daemon.start")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "wd", None):
            cls.wd.__exit__(None, None, None)
        cls.haproxy.__exit__(None, None, None)

    def setUp(self):
        self.haproxy.set_state("ready")
        self.assertEqual(self.haproxy.admin_state(), READY)

    def run_action(self, name, expect_ok, timeout=60):
        """wardenctl run NAME --wait; returns (its output, the action.finish)."""
        since = self.wd.mark()
        p = self.wd.ctl("run", name, "--wait", timeout=timeout)
        output = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0 if expect_ok else 1, output)
        fin = self.wd.wait_event("action.finish", action=name, since=since)[0]
        self.assertEqual(fin["type"], "haproxy")
        self.assertEqual(fin["trigger"], "ctl")
        self.assertEqual(fin["result"], "ok" if expect_ok else "fail", fin)
        return output, fin

    def assert_target(self, fin, state, backend="mysql", server="db1"):
        self.assertEqual(fin["backend"], backend)
        self.assertEqual(fin["server"], server)
        self.assertEqual(fin["state"], state)

    def test_drain(self):
        _, fin = self.run_action("drain", True)
        self.assert_target(fin, "drain")
        self.assertNotIn("error", fin)
        self.assertEqual(self.haproxy.admin_state(), DRAIN)
        self.assertEqual(fin["admin_state_before"], READY)
        self.assertEqual(fin["admin_state"], DRAIN)
        self.assertNotIn("waited_ms", fin)

    def test_maint_then_ready(self):
        _, fin = self.run_action("maint", True)
        self.assert_target(fin, "maint")
        self.assertEqual(self.haproxy.admin_state(), MAINT)
        self.assertEqual(fin["admin_state"], MAINT)
        _, fin = self.run_action("ready", True)
        self.assert_target(fin, "ready")
        self.assertEqual(fin["admin_state_before"], MAINT)
        self.assertEqual(fin["admin_state"], READY)
        self.assertEqual(self.haproxy.admin_state(), READY)

    def test_ready_from_drain(self):
        self.haproxy.set_state("drain")
        _, fin = self.run_action("ready", True)
        self.assertEqual(fin["admin_state_before"], DRAIN)
        self.assertEqual(self.haproxy.admin_state(), READY)

    def test_drain_wait_until_the_session_ends(self):
        client = self.haproxy.connect()
        self.assertEqual(self.haproxy.sessions(), 1)
        # The session ends 1.5 s after the server is seen drained, however
        # long wardenctl and the action take to get there (a fixed timer
        # from here raced them on a loaded machine).
        done = threading.Event()

        def close_once_drained():
            while not done.is_set() and self.haproxy.admin_state() != DRAIN:
                time.sleep(0.05)
            if not done.wait(1.5):
                client.close()
        closer = threading.Thread(target=close_once_drained)
        started = time.monotonic()
        closer.start()
        try:
            _, fin = self.run_action("drain_wait", True)
        finally:
            done.set()
            closer.join()
            client.close()
        took = time.monotonic() - started
        self.assert_target(fin, "drain")
        self.assertEqual(fin["admin_state"], DRAIN)
        self.assertEqual(self.haproxy.admin_state(), DRAIN)
        self.assertEqual(fin["sessions"], 1)
        self.assertEqual(fin["sessions_left"], 0)
        # It waited for the close at ~1.5 s, and not for drain_wait (20 s).
        self.assertGreaterEqual(fin["waited_ms"], 1000, fin)
        self.assertLess(fin["waited_ms"], 15000, fin)
        self.assertGreaterEqual(took, 1.4)
        self.assertEqual(self.haproxy.sessions(), 0)

    def test_drain_wait_times_out_with_the_session_open(self):
        client = self.haproxy.connect()
        try:
            output, fin = self.run_action("drain_short", False)
            self.assertEqual(self.haproxy.sessions(), 1)
        finally:
            client.close()
        self.assert_target(fin, "drain")
        self.assertEqual(fin["error"],
                         "haproxy: mysql/db1 still has 1 session after drain_wait 2s "
                         "(it stays in drain)")
        self.assertIn("still has 1 session", output)
        self.assertEqual(fin["sessions"], 1)
        self.assertEqual(fin["sessions_left"], 1)
        self.assertGreaterEqual(fin["waited_ms"], 2000, fin)
        self.assertLess(fin["waited_ms"], 15000, fin)
        # The server is left drained: the action failed, nothing is undone.
        self.assertEqual(self.haproxy.admin_state(), DRAIN)

    def test_unknown_backend(self):
        _, fin = self.run_action("unknown_backend", False)
        self.assert_target(fin, "drain", backend="nosuch")
        self.assertEqual(fin["error"],
                         "haproxy: no backend 'nosuch' (for server nosuch/db1) on %s: "
                         "HAProxy says \"Can't find backend.\"" % self.haproxy.socket)
        self.assertEqual(self.haproxy.admin_state(), READY)

    def test_unknown_server(self):
        _, fin = self.run_action("unknown_server", False)
        self.assert_target(fin, "drain", server="db9")
        self.assertEqual(fin["error"],
                         "haproxy: no server 'db9' in backend 'mysql' (its servers: db1) on %s"
                         % self.haproxy.socket)
        self.assertNotIn("admin_state", fin)
        self.assertEqual(self.haproxy.admin_state(), READY)

    def test_socket_missing(self):
        _, fin = self.run_action("missing_socket", False)
        self.assert_target(fin, "drain")
        self.assertEqual(fin["error"],
                         "haproxy: cannot connect to %s: No such file or directory"
                         % os.path.join(self.wd.dir, "no-such-admin.sock"))
        self.assertNotIn("admin_state_before", fin)

    def test_user_level_socket_is_refused(self):
        _, fin = self.run_action("user_level", False)
        self.assert_target(fin, "maint")
        self.assertEqual(fin["error"],
                         "haproxy: HAProxy refused 'set server mysql/db1 state maint' on %s: "
                         "Permission denied" % self.haproxy.user_socket)
        self.assertEqual(fin["admin_state_before"], READY)
        self.assertEqual(self.haproxy.admin_state(), READY)

    def test_tcp_address(self):
        _, fin = self.run_action("over_tcp", True)
        self.assert_target(fin, "maint")
        self.assertEqual(fin["admin_state"], MAINT)
        self.assertEqual(self.haproxy.admin_state(), MAINT)

    def test_events_have_start_and_finish(self):
        self.run_action("drain", True)
        events = self.wd.events()
        self.assertTrue(match(events, "action.start", action="drain", type="haproxy"))
        self.assertTrue(self.wd.running())


if __name__ == "__main__":
    unittest.main()
