#!/usr/bin/env python3
"""CPU and memory of wardend per executed check, measured from the kernel's
own accounting (/proc/PID/stat utime+stime, /proc/PID/status VmRSS).

    python3 tests/bench/check_cost.py [--checks 100,1000] [--seconds 20]

Starts its own MariaDB sandbox and, for each count, a wardend with that many
mysql_status checks (distinct variables over one connection) every 1 s, plus
an idle wardend with one file check. Reports CPU per check run and RSS. Run
from the repo root after a build (WARDEND overrides build/wardend)."""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import MariaDB, Wardend  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")

BASE = """
[daemon]
host_id = bench
state_dir = {state_dir}
interval = 1s
jitter = 100%
workers = 4
[log]
level = warn
events = {events}
[mysql]
socket = {socket}
user = warden
password_file = {password_file}
[mutex]
mode = off
"""


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(wd, seconds):
    pid = wd.proc.pid
    time.sleep(3)  # warm-up: connections made, first runs spread
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    return c1 - c0, t1 - t0, rss_kb(pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", default="100,1000")
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    rows = []
    with MariaDB() as db:
        names = [r[0] for r in db.sql("SHOW GLOBAL STATUS")]
        with Wardend() as wd:
            wd.start(BASE.format(socket=db.socket, password_file=db.password_file, **wd.paths)
                     + "[check root]\ntype = disk\npath = /\nevery = 30s\n")
            wd.wait_event("check.state", check="root")
            cpu, wall, rss = measure(wd, args.seconds)
            rows.append(("idle (1 disk check /30s)", "-", "%.2f%%" % (100 * cpu / wall), "-",
                         "%.1f MB" % (rss / 1024)))
        for n in [int(x) for x in args.checks.split(",")]:
            checks = "".join("[check c%d]\ntype = mysql_status\nvariable = %s\n" %
                             (i, names[i % len(names)]) for i in range(n))
            with Wardend() as wd:
                wd.start(BASE.format(socket=db.socket, password_file=db.password_file,
                                     **wd.paths) + checks)
                wd.wait_event("daemon.start")
                cpu, wall, rss = measure(wd, args.seconds)
                runs = n * wall  # every 1 s
                rows.append(("%d mysql_status checks /1s" % n, "%.0f" % runs,
                             "%.2f%%" % (100 * cpu / wall), "%.1f us" % (1e6 * cpu / runs),
                             "%.1f MB" % (rss / 1024)))
    print("%-28s %10s %10s %14s %10s" % ("wardend", "runs", "CPU", "CPU per run", "RSS"))
    for r in rows:
        print("%-28s %10s %10s %14s %10s" % r)


if __name__ == "__main__":
    main()
