"""Pauses with an expiry and a scope, end to end: a pause with --for ends by
itself and lets the blocked action through without any command, also across
a kill -9; a group pause blocks only that group's actions; max_pause caps a
pause; the events say who paused, for how long, and why it ended. No MariaDB
needed: a file check and exec actions."""

import json
import os
import unittest

from harness import Wardend, base_config, match

CONFIG = base_config("pause-test", level="debug", mutex_off=True, daemon="{extra}") + """
[check flag]
type      = file
path      = {dir}/flag
metric    = exists
crit      = == 0
repeat    = 1s
on_crit   = fix
group     = disks

[check child]
type    = file
path    = {dir}
metric  = exists
crit    = == 0
depends = flag

[action fix]
type    = exec
command = /bin/true
group   = {fix_group}

[action other]
type    = exec
command = /bin/true
"""


class Pause(unittest.TestCase):
    def start(self, wd, extra="", fix_group="replication", tail=""):
        wd.start(CONFIG.format(extra=extra, fix_group=fix_group, **wd.paths) + tail)
        wd.wait_event("daemon.start")
        wd.wait_control()

    def flag(self, wd, present):
        path = os.path.join(wd.paths["dir"], "flag")
        if present:
            with open(path, "w"):
                pass
        elif os.path.exists(path):
            os.unlink(path)

    def test_pause_for_3s_blocks_then_lets_through_by_itself(self):
        with Wardend() as wd:
            self.flag(wd, True)
            self.start(wd)
            p = wd.ctl("pause", "--for", "3s", "--reason", "swapping disk")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout, r"paused \(host, until .* UTC\): swapping disk")
            start = wd.wait_event("pause.start")[0]
            self.assertEqual(start["scope"], "host")
            self.assertEqual(start["reason"], "swapping disk")
            self.assertRegex(start["expiry"], r"^\d{4}-\d\d-\d\dT")
            self.assertEqual(start["who"]["uid"], os.getuid())
            self.assertIsInstance(start["who"]["pid"], int)
            s = wd.status()
            self.assertTrue(s["pause"]["paused"])
            self.assertFalse(s["pause"]["no_expiry"])
            self.assertEqual(len(s["pauses"]), 1)

            self.flag(wd, False)   # crit: fix fires every second
            blocked = wd.wait_event("action.blocked", action="fix")[0]
            self.assertEqual(blocked["reason"], "paused")
            self.assertRegex(blocked["detail"], r"^paused \(host, until .* UTC\): swapping disk$")
            # No command from here on: the pause ends and fix runs.
            end = wd.wait_event("pause.end", timeout=20)[0]
            self.assertEqual(end["cause"], "expired")
            self.assertEqual(end["scope"], "host")
            self.assertEqual(end["reason"], "swapping disk")
            self.assertEqual(end["paused_by"]["uid"], os.getuid())
            ran = wd.wait_event("action.start", action="fix", timeout=20)[0]
            self.assertGreater(ran["seq"], end["seq"])
            self.assertFalse(wd.status()["pause"]["paused"])
            self.assertEqual(wd.status()["pauses"], [])
            self.assertIn("pause     no", wd.ctl("status").stdout)

    def test_pause_expiry_survives_kill_9(self):
        with Wardend() as wd:
            self.flag(wd, True)
            self.start(wd)
            p = wd.ctl("pause", "--for", "6s", "--reason", "kernel update")
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(wd.paths["state_dir"], "state.json")) as f:
                saved = json.load(f)
            self.assertGreater(saved["pauses"]["host"]["until_ms"], 0)
            self.flag(wd, False)
            wd.wait_event("action.blocked", action="fix")
            wd.kill()   # nothing saved at exit
            self.start(wd)
            since = wd.started_at
            # The restarted daemon knows the pause: it ends it at its expiry
            # (or at once, had the restart outlasted it), and only then does
            # fix run, without any command.
            end = wd.wait_event("pause.end", timeout=30, since=since)[0]
            self.assertEqual(end["cause"], "expired")
            self.assertEqual(end["reason"], "kernel update")
            ran = wd.wait_event("action.start", action="fix", timeout=20, since=since)[0]
            self.assertGreater(ran["seq"], end["seq"])
            early = [e for e in match(wd.events()[since:], "action.start", action="fix")
                     if e["seq"] < end["seq"]]
            self.assertEqual(early, [])

    def test_group_pause_blocks_only_that_group(self):
        with Wardend() as wd:
            self.flag(wd, True)
            self.start(wd)
            p = wd.ctl("pause", "--group", "replication", "--reason", "swapping disk")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("no expiry", p.stderr)
            start = wd.wait_event("pause.start")[0]
            self.assertEqual(start["scope"], "group")
            self.assertEqual(start["group"], "replication")
            self.assertIsNone(start["expiry"])

            p = wd.ctl("run", "fix", "--wait")
            self.assertEqual(p.returncode, 1)
            self.assertIn("paused (group replication, no expiry): swapping disk", p.stderr)
            p = wd.ctl("run", "other", "--wait")
            self.assertEqual(p.returncode, 0, p.stderr)

            s = wd.status()
            self.assertFalse(s["pause"]["paused"])   # the host is not paused
            self.assertEqual([(x["scope"], x["name"], x["no_expiry"]) for x in s["pauses"]],
                             [("group", "replication", True)])
            self.assertIn("group replication PAUSED: swapping disk", wd.ctl("status").stdout)
            self.assertIn("NO EXPIRY", wd.ctl("status").stdout)

            # Two scopes at once; each ends on its own.
            p = wd.ctl("pause", "--action", "other", "--for", "1h", "--reason", "x")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(wd.status()["pauses"]), 2)
            p = wd.ctl("unpause", "--group", "replication")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("unpaused group replication", p.stdout)
            end = wd.wait_event("pause.end", group="replication")[0]
            self.assertEqual(end["cause"], "unpause")
            self.assertEqual(end["who"]["uid"], os.getuid())
            p = wd.ctl("run", "fix", "--wait")
            self.assertEqual(p.returncode, 0, p.stderr)
            p = wd.ctl("run", "other", "--wait")
            self.assertEqual(p.returncode, 1)
            self.assertIn("paused (action other, until", p.stderr)

            # A reload that drops what a pause names ends it (cause reload).
            wd.write_config(CONFIG.format(extra="", fix_group="replication", **wd.paths)
                            .replace("[action other]\ntype    = exec\ncommand = /bin/true\n", ""))
            p = wd.ctl("reload")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            end = wd.wait_event("pause.end", action="other")[0]
            self.assertEqual(end["cause"], "reload")
            self.assertEqual(wd.status()["pauses"], [])

    def test_bad_pauses_are_refused_clearly(self):
        with Wardend() as wd:
            self.flag(wd, True)
            self.start(wd)
            for args, said in (
                    (["--group", "nosuch"], "no check, action or job is in group 'nosuch'"),
                    (["--action", "nosuch"], "no action or job named 'nosuch'"),
                    (["--check", "nosuch"], "no check named 'nosuch'"),
                    (["--group", "disks", "--action", "fix"], "exclude each other"),
                    (["--for", "3s", "--until", "14:00"], "--for and --until exclude each other"),
                    (["--for", "soon"], "--for"),
                    (["--until", "noon"], "is not a time"),
                    (["--until", "2001-01-01 00:00"], "has already passed")):
                p = wd.ctl("pause", "--reason", "r", *args)
                self.assertEqual(p.returncode, 1, args)
                self.assertIn(said, p.stderr, args)
            p = wd.ctl("unpause", "--group", "nosuch")
            self.assertEqual(p.returncode, 1)
            self.assertIn("no check, action or job is in group 'nosuch'", p.stderr)
            self.assertEqual(wd.status()["pauses"], [])
            self.assertEqual(match(wd.events(), "pause.start"), [])

    def test_max_pause_caps_every_pause(self):
        with Wardend() as wd:
            self.flag(wd, True)
            self.start(wd, extra="max_pause = 2s")
            p = wd.ctl("pause", "--reason", "forgot to say how long")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("max_pause = 2s", p.stderr)
            s = wd.status()
            self.assertFalse(s["pause"]["no_expiry"])
            self.assertIsNotNone(s["pause"]["until"])
            end = wd.wait_event("pause.end", timeout=20)[0]
            self.assertEqual(end["cause"], "expired")

    def checks(self, wd):
        return {c["name"]: c for c in wd.status()["checks"]}

    def test_disable_for_3s_then_enabled_by_itself(self):
        with Wardend() as wd:
            self.flag(wd, True)
            self.start(wd)
            wd.wait_event("check.state", check="child", state="ok")
            p = wd.ctl("disable", "flag", "--for", "3s", "--reason", "noisy until the fix")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout, r"disabled check flag \(until .* UTC\): noisy until the fix")
            off = wd.wait_event("check.disabled", check="flag")[0]
            self.assertEqual(off["reason"], "noisy until the fix")
            self.assertRegex(off["expiry"], r"^\d{4}-")
            self.assertEqual(off["who"]["uid"], os.getuid())
            wd.wait_event("check.state", check="flag", state="disabled")
            # Its dependents see it as not ok.
            wd.wait_event("check.state", check="child", state="skipped")
            c = self.checks(wd)
            self.assertEqual(c["flag"]["state"], "disabled")
            self.assertEqual(c["flag"]["disabled"]["reason"], "noisy until the fix")
            self.assertIsNone(c["child"]["disabled"])
            self.assertIn("disabled  check flag: noisy until the fix", wd.ctl("status").stdout)
            p = wd.ctl("check", "flag")
            self.assertEqual(p.returncode, 1)
            self.assertIn("check flag is disabled", p.stderr)

            self.flag(wd, False)   # would be crit and fire fix, were it running
            on = wd.wait_event("check.enabled", check="flag", timeout=20)[0]
            self.assertEqual(on["cause"], "expired")
            self.assertEqual(on["disabled_by"]["uid"], os.getuid())
            wd.wait_event("check.state", check="flag", state="crit", timeout=20)
            ran = wd.wait_event("action.start", action="fix", timeout=20)[0]
            self.assertGreater(ran["seq"], on["seq"])
            early = [e for e in match(wd.events(), "action.start", action="fix")
                     if e["seq"] < on["seq"]]
            self.assertEqual(early, [])

    def test_disable_survives_kill_9_and_enable_brings_it_back(self):
        with Wardend() as wd:
            self.flag(wd, True)
            self.start(wd)
            p = wd.ctl("disable", "flag", "--reason", "replacing the sensor")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("no expiry", p.stderr)
            wd.wait_event("check.state", check="flag", state="disabled")
            wd.kill()
            self.start(wd)
            c = self.checks(wd)
            self.assertEqual(c["flag"]["state"], "disabled")
            self.assertTrue(c["flag"]["disabled"]["no_expiry"])
            p = wd.ctl("enable", "flag")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("enabled check flag", p.stdout)
            on = wd.wait_event("check.enabled", check="flag")[0]
            self.assertEqual(on["cause"], "enable")
            wd.wait_event("check.state", check="flag", state="ok", since=wd.started_at)
            self.assertIsNone(self.checks(wd)["flag"]["disabled"])
            p = wd.ctl("enable", "flag")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("was not disabled", p.stdout)
            for args, said in ((["disable", "nosuch", "--reason", "r"], "no check named 'nosuch'"),
                               (["enable", "nosuch"], "no check named 'nosuch'"),
                               (["disable", "flag", "--reason", " "], "a reason is needed")):
                p = wd.ctl(*args)
                self.assertEqual(p.returncode, 1, args)
                self.assertIn(said, p.stderr, args)

    def test_groups_in_status_and_check(self):
        with Wardend() as wd:
            self.flag(wd, True)
            self.start(wd)
            p = wd.ctl("status", "--json", "--group", "disks")
            self.assertEqual(p.returncode, 0, p.stderr)
            s = json.loads(p.stdout)
            self.assertEqual([c["name"] for c in s["checks"]], ["flag"])
            self.assertEqual(s["checks"][0]["groups"], ["disks"])
            self.assertEqual(s["actions"], [])
            s = json.loads(wd.ctl("status", "--json", "--group", "replication").stdout)
            self.assertEqual([a["name"] for a in s["actions"]], ["fix"])
            self.assertEqual(s["checks"], [])

            p = wd.ctl("check", "--group", "disks")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertRegex(p.stdout, r"^flag \(file\): ok  value 1")
            self.flag(wd, False)
            p = wd.ctl("check", "--group", "disks")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("flag (file): crit", p.stdout)

            for args in (["status", "--group", "nosuch"], ["check", "--group", "nosuch"],
                         ["pause", "--group", "nosuch", "--reason", "r"]):
                p = wd.ctl(*args)
                self.assertEqual(p.returncode, 1, args)
                self.assertIn("no check, action or job is in group 'nosuch'", p.stderr, args)
            p = wd.ctl("check", "flag", "--group", "disks")
            self.assertEqual(p.returncode, 1)
            self.assertIn("check needs NAME or --group G, not both", p.stderr)

    def test_scheduled_window_opens_and_closes(self):
        # Every minute for 3 s: opens at the next minute (at most a minute
        # away), blocks fix, closes by itself. Added by a reload: the
        # once-a-second look at windows runs only while there is something
        # to look at, and a reload that brings a window starts it.
        window = ("\n[maintenance tick]\nschedule = * * * * *\nfor = 3s\n"
                  "scope = group replication\nreason = nightly backup\n")
        with Wardend() as wd:
            self.flag(wd, True)
            self.start(wd)
            self.assertEqual(wd.status()["maintenance"], [])
            wd.write_config(CONFIG.format(extra="", fix_group="replication", **wd.paths) + window)
            p = wd.ctl("reload")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            s = wd.status()
            self.assertEqual([(w["name"], w["scope"], w["for"]) for w in s["maintenance"]],
                             [("tick", "group replication", "3s")])
            self.assertRegex(s["maintenance"][0]["next"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:00")
            self.assertIn("window    tick (group replication)", wd.ctl("status").stdout)
            opened = wd.wait_event("pause.start", window="tick", timeout=90)[0]
            self.assertEqual(opened["scope"], "group")
            self.assertEqual(opened["group"], "replication")
            self.assertEqual(opened["reason"], "nightly backup")
            self.assertEqual(opened["who"]["by"], "maintenance tick")
            closed = wd.wait_event("pause.end", window="tick", timeout=30)[0]
            self.assertEqual(closed["cause"], "expired")
            self.assertGreater(closed["seq"], opened["seq"])
            # Between the two, fix was blocked by the window, named as such.
            blocked = [e for e in match(wd.events(), "action.blocked", action="fix")
                       if opened["seq"] < e["seq"] < closed["seq"]]
            for e in blocked:
                self.assertIn("paused (maintenance tick, group replication", e["detail"])
            p = wd.ctl("run", "other", "--wait")   # not in the group, never blocked
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_window_with_an_unknown_scope_is_a_config_error(self):
        with Wardend() as wd:
            wd.write_config(CONFIG.format(extra="", fix_group="replication", **wd.paths) +
                            "\n[maintenance w]\nschedule = 0 3 * * *\nfor = 1h\n"
                            "scope = group nosuch\nreason = r\n"
                            "\n[maintenance v]\nschedule = 0 3 * * *\nfor = 0s\n"
                            "scope = galaxy far\n")
            p = wd.ctl("validate")
            self.assertEqual(p.returncode, 1)
            out = p.stdout + p.stderr
            self.assertIn("[maintenance w] scope: no check, action or job is in group 'nosuch'", out)
            self.assertIn("for must be longer than 0", out)
            self.assertIn("scope: 'galaxy far' is not host, group NAME or action NAME", out)
            self.assertIn("[maintenance v] needs 'reason'", out)


if __name__ == "__main__":
    unittest.main()
