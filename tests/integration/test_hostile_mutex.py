"""Hostile mutex servers: slow, drip-feeding, 100 MB answers, not
JSON, "held": "false", a 302, TLS errors. Every one blocks the action with a
reason that names the answer; none stalls the loop (a 1 s check keeps its
cadence, wardenctl status answers at once) and wardend's memory stays flat."""

import json
import os
import time
import unittest

from harness import Wardend, base_config, match, rss_margin_kb, slack
from hostile import HostileHttp, Ticks, rss_kb, self_signed_cert, timed

CONFIG = base_config("itest-hostile") + """

[mutex]
url     = {url}
timeout = 3s
cache   = 500ms
poll    = 1s

; always crit: the action is attempted again every second
[check flag]
type    = program
command = echo 1
value   = stdout
every   = 1s
crit    = > 0
repeat  = 1s
on_crit = fix

[action fix]
type    = exec
command = touch {marker}
"""

# RSS may grow this much over the whole test (kB): libcurl's and the
# allocator's caches, not the 100 MB a server offered.
RSS_MARGIN_KB = rss_margin_kb(20 * 1024)
# The largest gap between two runs of the 1 s check (s). A loop held by a
# request for its whole `timeout` (3 s) would show a gap of 4 s or more;
# below that the 2 s of margin is the noise of starting `sh` and `date` on
# a loaded machine (1.85 s was seen under a load average of 10).
MAX_GAP = 3.0
# wardenctl status must answer within this (s) while a hostile answer is
# in flight.
MAX_STATUS = slack(1.0)


class HostileMutex(unittest.TestCase):
    def start(self, wd, url):
        self.marker = os.path.join(wd.dir, "ran")
        self.ticks = Ticks(wd.dir)
        wd.start(CONFIG.format(url=url, marker=self.marker, **wd.paths) + self.ticks.check())
        wd.wait_event("daemon.start")
        wd.wait_event("check.state", check="tick", state="ok")

    def blocked_by(self, wd, server, mode, expect):
        """Switches the server to `mode`; waits for action.blocked (from the
        check, and from wardenctl run) whose detail contains `expect`."""
        # mark(), not len(events()): the previous call's `run` (trigger ctl,
        # the same detail for two of the modes) may reach the events file
        # only after this reads it.
        n = wd.mark()
        server.mode = mode

        def blocked(events):
            return [e for e in match(events, "action.blocked", action="fix")
                    if expect in e.get("detail", "")]
        blocked.__name__ = "action.blocked naming %r (mode %s)" % (expect, mode)
        ev = wd.wait_for(blocked, timeout=20, since=n)[0]
        self.assertEqual(ev["reason"], "mutex", ev)
        self.assertEqual(ev["trigger"], "check", ev)
        # The loop answers while a request to the hostile server is in flight.
        p, took = timed(wd.ctl, "status")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(took, MAX_STATUS, "wardenctl status took %.2f s (mode %s)" % (took, mode))
        self.assertRegex(p.stdout, r"mutex\s+held: ")
        # wardenctl run goes through the same guard.
        p = wd.ctl("run", "fix", "--wait")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("blocked (mutex)", p.stderr)
        self.assertIn(expect, p.stderr)
        return ev

    def assert_never_ran(self, wd):
        self.assertFalse(os.path.exists(self.marker), "the action ran")
        self.assertEqual(match(wd.events(), "action.start"), [])

    def assert_cadence(self, since, runs=5):
        gaps = self.ticks.wait_gaps(since, runs)
        self.assertGreaterEqual(len(gaps), runs, "the 1 s check hardly ran")
        self.assertLess(max(gaps), MAX_GAP, "largest gap of the 1 s check: %.3f s" % max(gaps))

    def test_hostile_http_answers_block_and_never_stall(self):
        with HostileHttp("slow:30") as server, Wardend() as wd:
            self.start(wd, server.url)
            since = time.time()
            time.sleep(2)                       # let the allocator settle
            rss_before = rss_kb(wd.proc.pid)

            # Each answer, and what the action.blocked detail must say.
            cases = [
                ("slow:30", "timed out after 3000 ms"),
                ("drip:0.05", "timed out after 3000 ms"),
                ("huge_body", "body over 64 KB"),
                ("huge_chunked", "body over 64 KB"),
                ("huge_headers", "Too large response headers"),
                ("invalid_json", "malformed answer"),
                ("string_false", "malformed answer: \"held\" is not a boolean"),
                ("redirect", "HTTP 302"),
            ]
            for mode, expect in cases:
                with self.subTest(mode=mode):
                    self.blocked_by(wd, server, mode, expect)
            self.assert_never_ran(wd)
            # The 302 was not followed: /target (which says clear) never asked.
            self.assertIn("/mutex.json", server.paths)
            self.assertNotIn("/target", server.paths)
            # The 100 MB answers were cut short: no connection took more than
            # a few MB before wardend hung up.
            self.assertLess(max(server.sent), 16 << 20, "bytes sent per request: %s" % server.sent)

            # Again, several times, to see memory stay flat under repetition.
            for _ in range(3):
                for mode, expect in cases[2:5]:
                    self.blocked_by(wd, server, mode, expect)
            rss_after = rss_kb(wd.proc.pid)
            self.assertLess(rss_after - rss_before, RSS_MARGIN_KB,
                            "RSS %d kB -> %d kB" % (rss_before, rss_after))
            self.assert_cadence(since)

            # A good answer clears it again: the blocks above were the answers.
            server.mode = "clear"
            wd.wait_event("action.finish", action="fix", timeout=20)
            self.assertTrue(os.path.exists(self.marker))
            self.assertTrue(wd.running())

    def test_tls_errors_block(self):
        with Wardend() as wd:
            cert, key = self_signed_cert(wd.dir)
            # Plain TCP behind an https:// URL: its answer would say clear.
            with HostileHttp("clear") as plain:
                url = plain.url.replace("http://", "https://")
                self.start(wd, url)
                since = time.time()
                ev = self.blocked_by(wd, plain, "clear", "TLS error")
                self.assertTrue(ev["detail"].startswith("mutex held: TLS error: "), ev)
                self.assertEqual(plain.paths, [], "a TLS client sent a plain request")
                self.assertGreater(plain.plain_to_tls, 0)
                time.sleep(3)
                self.assert_never_ran(wd)
                self.assert_cadence(since, runs=3)
                self.assertEqual(wd.stop(), 0)
            # A self-signed certificate that the system CAs do not vouch for.
            with HostileHttp("clear", tls=(cert, key)) as selfsigned:
                self.start(wd, selfsigned.url)
                ev = self.blocked_by(wd, selfsigned, "clear", "TLS error")
                self.assertIn("certificate", ev["detail"])
                self.assertGreater(selfsigned.tls_failures, 0)
                self.assertEqual(selfsigned.paths, [])
                p = wd.ctl("status", "--json")
                self.assertIn("TLS error", json.loads(p.stdout)["mutex"]["reason"])
                self.assert_never_ran(wd)


if __name__ == "__main__":
    unittest.main()
