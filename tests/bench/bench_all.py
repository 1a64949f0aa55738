#!/usr/bin/env python3
"""Runs every benchmark under tests/bench/ ROUNDS times and prints one table
(median and min-max of each figure over the rounds). Called by scripts/bench,
which builds the binaries and starts the MariaDB sandbox:

    python3 tests/bench/bench_all.py --build DIR --sandbox DIR [--rounds 5] [--seconds 6]

Every ratio is taken inside one round (phases one after another against the
same server), then summarized over the rounds."""

import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_cost  # noqa: E402
import harness  # noqa: E402
import isolation  # noqa: E402


def summary(values, fmt):
    values = sorted(v for v in values if v is not None)
    if not values:
        return "n/a"
    return (fmt % statistics.median(values)) + "  (" + (fmt % values[0]) + "–" + \
        (fmt % values[-1]) + ")"


def kv(text):
    """The key=value pairs of the last line (the daemon's log lines come first)."""
    last = [line for line in text.splitlines() if "=" in line and "[" not in line][-1]
    return {k: float(v) for k, v in (x.split("=") for x in last.split())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--sandbox", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--trips", type=int, default=1000)
    ap.add_argument("--counts", default="100,1000")
    args = ap.parse_args()
    # The binaries under test: those of --build (harness.py read its
    # defaults at import).
    harness.WARDEND = os.path.join(args.build, "wardend")
    harness.WARDENCTL = os.path.join(args.build, "wardenctl")
    floor = os.path.join(args.build, "floor")
    counts = [int(x) for x in args.counts.split(",")]
    db = check_cost.Sandbox(args.sandbox)

    rows = []   # (label, [per-round values], fmt)

    def add(label, values, fmt):
        rows.append((label, values, fmt))

    cost, iso, lat_off, lat_file = [], [], [], []
    for r in range(args.rounds):
        print("round %d/%d: check cost" % (r + 1, args.rounds), file=sys.stderr, flush=True)
        cost.append(check_cost.one_round(db, counts, args.seconds, floor))
        print("round %d/%d: isolation" % (r + 1, args.rounds), file=sys.stderr, flush=True)
        iso.append(isolation.one_round(100, args.seconds))
        print("round %d/%d: trip latency" % (r + 1, args.rounds), file=sys.stderr, flush=True)
        for mode, out in (("off", lat_off), ("file", lat_file)):
            p = subprocess.run([os.path.join(args.build, "trip_latency"), "--stamp",
                                os.path.join(args.build, "stamp"), "--trips", str(args.trips),
                                "--mutex", mode], capture_output=True, text=True, timeout=600)
            out.append(kv(p.stdout) if p.returncode == 0 else None)
            if p.returncode != 0:
                print("trip_latency failed: %s" % p.stderr, file=sys.stderr)

    us = check_cost.per_check_us

    def triple(label, xs_list, key, fmt="%.1f"):
        """One row of several figures (each a median over the rounds)."""
        rows.append((label, None, " / ".join(
            summary([us(x, key) for x in xs if x], fmt).split("  ")[0]
            for xs in xs_list)))

    def mem_row(label, xs):
        rows.append((label, None, " / ".join(
            summary([x[k] / 1024 for x in xs if x], "%.1f").split("  ")[0]
            for k in ("rss_kb", "pss_kb", "uss_kb"))))

    for n in counts:
        fl = [c[n]["floor"] for c in cost]
        fe = [c[n]["floor_on_libev"] for c in cost]
        mo = [c[n].get("monit") for c in cost]
        # The headline: what the host pays per check, the daemon and the
        # server on its behalf, for wardend (spread and at the default
        # jitter), the floor and Monit.
        for key, what in (("wardend", "jitter 100%"), ("wardend_default", "default jitter 10%")):
            w = [c[n][key] for c in cost]
            add("%d checks, %s: wardend host CPU per check, daemon + server (µs)" % (n, what),
                [us(x, "host") for x in w], "%.2f")
            rows.append(("%d checks, %s: wardend daemon / server per check (µs)" % (n, what),
                         None, " / ".join(summary([us(x, k) for x in w], "%.2f").split("  ")[0]
                                          for k in ("cpu", "server"))))
            add("%d checks, %s: Monit ÷ wardend, host CPU (target ≥ %d×)"
                % (n, what, 20 if n < 1000 else 50),
                [us(b, "host") / us(a, "host") if b else None for a, b in zip(w, mo)], "%.0f×")
            add("%d checks, %s: wardend ÷ Monit, server CPU (target ≤ 0.10)" % (n, what),
                [us(a, "server") / us(b, "server") if b else None for a, b in zip(w, mo)],
                "%.3f")
            add("%d checks, %s: wardend ÷ floor, daemon CPU (target ≤ 1.5×)" % (n, what),
                [us(a) / us(b) for a, b in zip(w, fl)], "%.2f×")
            add("%d checks, %s: wardend ÷ floor on libev, daemon CPU" % (n, what),
                [us(a) / us(b) for a, b in zip(w, fe)], "%.2f×")
        # The monitoring surfaces (metrics scraped every second, textfile
        # every 15 s, journald) on and off, next to each other in each round.
        off = [c[n]["wardend_default"] for c in cost]
        on = [c[n]["wardend_surfaces"] for c in cost]
        rows.append(("%d checks, default jitter: wardend daemon CPU per check, surfaces off / on "
                     "(metrics scraped 1/s, textfile, journald) (µs)" % n, None, " / ".join(
                         summary([us(x) for x in xs], "%.2f").split("  ")[0] for xs in (off, on))))
        for label, xs in (("off", off), ("on", on)):
            add("%d checks, default jitter, surfaces %s: wardend daemon CPU per check (µs)"
                % (n, label), [us(x) for x in xs], "%.2f")
            add("%d checks, default jitter, surfaces %s: wardend host CPU per check (µs)"
                % (n, label), [us(x, "host") for x in xs], "%.2f")
        add("%d checks: surfaces on ÷ off, wardend daemon CPU" % n,
            [us(a) / us(b) for a, b in zip(on, off)], "%.2f×")
        add("%d checks: floor (one read of the names a second) host CPU per check (µs)" % n,
            [us(x, "host") for x in fl], "%.2f")
        rows.append(("%d checks: floor daemon / server per check (µs)" % n, None, " / ".join(
            summary([us(x, k) for x in fl], "%.2f").split("  ")[0] for k in ("cpu", "server"))))
        rows.append(("%d checks: floor on libev, daemon / server per check (µs)" % n, None,
                     " / ".join(summary([us(x, k) for x in fe], "%.2f").split("  ")[0]
                                for k in ("cpu", "server"))))
        add("%d checks: Monit host CPU per check (µs)" % n,
            [us(x, "host") if x else None for x in mo], "%.1f")
        rows.append(("%d checks: Monit daemon / server per check (µs)" % n, None, " / ".join(
            summary([us(x, k) for x in mo if x], "%.1f").split("  ")[0]
            for k in ("cpu", "server"))))
        # The older floors, daemon side: a full read per 100 ms window
        # (blocking, and on libev), one query per check.
        triple("%d checks: older floors, daemon per check: full read per 100 ms / on libev / "
               "query per check (µs)" % n,
               [[c[n]["floor_shared"] for c in cost], [c[n]["floor_loop"] for c in cost],
                [c[n]["floor_per_check"] for c in cost]], "cpu")
        triple("%d checks: server per check, older floors: full read per 100 ms / query per "
               "check (µs)" % n,
               [[c[n]["floor_shared"] for c in cost], [c[n]["floor_per_check"] for c in cost]],
               "server")
        mem_row("%d checks: wardend RSS / PSS / USS (MB)" % n, [c[n]["wardend"] for c in cost])
        mem_row("%d checks: Monit RSS / PSS / USS (MB)" % n, mo)
        if all("wardend_tls" in c[n] for c in cost):
            tcp = [c[n]["wardend_tcp"] for c in cost]
            tls = [c[n]["wardend_tls"] for c in cost]
            add("%d checks over TCP (plain): wardend CPU per check (µs)" % n,
                [us(x) for x in tcp], "%.1f")
            add("%d checks over TCP, ssl_mode = required: wardend CPU per check (µs)" % n,
                [us(x) for x in tls], "%.1f")
            add("%d checks: TLS ÷ plain TCP, wardend CPU" % n,
                [us(a) / us(b) for a, b in zip(tls, tcp)], "%.2f×")
            triple("%d checks: server CPU per check, plain TCP / TLS (µs)" % n, [tcp, tls],
                   "server")
    idle = [c["idle"] for c in cost]
    add("idle wardend (1 disk check /30s): CPU (%)", [100 * x["cpu"] / x["wall"] for x in idle],
        "%.3f")
    mem_row("idle wardend: RSS / PSS / USS (MB)", idle)
    add("isolation, 100 tcp checks /1s + hung peer: wardend largest delay (ms)",
        [x["wardend"][0] for x in iso], "%.1f")
    add("isolation: wardend, no hung peer (noise floor) (ms)",
        [x["wardend_no_hung"][0] for x in iso], "%.1f")
    add("isolation: Monit largest delay (ms)",
        [x["monit"][0] if "monit" in x else None for x in iso], "%.0f")
    add("trip → action start, mutex off: median (ms)",
        [x["median_us"] / 1000 if x else None for x in lat_off], "%.2f")
    add("trip → action start, mutex off: p99 (ms)",
        [x["p99_us"] / 1000 if x else None for x in lat_off], "%.2f")
    add("trip → action start, mutex cached clear: median (ms)",
        [x["median_us"] / 1000 if x else None for x in lat_file], "%.2f")
    add("trip → action start, mutex cached clear: p99 (ms)",
        [x["p99_us"] / 1000 if x else None for x in lat_file], "%.2f")

    print()
    print("| figure (%d rounds) | median (min–max) |" % args.rounds)
    print("|---|---|")
    for label, values, fmt in rows:
        print("| %s | %s |" % (label, summary(values, fmt) if values is not None else fmt))


if __name__ == "__main__":
    main()
