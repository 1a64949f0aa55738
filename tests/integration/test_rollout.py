"""Rollouts on a real etcd (`wardenctl fleet run JOB --group G`): 12 wardend
processes, each a member of group `all` and of one of three chains, with
their `order` a permutation of their names. A rollout with --parallel 1
runs them one after the other in order (from their events: no two inside
the job at once), stops at an injected failure on the third host (the
others never start; `fleet status` says so), and a new rollout after
`wardenctl resume` on that host finishes. A rollout of one chain runs on
its members only. test_rollout_stop.py: kill -9, cancel, the guard, bad
input. RUN_SERIAL: 12 daemons."""

import base64
import json
import os
import time
import unittest

from harness import WARDENCTL, Etcd, Wardend, match, run

CONFIG = """
[daemon]
host_id   = {host}
state_dir = {state_dir}
interval  = 1s
jitter    = 0%
workers   = 2

[log]
level  = info
events = {events}

[mutex]
backend   = etcd
endpoints = {endpoint}
prefix    = /warden
timeout   = 2s
poll      = 2s

[fleet]
endpoints = {endpoint}
prefix    = /warden
poll      = 1s
lease     = 2s
groups    = {groups}
order     = {order}

[action step_one]
type    = exec
command = /bin/sh -c 'echo $$ > {dir}/step.pid; sleep "$(cat {dir}/sleep 2>/dev/null || echo 0.3)"'
timeout = 2m

[action step_two]
type    = exec
command = /bin/sh -c 'test ! -e {dir}/fail'

[job upgrade]
steps = step_one, step_two
"""

OTHER_JOB = """
[action other_step]
type    = exec
command = true

[job other]
steps = other_step
"""


def fleet_config(etcd, wd):
    return wd.write("fleet.ini", """
[mutex]
backend   = etcd
endpoints = %s
prefix    = /warden
""" % etcd.endpoint)


def count_prefix(etcd, prefix):
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    got = etcd._post("/v3/kv/range", {"key": base64.b64encode(prefix.encode()).decode(),
                                      "range_end": base64.b64encode(end.encode()).decode(),
                                      "count_only": True})
    return int(got.get("count", 0))


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def wait_until(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.1)


class Fleet:
    """N wardend processes on one etcd; host i is `hostNN`."""

    def __init__(self, etcd, specs):
        self.etcd = etcd
        self.daemons = []
        self.specs = specs      # [(host, groups, order, extra config)]

    def __enter__(self):
        try:
            for host, groups, order, extra in self.specs:
                wd = Wardend()
                self.daemons.append(wd)
                wd.start(self.config(wd, host, groups, order, extra))
            for host, groups, _, _ in self.specs:
                for g in groups.split(", "):
                    self.wait_members(g)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def config(self, wd, host, groups, order, extra=""):
        return CONFIG.format(host=host, groups=groups, order=order, endpoint=self.etcd.endpoint,
                             **wd.paths) + extra

    def wait_members(self, group):
        n = sum(1 for _, groups, _, _ in self.specs if group in groups.split(", "))
        def registered():
            for wd in self.daemons:
                if not wd.running():
                    wd.check_exit()
                    raise AssertionError("wardend exited: " + wd.log()[-2000:])
            return count_prefix(self.etcd, "/warden/members/%s/" % group) == n
        wait_until("%d members of %s" % (n, group), registered, 60)

    def __exit__(self, *exc):
        for wd in self.daemons:
            wd.__exit__(None, None, None)

    def by_host(self, host):
        return self.daemons[[s[0] for s in self.specs].index(host)]

    def ctl(self, *args):
        return run([WARDENCTL, "-c", fleet_config(self.etcd, self.daemons[0]), "fleet"]
                   + list(args), check=False)

    def status(self, rollout):
        p = self.ctl("status", rollout, "--json")
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(p.stdout)

    def run_rollout(self, *args):
        p = self.ctl("run", "upgrade", "--json", *args)
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(p.stdout)["rollout"]

    def wait_state(self, rollout, states, timeout=60):
        last = [None]

        def ended():
            s = self.status(rollout)
            last[0] = s
            if s["rollout"]["state"] in states:
                return s
            if s["rollout"]["state"] != "running":
                raise AssertionError("rollout %s is %s, not %s: %s"
                                     % (rollout, s["rollout"]["state"], states, s))
            return None
        try:
            return wait_until("rollout %s in %s" % (rollout, states), ended, timeout)
        except AssertionError as e:
            logs = "".join("\n--- %s\n%s" % (h, wd.log()[-3000:]) for (h, _, _, _), wd
                           in zip(self.specs, self.daemons)
                           if h in [x["host"] for x in (last[0] or {}).get("hosts", [])
                                    if x["state"] in ("waiting", "running")][:2])
            raise AssertionError("%s; last status %s%s" % (e, last[0], logs))


def job_span(wd, rollout):
    """(start, end) of the job this rollout queued on wd, as event times."""
    events = wd.events()
    q = match(events, "job.queued", trigger="rollout", trigger_name=rollout)
    if not q:
        return None
    later = [e for e in events if e["seq"] > q[0]["seq"]]
    start = match(later, "job.start", job="upgrade")[0]
    end = [e for e in later if e["event"] in ("job.finish", "job.fail")][0]
    return start["time"], end["time"], end["event"]


class Rollouts(unittest.TestCase):
    def test_12_hosts_in_order_stop_at_the_third_and_finish_after_resume(self):
        # order: a permutation of the names, so that order is not name order.
        chains = ["chain-a", "chain-b", "chain-c"]
        specs = [("host%02d" % i, "all, " + chains[i % 3], (i * 5) % 12, "") for i in range(12)]
        began = time.monotonic()
        with Etcd() as etcd:
            etcd.put("/warden/armed", "yes")
            with Fleet(etcd, specs) as fleet:
                in_order = [h for _, h, _ in sorted((o, h, g) for h, g, o, _ in specs)]
                # Only the members of chain-b run a rollout of chain-b.
                chain_b = self.run_chain(fleet, "chain-b", specs)

                third = fleet.by_host(in_order[2])
                with open(os.path.join(third.dir, "fail"), "w"):
                    pass

                rollout = fleet.run_rollout("--group", "all", "--reason", "MariaDB 10.11.9")
                s = fleet.wait_state(rollout, ("stopped",))
                states = {h["host"]: h for h in s["hosts"]}
                self.assertEqual([h["host"] for h in s["hosts"]], in_order)
                self.assertEqual(states[in_order[0]]["state"], "done", s)
                self.assertEqual(states[in_order[1]]["state"], "done")
                failed = states[in_order[2]]
                self.assertEqual((failed["state"], failed["step"], failed["steps"]),
                                 ("failed", 2, 2))
                self.assertIn("exit status 1", failed["error"])
                self.assertIn(in_order[2] + " failed", s["rollout"]["why"])
                time.sleep(2)   # a poll or two: nobody else starts
                s = fleet.status(rollout)
                for host in in_order[3:]:
                    self.assertEqual(fleet.by_host(host).events() and
                                     match(fleet.by_host(host).events(), "job.queued",
                                           trigger_name=rollout), [])
                    self.assertEqual({h["host"]: h["state"] for h in s["hosts"]}[host],
                                     "not started")
                    fleet.by_host(host).wait_event("rollout.stopped", rollout=rollout)
                text = fleet.ctl("status", rollout).stdout
                self.assertIn("not started", text)
                self.assertRegex(text, r"failed at step 2/2: job.fail: .*exit status 1")
                self.assertNoOverlap(fleet, in_order[:3], rollout)

                # A rollout of the same group is refused while one runs; this
                # one stopped, so after resume a new one goes through.
                os.unlink(os.path.join(third.dir, "fail"))
                p = third.ctl("resume")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                second = fleet.run_rollout("--group", "all")
                s = fleet.wait_state(second, ("done",), timeout=90)
                self.assertEqual({h["state"] for h in s["hosts"]}, {"done"})
                self.assertNoOverlap(fleet, in_order, second)
                done = sum(len(match(wd.events(), "rollout.done", rollout=second))
                           for wd in fleet.daemons)
                self.assertEqual(done, 1)
                # The chain-b rollout ran on chain-b only.
                for host, groups, _, _ in specs:
                    ran = bool(match(fleet.by_host(host).events(), "job.queued",
                                     trigger_name=chain_b))
                    self.assertEqual(ran, "chain-b" in groups, host)
        print("\n12 hosts: whole test %.1f s" % (time.monotonic() - began))

    def run_chain(self, fleet, chain, specs):
        rollout = fleet.run_rollout("--group", chain, "--parallel", "2")
        s = fleet.wait_state(rollout, ("done",))
        members = sorted(h for h, g, _, _ in specs if chain in g)
        self.assertEqual(sorted(h["host"] for h in s["hosts"]), members)
        return rollout

    def assertNoOverlap(self, fleet, hosts, rollout):
        spans = [job_span(fleet.by_host(h), rollout) for h in hosts]
        for h, span in zip(hosts, spans):
            self.assertIsNotNone(span, "%s never ran %s" % (h, rollout))
        for (a, b), (ha, hb) in zip(zip(spans, spans[1:]), zip(hosts, hosts[1:])):
            # RFC 3339 UTC with milliseconds: text order is time order.
            self.assertLessEqual(a[1], b[0], "%s started before %s had finished" % (hb, ha))


if __name__ == "__main__":
    unittest.main()
