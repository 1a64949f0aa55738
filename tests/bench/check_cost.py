#!/usr/bin/env python3
"""CPU and memory of wardend per executed mysql_status check, side by side
with the floor (tests/bench/floor.c on libmariadb) and Monit, measured from
the kernel's own accounting (/proc/PID/task/*/schedstat, ns; the server's
/proc/PID/stat utime+stime; /proc/PID/smaps_rollup for RSS, PSS and USS;
the floor reports its own getrusage).

    python3 tests/bench/check_cost.py [--checks 100,1000] [--seconds 6] [--rounds 1]
        [--floor build-bench/floor] [--sandbox DIR]
    python3 tests/bench/check_cost.py --compare BEFORE AFTER [--phases jitter,default]
        [--floor build-bench/floor] ...   (two wardend binaries, alternating)

One round, for each N: wardend with N mysql_status checks (distinct
variables over one connection, every 1 s, jitter 100%), then the floor in
its modes for the same N, cadence and duration (the floor itself: one read
a second of just the names needed; and the older floors: a full read per
100 ms window, blocking and on libev, and one query per check), then
wardend at the default jitter (10%), then Monit with N `check host … if
failed port P protocol mysql` at `set daemon 1`; plus an idle wardend (one
disk check every 30 s). Also the server's (mariadbd's) CPU in each phase:
a database host pays for both, so each figure comes as the process's, the
server's on its behalf, and their sum (host). Phases run one after another
against the same server, so their ratios are taken inside one round.

Per check: wardend's checks executed = N x seconds (every 1 s); the floor
counts its own; Monit's = the server's Connections delta (each Monit mysql
test is one connection). Run from the repo root after a build (WARDEND
overrides build/wardend). Used by scripts/bench (bench_all.py)."""

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import MariaDB, Wardend, base_config  # noqa: E402

import monit  # noqa: E402 (tests/bench/monit.py)

TICK = os.sysconf("SC_CLK_TCK")
WARMUP = 2.0

BASE = base_config("bench", workers=4, level="warn", jitter="100%", mysql=True, mutex_off=True)
# The shipped default (jitter = 10%, etc/warden.ini): shared reads are not
# spread by jitter, so N mysql_status checks share one read a second, as
# at 100%: the two show that jitter no longer matters for them.
BASE_DEFAULT = base_config("bench", workers=4, level="warn", jitter="10%", mysql=True,
                           mutex_off=True)
# The same checks over TCP: plain, and with TLS (ssl_mode = required; the
# sandbox of scripts/bench has a certificate). TLS is set up once per
# connection, so per check it should cost what plain TCP does.
BASE_TCP = base_config("bench", workers=4, level="warn", jitter="100%", mutex_off=True) + """
[mysql]
host          = 127.0.0.1
port          = {port}
user          = warden
password_file = {password_file}
ssl_mode      = {ssl_mode}
"""


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_precise(pid):
    """CPU seconds of pid's live threads from /proc/PID/task/*/schedstat (ns,
    the scheduler's own accounting), for long-lived processes whose threads
    do not exit (wardend, Monit): /proc/PID/stat counts in 10 ms ticks, too
    coarse for a few seconds of a light process. Falls back to stat."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
    except OSError:
        return cpu_seconds(pid)
    return total / 1e9


def server_cpu(pid):
    """A reading of the server's CPU: (live threads' schedstat, the
    process's /proc/PID/stat). The first is exact to the nanosecond but
    forgets threads that exit; the second counts them, in 10 ms ticks."""
    return cpu_precise(pid), cpu_seconds(pid)


def server_delta(before, after):
    """The server's CPU seconds between two readings: the exact figure,
    unless threads that exited meanwhile left more than two ticks
    uncounted (a server that does not cache its threads)."""
    precise, coarse = after[0] - before[0], after[1] - before[1]
    return coarse if coarse - precise > 0.02 else precise


# The server's own CPU a second with no client (its background threads),
# measured in each round's idle phase and taken off every phase's server
# figure: what is left is what the server spent on the client's behalf.
SERVER_IDLE_PER_S = [0.0]


def on_behalf(server_s, wall_s):
    return max(0.0, server_s - SERVER_IDLE_PER_S[0] * wall_s)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_kb(pid):
    """RSS, PSS (shared pages divided among the processes that map them)
    and USS (pages of this process alone: Private_Clean + Private_Dirty),
    from /proc/PID/smaps_rollup, in kB."""
    fields = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1])
    return {"rss_kb": fields.get("Rss", 0), "pss_kb": fields.get("Pss", 0),
            "uss_kb": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}


class Sandbox:
    """An already running scripts/mariadb-sandbox DIR (what scripts/bench
    starts), with the MariaDB interface of harness.py that we use."""

    def __init__(self, dir):
        env = {}
        with open(os.path.join(dir, "env")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                env[k] = v
        self.dir = dir
        self.socket = env["MYSQL_SOCKET"]
        self.port = int(env["MYSQL_PORT"])
        self.password_file = env["MYSQL_PASSWORD_FILE"]
        self.admin_user = env["MYSQL_ADMIN_USER"]
        self.pid = int(env["MYSQL_PID"])
        # scripts/bench starts it with a certificate (ssl_cert in options).
        self.tls = os.path.exists(os.path.join(dir, "tls", "server.pem"))

    def sql(self, statement):
        p = subprocess.run(["mariadb", "--no-defaults", "--socket=" + self.socket,
                            "-u" + self.admin_user, "--batch", "--skip-column-names",
                            "-e", statement], capture_output=True, text=True, check=True)
        return [line.split("\t") for line in p.stdout.splitlines()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def status_value(db, name):
    return int(db.sql("SHOW GLOBAL STATUS LIKE '%s'" % name)[0][1])


# The monitoring surfaces a fleet turns on, on top of BASE_DEFAULT: the
# metrics endpoint (scraped every second by Surfaces), the textfile for
# node_exporter at its default interval (15 s), and the log in journald's
# native protocol (to a socket Surfaces binds and drains).
SURFACES = """
[metrics]
listen   = 127.0.0.1:{metrics_port}
textfile = {textfile}
"""


class Surfaces:
    """What stands in for Prometheus and journald while wardend runs with
    SURFACES: a thread that GETs /metrics every second (kept alive), and a datagram
    socket that reads whatever the daemon sends to journald."""

    def __init__(self, dir):
        import socket
        self.dir = dir
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.journal_path = os.path.join(dir, "journal.sock")
        self.journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.journal.bind(self.journal_path)
        self.journal.settimeout(0.2)
        self.scrapes, self.scrape_errors, self.journal_datagrams = 0, 0, 0
        self.stopping = False

    def config(self, base):
        log = "[log]\njournal = yes\njournal_socket = %s\n" % self.journal_path
        return (base.replace("[log]\n", log, 1) + SURFACES).replace(
            "{metrics_port}", str(self.port)).replace(
            "{textfile}", os.path.join(self.dir, "warden.prom"))

    def _scrape(self):
        """GET /metrics every second on one kept-alive connection, as
        Prometheus scrapes (a new connection after an error)."""
        import http.client
        conn = None
        while not self.stopping:
            t = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/metrics")
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise OSError("HTTP %d" % r.status)
                self.scrapes += 1
            except (OSError, http.client.HTTPException):
                self.scrape_errors += 1
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
        if conn is not None:
            conn.close()

    def _drain(self):
        while not self.stopping:
            try:
                self.journal.recv(1 << 20)
                self.journal_datagrams += 1
            except OSError:
                pass

    def __enter__(self):
        import threading
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._scrape, self._drain)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        for t in self.threads:
            t.join()
        self.journal.close()


def measure_pid(pid, seconds, server_pid):
    time.sleep(1.0)  # settle
    c0, s0, t0 = cpu_precise(pid), server_cpu(server_pid), time.monotonic()
    time.sleep(seconds)
    c1, s1, t1 = cpu_precise(pid), server_cpu(server_pid), time.monotonic()
    return c1 - c0, server_delta(s0, s1), t1 - t0, memory_kb(pid)


def run_wardend(db, n, seconds, names, base=BASE, ssl_mode=None, surfaces=False):
    """wardend with n mysql_status checks (0: one disk check) on `base`;
    surfaces: with SURFACES on, scraped and drained (Surfaces)."""
    if n == 0:
        checks = "[check root]\ntype = disk\npath = /\nevery = 30s\n"
    else:
        checks = "".join("[check c%d]\ntype = mysql_status\nvariable = %s\n" %
                         (i, names[i % len(names)]) for i in range(n))
    with Wardend() as wd, Surfaces(wd.dir) as surf:
        if surfaces:
            base = surf.config(base)
        wd.start(base.format(socket=db.socket, password_file=db.password_file, port=db.port,
                             ssl_mode=ssl_mode or "disabled", **wd.paths)
                 + checks)
        wd.wait_event("daemon.start")
        # Steady state: every check has left `pending` (each first
        # check.state also rewrites the state file, a start-up cost).
        wd.wait_for(lambda ev: len([e for e in ev if e.get("event") == "check.state"]) >= max(n, 1),
                    timeout=120)
        # (Scrapes before the daemon listened failed; those in the window count.)
        scrapes0, errors0 = surf.scrapes, surf.scrape_errors
        cpu, server, wall, mem = measure_pid(wd.proc.pid, seconds, db.pid)
        scrapes, errors = surf.scrapes - scrapes0, surf.scrape_errors - errors0
        if surfaces and (scrapes < seconds - 1 or errors):
            raise RuntimeError("the metrics endpoint was not scraped every second: %d scrapes "
                               "in %.0f s, %d errors" % (scrapes, seconds, errors))
    if n == 0:
        # No check touches the server: its CPU is its own.
        SERVER_IDLE_PER_S[0] = server / wall
    return dict(mem, cpu=cpu, server=on_behalf(server, wall), server_raw=server, wall=wall,
                checks=n * wall)


def run_floor(db, n, seconds, floor, mode, window_ms=None):
    s0 = server_cpu(db.pid)
    window = ["--window-ms", str(window_ms)] if window_ms else []
    p = subprocess.run([floor, "--socket", db.socket, "--user", "warden", "--password-file",
                        db.password_file, "--checks", str(n), "--seconds", str(seconds),
                        "--mode", mode] + window, capture_output=True, text=True,
                       timeout=seconds + 60)
    s1 = server_cpu(db.pid)
    if p.returncode != 0:
        raise RuntimeError("floor failed: %s" % p.stderr)
    kv = dict(x.split("=") for x in p.stdout.split())
    # The server's CPU includes the floor's 1 s warm-up: scale to the window.
    wall = float(kv["wall_s"])
    server = server_delta(s0, s1) * wall / (wall + 1.0)
    return {"cpu": float(kv["cpu_s"]), "server": on_behalf(server, wall),
            "wall": wall, "checks": int(kv["checks"]), "queries": int(kv["queries"])}


def run_monit(db, n, seconds, binary="monit"):
    checks = "".join("check host c%d with address 127.0.0.1\n"
                     "  if failed port %d protocol mysql then alert\n" % (i, db.port)
                     for i in range(n))
    with monit.running(checks, binary) as proc:
        time.sleep(WARMUP)
        k0 = status_value(db, "Connections")
        c0, s0, t0 = cpu_precise(proc.pid), server_cpu(db.pid), time.monotonic()
        time.sleep(seconds)
        c1, s1, t1 = cpu_precise(proc.pid), server_cpu(db.pid), time.monotonic()
        k1 = status_value(db, "Connections")
        mem = memory_kb(proc.pid)
    checks = max(1, k1 - k0 - 1)  # our own status query is one connection
    server = server_delta(s0, s1)
    return dict(mem, cpu=c1 - c0, server=on_behalf(server, t1 - t0), wall=t1 - t0,
                checks=checks)


def status_names(db):
    return [r[0] for r in db.sql("SHOW GLOBAL STATUS")]


def one_round(db, counts, seconds, floor, monit="monit"):
    """One round: {"idle": {...}, N: {"wardend": {...}, "floor": ..., "floor_per_check": ...,
    "floor_shared": ..., "floor_loop": ..., "wardend_default": ..., "wardend_surfaces": ...,
    "monit": ...}} with cpu/server in seconds; wardend_default at the default jitter (10%),
    wardend_surfaces the same with the metrics endpoint scraped every second, the textfile
    and journald on (SURFACES). "floor" is the
    floor: one filtered read of the names needed per cadence tick (1 s)."""
    names = status_names(db)
    out = {"idle": run_wardend(db, 0, seconds, names)}
    for n in counts:
        r = {"wardend": run_wardend(db, n, seconds, names)}
        if floor:
            r["floor"] = run_floor(db, n, seconds, floor, "filtered", 1000)
            r["floor_on_libev"] = run_floor(db, n, seconds, floor, "filtered-loop", 1000)
            r["floor_per_check"] = run_floor(db, n, seconds, floor, "per-check")
            r["floor_shared"] = run_floor(db, n, seconds, floor, "shared")
            r["floor_loop"] = run_floor(db, n, seconds, floor, "loop")
        r["wardend_default"] = run_wardend(db, n, seconds, names, BASE_DEFAULT)
        r["wardend_surfaces"] = run_wardend(db, n, seconds, names, BASE_DEFAULT, surfaces=True)
        if getattr(db, "tls", False):
            r["wardend_tcp"] = run_wardend(db, n, seconds, names, BASE_TCP, "disabled")
            r["wardend_tls"] = run_wardend(db, n, seconds, names, BASE_TCP, "required")
        if monit and shutil.which(monit):
            r["monit"] = run_monit(db, n, seconds, monit)
        out[n] = r
    return out


def per_check_us(r, key="cpu"):
    """Microseconds per check of the process (cpu), of the server on its
    behalf (server), or of both: the host's (host)."""
    if key == "host":
        return 1e6 * (r["cpu"] + r["server"]) / r["checks"]
    return 1e6 * r[key] / r["checks"]


# The phases --compare can run: (label, base config, surfaces on).
COMPARE_PHASES = {
    "jitter": ("jitter 100%", BASE, False),
    "default": ("default jitter", BASE_DEFAULT, False),
    "surfaces": ("surfaces on", BASE_DEFAULT, True),
}


def compare(db, counts, seconds, rounds, binaries, phases=("jitter", "default"), floor=None):
    """A change's before and after from one run: each round runs the same
    phases with each binary, one after the other (which goes first
    alternates from round to round), and prints per check the daemon's,
    the server's and the host's CPU, and after ÷ before; then, per phase,
    the median and min–max over the rounds. With `floor` (its binary),
    each round also runs the floor (one read of the names a second,
    blocking and on libev) for each N, and the summary gives each
    binary's daemon CPU ÷ the floor's of the same round."""
    import harness
    import statistics
    names = status_names(db)
    results = {}
    floors = {}
    for r in range(rounds):
        harness.WARDEND = binaries[0]
        run_wardend(db, 0, seconds, names)   # the server's own CPU (SERVER_IDLE_PER_S)
        for n in counts:
            if floor:
                got = {mode: run_floor(db, n, seconds, floor, mode, 1000)
                       for mode in ("filtered", "filtered-loop")}
                floors.setdefault(n, []).append(got)
                print("round %d  %5d checks, floor           daemon %7.2f us, on libev %7.2f us"
                      % (r + 1, n, per_check_us(got["filtered"]),
                         per_check_us(got["filtered-loop"])), flush=True)
            for phase in phases:
                label, base, surfaces = COMPARE_PHASES[phase]
                got = [None, None]
                order = (0, 1) if r % 2 == 0 else (1, 0)
                for i in order:
                    harness.WARDEND = binaries[i]
                    got[i] = run_wardend(db, n, seconds, names, base, surfaces=surfaces)
                results.setdefault((n, label), []).append(got)
                b, a = got
                print("round %d  %5d checks, %-14s  daemon %7.2f -> %7.2f us  server %7.2f -> "
                      "%7.2f us  host %7.2f -> %7.2f us  (after/before daemon %.2f, host %.2f)"
                      % (r + 1, n, label, per_check_us(b), per_check_us(a),
                         per_check_us(b, "server"), per_check_us(a, "server"),
                         per_check_us(b, "host"), per_check_us(a, "host"),
                         per_check_us(a) / per_check_us(b),
                         per_check_us(a, "host") / per_check_us(b, "host")), flush=True)

    def summary(values, fmt):
        values = sorted(values)
        return (fmt % statistics.median(values)) + " (" + (fmt % values[0]) + "–" + \
            (fmt % values[-1]) + ")"

    print("summary over %d rounds: median (min–max)" % rounds)
    for (n, label), got in results.items():
        print("%5d checks, %-14s  daemon before %s us, after %s us, after/before %s;  "
              "host before %s us, after %s us"
              % (n, label, summary([per_check_us(b) for b, _ in got], "%.2f"),
                 summary([per_check_us(a) for _, a in got], "%.2f"),
                 summary([per_check_us(a) / per_check_us(b) for b, a in got], "%.2f"),
                 summary([per_check_us(b, "host") for b, _ in got], "%.2f"),
                 summary([per_check_us(a, "host") for _, a in got], "%.2f")), flush=True)
        if n in floors:
            fl = floors[n]
            for key, what in (("filtered", "floor"), ("filtered-loop", "floor on libev")):
                f = [per_check_us(x[key]) for x in fl]
                print("%5d checks, %-14s  %s: daemon %s us;  before ÷ it %s, after ÷ it %s"
                      % (n, label, what, summary(f, "%.2f"),
                         summary([per_check_us(b) / f[i] for i, (b, _) in enumerate(got)],
                                 "%.2f"),
                         summary([per_check_us(a) / f[i] for i, (_, a) in enumerate(got)],
                                 "%.2f")), flush=True)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", default="100,1000")
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--floor", default=None,
                    help="the floor binary (tests/bench/floor.c); with --compare, run it too")
    ap.add_argument("--monit", default="monit")
    ap.add_argument("--sandbox", default=None, help="a running scripts/mariadb-sandbox DIR")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="two wardend binaries: only their phases, alternating in each round")
    ap.add_argument("--phases", default="jitter,default",
                    help="with --compare: of " + ", ".join(COMPARE_PHASES) +
                    " (surfaces: the default jitter with the metrics endpoint scraped every "
                    "second, the textfile and journald on)")
    args = ap.parse_args()
    counts = [int(x) for x in args.checks.split(",")]
    if args.compare:
        with (Sandbox(args.sandbox) if args.sandbox else MariaDB()) as db:
            print("load average at start: %s" % " ".join(open("/proc/loadavg").read().split()[:3]),
                  flush=True)
            compare(db, counts, args.seconds, args.rounds, args.compare,
                    [p for p in args.phases.split(",") if p], args.floor)
        return
    with (Sandbox(args.sandbox) if args.sandbox else MariaDB()) as db:
        for _ in range(args.rounds):
            r = one_round(db, counts, args.seconds, args.floor, args.monit)
            idle = r["idle"]
            print("idle wardend: CPU %.3f%%  RSS %.1f MB" %
                  (100 * idle["cpu"] / idle["wall"], idle["rss_kb"] / 1024))
            for n in counts:
                for who, x in r[n].items():
                    print("%5d %-16s checks %7d  CPU/check %8.1f us  server %8.1f us  "
                          "host %8.1f us%s"
                          % (n, who, x["checks"], per_check_us(x), per_check_us(x, "server"),
                             per_check_us(x, "host"),
                             "  RSS %.1f MB PSS %.1f USS %.1f" %
                             (x["rss_kb"] / 1024, x["pss_kb"] / 1024, x["uss_kb"] / 1024)
                             if "rss_kb" in x else ""))


if __name__ == "__main__":
    main()
