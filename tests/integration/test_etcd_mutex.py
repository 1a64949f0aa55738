"""[mutex] backend = etcd end to end: wardend against a real etcd
(Debian's etcd-server) started by the test; the mutex key blocks actions,
its deletion lets them through, a stopped etcd blocks them (fail-closed),
and every change is a mutex.state event."""

import json
import os
import unittest

from harness import Etcd, Wardend, base_config, etcd_mutex, match

CONFIG = base_config("itest-etcd", workers=None, level="debug",
                     mutex=etcd_mutex("{endpoints}", cache="200ms", poll="300ms")) + """
[action fix]
type = exec
command = touch {marker}
"""


@unittest.skipUnless(os.access(Etcd.BINARY, os.X_OK), "etcd-server is not installed")
class EtcdMutex(unittest.TestCase):
    def config(self, wd, endpoints, extra=""):
        marker = os.path.join(wd.dir, "ran")
        return CONFIG.format(endpoints=endpoints, marker=marker, **wd.paths) + extra, marker

    def blocked_run(self, wd, detail):
        """wardenctl run fix is refused by the mutex; returns the event."""
        n = wd.mark()
        p = wd.ctl("run", "fix", "--wait")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("blocked (mutex)", p.stderr)
        ev = wd.wait_event("action.blocked", action="fix", since=n)[0]
        self.assertEqual(ev["reason"], "mutex")
        self.assertIn(detail, ev["detail"])
        return ev

    def test_mutex_key_blocks_delete_clears_stopped_etcd_blocks(self):
        with Etcd() as etcd, Wardend() as wd:
            etcd.put("/warden/armed", "yes")
            text, marker = self.config(wd, "http://127.0.0.1:1," + etcd.endpoint)
            wd.start(text)
            first = wd.wait_event("mutex.state")[0]
            self.assertEqual((first["held"], first["reason"]), (False, "clear"))

            # status shows the etcd endpoints and prefix instead of a url.
            status = json.loads(wd.ctl("status", "--json", check=True).stdout)["mutex"]
            self.assertEqual(status["state"], "clear")
            self.assertEqual(status["backend"], "etcd")
            self.assertEqual(status["endpoints"], ["http://127.0.0.1:1", etcd.endpoint])
            self.assertEqual(status["prefix"], "/warden")

            # The switch: one key, its value the reason.
            n = wd.mark()
            etcd.put("/warden/mutex", "fleet freeze")
            held = wd.wait_event("mutex.state", held=True, since=n)[0]
            self.assertEqual(held["reason"], "fleet freeze")
            self.blocked_run(wd, "fleet freeze")
            self.assertFalse(os.path.exists(marker))
            self.assertFalse(match(wd.events(), "action.start", action="fix"))
            text_status = wd.ctl("status", check=True).stdout
            self.assertIn("held: fleet freeze", text_status)

            n = wd.mark()
            self.assertEqual(etcd.delete("/warden/mutex"), 1)
            clear = wd.wait_event("mutex.state", held=False, since=n)[0]
            self.assertEqual(clear["reason"], "clear")
            p = wd.ctl("run", "fix", "--wait")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            wd.wait_event("action.finish", action="fix")
            self.assertTrue(os.path.exists(marker))

            # etcd gone: held (fail-closed), with etcd's error as the reason.
            n = wd.mark()
            etcd.stop()
            down = wd.wait_event("mutex.state", held=True, since=n)[0]
            self.assertIn("etcd " + etcd.endpoint, down["reason"])
            self.blocked_run(wd, "etcd " + etcd.endpoint)

            n = wd.mark()
            etcd.start()
            wd.wait_event("mutex.state", held=False, since=n)

            # The sentinel gone: held, saying how to arm it.
            n = wd.mark()
            etcd.delete("/warden/armed")
            unarmed = wd.wait_event("mutex.state", held=True, since=n)[0]
            self.assertEqual(unarmed["reason"], "etcd mutex not armed: /warden/armed is "
                                                "missing (etcdctl put /warden/armed yes)")
            self.blocked_run(wd, "not armed")

            # An event per change, none while the answer stays the same.
            states = [(e["held"], e["reason"]) for e in match(wd.events(), "mutex.state")]
            for a, b in zip(states, states[1:]):
                self.assertNotEqual(a, b)
            flips = [held for i, (held, _) in enumerate(states)
                     if i == 0 or states[i - 1][0] != held]
            self.assertEqual(flips, [False, True, False, True, False, True])

    def test_wrong_cluster_id_is_held(self):
        with Etcd() as etcd, Wardend() as wd:
            etcd.put("/warden/armed", "yes")
            text, _ = self.config(wd, etcd.endpoint)
            wd.start(text.replace("poll      = 300ms",
                                  "poll      = 300ms\ncluster_id = 12345"))
            held = wd.wait_event("mutex.state")[0]
            self.assertTrue(held["held"])
            self.assertIn("cluster_id %s is not the configured 12345" % etcd.cluster_id,
                          held["reason"])
            self.blocked_run(wd, "cluster_id")

    def test_validate_reports_etcd_config_errors(self):
        with Wardend() as wd:
            good, _ = self.config(wd, "http://10.0.0.1:2379,https://etcd-2:2379")
            wd.write_config(good)
            p = wd.ctl("validate")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("mutex etcd /warden on http://10.0.0.1:2379 https://etcd-2:2379",
                          p.stdout)

            bad = (good.replace("endpoints = http://10.0.0.1:2379,https://etcd-2:2379",
                                "endpoints = 10.0.0.1:2379\nurl = http://ops/m.json")
                   .replace("prefix    = /warden", "prefix    = warden"))
            wd.write_config(bad)
            p = wd.ctl("validate")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            out = p.stdout + p.stderr
            config = wd.paths["config"]
            self.assertIn(config + ":14: endpoints: '10.0.0.1:2379' is not http://HOST:PORT", out)
            self.assertIn(config + ":15: url and backend = etcd are mutually exclusive", out)
            self.assertIn(config + ":16: prefix must start with '/'", out)

            missing = good.replace("endpoints = http://10.0.0.1:2379,https://etcd-2:2379\n", "")
            wd.write_config(missing)
            p = wd.ctl("validate")
            self.assertEqual(p.returncode, 1)
            self.assertIn(config + ":13: backend = etcd needs endpoints", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
