"""wardend under systemd: the sd_notify protocol as systemd sees it, and the
unit file (etc/systemd/wardend.service).

The test plays systemd's part: it binds a unix datagram socket, hands it to
wardend as NOTIFY_SOCKET (with WATCHDOG_USEC, as systemd does for a unit with
WatchdogSec=) and reads what arrives, with the sender's credentials (systemd
accepts only the main pid under NotifyAccess=main)."""

import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import tempfile
import time
import unittest
from unittest import mock

import harness
from harness import SOURCE_DIR, WARDEND, Wardend, base_config, match, run

CONFIG = base_config("systemd-test", workers=None, level="debug", mutex_off=True) + """
[check root_disk]
type   = disk
path   = /
metric = free_pct
warn   = < 1
"""

UNIT = os.path.join(SOURCE_DIR, "etc", "systemd", "wardend.service")
WATCHDOG_USEC = 1_000_000          # what systemd sets for WatchdogSec=1s


class NotifySocket:
    """A unix datagram socket in the role of systemd's notify socket.

    .path; .receive(timeout) -> list of (monotonic time, sender pid, fields)
    for the datagrams that arrived within timeout; .all: everything so far."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.all = []

    def close(self):
        self.sock.close()

    def receive(self, timeout):
        """Reads datagrams for `timeout` seconds; returns the new ones."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                break
            got.append(self._read_one())
        self.all.extend(got)
        return got

    def wait_for(self, field, timeout):
        """Reads until a datagram carrying `field` (e.g. "READY=1") arrives;
        returns it. Raises AssertionError with what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.sock], [], [], deadline - time.monotonic())
            if not ready:
                break
            message = self._read_one()
            self.all.append(message)
            if field in message[2]:
                return message
        raise AssertionError("no %s within %ss; received: %r" % (field, timeout, self.all))

    def _read_one(self):
        ucred_size = struct.calcsize("3i")
        data, ancdata, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(ucred_size))
        pid = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _uid, _gid = struct.unpack("3i", payload[:ucred_size])
        fields = [line for line in data.decode(errors="replace").split("\n") if line]
        return (time.monotonic(), pid, fields)


class NotifyProtocol(unittest.TestCase):
    def setUp(self):
        self.wd = Wardend().__enter__()
        self.addCleanup(self.wd.__exit__, None, None, None)
        self.notify = NotifySocket(self.wd.dir)
        self.addCleanup(self.notify.close)

    def start(self, **env):
        base = {"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": WATCHDOG_USEC,
                "WATCHDOG_PID": None}
        base.update(env)
        self.wd.start(CONFIG.format(**self.wd.paths), env=base)

    def test_ready_watchdog_stopping(self):
        self.start()
        wd = self.wd
        _, pid, _ = self.notify.wait_for("READY=1", timeout=15)
        # READY=1 comes once the daemon is set up, from the main pid: the
        # control socket answers at once, and daemon.start was emitted (the
        # events file is written off the loop, so it may land just after;
        # READY does not wait on the disk).
        self.assertEqual(pid, wd.proc.pid, "READY=1 not from wardend's main pid")
        p = wd.ctl("status", "--json")
        self.assertEqual(p.returncode, 0, "status right after READY=1: %s%s" % (p.stdout, p.stderr))
        self.assertGreaterEqual(json.loads(p.stdout)["events"]["last_seq"], 1)
        wd.wait_event("daemon.start", timeout=10)

        # WATCHDOG=1 from the loop, every WATCHDOG_USEC/2: at least 4 in 2.5 s,
        # and never a gap systemd would take for a hung daemon.
        ready_at = self.notify.all[-1][0]
        self.notify.receive(2.5)
        pings = [m for m in self.notify.all if "WATCHDOG=1" in m[2]]
        self.assertGreaterEqual(len(pings), 4, "WATCHDOG=1 pings: %r" % self.notify.all)
        times = [ready_at] + [t for t, _, _ in pings]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertLess(max(gaps), WATCHDOG_USEC / 1e6,
                        "a watchdog gap longer than WATCHDOG_USEC: %r" % gaps)
        self.assertTrue(all(p == wd.proc.pid for _, p, _ in pings))
        self.assertEqual(1, sum("READY=1" in f for _, _, f in self.notify.all),
                         "READY=1 sent more than once: %r" % self.notify.all)

        # SIGTERM: STOPPING=1 right away, then a clean exit with daemon.stop.
        wd.signal(signal.SIGTERM)
        _, pid, _ = self.notify.wait_for("STOPPING=1", timeout=10)
        self.assertEqual(pid, wd.proc.pid)
        self.assertEqual(0, wd.proc.wait(15), wd.log())
        stop = match(wd.events(), "daemon.stop")
        self.assertEqual(1, len(stop), wd.log())
        self.assertEqual("SIGTERM", stop[0]["reason"])
        # No READY=1 after STOPPING=1 (systemd would think it started again).
        self.notify.receive(0.2)
        stopping = next(i for i, m in enumerate(self.notify.all) if "STOPPING=1" in m[2])
        self.assertFalse([m for m in self.notify.all[stopping:] if "READY=1" in m[2]])

    def test_watchdog_for_another_pid_is_not_fed(self):
        # sd_watchdog_enabled(): WATCHDOG_PID naming another process means the
        # watchdog is not ours (e.g. inherited from a parent): no pings.
        self.start(WATCHDOG_PID=os.getpid())
        self.notify.wait_for("READY=1", timeout=15)
        self.notify.receive(1.5)
        pings = [m for m in self.notify.all if "WATCHDOG=1" in m[2]]
        self.assertEqual([], pings)

    def test_watchdog_pid_naming_wardend_is_fed(self):
        # systemd itself sets WATCHDOG_PID to the main pid. The pid is only
        # known after the fork, so wrap wardend in a shell that sets it to
        # its own pid and execs (same pid).
        wd = self.wd
        script = wd.write("exec-wardend.sh",
                          '#!/bin/sh\nWATCHDOG_PID=$$ exec "%s" "$@"\n' % WARDEND, mode=0o700)
        with mock.patch.object(harness, "WARDEND", script):
            wd.start(CONFIG.format(**wd.paths),
                     env={"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": WATCHDOG_USEC,
                          "WATCHDOG_PID": None})
        _, pid, _ = self.notify.wait_for("READY=1", timeout=15)
        self.assertEqual(pid, wd.proc.pid)
        self.notify.wait_for("WATCHDOG=1", timeout=WATCHDOG_USEC / 1e6 + 5)

    def test_without_notify_socket_runs_normally(self):
        # Started by hand (no systemd): sd_notify is a no-op, nothing breaks.
        self.wd.start(CONFIG.format(**self.wd.paths),
                      env={"NOTIFY_SOCKET": None, "WATCHDOG_USEC": None, "WATCHDOG_PID": None})
        self.wd.wait_event("check.state", check="root_disk", timeout=15)
        self.assertEqual(0, self.wd.stop(timeout=15))
        self.assertEqual([], self.notify.receive(0.1))


class UnitFile(unittest.TestCase):
    def read_unit(self):
        with open(UNIT) as f:
            text = f.read()
        values = {}
        for line in text.splitlines():
            m = re.match(r"^([A-Za-z]+)=(.*)$", line)
            if m:
                values.setdefault(m.group(1), []).append(m.group(2))
        return text, values

    def test_unit_settings(self):
        _, unit = self.read_unit()
        self.assertEqual(["notify"], unit["Type"])
        self.assertEqual(["main"], unit["NotifyAccess"])
        self.assertEqual(["on-failure"], unit["Restart"])
        self.assertEqual(["mixed"], unit["KillMode"])
        self.assertEqual(["/usr/sbin/wardend -c /etc/warden/warden.ini"], unit["ExecStart"])
        self.assertEqual(["/bin/kill -HUP $MAINPID"], unit["ExecReload"])
        for key in ("RuntimeDirectory", "StateDirectory", "LogsDirectory"):
            self.assertEqual(["warden"], unit[key], key)
        self.assertEqual(["yes"], unit["PrivateTmp"])
        # Running as root with package managers as actions: none of these.
        for key in ("User", "ProtectSystem", "NoNewPrivileges", "ProtectKernelModules",
                    "PrivateDevices", "RestrictSUIDSGID", "SystemCallFilter"):
            self.assertNotIn(key, unit, key)

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
    def test_systemd_analyze_verify(self):
        # The real binary path does not exist in a build tree: verify a copy
        # that points at the binary under test.
        text, _ = self.read_unit()
        with tempfile.TemporaryDirectory(prefix="warden-unit-") as d:
            path = os.path.join(d, "wardend.service")
            with open(path, "w") as f:
                f.write(text.replace("/usr/sbin/wardend", os.path.abspath(WARDEND)))
            p = run(["systemd-analyze", "verify", path], check=False)
            problems = [line for line in (p.stdout + p.stderr).splitlines()
                        if "wardend.service" in line]
            self.assertEqual(0, p.returncode, p.stdout + p.stderr)
            self.assertEqual([], problems)


if __name__ == "__main__":
    unittest.main()
