"""Fleet slots on a real etcd: 12 wardend processes in 3 groups run an
upgrade-shaped job with slot capacity 1; from their events, no group ever
had two hosts inside the job at once and every host finished. A halt set
mid-rollout stops every host that has not started; a host killed mid-job
keeps its slot and blocks its group until wardenctl resume."""

import json
import os
import time
import unittest

from harness import Etcd, Wardend, base_config, free_port, match

CONFIG = base_config("{host}", level="debug", mutex_off=True) + """
[fleet]
endpoints = {endpoint}
prefix    = /warden
slots     = 1
poll      = 1s

[action drain]
type    = exec
command = /bin/sh -c 'sleep {step}'

[action upgrade_packages]
type    = exec
command = /bin/sh -c 'sleep {step}'

[action ready]
type    = exec
command = true

[job upgrade]
steps = drain, upgrade_packages, ready
slot  = {group}
"""


def inside(events):
    """(enter, leave) of the job on this host: first step start to finish."""
    starts = [e for e in events if e["event"] == "job.step" and e["result"] == "start"
              and e["step_index"] == 1]
    ends = [e for e in events if e["event"] in ("job.finish", "job.fail", "job.interrupted")]
    return [(s["time"], ends[0]["time"] if ends else "9999") for s in starts[:1]]


class FleetTest(unittest.TestCase):
    def hosts(self, stack, etcd, n, groups, step=1.5):
        out = []
        for i in range(n):
            wd = stack.enter_context(Wardend())
            group = "chain-%d" % (i % groups)
            wd.start(CONFIG.format(host="db-%02d" % i, group=group, endpoint=etcd.endpoint,
                                   step=step, **wd.paths))
            out.append((wd, group))
        for wd, _ in out:
            wd.wait_event("daemon.start")
        return out

    def test_twelve_hosts_three_groups_one_at_a_time(self):
        import contextlib
        with Etcd() as etcd, contextlib.ExitStack() as stack:
            hosts = self.hosts(stack, etcd, 12, 3)
            for wd, _ in hosts:
                self.assertEqual(wd.ctl("run", "upgrade").returncode, 0)
            for wd, _ in hosts:
                wd.wait_event("job.finish", job="upgrade", timeout=120)
            by_group = {}
            waited = 0
            for wd, group in hosts:
                events = wd.events()
                by_group.setdefault(group, []).extend(inside(events))
                waited += len(match(events, "job.waiting", reason="full"))
                start = match(events, "job.step", result="start", step_index=1)[0]
                self.assertEqual(start["job"], "upgrade")
            for group, spans in by_group.items():
                self.assertEqual(len(spans), 4, group)
                spans.sort()
                for (a_in, a_out), (b_in, b_out) in zip(spans, spans[1:]):
                    self.assertLessEqual(a_out, b_in, "two hosts of %s inside at once: %s"
                                         % (group, spans))
            self.assertGreater(waited, 0)   # some hosts did wait for their group's slot
            # Every slot was released on success.
            for g in range(3):
                self.assertIsNone(etcd.get("/warden/slots/chain-%d/0" % g))

    def test_a_halt_mid_rollout_stops_hosts_that_have_not_started(self):
        import contextlib
        with Etcd() as etcd, contextlib.ExitStack() as stack:
            hosts = self.hosts(stack, etcd, 4, 1, step=2)
            for wd, _ in hosts:
                wd.ctl("run", "upgrade")
            # One host is inside; halt the fleet.
            deadline = time.monotonic() + 30
            while etcd.get("/warden/slots/chain-0/0") is None and time.monotonic() < deadline:
                time.sleep(0.05)
            etcd.put("/warden/mutex", "stop the rollout")
            halted_at = time.monotonic()
            first = None
            for wd, _ in hosts:
                if match(wd.events(), "job.step", result="start"):
                    first = wd
            self.assertIsNotNone(first)
            first.wait_event("job.finish", timeout=60)
            # Every other host sees the halt within a poll interval (1s ±20%)
            # plus a margin, and starts nothing.
            for wd, _ in hosts:
                if wd is first:
                    continue
                wd.wait_event("job.waiting", reason="halted", timeout=10)
            self.assertLess(time.monotonic() - halted_at, 60)
            time.sleep(3)
            for wd, _ in hosts:
                if wd is not first:
                    self.assertEqual(match(wd.events(), "job.step", result="start"), [])
            etcd.delete("/warden/mutex")
            for wd, _ in hosts:
                wd.wait_event("job.finish", timeout=60)

    def test_a_host_killed_mid_job_keeps_its_slot_and_blocks_its_group(self):
        import contextlib
        with Etcd() as etcd, contextlib.ExitStack() as stack:
            (a, _), (b, _) = self.hosts(stack, etcd, 2, 1, step=20)
            a.ctl("run", "upgrade")
            a.wait_event("job.step", step="drain", result="start")
            a.kill()
            os.system("pkill -f 'sleep 20' || true")
            b.ctl("run", "upgrade")
            waiting = b.wait_event("job.waiting", reason="full")[0]
            self.assertEqual(waiting["holders"][0]["host"], "db-00")
            time.sleep(4)
            self.assertEqual(match(b.events(), "job.step", result="start"), [])
            self.assertIn("db-00", etcd.get("/warden/slots/chain-0/0"))
            text = b.ctl("status").stdout
            self.assertIn("slot      chain-0: WAITING (full:all 1 slot(s) of chain-0 are taken", text)
            self.assertIn("held by db-00 (upgrade since", text)
            # db-00 comes back: interrupted, halted, slot kept; resume releases it.
            a.start()
            a.wait_event("job.interrupted")
            self.assertIn("db-00", etcd.get("/warden/slots/chain-0/0"))
            status = json.loads(a.ctl("status", "--json").stdout)
            self.assertEqual(status["jobs"]["halt"]["slot_kept"], "/warden/slots/chain-0/0")
            p = a.ctl("resume")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            b.wait_event("job.step", step="drain", result="start", timeout=30)

    def test_wardenctl_fleet_status_halt_clear_release(self):
        import contextlib
        with Etcd() as etcd, contextlib.ExitStack() as stack:
            ((wd, _),) = self.hosts(stack, etcd, 1, 1)
            p = wd.ctl("fleet", "status")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("armed     NO: /warden/armed is missing", p.stdout)
            self.assertIn("mutex     clear", p.stdout)
            self.assertIn("slots     none held", p.stdout)
            j = json.loads(wd.ctl("fleet", "status", "--json").stdout)
            self.assertEqual((j["schema"], j["ok"], j["armed"], j["mutex"], j["reason"],
                              j["slots"]), (1, True, False, "clear", None, []))
            self.assertGreater(j["revision"], 0)

            p = wd.ctl("fleet", "halt", "--reason", "bad package in the mirror", "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            j = json.loads(p.stdout)
            self.assertEqual((j["halted"], j["key"], j["reason"]),
                             (True, "/warden/mutex", "bad package in the mirror"))
            self.assertEqual(etcd.get("/warden/mutex"), "bad package in the mirror")
            self.assertIn("HALTED: bad package in the mirror", wd.ctl("fleet", "status").stdout)
            j = json.loads(wd.ctl("fleet", "status", "--json").stdout)
            self.assertEqual((j["mutex"], j["reason"]), ("halted", "bad package in the mirror"))
            # A host's job now waits for the halt to clear.
            wd.ctl("run", "upgrade")
            wd.wait_event("job.waiting", reason="halted")
            p = wd.ctl("fleet", "clear")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("fleet cleared", p.stdout)
            self.assertIn("/warden/armed is missing", p.stdout)
            self.assertIsNone(etcd.get("/warden/mutex"))
            wd.wait_event("job.finish", timeout=60)

            etcd.put("/warden/armed", "yes")
            etcd.put("/warden/slots/chain-b/0",
                     '{"host":"db-99","job":"upgrade","since":"2026-11-25T03:00:00.000Z"}')
            p = wd.ctl("fleet", "status")
            self.assertIn("armed     yes", p.stdout)
            self.assertRegex(p.stdout, r"slot +chain-b +0 +db-99 +upgrade +since 2026-11-25T03")
            j = json.loads(wd.ctl("fleet", "status", "--json").stdout)
            self.assertTrue(j["armed"])
            self.assertEqual(j["slots"], [{"group": "chain-b", "index": 0, "host": "db-99",
                                           "job": "upgrade", "since": "2026-11-25T03:00:00.000Z",
                                           "key": "/warden/slots/chain-b/0"}])
            p = wd.ctl("fleet", "release", "chain-b", "db-99")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("released /warden/slots/chain-b/0", p.stdout)
            self.assertIsNone(etcd.get("/warden/slots/chain-b/0"))
            p = wd.ctl("fleet", "release", "chain-b", "db-99")
            self.assertEqual(p.returncode, 1)
            self.assertIn("holds no slot", p.stderr)
            p = wd.ctl("fleet", "release", "chain-b", "db-99", "--json")
            self.assertEqual(p.returncode, 1)
            j = json.loads(p.stdout)
            self.assertEqual((j["schema"], j["ok"]), (1, False))
            self.assertIn("holds no slot", j["error"])
            self.assertEqual(wd.ctl("fleet", "halt").returncode, 2)
            self.assertEqual(wd.ctl("fleet", "frobnicate").returncode, 2)

    def test_wardenctl_fleet_with_etcd_down_fails_clearly(self):
        with Wardend() as wd:
            wd.write_config(CONFIG.format(host="db-x", group="g", step=1,
                                          endpoint="http://127.0.0.1:%d" % free_port(),
                                          **wd.paths))
            p = wd.ctl("fleet", "status")
            self.assertEqual(p.returncode, 1)
            self.assertIn("wardenctl: fleet status: etcd http://127.0.0.1:", p.stderr)
            p = wd.ctl("fleet", "status", "--json")
            self.assertEqual(p.returncode, 1)
            self.assertIn("fleet status: etcd http://127.0.0.1:", json.loads(p.stdout)["error"])


if __name__ == "__main__":
    unittest.main()
