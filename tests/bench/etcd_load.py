#!/usr/bin/env python3
"""etcd load of a fleet: requests per host per minute, and how long a halt
takes to reach 1,000 hosts (or 2,500, 5,000: --pollers 1000,2500,5000), over
the watch (the default) and by polling alone.

    python3 tests/bench/etcd_load.py --build DIR [--rounds 5] [--hosts 15]
        [--poll 15] [--slot-poll 10] [--window 30] [--pollers 1000[,N...]]

Starts its own etcd (harness.Etcd, one member on loopback) and arms it
(/warden/armed). Each round:

1. Idle hosts: --hosts real wardend processes (own temp dir, state dir and
   config: `[mutex] backend = etcd` at --poll, `[fleet]` at --slot-poll, one
   file check every 10 s) run idle; after they settled, the requests etcd
   handled in --window seconds are counted on etcd's side (/metrics:
   grpc_server_handled_total of etcdserverpb.KV, every method; the JSON
   gateway forwards to gRPC), divided by hosts and minutes. Also per poll:
   requests / (hosts x window / poll).
2. Waiting hosts: every host runs a job with `slot = bench` whose one slot
   is held by another host (a key put here), so each waits (job.waiting,
   reason full) and polls its slot group; the same count again.
3. Halt: build-dir/etcd_load (tests/bench/etcd_load.cc) runs --pollers
   MutexClients on one loop at --poll, each with its watch on <prefix>/
   (wardend's default), measures etcd's CPU, memory and descriptors in
   steady state and the time from putting /warden/mutex to each client's
   first held answer; then the same with `watch = no` (polling alone).
   etcd is restarted (same data) before each of these runs. With
   several --pollers sizes, each size in turn, in every round. etcd_load
   runs the clients in child processes, as many as its descriptor limit
   needs (8 a client: about 2,400 a process with a hard RLIMIT_NOFILE of
   20,000, as here); etcd holds 2 per host (its
   poll and watch connections), so this process raises its soft limit to
   the hard one before starting etcd, and refuses a size etcd could not
   hold.

The window should be a multiple of --poll: each host then polls exactly
window/poll times in it (the mutex poll is a fixed period). Prints one table:
median and min-max over the rounds."""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import Etcd, Wardend, match  # noqa: E402
from bench_all import summary  # noqa: E402

CONFIG = """
[daemon]
host_id   = {host}
state_dir = {state_dir}

[log]
level  = warn
events = {events}

[mutex]
backend   = etcd
endpoints = {endpoint}
prefix    = /warden
poll      = {poll}s

[fleet]
endpoints = {endpoint}
prefix    = /warden
slots     = 1
poll      = {slot_poll}s

[check state_dir]
type   = file
path   = {state_dir}
metric = exists
every  = 10s
crit   = < 1

[action noop]
type    = exec
command = true

[job wait]
steps = noop
slot  = bench
"""

SLOT_KEY = "/warden/slots/bench/0"


def kv_requests(etcd):
    """Requests etcd handled so far (every KV method and code) and raft
    proposals committed, from its /metrics."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(etcd.endpoint + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    kv = proposals = 0.0
    seen = False
    for line in text.splitlines():
        if line.startswith("grpc_server_handled_total{") and \
                'grpc_service="etcdserverpb.KV"' in line:
            kv += float(line.rsplit(" ", 1)[1])
            seen = True
        elif line.startswith("etcd_server_proposals_committed_total "):
            proposals = float(line.rsplit(" ", 1)[1])
    if not seen:
        raise AssertionError("etcd /metrics: no grpc_server_handled_total for etcdserverpb.KV")
    return kv, proposals


def count(etcd, seconds):
    """(requests, proposals, wall seconds) etcd handled during `seconds`."""
    k0, p0 = kv_requests(etcd)
    t0 = time.monotonic()
    time.sleep(seconds)
    k1, p1 = kv_requests(etcd)
    return k1 - k0, p1 - p0, time.monotonic() - t0


def fleet_round(etcd, hosts, poll, slot_poll, window):
    """Idle and waiting figures of one round, per host per minute."""
    out = {}
    daemons = []
    try:
        for i in range(hosts):
            wd = Wardend()
            daemons.append(wd)
            wd.start(CONFIG.format(host="bench-%02d" % i, endpoint=etcd.endpoint, poll=poll,
                                   slot_poll=slot_poll, **wd.paths))
        for wd in daemons:
            wd.wait_event("daemon.start", timeout=60)
            wd.wait_event("mutex.state", timeout=60)   # its first poll answered
            states = match(wd.events(), "mutex.state")
            if states[-1].get("held"):
                raise AssertionError("%s: mutex held: %s" % (wd.paths["dir"], states[-1]))
        time.sleep(2)
        n, p, wall = count(etcd, window)
        out["idle"] = n / hosts / (wall / 60)
        out["idle_per_poll"] = n / (hosts * wall / poll)
        out["idle_proposals"] = p / hosts / (wall / 60)

        etcd.put(SLOT_KEY, json.dumps({"host": "elsewhere", "job": "upgrade",
                                       "since": "2026-01-01T00:00:00Z"}))
        for wd in daemons:
            p_run = wd.ctl("run", "wait")
            if p_run.returncode != 0:
                raise AssertionError("wardenctl run wait: %s" % p_run.stderr)
        for wd in daemons:
            wd.wait_event("job.waiting", reason="full", timeout=60)
        time.sleep(2)
        n, p, wall = count(etcd, window)
        out["waiting"] = n / hosts / (wall / 60)
        out["waiting_proposals"] = p / hosts / (wall / 60)
        for wd in daemons:
            if match(wd.events(), "job.step"):
                raise AssertionError("%s: the job ran although its slot was taken"
                                     % wd.paths["dir"])
    finally:
        for wd in daemons:
            if wd.running():
                wd.proc.terminate()
        for wd in daemons:
            wd.__exit__(None, None, None)
        etcd.delete(SLOT_KEY)
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def halt_round(etcd, build, pollers, poll, seed, watch):
    p = subprocess.run([os.path.join(build, "etcd_load"), "--endpoint", etcd.endpoint,
                        "--etcd-pid", str(etcd.proc.pid), "--pollers", str(pollers),
                        "--poll-ms", str(int(poll * 1000)), "--seed", str(seed),
                        "--watch", "1" if watch else "0"],
                       capture_output=True, text=True, timeout=6 * poll + 120)
    if p.returncode != 0:
        print("etcd_load failed (%d): %s" % (p.returncode, p.stderr.strip()), file=sys.stderr)
        return None
    last = [line for line in p.stdout.splitlines() if "=" in line][-1]
    out = {k: float(v) for k, v in (x.split("=") for x in last.split())}
    out["load1"] = float(loadavg().split()[0])
    return out



def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="build dir with wardend, wardenctl, etcd_load")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hosts", type=int, default=15)
    ap.add_argument("--poll", type=float, default=15, help="[mutex] poll, s (default 15)")
    ap.add_argument("--slot-poll", type=float, default=10, help="[fleet] poll, s (default 10)")
    ap.add_argument("--window", type=float, default=30, help="seconds counted per phase")
    ap.add_argument("--pollers", default="1000",
                    help="simulated hosts of the halt rounds; a comma list runs each size")
    args = ap.parse_args()
    try:
        sizes = [int(x) for x in args.pollers.split(",")]
    except ValueError:
        ap.error("--pollers: %r is not a comma list of numbers" % args.pollers)
    if args.rounds < 1 or args.hosts < 1 or min(sizes) < 1 or args.poll < 1 or \
            args.slot_poll < 1 or args.window <= 0:
        ap.error("--rounds, --hosts, --pollers must be >= 1; --poll, --slot-poll >= 1 s; "
                 "--window > 0")
    # etcd (a child: it inherits the limit) holds two connections per host.
    # Go 1.19 and later raise their soft limit to the hard one; older etcd
    # builds do not, so raise it here.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    need = 2 * max(sizes) + 256
    if soft != resource.RLIM_INFINITY and soft < need:
        ap.error("--pollers %d: etcd needs about %d descriptors (2 a host), RLIMIT_NOFILE "
                 "allows %d (hard limit)" % (max(sizes), need, soft))
    harness.WARDEND = os.path.join(args.build, "wardend")
    harness.WARDENCTL = os.path.join(args.build, "wardenctl")
    def need(name):
        if not os.access(os.path.join(args.build, name), os.X_OK):
            ap.error("%s: no %s (cmake --build %s --target %s)"
                     % (args.build, name, args.build, name))

    need("wardend")
    need("wardenctl")
    fleet = []
    halt = {n: [] for n in sizes}
    polled = {n: [] for n in sizes}
    with Etcd() as etcd:
        etcd.put("/warden/armed", "yes")
        for r in range(args.rounds):
            print("round %d/%d: %d wardend, idle then waiting for a slot (%gs windows)"
                  % (r + 1, args.rounds, args.hosts, args.window), file=sys.stderr, flush=True)
            fleet.append(fleet_round(etcd, args.hosts, args.poll, args.slot_poll, args.window))
            print("  " + " ".join("%s=%.3f" % kv for kv in fleet[-1].items()), file=sys.stderr,
                  flush=True)
        need("etcd_load")
        for r in range(args.rounds):
            for n in sizes:
                print("round %d/%d: %d pollers, halt (load average %s)"
                      % (r + 1, args.rounds, n, loadavg()), file=sys.stderr, flush=True)
                for watch, out in ((True, halt[n]), (False, polled[n])):
                    # A fresh etcd process (same data): its RSS and
                    # descriptors then owe nothing to the run before.
                    etcd.stop()
                    etcd.start()
                    out.append(halt_round(etcd, args.build, n, args.poll, r + 1, watch))
                    if out[-1]:
                        print("  " + " ".join("%s=%g" % kv for kv in out[-1].items()),
                              file=sys.stderr, flush=True)
        version = subprocess.run([Etcd.BINARY, "--version"], capture_output=True,
                                 text=True).stdout.split("\n")[0]

    rows = [
        ("idle host (watch up): etcd KV requests per minute (mutex poll %gs)" % args.poll,
         summary([x["idle"] for x in fleet], "%.2f")),
        ("idle host: requests per mutex poll", summary([x["idle_per_poll"] for x in fleet],
                                                       "%.2f")),
        ("idle host: raft proposals per minute", summary([x["idle_proposals"] for x in fleet],
                                                         "%.2f")),
        ("host waiting for a full slot group: requests per minute (slot poll %gs ±20%%)"
         % args.slot_poll, summary([x["waiting"] for x in fleet], "%.2f")),
        ("waiting host: raft proposals per minute",
         summary([x["waiting_proposals"] for x in fleet], "%.2f")),
    ]
    done = 0
    for n in sizes:
        h = [x for x in halt[n] if x]
        hp = [x for x in polled[n] if x]
        done += len(h) + len(hp)
        rows += [
            ("%d hosts with watches, steady: KV requests per host per minute" % n,
             summary([x["requests_per_poller_minute"] for x in h], "%.2f")),
            ("%d hosts polling only, steady: KV requests per host per minute" % n,
             summary([x["requests_per_poller_minute"] for x in hp], "%.2f")),
            ("%d hosts with watches: watches up" % n,
             summary([x["watches_up"] for x in h], "%.0f")),
            ("%d hosts with watches: client processes" % n,
             summary([x.get("procs") for x in h], "%.0f")),
            ("%d hosts with watches, steady: etcd CPU (%% of one core)" % n,
             summary([x["etcd_cpu_pct"] for x in h], "%.1f")),
            ("%d hosts polling only, steady: etcd CPU (%% of one core)" % n,
             summary([x["etcd_cpu_pct"] for x in hp], "%.1f")),
            ("etcd RSS before the %d hosts (MB)" % n,
             summary([x["etcd_rss_base_mb"] for x in h], "%.0f")),
            ("etcd RSS with %d watching hosts (MB)" % n,
             summary([x["etcd_rss_mb"] for x in h], "%.0f")),
            ("etcd RSS with %d polling hosts (MB)" % n,
             summary([x["etcd_rss_mb"] for x in hp], "%.0f")),
            ("etcd client connections with %d watching hosts (no client)" % n,
             summary([x.get("etcd_conns") for x in h], "%.0f") + " (" +
             summary([x.get("etcd_conns_base") for x in h], "%.0f") + ")"),
            ("etcd client connections with %d polling hosts" % n,
             summary([x.get("etcd_conns") for x in hp], "%.0f")),
            ("etcd descriptors with %d watching hosts (no client)" % n,
             summary([x["etcd_fds"] for x in h], "%.0f") + " (" +
             summary([x["etcd_fds_base"] for x in h], "%.0f") + ")"),
            ("etcd CPU with no client (%)" + (" (before the %d hosts)" % n),
             summary([x["etcd_baseline_cpu_pct"] for x in h], "%.2f")),
            ("%d hosts: etcd CPU per request (µs)" % n,
             summary([x["etcd_cpu_us_per_req"] for x in h], "%.0f")),
            ("%d hosts: pollers' own CPU per request (µs)" % n,
             summary([x["client_cpu_us_per_req"] for x in h], "%.0f")),
            ("%d hosts, watch: halt → host sees held: median (ms)" % n,
             summary([x["halt_median_ms"] for x in h], "%.0f")),
            ("%d hosts, watch: halt → host sees held: p99 (ms)" % n,
             summary([x["halt_p99_ms"] for x in h], "%.0f")),
            ("%d hosts, watch: halt → host sees held: max (ms)" % n,
             summary([x["halt_max_ms"] for x in h], "%.0f")),
            ("%d hosts, watch: hosts that saw the halt" % n,
             summary([x["saw"] for x in h], "%.0f")),
            ("%d hosts, polling only: halt → host sees held: median (ms)" % n,
             summary([x["halt_median_ms"] for x in hp], "%.0f")),
            ("%d hosts, polling only: halt → host sees held: max (ms)" % n,
             summary([x["halt_max_ms"] for x in hp], "%.0f")),
            ("%d hosts: load average (1 min) at the end of each run" % n,
             summary([x["load1"] for x in h + hp], "%.1f")),
        ]
    print()
    print("%s, one member on loopback; %d rounds (%d of %d halt rounds completed); "
          "load average at the end: %s" % (version, args.rounds, done,
                                            2 * args.rounds * len(sizes), loadavg()))
    print("| figure | median (min–max) |")
    print("|---|---|")
    for label, value in rows:
        print("| %s | %s |" % (label, value))
    return 0 if done == 2 * args.rounds * len(sizes) else 1

if __name__ == "__main__":
    sys.exit(main())
