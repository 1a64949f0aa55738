"""A hostile fluentd: one that acks with a wrong chunk id, one that
answers garbage. Neither is taken for an ack: the sender reconnects and
resends, nothing is marked delivered, and once a good receiver is back on
the same port every event of events.jsonl arrives. The loop keeps its
cadence and memory stays flat meanwhile."""

import json
import time
import unittest

from harness import Wardend, base_config, rss_margin_kb, slack
from hostile import HostileFluentd, Ticks, rss_kb, timed
from test_fluentd import Receiver

CONFIG = base_config("itest-hostile-fluentd", mutex_off=True) + """

; flips between ok and crit about every other run: a steady stream of events
[check flip]
type    = program
command = sh -c 'date +%N'
value   = stdout
every   = 200ms
timeout = 2s
crit    = > 500000000

[fluentd]
address     = 127.0.0.1:{port}
ack         = yes
ack_timeout = 2s
"""

RSS_MARGIN_KB = rss_margin_kb(20 * 1024)
MAX_GAP = 1.8
MAX_STATUS = slack(1.0)


class HostileFluentdTest(unittest.TestCase):
    def fluentd_stats(self, wd):
        p, took = timed(wd.ctl, "status", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(took, MAX_STATUS, "wardenctl status took %.2f s" % took)
        return json.loads(p.stdout)["events"]["fluentd"]

    def test_wrong_acks_and_garbage_are_never_acks(self):
        with HostileFluentd("wrong_ack") as peer, Wardend() as wd:
            ticks = Ticks(wd.dir)
            wd.start(CONFIG.format(port=peer.port, **wd.paths) + ticks.check())
            wd.wait_event("check.state", check="tick", state="ok")
            since = time.time()
            rss_before = rss_kb(wd.proc.pid)

            # Garbage closes the connection at its first answer, naming it,
            # rather than at ack_timeout ("no ack for chunk").
            garbage = ("answered what cannot be a forward-protocol ack (not a msgpack map: "
                       'first byte 0xc1): "\\xc1\\xc1')
            for mode, error in (("wrong_ack", "no ack for chunk"), ("garbage", garbage)):
                with self.subTest(mode=mode):
                    peer.mode = mode
                    connections = len(peer.connections)
                    answers = peer.answers
                    deadline = time.monotonic() + 30
                    # It answered, and wardend gave up on that connection
                    # and came back: reconnect and resend.
                    while (len(peer.connections) < connections + 2 or peer.answers <= answers):
                        self.assertLess(time.monotonic(), deadline,
                                        "%s: %d connections, %d answers"
                                        % (mode, len(peer.connections), peer.answers))
                        time.sleep(0.2)
                    stats = self.fluentd_stats(wd)
                    self.assertEqual(stats["chunks_acked"], 0, stats)
                    self.assertEqual(stats["events_acked"], 0, stats)
                    self.assertGreater(stats["backlog_events"], 0, stats)
                    self.assertIn(error, stats["last_error"])

            rss_after = rss_kb(wd.proc.pid)
            self.assertLess(rss_after - rss_before, RSS_MARGIN_KB,
                            "RSS %d kB -> %d kB" % (rss_before, rss_after))
            gaps = ticks.wait_gaps(since, 3)
            self.assertGreaterEqual(len(gaps), 3)
            self.assertLess(max(gaps), MAX_GAP, "largest gap of the 1 s check: %.3f s" % max(gaps))

            # A good fluentd on the same port: every event arrives.
            port = peer.port
            peer.close()
            rx = Receiver(wd.dir, port=port)
            try:
                rx.start()
                want = {e["seq"] for e in wd.events()}

                def all_arrived(_):
                    got = {r["record"]["seq"] for r in rx.records()}
                    return want <= got
                all_arrived.__name__ = "every seq up to %d at the good receiver" % max(want)
                wd.wait_for(all_arrived, timeout=90)
                stats = self.fluentd_stats(wd)
                self.assertGreater(stats["events_acked"], 0, stats)
                self.assertEqual(wd.stop(), 0)
                # Nothing acked wrongly: whatever wardend wrote, fluentd got.
                got = {r["record"]["seq"] for r in rx.records()}
                final = {e["seq"] for e in wd.events()}
                self.assertEqual(final - got, set(), "never delivered")
            finally:
                rx.stop()


if __name__ == "__main__":
    unittest.main()
