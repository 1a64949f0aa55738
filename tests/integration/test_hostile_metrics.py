"""Hostile clients of the metrics endpoint ([metrics] listen): connections
left idle or half-sent, an oversized request, a thousand connections at
once, clients that pipeline requests and never read, random bytes; the
status page (/ and /status.json) asked the same ways, and its headers. The
loop's 1 s check keeps its cadence while they are connected, memory stays
flat, and once they are gone (or timed out) a scrape is served again."""

import http.client
import json
import random
import resource
import socket
import time
import unittest

from harness import Wardend, base_config, free_port, rss_margin_kb, slack
from hostile import Ticks, rss_kb

CONFIG = base_config("itest-hostile-metrics", mutex_off=True) + """
[metrics]
listen = 127.0.0.1:{port}
"""

RSS_MARGIN_KB = rss_margin_kb(20 * 1024)
MAX_GAP = 1.8
# The server closes a connection that makes no progress for this long
# (MetricsExporter::kTimeout, daemon/control/metrics.h).
SERVER_TIMEOUT = 5


def recv_all(s, timeout):
    """What s receives until EOF, a reset or `timeout`; (bytes, closed)."""
    s.settimeout(timeout)
    buf = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return buf, True
            buf += chunk
    except (ConnectionResetError, BrokenPipeError):
        return buf, True
    except socket.timeout:
        return buf, False


class HostileMetrics(unittest.TestCase):
    def setUp(self):
        self.wd = Wardend()
        self.ticks = Ticks(self.wd.dir)
        self.port = free_port()
        self.wd.start(CONFIG.format(port=self.port, **self.wd.paths) + self.ticks.check())
        self.wd.wait_event("check.state", check="tick", state="ok")
        self.assert_serving()
        self.since = time.time()
        self.rss_before = rss_kb(self.wd.proc.pid)

    def tearDown(self):
        self.wd.__exit__(None, None, None)

    def connect(self, timeout=10):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def scrape(self, timeout):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def assert_serving(self, within=None):
        """A scrape answers 200 with the tick check's state, retried until
        `within` seconds have passed (connections the server has yet to
        notice are gone may hold its slots a moment)."""
        deadline = time.monotonic() + (within or slack(5))
        last = None
        while time.monotonic() < deadline:
            try:
                status, page = self.scrape(timeout=slack(5))
                if status == 200 and 'warden_check_state{check="tick",state="ok"} 1' in page:
                    return
                last = (status, page[:200])
            except OSError as e:
                last = e
            time.sleep(0.2)
        self.fail("not served: %r\n%s" % (last, self.wd.log()[-3000:]))

    def assert_cadence(self):
        gaps = self.ticks.wait_gaps(self.since, 2)
        self.assertGreaterEqual(len(gaps), 2, "the 1 s check hardly ran")
        self.assertLess(max(gaps), MAX_GAP, "largest gap of the 1 s check: %.3f s" % max(gaps))
        self.assertTrue(self.wd.running())

    def assert_memory(self):
        rss_after = rss_kb(self.wd.proc.pid)
        self.assertLess(rss_after - self.rss_before, RSS_MARGIN_KB,
                        "RSS %d kB -> %d kB" % (self.rss_before, rss_after))

    def test_idle_and_half_sent_requests_time_out(self):
        conns = []
        for i in range(20):
            s = self.connect()
            if i % 2:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/pl")
            conns.append(s)
        time.sleep(2)
        self.assert_cadence()
        # Closed by the server after its timeout, with at most an error
        # answer and never a page.
        start = time.monotonic()
        for s in conns:
            data, closed = recv_all(s, max(0.1, slack(SERVER_TIMEOUT + 10) -
                                           (time.monotonic() - start)))
            self.assertTrue(closed, "a half-sent request was kept open %.1f s" %
                            (time.monotonic() - start))
            self.assertNotIn(b"warden_", data)
            s.close()
        self.assert_serving()
        self.assert_memory()

    def test_oversized_requests(self):
        # A 1 MB header, a 100 KB URL: refused without reading them whole.
        for request in (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
                        b"GET /" + b"m" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
            with self.connect() as s:
                try:
                    s.sendall(request)
                except (ConnectionResetError, BrokenPipeError):
                    pass    # closed before it was all sent: also a refusal
                data, closed = recv_all(s, slack(10))
                self.assertTrue(closed)
                if data:
                    status = int(data.split(b" ", 2)[1])
                    self.assertIn(status, (400, 413, 414, 431), data[:200])
        # A POST announcing 1 GB: answered 405 at its headers, the body is
        # never read.
        with self.connect() as s:
            s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
            s.settimeout(slack(10))
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 405"), data[:200])
            try:
                s.sendall(b"x" * 65536)
            except (ConnectionResetError, BrokenPipeError):
                pass
            _, closed = recv_all(s, slack(SERVER_TIMEOUT + 5))
            self.assertTrue(closed, "the connection waited for the 1 GB body")
        self.assert_cadence()
        self.assert_serving()
        self.assert_memory()

    def test_a_thousand_connections_at_once(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, 4096)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        self.assertGreaterEqual(want, 1100, "cannot open a thousand sockets (hard limit %d)" % hard)
        n = 1000
        conns = []
        try:
            for i in range(n):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", self.port))
                except BlockingIOError:
                    pass
                conns.append(s)
            time.sleep(1)
            # Half of them ask for the page; none reads the answer.
            for s in conns[::2]:
                try:
                    s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                except OSError:
                    pass
            time.sleep(2)
            self.assert_cadence()
        finally:
            for s in conns:
                s.close()
        self.assert_serving(within=slack(SERVER_TIMEOUT + 10))
        self.assert_cadence()
        self.assert_memory()
        # And again: memory does not grow with each wave.
        for _ in range(2):
            wave = [self.connect() for _ in range(50)]
            for s in wave:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            for s in wave:
                data, closed = recv_all(s, slack(10))
                self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
                s.close()
        self.assert_serving()
        self.assert_memory()

    def test_clients_that_never_read(self):
        # Each pipelines thousands of requests and never reads its answers:
        # the server must not buffer them without bound, and must let go.
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
        clients = []
        for _ in range(20):
            s = self.connect()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            clients.append(s)
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            progress = False
            for s in clients:
                try:
                    s.send(request)
                    progress = True
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
            if not progress:
                time.sleep(0.05)
        self.assert_cadence()
        self.assert_memory()
        for s in clients:
            s.close()
        self.assert_serving(within=slack(SERVER_TIMEOUT + 10))

    def test_random_bytes(self):
        rng = random.Random(23)
        for _ in range(20):
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 20000)))
            with self.connect() as s:
                try:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    continue    # refused and closed before all was sent
                answer, closed = recv_all(s, slack(SERVER_TIMEOUT + 5))
                self.assertTrue(closed)
                self.assertNotIn(b"warden_check_state", answer)
        self.assert_cadence()
        self.assert_serving()
        self.assert_memory()

    def get(self, method, path, timeout=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout or slack(5))
        try:
            conn.request(method, path)
            r = conn.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            conn.close()

    def test_status_page_answers_and_headers(self):
        status, headers, body = self.get("GET", "/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        csp = headers["content-security-policy"]
        self.assertIn("default-src 'none'", csp)
        self.assertNotIn("script-src", csp)    # no script may run: default-src 'none' holds
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        self.assertIn(b'<h1 id="host">itest-hostile-metrics</h1>', body)
        self.assertIn(b">tick<", body)
        status, headers, body = self.get("GET", "/status.json")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertIn("default-src 'none'", headers["content-security-policy"])
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        data = json.loads(body)
        self.assertEqual(data["host"], "itest-hostile-metrics")
        self.assertEqual([c["name"] for c in data["checks"]], ["tick"])
        self.assertNotIn("ok", data)
        self.assertTrue(any(e["event"] == "daemon.start" for e in data["recent_events"]))
        for method in ("POST", "PUT", "DELETE"):
            for path in ("/", "/status.json"):
                status, headers, _ = self.get(method, path)
                self.assertEqual(status, 405, (method, path))
                self.assertEqual(headers["allow"], "GET, HEAD")
        # HEAD: GET's status and headers, no body.
        for path in ("/", "/status.json"):
            status, headers, body = self.get("HEAD", path)
            self.assertEqual((status, body), (200, b""), path)
            self.assertIn("default-src 'none'", headers["content-security-policy"])
            self.assertGreater(int(headers["content-length"]), 0)
        for path in ("//", "/status.json/x", "/status", "/../metrics", "/index.html", "/%2e"):
            status, headers, body = self.get("GET", path)
            self.assertEqual(status, 404, path)
            self.assertEqual(headers["x-content-type-options"], "nosniff")
            self.assertNotIn(b"<", body)

    def test_status_page_flood(self):
        # Hundreds of clients pipeline requests for the page and its JSON and
        # never read; others leave a request half-sent. The loop keeps its
        # cadence, memory stays flat, and the page is served afterwards.
        request = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n") * 200
        clients = []
        try:
            for i in range(200):
                s = self.connect()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.setblocking(False)
                if i % 4 == 0:
                    s.send(b"GET /status.json HTTP/1.1\r\nHost: x\r\nAcc")
                clients.append(s)
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                progress = False
                for s in clients[1::4]:
                    try:
                        s.send(request)
                        progress = True
                    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                        pass
                if not progress:
                    time.sleep(0.05)
            self.assert_cadence()
            self.assert_memory()
        finally:
            for s in clients:
                s.close()
        self.assert_serving(within=slack(SERVER_TIMEOUT + 10))
        deadline = time.monotonic() + slack(SERVER_TIMEOUT + 10)
        while True:
            try:
                status, _, body = self.get("GET", "/")
                if status == 200 and b">tick<" in body:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "the status page is not served again")
            time.sleep(0.2)
        self.assert_memory()


if __name__ == "__main__":
    unittest.main()
