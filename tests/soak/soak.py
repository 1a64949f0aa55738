#!/usr/bin/env python3
"""The soak (docs/performance.md, "Soak"): wardend, built with AddressSanitizer +
LeakSanitizer (WARDEN_SANITIZE), runs SOAK_MINUTES (default 10) against a
private MariaDB with 200 checks every second (mysql_status, mysql_variable,
mysql_query, tcp, process, disk) while 10 checks trip and recover every few
seconds and fire exec, mysql_sql and notify actions (cooldown 1 s); every
10 s it samples wardend's VmRSS and its heap in use (`heap_bytes` of
`wardenctl status --json`), every minute it runs a job through
`wardenctl run --wait`.

It fails when:
  - the sanitizers report anything, or wardend does not exit 0 at SIGTERM
    (LeakSanitizer checks for leaks at that exit; harness.Wardend.stop());
  - memory grows after warm-up: the least-squares slope over the last two
    thirds of the run is above SOAK_MAX_SLOPE_KB (KB per minute, default
    64, i.e. about 0.6 MB over 10 minutes), for the heap in use always and
    for VmRSS in a plain build;
  - the actions did not keep firing (fewer than one action.finish per
    check-flip period on average), or wardend stopped answering.

The heap is what a leak or an ever-growing container moves. Under ASan,
VmRSS also carries the sanitizer's own memory: its allocator's per-size-class
regions (never given back), shadow pages and fake stacks, so there it is
reported, not judged (measured over 10 minutes: RSS +101 KB/min while the
heap in use moved +2.2 KB/min); the quarantine (freed memory held back to catch a use after
free, 256 MB by default) is set to 0 to keep RSS near the heap. Run by scripts/soak through `ctest -L soak`
(only configured with -DWARDEN_SOAK=ON); WARDEND/WARDENCTL name the binaries.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))

import harness  # noqa: E402
from harness import MariaDB, Wardend, match, rss_kb  # noqa: E402

MINUTES = float(os.environ.get("SOAK_MINUTES", "10"))
MAX_SLOPE_KB = float(os.environ.get("SOAK_MAX_SLOPE_KB", "64"))
SAMPLE_S = 10
FLIPS = 10

HEAD = """
[daemon]
host_id   = soak-db
state_dir = {state_dir}
interval  = 1s
jitter    = 100%
workers   = 4

[log]
level  = warn
file   = {log}
events = {events}

[mysql]
socket          = {socket}
user            = warden
password_file   = {password_file}
connect_timeout = 2s
query_timeout   = 5s

[mutex]
mode = off

[action spawn]
type     = exec
command  = /bin/true
cooldown = 1s

[action spawn_shell]
type     = exec
command  = echo "{{check}} {{state}} {{value}}"; echo to-stderr >&2
shell    = yes
cooldown = 1s

[action count]
type     = mysql_sql
sql      = UPDATE soak.counter SET n = n + 1; SELECT n FROM soak.counter
cooldown = 1s

[action note]
type     = notify
severity = info
message  = {{check}} is {{state}} on {{host}} (value {{value}})

; the job's own actions: no cooldown (a step the guard blocks for a
; cooldown fails the job and halts the queue, and with it every action)
[action job_spawn]
type    = exec
command = /bin/true

[action job_count]
type = mysql_sql
sql  = UPDATE soak.counter SET n = n + 1

[job roundtrip]
steps   = job_spawn, job_count
timeout = 1m
"""


def status_variables(db, n):
    """n numeric SHOW GLOBAL STATUS names, in the server's order."""
    names = []
    for name, value in db.sql("SHOW GLOBAL STATUS"):
        if value.isdigit() and name not in names:
            names.append(name)
    return names[:n]


def build_config(db, wd):
    sections = []
    variables = status_variables(db, 70)
    assert len(variables) == 70, "only %d numeric status variables" % len(variables)
    for i, name in enumerate(variables):
        sections.append("[check status_%02d]\ntype = mysql_status\nvariable = %s\n" % (i, name))
    for i, name in enumerate(["Questions", "Bytes_sent", "Bytes_received", "Com_select",
                              "Handler_read_rnd_next"]):
        sections.append("[check rate_%d]\ntype = mysql_status\nvariable = %s\nrate = yes\n"
                        % (i, name))
    for i, name in enumerate(["max_connections", "version", "read_only", "port",
                              "innodb_buffer_pool_size"]):
        sections.append("[check var_%d]\ntype = mysql_variable\nvariable = %s\n" % (i, name))
    for i in range(30):
        sections.append("[check query_%02d]\ntype = mysql_query\n"
                        "sql = SELECT COUNT(*) FROM soak.t WHERE id <= %d\nwarn = > 1000\n"
                        % (i, i + 1))
    for i in range(30):
        sections.append("[check tcp_%02d]\ntype = tcp\nhost = 127.0.0.1\nport = %d\n"
                        % (i, db.port))
    for i in range(25):
        sections.append("[check process_%02d]\ntype = process\npidfile = %s\nname = mariadbd\n"
                        "crit = == 0\n" % (i, os.path.join(db.dir, "mysqld.pid")))
    for i in range(25):
        metric = ("free_pct", "free_bytes", "inodes_free_pct")[i % 3]
        sections.append("[check disk_%02d]\ntype = disk\npath = %s\nmetric = %s\n"
                        % (i, ("/", wd.dir)[i % 2], metric))
    # Checks that trip and recover: value 50 in the first half of every
    # period of P seconds, 0 in the second.
    actions = ["spawn", "spawn_shell", "count"]
    for i in range(FLIPS):
        period = (4, 6, 8, 10)[i % 4]
        sections.append(
            "[check flip_%d]\ntype = mysql_query\n"
            "sql = SELECT IF(MOD(UNIX_TIMESTAMP(), %d) < %d, 50, 0)\n"
            "crit = > 10\non_crit = %s, note\non_recover = note\n"
            % (i, period, period // 2, actions[i % 3]))
    assert len(sections) == 200, len(sections)
    return (HEAD + "\n" + "\n".join(sections)).format(
        socket=db.socket, password_file=db.password_file, **wd.paths)



def slope_kb_per_min(samples):
    """Least-squares slope of (seconds, KB) samples, in KB per minute."""
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    cov = sum((t - mt) * (r - mr) for t, r in samples)
    return 60.0 * cov / var if var else 0.0


def sanitized(binary):
    """Built with AddressSanitizer (gcc links libasan; clang links it in)."""
    p = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if "libasan" in p.stdout:
        return True
    p = subprocess.run(["nm", "-D", "--defined-only", binary], capture_output=True, text=True)
    return "__asan_init" in p.stdout


def main():
    is_sanitized = sanitized(harness.WARDEND)
    if is_sanitized:
        # Quarantine off: RSS then measures what wardend holds (see above).
        os.environ["ASAN_OPTIONS"] = "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
        print("soak: sanitized build: leaks are checked at exit")
    elif os.environ.get("SOAK_REQUIRE_SANITIZER", "1") == "0":
        print("soak: %s is a plain build: RSS only, no leak check" % harness.WARDEND)
    else:
        print("soak: %s is not built with -DWARDEN_SANITIZE=ON: no leak check possible "
              "(SOAK_REQUIRE_SANITIZER=0 measures RSS only)" % harness.WARDEND)
        return 1
    failures = []
    rows = []
    with MariaDB() as db, Wardend() as wd:
        db.sql("CREATE DATABASE IF NOT EXISTS soak; "
               "CREATE TABLE soak.t (id INT PRIMARY KEY); "
               "INSERT INTO soak.t SELECT seq FROM soak.seq_1_to_100; "
               "CREATE TABLE soak.counter (n BIGINT); INSERT INTO soak.counter VALUES (0); "
               "GRANT SELECT, UPDATE ON soak.* TO 'warden'@'localhost'; "
               "GRANT SELECT, UPDATE ON soak.* TO 'warden'@'%'")
        wd.start(build_config(db, wd))
        wd.wait_event("daemon.start", timeout=60)
        pid = wd.proc.pid
        start = time.monotonic()
        end = start + MINUTES * 60
        next_job = start + 60
        jobs_ok = jobs_failed = status_failed = 0
        print("soak: wardend pid %d (%s), %d checks every 1 s, %.1f minutes"
              % (pid, harness.WARDEND, 200, MINUTES), flush=True)
        print("%8s %10s %10s %10s %12s %10s" % ("t (s)", "RSS (KB)", "heap (KB)", "events",
                                               "action.finish", "flips"), flush=True)
        while True:
            now = time.monotonic()
            events = wd.events()
            finished = len(match(events, "action.finish"))
            flips = len([e for e in match(events, "check.state")
                         if e.get("check", "").startswith("flip_")])
            rss = rss_kb(pid)
            p = wd.ctl("status", "--json", timeout=60)
            heap = None
            if p.returncode == 0:
                heap = json.loads(p.stdout)["heap_bytes"] // 1024
            else:
                status_failed += 1
                print("soak: wardenctl status failed: %s" % (p.stdout + p.stderr), flush=True)
            rows.append((now - start, rss, heap, len(events), finished, flips))
            print("%8.0f %10d %10s %10d %12d %10d" % rows[-1], flush=True)
            if now >= end:
                break
            if now >= next_job:
                next_job += 60
                p = wd.ctl("run", "roundtrip", "--wait", timeout=120)
                if p.returncode == 0:
                    jobs_ok += 1
                else:
                    jobs_failed += 1
                    print("soak: job failed: %s" % (p.stdout + p.stderr), flush=True)
            time.sleep(max(0.0, min(end, start + len(rows) * SAMPLE_S) - time.monotonic()))
        try:
            rc = wd.stop(timeout=120)
            if rc != 0:
                failures.append("wardend exited %s at SIGTERM" % rc)
        except AssertionError as e:  # a sanitizer report, a leak at exit
            failures.append(str(e))
        events = wd.events()
        errors = [e for e in match(events, "check.state", state="error")]

    finished = rows[-1][4]
    flips = rows[-1][5]
    print()
    slopes = {}
    for what, column in (("RSS", 1), ("heap", 2)):
        samples = [(r[0], r[column]) for r in rows if r[column] is not None]
        if not samples:
            continue
        warm = [x for x in samples if x[0] >= rows[-1][0] / 3]
        slopes[what] = slope_kb_per_min(warm) if len(warm) >= 3 else float("nan")
        print("soak: %s: %.1f min, %d KB at start, %d KB after warm-up (t=%.0f s), %d KB at the "
              "end, peak %d KB; slope over the last two thirds %+.1f KB/min"
              % (what, rows[-1][0] / 60, samples[0][1], warm[0][1] if warm else samples[0][1],
                 warm[0][0] if warm else 0, samples[-1][1], max(v for _, v in samples),
                 slopes[what]))
    print("soak: %d action.finish, %d flip state changes, %d jobs ok, %d jobs failed, "
          "%d status failures, %d check errors" % (finished, flips, jobs_ok, jobs_failed,
                                                    status_failed, len(errors)))
    for e in errors[:5]:
        print("soak: check error: %s: %s" % (e.get("check"), e.get("error")))
    judged = ["heap"] + ([] if is_sanitized else ["RSS"])
    for what in judged:
        if not slopes.get(what, float("nan")) <= MAX_SLOPE_KB:
            failures.append("%s grows %.1f KB/min after warm-up (limit %.0f)"
                            % (what, slopes.get(what, float("nan")), MAX_SLOPE_KB))
    # A flip check changes state about twice per period (4-10 s): at least
    # one action per 10 s per flip check, on average, or actions stalled.
    expected = FLIPS * rows[-1][0] / 10
    if finished < expected:
        failures.append("only %d action.finish in %.0f s (expected >= %.0f)"
                        % (finished, rows[-1][0], expected))
    if jobs_failed or status_failed:
        failures.append("%d job(s) and %d status call(s) failed" % (jobs_failed, status_failed))
    if errors:
        failures.append("%d check(s) went to error" % len(errors))
    if failures:
        print("\nsoak: FAILED")
        for f in failures:
            print(" - " + f)
        return 1
    print("soak: ok — no sanitizer report, no leak at exit, no growth of %s"
          % " or ".join(judged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
