"""fluentd delivery end to end: wardend ships its events to a forward-protocol
receiver (tests/fluentd/receiver.cc, a msgpack-cxx decoder) through every
fault of docs/fluentd.md, and every event of events.jsonl arrives, in seq order."""

import calendar
import json
import os
import signal
import subprocess
import time
import unittest

from harness import FLIP_AND_NOTE, Wardend, WARDEND, base_config, free_port, write_file, run, WARDENCTL, _tail
from test_systemd import NotifySocket

RECEIVER = os.environ.get("FLUENTD_RECEIVER") or os.path.join(
    os.path.dirname(WARDEND), "fluentd_receiver")

CONFIG = base_config("itest-fluentd", level="debug", mutex_off=True) + FLIP_AND_NOTE + """
[fluentd]
address     = {address}
ack         = {ack}
ack_timeout = {ack_timeout}
stop_flush  = {stop_flush}
"""


class Receiver:
    """The receiver as a process: .port, .set(mode), .records(), .stop(),
    .kill(), .start() again on the same port (a restarted fluentd)."""

    def __init__(self, directory, port=0, unix=None, mode="ack"):
        self.dir = directory
        self.port = port
        self.unix = unix
        self.out = os.path.join(directory, "received.jsonl")
        self.control = os.path.join(directory, "receiver.control")
        self.proc = None
        self.set(mode)

    def set(self, mode):
        write_file(self.control, mode + "\n", 0o644)

    def start(self):
        stdout = os.path.join(self.dir, "receiver.port")
        if os.path.exists(stdout):
            os.unlink(stdout)
        where = ["--unix", self.unix] if self.unix else ["--port", str(self.port)]
        with open(stdout, "w") as so, open(os.path.join(self.dir, "receiver.err"), "a") as se:
            self.proc = subprocess.Popen([RECEIVER] + where + ["--out", self.out,
                                                               "--control", self.control],
                                         stdin=subprocess.DEVNULL, stdout=so, stderr=se)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(stdout) as f:
                line = f.readline()
            if line.endswith("\n"):
                if not self.unix:
                    self.port = int(line)
                return self
            time.sleep(0.02)
        raise AssertionError("receiver did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def records(self):
        try:
            with open(self.out) as f:
                lines = f.read().split("\n")
        except FileNotFoundError:
            return []
        import json
        out = []
        for line in lines:
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass     # a line being written
        return out


def rfc3339_to_epoch(text):
    base, ms = text.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")), int(ms) * 1000000


class FluentdDelivery(unittest.TestCase):
    def setUp(self):
        self.wd = Wardend()
        self.rx = Receiver(self.wd.dir)

    def tearDown(self):
        try:
            self.wd.__exit__(None, None, None)
        finally:
            self.rx.stop()

    def start(self, address=None, ack="yes", ack_timeout="2s", stop_flush="5s", env=None):
        address = address or "127.0.0.1:%d" % self.rx.port
        self.wd.start(CONFIG.format(address=address, ack=ack, ack_timeout=ack_timeout,
                                    stop_flush=stop_flush, **self.wd.paths), env=env)

    def wait_events(self, n, timeout=60):
        self.wd.wait_for(lambda ev: len(ev) >= n, timeout=timeout)

    def assert_delivered(self, timeout=120):
        """Every seq in events.jsonl arrives (no gap there either), and the
        first arrivals are in seq order."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.wd.events()
            want = {e["seq"] for e in events}
            records = self.rx.records()
            got = {r["record"]["seq"] for r in records if r["record"].get("host") == "itest-fluentd"}
            if want and want <= got:
                break
            if time.monotonic() > deadline:
                self.fail("not delivered after %ss: %d of %d missing, e.g. %s\n--- wardend log\n%s"
                          "\n--- receiver errors\n%s"
                          % (timeout, len(want - got), len(want), sorted(want - got)[:10],
                             "".join(self.wd.log().splitlines(True)[-40:]),
                             _tail(os.path.join(self.wd.dir, "receiver.err"))))
            time.sleep(0.2)
        self.assertEqual(want, set(range(min(want), max(want) + 1)), "events.jsonl has a gap")
        first = []
        seen = set()
        for r in records:
            s = r["record"]["seq"]
            if s not in seen:
                seen.add(s)
                first.append(s)
        self.assertEqual(first, sorted(first), "first arrivals out of seq order")
        return events, records

    def test_events_arrive_with_eventtime_tags_and_every_field(self):
        self.rx.start()
        self.start()
        self.wait_events(30)
        events, records = self.assert_delivered()
        by_seq = {r["record"]["seq"]: r for r in records}
        families = set()
        for e in events:
            r = by_seq[e["seq"]]
            self.assertEqual(r["record"], e)          # every field, as written locally
            family = e["event"].split(".")[0]
            families.add(family)
            self.assertEqual(r["tag"], "warden." + family)
            self.assertEqual(r["mode"], "packed")
            self.assertEqual(r["time_type"], "eventtime")
            self.assertEqual((r["sec"], r["nsec"]), rfc3339_to_epoch(e["time"]))
            self.assertTrue(r["size_ok"])
            self.assertIsInstance(r["chunk"], str)
        self.assertTrue({"daemon", "check", "action"} <= families, families)
        # A stop and a start: both lifecycle events arrive too.
        self.wd.stop()
        self.start()
        self.wd.wait_event("daemon.start")
        events, _ = self.assert_delivered()
        self.assertTrue(any(e["event"] == "daemon.stop" for e in events))

    def stop_timed(self, timeout=30):
        t0 = time.monotonic()
        rc = self.wd.stop(timeout=timeout)
        return rc, time.monotonic() - t0

    def test_stop_waits_until_fluentd_has_daemon_stop(self):
        self.rx.start()
        self.start()
        self.wait_events(10)
        rc, took = self.stop_timed()
        self.assertEqual(rc, 0, self.wd.log())
        # Read once wardend has exited, with the same receiver running on:
        # daemon.stop arrived before the exit, not at a next start.
        stop = [e for e in self.wd.events() if e["event"] == "daemon.stop"]
        self.assertEqual(len(stop), 1)
        got = [r["record"] for r in self.rx.records() if r["record"]["seq"] == stop[0]["seq"]]
        self.assertTrue(got, "daemon.stop not at the receiver when wardend exited\n"
                        + self.wd.log()[-3000:])
        self.assertEqual(got[0], stop[0])
        self.assertLess(took, 5, "a flush with fluentd up should take a moment")
        self.assertIn("every event delivered before stopping", self.wd.log())
        self.assertTrue(self.rx.proc.poll() is None)
        self.assert_delivered(timeout=1)   # everything else too, already there

    def test_stop_with_fluentd_down_is_bounded_and_the_next_start_ships(self):
        self.rx.port = free_port()          # nothing listens there yet
        self.start(stop_flush="2s")
        self.wait_events(10)
        rc, took = self.stop_timed()
        self.assertEqual(rc, 0, self.wd.log())
        self.assertLess(took, 15, "stop_flush = 2s")
        self.assertRegex(self.wd.log(), r"stopping with \d+ events unshipped; they stay in the "
                                        r"buffer for the next start")
        self.assertEqual(self.rx.records(), [])
        stop = [e for e in self.wd.events() if e["event"] == "daemon.stop"]
        self.assertEqual(len(stop), 1)
        self.rx.start()
        self.start()
        self.wd.wait_event("daemon.start")
        self.assert_delivered(timeout=90)
        self.assertTrue([r for r in self.rx.records() if r["record"]["seq"] == stop[0]["seq"]])

    def test_stop_flush_ends_at_its_deadline_and_feeds_the_watchdog(self):
        # fluentd accepts and never acks (ack_timeout far away): the flush
        # can only end at stop_flush; systemd's watchdog is fed meanwhile.
        watchdog_usec = 1_000_000
        notify = NotifySocket(self.wd.dir)
        self.addCleanup(notify.close)
        self.rx.set("noack")
        self.rx.start()
        self.start(ack_timeout="60s", stop_flush="3s",
                   env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": watchdog_usec,
                        "WATCHDOG_PID": None})
        notify.wait_for("READY=1", timeout=15)
        self.wait_events(10)
        self.wd.signal(signal.SIGTERM)
        stopping_at = notify.wait_for("STOPPING=1", timeout=10)[0]
        while self.wd.running():
            notify.receive(0.05)
        exited_at = time.monotonic()
        self.assertEqual(self.wd.proc.returncode, 0, self.wd.log())
        took = exited_at - stopping_at
        self.assertGreaterEqual(took, 2.8, "left before stop_flush = 3s")
        self.assertLess(took, 10)
        pings = [t for t, _, f in notify.all if "WATCHDOG=1" in f and t > stopping_at]
        self.assertGreaterEqual(len(pings), 4, notify.all)
        times = [stopping_at] + pings + [exited_at]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertLess(max(gaps), watchdog_usec / 1e6, "watchdog gap during the flush: %r" % gaps)
        self.assertRegex(self.wd.log(), r"stopping with \d+ events unshipped")

    def test_fluentd_down_at_start_and_for_a_while(self):
        self.rx.port = free_port()
        self.start()
        time.sleep(20)     # several reconnect attempts, backing off
        self.assertGreater(len(self.wd.events()), 20)
        self.assertEqual(self.rx.records(), [])
        self.assertIn("fluentd", self.wd.log())
        # wardenctl status shows the backlog and why it is not shipping.
        st = self.wd.ctl("status", "--json", check=True)
        fl = json.loads(st.stdout)["events"]["fluentd"]
        self.assertFalse(fl["connected"])
        self.assertGreater(fl["backlog_events"], 20)
        self.assertGreater(fl["backlog_bytes"], 0)
        self.assertTrue(fl["last_error"])
        table = self.wd.ctl("status", check=True).stdout
        self.assertRegex(table, r"fluentd   NOT CONNECTED, backlog \d+ events \(\d+ bytes\), "
                                r"last ack never; last error: ")
        self.rx.start()
        self.assert_delivered(timeout=90)   # the backoff is capped at 30 s
        table = self.wd.ctl("status", check=True).stdout
        self.assertRegex(table, r"fluentd   connected, backlog \d+ events .*last ack \d{4}-")

    def test_reload_names_fluentd_changes_as_needing_a_restart(self):
        self.rx.start()
        self.start()
        self.wait_events(5)
        self.wd.write_config(CONFIG.format(address="127.0.0.1:%d" % free_port(), ack="yes",
                                           ack_timeout="2s", stop_flush="5s", **self.wd.paths))
        p = self.wd.ctl("reload")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("note: changes to [fluentd] take effect after a restart", p.stdout)

    def test_fluentd_restarted_mid_stream(self):
        self.rx.start()
        self.start()
        self.wait_events(20)
        self.assert_delivered()
        self.rx.kill()
        n = len(self.wd.events())
        self.wait_events(n + 20)
        self.rx.start()          # same port
        self.wait_events(len(self.wd.events()) + 10)
        self.assert_delivered(timeout=90)

    def test_fluentd_that_accepts_but_never_acks(self):
        self.rx.set("noack")
        self.rx.start()
        self.start()
        time.sleep(6)            # ack_timeout = 2s: several resend rounds
        self.assertEqual(self.rx.records(), [])
        self.assertIn("no ack for chunk", self.wd.log())
        self.rx.set("ack")
        self.assert_delivered(timeout=90)

    def test_fluentd_closing_mid_chunk(self):
        self.rx.set("drop:150")  # every connection cut inside its first chunk
        self.rx.start()
        self.start()
        time.sleep(5)
        self.assertEqual(self.rx.records(), [])
        self.assertRegex(self.wd.log(), "closed the connection|reset by peer|Broken pipe")
        self.rx.set("ack")
        self.assert_delivered(timeout=90)

    def test_lost_acks_mean_duplicates_never_loss(self):
        self.rx.set("store-noack")
        self.rx.start()
        self.start()
        time.sleep(5)
        self.rx.set("ack")
        events, records = self.assert_delivered(timeout=90)
        self.assertGreater(len(records), len({r["record"]["seq"] for r in records}))

    def test_wardend_sigkilled_and_restarted(self):
        self.rx.set("noack")
        self.rx.start()
        self.start()
        self.wait_events(30)
        self.wd.kill()
        before = {e["seq"] for e in self.wd.events()}
        self.rx.set("ack")
        self.start()
        self.wd.wait_event("daemon.start")
        events, _ = self.assert_delivered(timeout=90)
        self.assertTrue(before <= {e["seq"] for e in events})

    def test_event_written_but_not_buffered_before_a_crash_is_shipped(self):
        # The crash window between the events file and the buffer: an event
        # that reached events.jsonl but not the buffer must still arrive.
        self.rx.start()
        self.start()
        self.wait_events(5)
        self.assertEqual(self.wd.stop(), 0)
        last = self.wd.events()[-1]
        orphan = dict(last, event="check.state", seq=last["seq"] + 1, check="orphan",
                      state="crit", prev_state="ok", value="1", threshold="> 0", error="",
                      type="file")
        with open(self.wd.paths["events"], "a") as f:
            f.write(json.dumps(orphan) + "\n")
        self.start()
        self.wd.wait_event("daemon.start")
        events, records = self.assert_delivered(timeout=90)
        got = [r["record"] for r in records if r["record"]["seq"] == orphan["seq"]]
        self.assertTrue(got, "the orphaned event was not shipped")
        self.assertEqual(got[0]["check"], "orphan")

    def test_unix_socket_without_ack(self):
        self.rx.unix = os.path.join(self.wd.dir, "fluentd.sock")
        self.rx.start()
        self.start(address="unix:" + self.rx.unix, ack="no")
        self.wait_events(20)
        _, records = self.assert_delivered()
        self.assertTrue(all(r["chunk"] is None for r in records))

    def test_unix_socket_with_ack_is_refused(self):
        self.wd.write_config(CONFIG.format(address="unix:/tmp/f.sock", ack="yes",
                                           ack_timeout="2s", stop_flush="5s", **self.wd.paths))
        p = run([WARDENCTL, "-c", self.wd.paths["config"], "validate"], check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("fluentd never acks on a unix socket", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
