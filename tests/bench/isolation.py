#!/usr/bin/env python3
"""Isolation: does one hung MySQL peer delay the healthy checks?

    python3 tests/bench/isolation.py [--checks 100] [--seconds 10] [--rounds 1]

A HungPeer (harness.py: accepts TCP, never answers) is checked by wardend
(`mysql_ping` and `mysql_status` on `[mysql hung]`, connect_timeout 5s) and
by Monit (`if failed port P protocol mysql`, its default 5 s timeout), next
to N healthy `tcp` checks every 1 s, each against its own listening port
here. A healthy check's start is when its connection is accepted (recorded
by an epoll loop in this process, CLOCK_MONOTONIC): the time an external
observer can see, for both tools alike.

Delay beyond schedule, per healthy check: the largest gap between two
consecutive starts minus the 1 s interval; the figure is the largest over
all healthy checks. (A start that comes late and the next on time shows as
one long and one short gap: the long one is counted.) The same for wardend
with no hung peer gives the noise floor of this machine."""

import argparse
import os
import selectors
import shutil
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import HungPeer, Wardend, base_config, mysql_peer  # noqa: E402

import monit  # noqa: E402 (tests/bench/monit.py)

INTERVAL = 1.0


class Listeners:
    """N listening sockets; records the accept times per port."""

    def __init__(self, n):
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.times = {}
        for _ in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(64)
            s.setblocking(False)
            port = s.getsockname()[1]
            self.times[port] = []
            self.sel.register(s, selectors.EVENT_READ, port)
            self.socks.append(s)
        self.ports = list(self.times)
        self.recording = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            for key, _ in self.sel.select(0.1):
                now = time.monotonic()
                try:
                    conn, _ = key.fileobj.accept()
                except OSError:
                    continue
                conn.close()
                if self.recording:
                    self.times[key.data].append(now)

    def reset(self):
        for p in self.times:
            self.times[p] = []

    def worst_delay_ms(self):
        worst = 0.0
        starts = 0
        for ts in self.times.values():
            starts += len(ts)
            for a, b in zip(ts, ts[1:]):
                worst = max(worst, b - a - INTERVAL)
        return 1000 * worst, starts

    def close(self):
        self._stop.set()
        self._thread.join()
        for s in self.socks:
            s.close()


WARDEND_CONFIG = (base_config("bench", workers=4, level="warn", jitter="100%", mutex_off=True)
                  + mysql_peer("hung", "hung_port", timeout="5s"))


def record(listeners, seconds):
    """After 2 s of settling, the largest delay of `seconds` of starts."""
    time.sleep(2)
    listeners.reset()
    listeners.recording = True
    time.sleep(seconds)
    listeners.recording = False
    return listeners.worst_delay_ms()


def run_wardend(listeners, seconds, hung):
    checks = "".join("[check t%d]\ntype = tcp\nhost = 127.0.0.1\nport = %d\n" % (i, p)
                     for i, p in enumerate(listeners.ports))
    if hung:
        checks += ("[check hung_ping]\ntype = mysql_ping\nconnection = hung\n"
                   "[check hung_status]\ntype = mysql_status\nconnection = hung\n"
                   "variable = Threads_connected\n")
    with Wardend() as wd:
        pw = wd.write("mysql.pass", "x")
        wd.start(WARDEND_CONFIG.format(hung_port=hung.port if hung else 9, password_file=pw,
                                       **wd.paths)
                 + checks)
        wd.wait_event("daemon.start")
        return record(listeners, seconds)


def run_monit(listeners, seconds, hung, binary="monit"):
    checks = ("check host hung with address 127.0.0.1\n  if failed port %d protocol mysql "
              "with timeout 5 seconds then alert\n" % hung.port)
    checks += "".join("check host t%d with address 127.0.0.1\n  if failed port %d type tcp "
                      "then alert\n" % (i, p) for i, p in enumerate(listeners.ports))
    with monit.running(checks, binary):
        return record(listeners, seconds)


def one_round(n, seconds, monit="monit"):
    """{"wardend": ms, "wardend_no_hung": ms, "monit": ms} (and start counts)."""
    out = {}
    listeners = Listeners(n)
    try:
        with HungPeer() as hung:
            out["wardend_no_hung"] = run_wardend(listeners, seconds, None)
            out["wardend"] = run_wardend(listeners, seconds, hung)
            if monit and shutil.which(monit):
                # Monit's cycle with a hung peer lasts 5 s + the rest: give it
                # time for at least two cycles.
                out["monit"] = run_monit(listeners, max(seconds, 11), hung, monit)
    finally:
        listeners.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--monit", default="monit")
    args = ap.parse_args()
    for _ in range(args.rounds):
        r = one_round(args.checks, args.seconds, args.monit)
        for who, (ms, starts) in r.items():
            print("%-16s largest delay %9.1f ms  (%d healthy starts)" % (who, ms, starts))


if __name__ == "__main__":
    main()
