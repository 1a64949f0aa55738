"""wardend's log and events in journald, and its STATUS= line.

The test plays journald's and systemd's parts: it binds a unix datagram
socket as `[log] journal_socket` and another as NOTIFY_SOCKET, and reads
what wardend sends there, decoding journald's native protocol itself
(KEY=value lines, or KEY, a 64-bit little-endian length and the bytes)."""

import json
import os
import select
import shutil
import socket
import struct
import subprocess
import time
import unittest

from harness import Wardend, base_config, match

CONFIG = base_config("journald-test", workers=None, mutex_off=True, log="{log_keys}") + """
[check flag]
type   = file
path   = {dir}/flag
metric = exists
crit   = == 0
"""


def decode(data):
    """journald's native protocol -> list of (name, value bytes)."""
    fields, i = [], 0
    while i < len(data):
        nl = data.index(b"\n", i)
        eq = data.find(b"=", i, nl)
        if eq >= 0:
            fields.append((data[i:eq].decode(), data[eq + 1:nl]))
            i = nl + 1
            continue
        name = data[i:nl].decode()
        (size,) = struct.unpack("<Q", data[nl + 1:nl + 9])
        start = nl + 9
        fields.append((name, data[start:start + size]))
        assert data[start + size:start + size + 1] == b"\n", "binary field not ended by \\n"
        i = start + size + 1
    return fields


class Datagrams:
    """A bound unix datagram socket; .all: every datagram so far (bytes)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.all = []

    def close(self):
        self.sock.close()

    def receive(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return
            self.all.append(self.sock.recv(1 << 20))

    def wait_for(self, predicate, timeout, what):
        """Reads until predicate(datagram) holds for one; returns it."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for d in self.all[seen:]:
                if predicate(d):
                    return d
            seen = len(self.all)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %ss; received: %r"
                                     % (what, timeout, self.all[-30:]))
            self.receive(min(left, 0.2))


class Journal(Datagrams):
    def entries(self):
        return [dict(decode(d)) for d in self.all]

    def wait_entry(self, timeout=20, **fields):
        """Waits for an entry with these fields (str values); returns it."""
        want = {k: v.encode() for k, v in fields.items()}

        def has(d):
            e = dict(decode(d))
            return all(e.get(k) == v for k, v in want.items())
        return dict(decode(self.wait_for(has, timeout, "entry %r" % fields)))


class JournaldTest(unittest.TestCase):
    def setUp(self):
        self.wd = Wardend().__enter__()
        self.addCleanup(self.wd.__exit__, None, None, None)
        self.journal = Journal(os.path.join(self.wd.dir, "journal.sock"))
        self.addCleanup(self.journal.close)
        self.notify = Datagrams(os.path.join(self.wd.dir, "notify.sock"))
        self.addCleanup(self.notify.close)

    def start(self, log_keys, env=None):
        base = {"NOTIFY_SOCKET": self.notify.path, "JOURNAL_STREAM": None,
                "WATCHDOG_USEC": None, "WATCHDOG_PID": None}
        base.update(env or {})
        self.wd.start(CONFIG.format(log_keys=log_keys, **self.wd.paths), env=base)

    def status_line(self, text, timeout=20):
        return self.notify.wait_for(lambda d: ("STATUS=" + text).encode() in d.split(b"\n"),
                                    timeout, "STATUS=" + text)

    def test_log_events_and_status_go_to_systemd(self):
        wd = self.wd
        # A corrupt state file: wardend says so at error level, and goes on.
        wd.write("state/state.json", "{not json")
        self.start("journal = yes\njournal_socket = %s" % self.journal.path)

        error = self.journal.wait_entry(PRIORITY="3")
        self.assertIn(b"state file unusable", error["MESSAGE"])
        self.assertEqual(b"wardend", error["SYSLOG_IDENTIFIER"])

        # The check's event, as an entry of its own with its fields.
        event = wd.wait_event("check.state", check="flag", state="crit", timeout=20)[0]
        entry = self.journal.wait_entry(WARDEN_EVENT="check.state", WARDEN_CHECK="flag")
        self.assertEqual(str(event["seq"]).encode(), entry["WARDEN_SEQ"])
        self.assertEqual(b"4", entry["PRIORITY"])   # crit: warning
        self.assertEqual(b"wardend", entry["SYSLOG_IDENTIFIER"])
        self.assertEqual(("check.state #%d: check=flag prev_state=pending state=crit value=0 "
                          "threshold=\"== 0\" type=file" % event["seq"]).encode(),
                         entry["MESSAGE"])
        # The human line too, at the level wardend logs it (warn).
        self.journal.wait_entry(MESSAGE="check flag: pending -> crit value 0", PRIORITY="4")
        start = self.journal.wait_entry(WARDEN_EVENT="daemon.start")
        self.assertEqual(b"5", start["PRIORITY"])

        # STATUS= says the state, and follows it.
        self.status_line("1 crit; mutex off; queue idle")
        wd.write("flag", "")
        wd.wait_event("check.state", check="flag", state="ok", timeout=20)
        self.status_line("1 ok; mutex off; queue idle")
        wd.ctl("pause", "--reason", "journald test", check=True)
        self.status_line("1 ok; mutex off; queue idle; paused")

        # Nothing of the log on stderr: it all went to the journal.
        self.assertNotIn("state file unusable", wd.log())
        self.assertNotIn("pending -> crit", wd.log())
        status = json.loads(wd.ctl("status", "--json", check=True).stdout)
        counters = status["log"]["journal"]
        self.assertEqual(self.journal.path, counters["socket"])
        self.assertGreater(counters["sent"], 5)
        self.assertEqual(0, counters["failed"])
        self.assertEqual(0, counters["dropped"])
        self.assertIsNone(counters["last_error"])

        self.assertEqual(0, wd.stop(timeout=15))
        self.notify.wait_for(lambda d: d.startswith(b"STATUS=stopping (SIGTERM)"), 5,
                             "STATUS=stopping")
        self.journal.wait_entry(WARDEN_EVENT="daemon.stop", timeout=5)

    def test_journal_stream_naming_stderr_selects_the_journal(self):
        # systemd sets JOURNAL_STREAM to the device:inode of the stream it
        # gives as stderr; here stderr is the harness's output file.
        with open(self.wd.output, "a"):
            pass
        st = os.stat(self.wd.output)
        self.start("journal_socket = %s" % self.journal.path,
                   env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        self.journal.wait_entry(WARDEN_EVENT="check.state", WARDEN_CHECK="flag")
        self.journal.wait_entry(MESSAGE="check flag: pending -> crit value 0")
        self.assertNotIn("pending -> crit", self.wd.log())

    def test_journal_stream_naming_another_file_leaves_stderr(self):
        with open(self.wd.output, "a"):
            pass
        st = os.stat(self.wd.output)
        self.start("journal_socket = %s" % self.journal.path,
                   env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino + 1)})
        self.wd.wait_event("check.state", check="flag", state="crit", timeout=20)
        self.wd.wait_for(lambda _: "check flag: pending -> crit" in self.wd.log(), timeout=10)
        self.journal.receive(0.5)
        self.assertEqual([], self.journal.all)

    def test_journal_no_keeps_stderr_even_when_it_is_the_journal(self):
        with open(self.wd.output, "a"):
            pass
        st = os.stat(self.wd.output)
        self.start("journal = no\njournal_socket = %s" % self.journal.path,
                   env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        self.wd.wait_for(lambda _: "check flag: pending -> crit" in self.wd.log(), timeout=20)
        self.journal.receive(0.5)
        self.assertEqual([], self.journal.all)

    def test_no_journald_writes_the_log_to_stderr(self):
        missing = os.path.join(self.wd.dir, "no-journald.sock")
        self.start("journal = yes\njournal_socket = %s" % missing)
        self.wd.wait_for(lambda _: "check flag: pending -> crit" in self.wd.log(), timeout=20)
        status = json.loads(self.wd.ctl("status", "--json", check=True).stdout)
        counters = status["log"]["journal"]
        self.assertGreater(counters["failed"], 0)
        self.assertIn(missing, counters["last_error"])
        self.assertIn("No such file or directory", counters["last_error"])
        self.assertEqual(0, self.wd.stop(timeout=15))

    def test_status_line_without_journal(self):
        # STATUS= does not need the journal: NOTIFY_SOCKET is enough.
        self.start("")
        self.status_line("1 crit; mutex off; queue idle")
        self.assertIn("pending -> crit", self.wd.log())


JOURNALD = next((p for p in ("/usr/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald")
                 if os.access(p, os.X_OK)), None)


@unittest.skipUnless(JOURNALD and os.geteuid() == 0 and shutil.which("unshare"),
                     "needs systemd-journald, root and unshare")
class RealJournald(unittest.TestCase):
    """The real systemd-journald takes what wardend sends, and journalctl
    finds it by priority and by wardend's fields.

    journald runs in a mount namespace of its own where /run is a fresh
    tmpfs and /run/systemd and /run/log are directories of the test: its
    socket is <dir>/systemd/journal/socket (wardend's journal_socket), its
    files are under <dir>/log/journal (journalctl -D). Nothing of the
    machine's own journal is touched."""

    def setUp(self):
        self.wd = Wardend().__enter__()
        self.addCleanup(self.wd.__exit__, None, None, None)
        d = self.wd.dir
        for sub in ("systemd", "log", "varlog"):
            os.makedirs(os.path.join(d, sub))
        script = ("set -e; mount -t tmpfs tmpfs /run; mkdir -p /run/systemd /run/log; "
                  "mount --bind {d}/systemd /run/systemd; mount --bind {d}/log /run/log; "
                  "if [ -d /var/log/journal ]; then mount --bind {d}/varlog /var/log/journal; fi; "
                  "exec {journald}").format(d=d, journald=JOURNALD)
        with open(os.path.join(d, "journald.out"), "w") as out:
            self.journald = subprocess.Popen(["unshare", "-m", "--propagation", "private",
                                              "sh", "-c", script],
                                             stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_journald)
        self.socket = os.path.join(d, "systemd", "journal", "socket")
        deadline = time.monotonic() + 20
        while not os.path.exists(self.socket):
            self.assertIsNone(self.journald.poll(), "journald exited: %s" % self.journald_out())
            self.assertLess(time.monotonic(), deadline, "no journald socket: %s"
                            % self.journald_out())
            time.sleep(0.05)

    def journald_out(self):
        with open(os.path.join(self.wd.dir, "journald.out"), errors="replace") as f:
            return f.read()

    def stop_journald(self):
        self.journald.terminate()
        try:
            self.journald.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.journald.kill()
            self.journald.wait()

    def journalctl(self, *match):
        p = subprocess.run(["journalctl", "-D", os.path.join(self.wd.dir, "log", "journal"),
                            "-o", "json", "--no-pager"] + list(match),
                           capture_output=True, text=True, timeout=30)
        return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]

    def wait_journal(self, *match, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            found = self.journalctl(*match)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError("journalctl %s found nothing; wardend's entries: %r"
                                     % (" ".join(match),
                                        self.journalctl("SYSLOG_IDENTIFIER=wardend")[-20:]))
            time.sleep(0.2)

    def test_journalctl_finds_errors_and_events(self):
        wd = self.wd
        wd.write("state/state.json", "{not json")
        wd.start(CONFIG.format(log_keys="journal = yes\njournal_socket = %s" % self.socket,
                               **wd.paths),
                 env={"NOTIFY_SOCKET": None, "JOURNAL_STREAM": None})
        event = wd.wait_event("check.state", check="flag", state="crit", timeout=20)[0]
        errors = self.wait_journal("-p", "err", "SYSLOG_IDENTIFIER=wardend")
        self.assertTrue(any("state file unusable" in e["MESSAGE"] for e in errors), errors)
        self.assertTrue(all(int(e["PRIORITY"]) <= 3 for e in errors), errors)
        self.assertEqual(str(wd.proc.pid), errors[0]["_PID"])
        state = self.wait_journal("WARDEN_EVENT=check.state", "WARDEN_CHECK=flag")[0]
        self.assertEqual(str(event["seq"]), state["WARDEN_SEQ"])
        self.assertEqual("4", state["PRIORITY"])
        self.assertEqual("journal", state["_TRANSPORT"])
        # A refused reload: an err entry of its own, naming the problems.
        wd.write_config(CONFIG.format(log_keys="journal = yes\njournal_socket = %s\nbogus = 1"
                                      % self.socket, **wd.paths)
                        + "\n[check flag2]\ntype = nope\n")
        wd.ctl("reload")
        reload = self.wait_journal("WARDEN_EVENT=daemon.reload")[0]
        self.assertEqual("3", reload["PRIORITY"])
        self.assertIn("bogus", reload["MESSAGE"])
        self.assertIn("nope", reload["MESSAGE"])
        self.assertEqual(0, wd.stop(timeout=15))


if __name__ == "__main__":
    unittest.main()
