"""fluentd down for minutes: checks keep emitting events for about
2.5 minutes while nothing listens, the reconnect backoff climbs to its 30 s
cap, and once the receiver is back every event arrives at least once, in
seq order on every connection, with no gap. Its own file so that CTest runs
it beside test_fluentd rather than after it."""

import os
import re
import time
import unittest

from harness import COIN_AND_NOTE, Wardend, _tail, base_config
from test_fluentd import Receiver

OUTAGE = 150          # seconds without fluentd
BACKOFF_CAP = 30      # daemon/io/forward_sender.cc kBackoffCap
MARGIN = 15           # scheduling slack on a loaded 2-core machine

CONFIG = base_config("itest-outage", level="debug", mutex_off=True) + """
; a steady state change every 20 s
[check clock]
type    = program
command = sh -c 'echo $(( $(date +%s) / 20 % 2 ))'
value   = stdout
every   = 1s
timeout = 5s
warn    = > 0

[fluentd]
address     = 127.0.0.1:{port}
ack_timeout = 10s
""" + COIN_AND_NOTE


class FluentdOutage(unittest.TestCase):
    def setUp(self):
        self.wd = Wardend()
        self.rx = Receiver(self.wd.dir)

    def tearDown(self):
        try:
            self.wd.__exit__(None, None, None)
        finally:
            self.rx.stop()

    def status(self):
        return self.wd.status()["events"]["fluentd"]

    def received(self):
        return [r for r in self.rx.records() if r["record"].get("host") == "itest-outage"]

    def test_fluentd_down_for_minutes_loses_nothing(self):
        self.rx.start()
        self.wd.start(CONFIG.format(port=self.rx.port, **self.wd.paths))
        self.wd.wait_for(lambda ev: len(ev) >= 5, timeout=60)
        self.wait_shipped(timeout=60)

        self.rx.kill()                      # fluentd gone, without a goodbye
        down_at = time.monotonic()
        first_life = len(self.rx.records())   # the restarted receiver appends after these
        before = len(self.wd.events())
        max_attempts = 0
        while time.monotonic() - down_at < OUTAGE:
            time.sleep(5)
            max_attempts = max(max_attempts, self.status()["failed_attempts"])
        st = self.status()
        during = len(self.wd.events()) - before
        self.assertFalse(st["connected"])
        self.assertGreater(during, 60, "events must keep flowing during the outage")
        self.assertGreater(st["backlog_events"], 60)
        self.assertTrue(st["last_error"])
        changes = [e for e in self.wd.events()[before:] if e["event"] == "check.state"]
        self.assertTrue({"coin", "clock"} <= {e["check"] for e in changes}, changes[-5:])
        # The backoff reached its cap: 0.25 s doubling, so from the 8th
        # failure in a row on every wait is drawn from [15 s, 30 s].
        self.assertGreaterEqual(max_attempts, 8, st)
        waits = [float(w) for w in
                 re.findall(r"fluentd: .*; retrying in ([0-9.]+)s", self.wd.log())]
        self.assertTrue(waits and max(waits) <= BACKOFF_CAP, waits)
        self.assertGreaterEqual(sum(w >= BACKOFF_CAP / 2 for w in waits), 2, waits)

        self.rx.start()                     # the same port
        back_at = time.monotonic()
        while len(self.rx.records()) <= first_life:
            if time.monotonic() - back_at > BACKOFF_CAP + MARGIN:
                self.fail("no reconnect within %ss of fluentd's return\n--- wardend log\n%s"
                          % (BACKOFF_CAP + MARGIN,
                             "".join(self.wd.log().splitlines(True)[-30:])))
            time.sleep(0.2)
        self.wait_shipped(timeout=60)

        events = self.wd.events()
        want = [e["seq"] for e in events]
        self.assertEqual(want, list(range(want[0], want[-1] + 1)), "events.jsonl has a gap")
        records = self.rx.records()
        self.assertTrue(all(r["record"].get("host") == "itest-outage" for r in records))
        self.assertEqual({r["record"]["seq"] for r in records}, set(want))
        # On every connection: consecutive seqs (a resend starts a new one).
        # Connection numbers start again with the restarted receiver.
        by_conn = {}
        for i, r in enumerate(records):
            by_conn.setdefault((i >= first_life, r["conn"]), []).append(r["record"]["seq"])
        for conn, seqs in by_conn.items():
            self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))),
                             "connection %r out of order or with a gap" % (conn,))
        first = []
        seen = set()
        for r in records:
            if r["record"]["seq"] not in seen:
                seen.add(r["record"]["seq"])
                first.append(r["record"]["seq"])
        self.assertEqual(first, sorted(first), "first arrivals out of seq order")
        by_seq = {r["record"]["seq"]: r["record"] for r in records}
        for e in events:
            self.assertEqual(by_seq[e["seq"]], e)
        self.assertEqual(self.status()["failed_attempts"], 0)   # reset by the ack

    def wait_shipped(self, timeout):
        """Until every event written so far has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            want = {e["seq"] for e in self.wd.events()}
            got = {r["record"]["seq"] for r in self.received()}
            if want and want <= got:
                return
            if time.monotonic() > deadline:
                self.fail("not shipped after %ss: %d of %d missing\n--- wardend log\n%s"
                          "\n--- receiver errors\n%s"
                          % (timeout, len(want - got), len(want),
                             "".join(self.wd.log().splitlines(True)[-30:]),
                             _tail(os.path.join(self.wd.dir, "receiver.err"))))
            time.sleep(0.2)


if __name__ == "__main__":
    unittest.main()
