"""wardenctl events -f: a subscription over the control socket that sees each
event as it is emitted (measured against the event's own time), its
filters, SIGINT, and the end of the stream when wardend stops. No MariaDB
needed: a file check."""

import json
import os
import queue
import signal
import statistics
import subprocess
import threading
import time
import unittest
from datetime import datetime

from harness import Wardend, WARDENCTL, base_config, slack

CONFIG = base_config("follow-test", mutex_off=True) + """
[check flag]
type   = file
path   = {dir}/flag
metric = exists
crit   = == 0

[check other]
type   = file
path   = {dir}
metric = exists
crit   = == 0
"""

# The p50 of "seen by wardenctl events -f" minus the event's own time. The
# push happens when the event is emitted, so it is milliseconds even on a
# busy machine; the bound for the worst one is generous.
P50_MS = 100
MAX_MS = slack(2.0) * 1000


def event_ms(e):
    """The event's own time (RFC 3339, UTC, ms) as epoch milliseconds."""
    return datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() * 1000


class Follower:
    """`wardenctl events -f ARGS`, its lines read as they come, each with
    the wall clock (ms) it was read at."""

    def __init__(self, wd, *args):
        self.proc = subprocess.Popen([WARDENCTL, "-c", wd.paths["config"], "events", "-f"]
                                     + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put((time.time() * 1000, json.loads(line)))
        self.lines.put(None)

    def next(self, timeout=20):
        try:
            got = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("wardenctl events -f printed nothing within %s s" % timeout)
        if got is None:
            raise AssertionError("wardenctl events -f ended: rc %s, stderr %s"
                                 % (self.proc.wait(5), self.proc.stderr.read()))
        return got

    def take(self, timeout=1.0):
        """Every line that arrives within `timeout`."""
        out = []
        while True:
            try:
                got = self.lines.get(timeout=timeout)
            except queue.Empty:
                return out
            if got is None:
                return out
            out.append(got[1])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


class Follow(unittest.TestCase):
    def start(self, wd):
        wd.write("flag", "")
        wd.start(CONFIG.format(**wd.paths))
        wd.wait_event("check.state", check="flag", state="ok")
        wd.wait_control()

    def subscribed(self, wd, n):
        """Waits until wardend has taken `n` followers (its log says so)."""
        deadline = time.monotonic() + 20
        while wd.log().count("wardenctl events -f by") < n:
            self.assertLess(time.monotonic(), deadline, wd.log())
            time.sleep(0.05)

    def test_sees_each_event_within_100ms_of_its_time(self):
        with Wardend() as wd:
            self.start(wd)
            f = Follower(wd)
            try:
                self.subscribed(wd, 1)
                latencies = []
                for i in range(10):
                    reason = "latency %d" % i
                    p = wd.ctl("pause", "--reason", reason, "--for", "1h")
                    self.assertEqual(p.returncode, 0, p.stderr)
                    while True:
                        seen_ms, e = f.next()
                        if e["event"] == "pause.start" and e["reason"] == reason:
                            break
                    latencies.append(seen_ms - event_ms(e))
                    # The same line as the events file has.
                    on_file = [x for x in wd.events() if x["seq"] == e["seq"]]
                    if on_file:
                        self.assertEqual(on_file[0], e)
                p50 = statistics.median(latencies)
                print("events -f latency ms: p50 %.1f max %.1f" % (p50, max(latencies)))
                self.assertLess(p50, P50_MS, latencies)
                self.assertLess(max(latencies), MAX_MS, latencies)
            finally:
                f.close()

    def test_filters_json_sigint_and_stop(self):
        with Wardend() as wd:
            self.start(wd)
            by_type = Follower(wd, "--event", "pause.*", "--json")
            by_check = Follower(wd, "--check", "flag")
            both = Follower(wd, "--event", "check.state,check.disabled", "--event",
                            "check.enabled", "--check", "other")
            try:
                self.subscribed(wd, 3)
                self.assertEqual(wd.ctl("pause", "--reason", "f", "--for", "1h").returncode, 0)
                self.assertEqual(wd.ctl("unpause").returncode, 0)
                os.unlink(os.path.join(wd.dir, "flag"))    # flag: crit
                wd.wait_event("check.state", check="flag", state="crit")
                self.assertEqual(wd.ctl("disable", "other", "--reason", "f").returncode, 0)
                self.assertEqual(wd.ctl("enable", "other").returncode, 0)
                wd.wait_event("check.enabled", check="other")

                typed = by_type.take()
                self.assertEqual([j["event"]["event"] for j in typed], ["pause.start", "pause.end"])
                self.assertEqual((typed[0]["schema"], typed[0]["ok"]), (1, True))
                checked = by_check.take()
                self.assertTrue(checked, "no event of check flag")
                self.assertEqual({e["check"] for e in checked}, {"flag"})
                self.assertIn("check.state", [e["event"] for e in checked])
                other = both.take()
                self.assertEqual({e["check"] for e in other}, {"other"})
                names = [e["event"] for e in other]
                self.assertLessEqual(set(names), {"check.state", "check.disabled",
                                                  "check.enabled"})
                self.assertLess(names.index("check.disabled"), names.index("check.enabled"))

                # SIGINT: exit 0, nothing on stderr.
                by_check.proc.send_signal(signal.SIGINT)
                self.assertEqual(by_check.proc.wait(10), 0)
                self.assertEqual(by_check.proc.stderr.read(), "")

                # Refused: a malformed type, an unknown check, -n with -f.
                for args, says in ((["--event", "Pause!"], "bad event type"),
                                   (["--check", "nope"], "no check 'nope'"),
                                   (["-n", "5"], "-n")):
                    p = wd.ctl("events", "-f", *args)
                    self.assertEqual(p.returncode, 1, args)
                    self.assertIn(says, p.stderr)

                # wardend stops: the stream ends with its last line, exit 3.
                wd.stop()
                self.assertEqual(by_type.proc.wait(20), 3)
                last = by_type.take()
                self.assertEqual(last[-1]["end"], "stopping")
                self.assertEqual(last[-1]["schema"], 1)
                self.assertEqual(both.proc.wait(20), 3)
                self.assertIn("wardend is stopping", both.proc.stderr.read())
            finally:
                for f in (by_type, by_check, both):
                    f.close()


if __name__ == "__main__":
    unittest.main()
