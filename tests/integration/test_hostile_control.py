"""Hostile control-socket clients: random bytes, a 10 MB line, 500
connections at once, clients that send requests and never read the replies,
an `events -f` follower that never reads.
The daemon keeps serving everyone else, keeps its cadence, and its memory
stays flat."""

import json
import random
import socket
import threading
import time
import unittest

from harness import Wardend, base_config, rss_margin_kb, slack
from hostile import Ticks, rss_kb, timed

CONFIG = base_config("itest-hostile-ctl", mutex_off=True) + """
[action fix]
type    = exec
command = /bin/true
"""

RSS_MARGIN_KB = rss_margin_kb(20 * 1024)
MAX_GAP = 1.8
MAX_STATUS = slack(2.0)


def read_lines(s, want=None, timeout=30):
    """Reads JSON lines from s until EOF (or `want` lines); returns them."""
    s.settimeout(timeout)
    buf = b""
    while want is None or buf.count(b"\n") < want:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        buf += chunk
    return [json.loads(line) for line in buf.split(b"\n") if line.strip()]


class HostileControl(unittest.TestCase):
    def setUp(self):
        self.wd = Wardend()
        self.ticks = Ticks(self.wd.dir)
        self.wd.start(CONFIG.format(**self.wd.paths) + self.ticks.check())
        self.wd.wait_event("check.state", check="tick", state="ok")
        self.wd.wait_control()
        self.since = time.time()
        self.rss_before = rss_kb(self.wd.proc.pid)

    def tearDown(self):
        self.wd.__exit__(None, None, None)

    def connect(self):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        s.connect(self.wd.paths["control"])
        return s

    def assert_still_serving(self):
        p, took = timed(self.wd.ctl, "status", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["host"], "itest-hostile-ctl")
        self.assertLess(took, MAX_STATUS, "wardenctl status took %.2f s" % took)
        self.assertTrue(self.wd.running())

    def assert_cadence_and_memory(self):
        gaps = self.ticks.wait_gaps(self.since, 2)
        self.assertGreaterEqual(len(gaps), 2, "the 1 s check hardly ran")
        self.assertLess(max(gaps), MAX_GAP, "largest gap of the 1 s check: %.3f s" % max(gaps))
        rss_after = rss_kb(self.wd.proc.pid)
        self.assertLess(rss_after - self.rss_before, RSS_MARGIN_KB,
                        "RSS %d kB -> %d kB" % (self.rss_before, rss_after))

    def test_random_bytes(self):
        rng = random.Random(8)
        for i in range(20):
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200000)))
            with self.connect() as s:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                replies = read_lines(s)
            # Every line (and the unfinished tail) gets its error; none is
            # taken for a command.
            self.assertTrue(replies, "no answer to %d random bytes" % len(data))
            for r in replies:
                self.assertIs(r["ok"], False, r)
                self.assertTrue(r["error"], r)
        # Random bytes that form one almost-valid line each.
        with self.connect() as s:
            s.sendall(b'{"cmd": "\xff\xfe"}\n{"cmd": "status\x00"}\n{"cmd": 7}\n'
                      b'\x00\x00\x00\n{"cmd":"pause","reason":"\xc3("}\n')
            replies = read_lines(s, want=5)
        self.assertEqual([r["ok"] for r in replies], [False] * 5, replies)
        self.assertFalse(json.loads(self.wd.ctl("status", "--json").stdout)["pause"]["paused"])
        self.assert_still_serving()
        self.assert_cadence_and_memory()

    def test_10mb_line_then_a_good_request(self):
        with self.connect() as s:
            sent = [0]

            def send_big():
                try:
                    block = b"x" * (1 << 20)
                    for _ in range(10):
                        s.sendall(block)
                        sent[0] += len(block)
                    s.sendall(b'\n{"cmd":"status"}\n')
                except OSError:
                    pass
            t = threading.Thread(target=send_big)
            t.start()
            # Served while the 10 MB arrive.
            self.assert_still_serving()
            t.join(60)
            self.assertEqual(sent[0], 10 << 20, "the daemon stopped reading the big line")
            replies = read_lines(s, want=2)
        self.assertEqual(len(replies), 2, replies)
        self.assertIs(replies[0]["ok"], False)
        self.assertIn("over 65536 bytes", replies[0]["error"])
        # The same connection recovers at the next newline.
        self.assertIs(replies[1]["ok"], True, replies[1])
        self.assertEqual(replies[1]["host"], "itest-hostile-ctl")
        self.assert_still_serving()
        self.assert_cadence_and_memory()

    def test_500_connections_at_once(self):
        n = 500
        barrier = threading.Barrier(n)
        results = [None] * n

        def client(i):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(60)
                barrier.wait(30)
                s.connect(self.wd.paths["control"])
                with s:
                    if i % 2:
                        s.sendall(b'{"cmd":"status"}\n')
                        results[i] = read_lines(s, want=1, timeout=60)[0]
                    else:
                        # Connects and says nothing (held open meanwhile).
                        time.sleep(3)
                        results[i] = {"ok": True, "idle": True}
            except Exception as e:      # reported below
                results[i] = e
        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        time.sleep(1)
        self.assert_still_serving()     # while 250 idle connections are open
        for th in threads:
            th.join(120)
        bad = [r for r in results if not isinstance(r, dict) or r.get("ok") is not True]
        self.assertEqual(bad, [])
        served = [r for r in results if not r.get("idle")]
        self.assertEqual(len(served), n // 2)
        self.assertTrue(all(r["host"] == "itest-hostile-ctl" for r in served))
        # And again, twice: memory does not grow with each wave.
        for _ in range(2):
            conns = []
            for _ in range(n):
                s = self.connect()
                s.sendall(b'{"cmd":"status"}\n')
                conns.append(s)
            for s in conns:
                self.assertIs(read_lines(s, want=1)[0]["ok"], True)
                s.close()
        self.assert_still_serving()
        self.assert_cadence_and_memory()

    def test_clients_that_never_read_their_replies(self):
        # Each pipelines thousands of requests and never reads: the daemon
        # must not buffer their replies without bound.
        request = b'{"cmd":"status"}\n' * 1000
        clients = []
        for _ in range(20):
            s = self.connect()
            s.setblocking(False)
            clients.append(s)
        deadline = time.monotonic() + 10
        sent = 0
        while time.monotonic() < deadline:
            progress = False
            for s in clients:
                try:
                    sent += s.send(request)
                    progress = True
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
            if not progress:
                time.sleep(0.05)
        self.assert_still_serving()
        self.assert_cadence_and_memory()
        for s in clients:
            s.close()
        self.assert_still_serving()

    def test_event_follower_that_never_reads(self):
        # `events -f` that never reads while events pour in: wardend pushes
        # without waiting, ends that stream once its buffer is full (a last
        # line says so), and keeps its cadence and its other clients.
        stuck = self.connect()
        stuck.sendall(b'{"cmd":"events","follow":true}\n')
        deadline = time.monotonic() + 20
        while "wardenctl events -f by" not in self.wd.log():
            self.assertLess(time.monotonic(), deadline, self.wd.log())
            time.sleep(0.05)
        # Events quickly: with the host paused for a 1 KB reason, each run
        # of fix is an action.blocked event that quotes it; pipelined.
        p = self.wd.ctl("pause", "--reason", "x" * 1000, "--for", "1h")
        self.assertEqual(p.returncode, 0, p.stderr)
        gen = self.connect()
        runs, start = 0, time.monotonic()
        while "stream to" not in self.wd.log():
            self.assertLess(time.monotonic() - start, 60, "the stuck follower was never ended")
            gen.sendall(b'{"cmd":"run","name":"fix"}\n' * 16)
            replies = read_lines(gen, want=16)
            self.assertEqual(len(replies), 16)
            self.assertEqual({r.get("blocked") for r in replies}, {"paused"}, replies)
            runs += 16
        print("follower ended after %d blocked runs in %.1f s" % (runs, time.monotonic() - start))
        gen.close()
        self.assert_still_serving()
        lines = read_lines(stuck)   # what it was sent, then the last line, then EOF
        stuck.close()
        self.assertEqual(lines[0], {"ok": True, "following": True})
        last = lines[-1]
        self.assertEqual(last["end"], "behind", last)
        self.assertIn("fell behind", last["error"])
        self.assertGreater(last["not_sent"], 0)
        events = lines[1:-1]
        self.assertGreater(len(events), 10)
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))),
                         "the events sent are not one run without a gap")
        self.assert_still_serving()
        self.assert_cadence_and_memory()


if __name__ == "__main__":
    unittest.main()
