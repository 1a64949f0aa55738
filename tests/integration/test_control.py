"""The control socket and wardenctl end to end: status, check, run, pause,
reload, events; state that survives kill -9; peer credentials; abusive and
numerous clients. No MariaDB needed: file checks and exec actions."""

import json
import os
import re
import signal
import socket
import threading
import time
import unittest

from harness import Wardend, base_config, match, rss_kb, run, WARDEND, WARDENCTL

CONFIG = base_config("ctl-test", level="debug", mutex_off=True, socket="{control}",
                     control="group  = nogroup") + """
[check flag]
type   = file
path   = {dir}/flag
metric = exists
crit   = == 0

[check other]
type   = file
path   = {dir}
metric = exists
crit   = == 0

[action fix]
type    = exec
command = /bin/sh -c 'echo fixing; sleep 0.2'
budget  = 2 per 1h

[action broken]
type    = exec
command = /bin/sh -c 'echo nope >&2; exit 3'
"""


class Control(unittest.TestCase):
    def start(self, wd, text=CONFIG):
        wd.start(text.format(**wd.paths))
        wd.wait_event("daemon.start")
        wd.wait_control()

    def test_version_is_the_same_from_both_binaries_and_ends_in_a_newline(self):
        daemon = run([WARDEND, "--version"]).stdout
        ctl = run([WARDENCTL, "--version"]).stdout
        command = run([WARDENCTL, "version"]).stdout
        self.assertRegex(daemon, r"^wardend \d+\.\d+\.\d+\S* \(build \S+\)\n$")
        self.assertRegex(ctl, r"^wardenctl \d+\.\d+\.\d+\S* \(build \S+\)\n$")
        self.assertEqual(ctl, command)
        self.assertEqual(daemon.split(" ", 1)[1], ctl.split(" ", 1)[1])   # version and build
        # Anywhere on the line, like the other global options; no daemon asked.
        self.assertEqual(run([WARDENCTL, "-s", "/nonexistent/sock", "--version"]).stdout, ctl)

    def test_status_check_run_events(self):
        with Wardend() as wd:
            self.start(wd)
            wd.wait_event("check.state", check="flag", state="crit")
            p = wd.ctl("status")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout, r"host\s+ctl-test")
            self.assertRegex(p.stdout, r"\nflag\s+file\s+crit\s+0")
            self.assertIn("pause     no", p.stdout)
            self.assertIn("mutex     off", p.stdout)

            s = wd.status()
            self.assertEqual(s["host"], "ctl-test")
            # The heap in use (malloc's count, or ASan's): more than the
            # daemon's own structures, far less than its whole RSS would
            # allow under ASan, and never the RSS itself.
            self.assertIsInstance(s["heap_bytes"], int)
            self.assertGreater(s["heap_bytes"], 64 * 1024)
            self.assertLess(s["heap_bytes"], rss_kb(wd.proc.pid) * 1024)
            checks = {c["name"]: c for c in s["checks"]}
            self.assertEqual(checks["flag"]["state"], "crit")
            self.assertEqual(checks["flag"]["value"], "0")
            self.assertRegex(checks["flag"]["since"], r"^\d{4}-\d\d-\d\dT")
            self.assertRegex(checks["flag"]["last_run"], r"^\d{4}-\d\d-\d\dT")
            self.assertIn("last_error", checks["flag"])
            self.assertEqual(s["jobs"], {"queue": [], "running": None, "halt": None,
                                         "schedules": []})
            self.assertFalse(s["pause"]["paused"])
            self.assertEqual(s["mutex"]["state"], "off")
            self.assertGreaterEqual(s["events"]["last_seq"], 2)

            # check NAME: exit 1 while the file is missing, 0 once it exists.
            p = wd.ctl("check", "flag")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("flag (file): crit", p.stdout)
            wd.write("flag", "x")
            p = wd.ctl("check", "flag")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("flag (file): ok", p.stdout)
            p = wd.ctl("check", "nosuch")
            self.assertEqual(p.returncode, 1)
            self.assertIn("no check named 'nosuch'", p.stderr)

            # run --dry-run runs nothing.
            before = len(match(wd.events(), "action.start"))
            p = wd.ctl("run", "fix", "--dry-run")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("would run fix (exec", p.stdout)
            self.assertIn("guard: allowed", p.stdout)
            self.assertEqual(len(match(wd.events(), "action.start")), before)

            # run --wait gives the result; trigger ctl.
            p = wd.ctl("run", "fix", "--wait")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("fix exec: ok", p.stdout)
            self.assertIn("fixing", p.stdout)
            fin = wd.wait_event("action.finish", action="fix")[0]
            self.assertEqual(fin["trigger"], "ctl")
            p = wd.ctl("run", "broken", "--wait")
            self.assertEqual(p.returncode, 1)
            self.assertIn("exit 3", p.stdout)
            self.assertIn("nope", p.stdout)
            # run without --wait returns once started.
            p = wd.ctl("run", "fix")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("started fix", p.stdout)
            wd.wait_for(lambda ev: len(match(ev, "action.finish", action="fix")) >= 2)
            # Budget 2 per 1h is now spent: blocked, exit 1, with the reason.
            p = wd.ctl("run", "fix", "--wait")
            self.assertEqual(p.returncode, 1)
            self.assertIn("blocked (budget)", p.stderr)
            p = wd.ctl("run", "nosuch")
            self.assertEqual(p.returncode, 1)

            # events -n N: the latest N, as JSON lines, newest last.
            p = wd.ctl("events", "-n", "3")
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = [json.loads(l) for l in p.stdout.splitlines()]
            self.assertEqual(len(lines), 3)
            self.assertEqual(lines[-1]["seq"], wd.events()[-1]["seq"])
            self.assertEqual(lines[-1]["event"], "action.blocked")

            # Usage errors exit 2.
            for args in (["run"], ["check"], ["pause"], ["events", "-n", "x"],
                         ["status", "--wait"], ["frobnicate"]):
                self.assertEqual(wd.ctl(*args).returncode, 2, args)

    def test_pause_survives_kill_and_blocks_run(self):
        with Wardend() as wd:
            self.start(wd)
            p = wd.ctl("pause", "--reason", "disk swap, ticket 42")
            self.assertEqual(p.returncode, 0, p.stderr)
            p = wd.ctl("run", "fix", "--wait")
            self.assertEqual(p.returncode, 1)
            self.assertIn("blocked (paused)", p.stderr)
            self.assertIn("disk swap, ticket 42", p.stderr)
            blocked = wd.wait_event("action.blocked", action="fix")[0]
            self.assertEqual(blocked["reason"], "paused")
            self.assertEqual(blocked["trigger"], "ctl")

            wd.kill()   # kill -9: nothing gets saved at exit
            self.assertEqual(wd.ctl("status").returncode, 3)
            self.start(wd)
            s = wd.status()
            self.assertTrue(s["pause"]["paused"])
            self.assertEqual(s["pause"]["reason"], "disk swap, ticket 42")
            self.assertIn("PAUSED: disk swap, ticket 42", wd.ctl("status").stdout)
            start = wd.wait_event("daemon.start")[0]
            self.assertEqual(start["paused"], "disk swap, ticket 42")
            p = wd.ctl("run", "fix")
            self.assertEqual(p.returncode, 1)
            self.assertIn("paused", p.stderr)

            self.assertEqual(wd.ctl("unpause").returncode, 0)
            wd.kill()
            self.start(wd)
            self.assertFalse(wd.status()["pause"]["paused"])
            p = wd.ctl("run", "fix", "--wait")
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_long_pause_reason_is_cut_on_a_character_boundary(self):
        # 1,201 bytes of which byte 1,024 is inside an "é": cut before it,
        # or the state file's JSON would not be valid UTF-8.
        reason = "x" + "é" * 600
        with Wardend() as wd:
            self.start(wd)
            p = wd.ctl("pause", "--reason", reason)
            self.assertEqual(p.returncode, 0, p.stderr)
            s = wd.status()
            self.assertTrue(s["pause"]["paused"])
            self.assertEqual(s["pause"]["reason"], reason.encode()[:1023].decode())
            with open(os.path.join(wd.paths["state_dir"], "state.json"), encoding="utf-8") as f:
                self.assertEqual(json.load(f)["pause"]["reason"], s["pause"]["reason"])

    def test_bytes_that_are_not_utf8_in_a_result_are_saved_replaced(self):
        # A program's output (or a mysql_query's binary column) that is not
        # UTF-8 becomes a check's value or error: the state file is still
        # valid JSON, with U+FFFD for each such byte, and wardend lives on
        # (it used to abort at the next save: a crash loop under systemd).
        config = CONFIG + """
[check raw]
type    = program
command = printf 'A\\377\\376B'
value   = stdout
every   = 1s
"""
        with Wardend() as wd:
            self.start(wd, config)
            ev = wd.wait_event("check.state", check="raw", state="error")[-1]
            self.assertIn("A\ufffd\ufffdB", ev["error"])
            time.sleep(1.5)   # the debounced save of the first states
            self.assertIsNone(wd.proc.poll(), wd.log())
            p = wd.ctl("run", "fix", "--wait")   # an action: a save at once
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIsNone(wd.proc.poll(), wd.log())
            with open(os.path.join(wd.paths["state_dir"], "state.json"), "rb") as f:
                saved = json.loads(f.read().decode("utf-8"))   # strict: valid UTF-8
            self.assertIn("A\ufffd\ufffdB", saved["checks"]["raw"]["error"])
            raw = [c for c in wd.status()["checks"] if c["name"] == "raw"][0]
            self.assertEqual(raw["state"], "error")

    def test_budget_and_check_state_survive_restart(self):
        with Wardend() as wd:
            self.start(wd)
            wd.wait_event("check.state", check="flag", state="crit")
            for _ in range(2):
                p = wd.ctl("run", "fix", "--wait")
                self.assertEqual(p.returncode, 0, p.stderr)
            wd.kill()
            self.start(wd)
            s = wd.status()
            fix = [a for a in s["actions"] if a["name"] == "fix"][0]
            self.assertEqual(fix["budget"]["used"], 2)
            p = wd.ctl("run", "fix", "--wait")
            self.assertEqual(p.returncode, 1)
            self.assertIn("blocked (budget)", p.stderr)
            # The crit check kept its state: no new check.state for it
            # after the restart while it stays crit.
            time.sleep(2.5)
            since = wd.started_at
            self.assertEqual(match(wd.events()[since:], "check.state", check="flag"), [])
            checks = {c["name"]: c for c in wd.status()["checks"]}
            self.assertEqual(checks["flag"]["state"], "crit")

    def test_corrupt_state_is_set_aside(self):
        with Wardend() as wd:
            state = os.path.join(wd.paths["state_dir"], "state.json")
            with open(state, "w") as f:
                f.write('{"format": 1, "pause": {"paused": tr')   # torn
            self.start(wd)
            start = wd.wait_event("daemon.start")[0]
            self.assertIn("state_error", start)
            self.assertIn("not valid JSON", start["state_error"])
            aside = [n for n in os.listdir(wd.paths["state_dir"])
                     if n.startswith("state.json.corrupt-")]
            self.assertEqual(len(aside), 1, os.listdir(wd.paths["state_dir"]))
            self.assertIn(aside[0], start["state_error"])
            s = wd.status()
            self.assertIn("state_error", s)
            self.assertFalse(s["pause"]["paused"])
            # A fresh state file is written and the next start is clean.
            self.assertEqual(wd.ctl("pause", "--reason", "after corruption").returncode, 0)
            self.assertEqual(wd.stop(), 0)
            self.start(wd)
            start = wd.wait_event("daemon.start")[0]
            self.assertNotIn("state_error", start)
            self.assertTrue(wd.status()["pause"]["paused"])

    def test_reload_valid_and_invalid(self):
        with Wardend() as wd:
            self.start(wd)
            wd.wait_event("check.state", check="flag", state="crit")
            digest = wd.status()["config_digest"]
            good = CONFIG.format(**wd.paths)
            # Invalid: every problem as file:line, exit 1, old config stays.
            wd.write_config(good + "\n[check broken]\ntype = file\nevery = 10\n")
            p = wd.ctl("reload")
            self.assertEqual(p.returncode, 1)
            self.assertRegex(p.stdout, r"warden\.ini:\d+: .*every")
            self.assertIn("the running one stays", p.stderr)
            fail = wd.wait_event("daemon.reload", result="fail")[0]
            self.assertRegex(fail["error"], r"warden\.ini:\d+:")
            self.assertEqual(fail["config_digest"], digest)
            self.assertEqual(wd.status()["config_digest"], digest)
            # SIGHUP with the same broken file: logged, event, still running.
            wd.signal(signal.SIGHUP)
            wd.wait_for(lambda ev: len(match(ev, "daemon.reload", result="fail")) >= 2)
            self.assertTrue(wd.running())

            # Valid: a new check, `other` unchanged, `flag` changed.
            changed = good.replace("crit   = == 0\n\n[check other]",
                                   "crit   = == 0\nwarn   = == 0\n\n[check other]")
            self.assertNotEqual(changed, good)
            wd.write_config(changed + "\n[check added]\ntype = file\npath = {}\nmetric = exists\n"
                            .format(wd.dir))
            p = wd.ctl("reload")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("reloaded", p.stdout)
            ok = wd.wait_event("daemon.reload", result="ok")[0]
            self.assertNotEqual(ok["config_digest"], digest)
            self.assertEqual(ok["prev_config_digest"], digest)
            self.assertEqual(ok["checks_kept"], 1)    # `other`
            s = wd.status()
            self.assertEqual(s["config_digest"], ok["config_digest"])
            names = [c["name"] for c in s["checks"]]
            self.assertEqual(names, ["flag", "other", "added"])
            wd.wait_event("check.state", check="added", state="ok")
            # SIGHUP with a valid config reloads too.
            wd.signal(signal.SIGHUP)
            wd.wait_for(lambda ev: len(match(ev, "daemon.reload", result="ok")) >= 2)
            self.assertTrue(wd.running())

    @unittest.skipUnless(os.geteuid() == 0, "needs root to switch users")
    def test_peer_credentials(self):
        with Wardend() as wd:
            os.chmod(wd.dir, 0o711)   # nobody may reach the socket, not read the config
            self.start(wd)
            as_member = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                         WARDENCTL, "-s", wd.paths["control"]]
            p = run(as_member + ["status"], check=False)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("ctl-test", p.stdout)
            p = run(as_member + ["pause", "--reason", "nope"], check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("permission denied", p.stderr)
            p = run(as_member + ["run", "fix"], check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("permission denied", p.stderr)
            self.assertFalse(wd.status()["pause"]["paused"])
            self.assertEqual(match(wd.events(), "action.start"), [])
            # Not in the group: the socket (0660) keeps them out.
            stranger = ["setpriv", "--reuid=nobody", "--regid=users", "--clear-groups",
                        WARDENCTL, "-s", wd.paths["control"]]
            p = run(stranger + ["status"], check=False)
            self.assertEqual(p.returncode, 3)
            self.assertIn("permission denied", p.stderr)
            st = os.stat(wd.paths["control"])
            self.assertEqual(st.st_mode & 0o777, 0o660)

    def test_many_clients_and_abusive_ones(self):
        with Wardend() as wd:
            self.start(wd)
            path = wd.paths["control"]
            # A client that sends 1 MB without a newline, one that sends half
            # a request and waits: neither blocks anyone.
            big = socket.socket(socket.AF_UNIX)
            big.connect(path)
            big.settimeout(30)
            half = socket.socket(socket.AF_UNIX)
            half.connect(path)
            half.sendall(b'{"cmd":"sta')

            def send_big():
                try:
                    big.sendall(b"x" * (1 << 20))
                except OSError:
                    pass   # the daemon may stop reading; it must not matter
            t = threading.Thread(target=send_big)
            t.start()

            results = [None] * 200
            def client(i):
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.settimeout(60)
                        s.connect(path)
                        s.sendall(b'{"cmd":"status"}\n')
                        buf = b""
                        while not buf.endswith(b"\n"):
                            chunk = s.recv(65536)
                            if not chunk:
                                break
                            buf += chunk
                        results[i] = json.loads(buf)
                except Exception as e:   # reported below
                    results[i] = e
            threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(90)
            bad = [r for r in results if not isinstance(r, dict) or r.get("ok") is not True]
            self.assertEqual(bad, [])
            self.assertTrue(all(r["host"] == "ctl-test" for r in results))

            reply = big.recv(65536)
            self.assertIn(b"over 65536 bytes", reply)
            t.join(30)
            big.close()
            # The half-sent request gets an error (after the idle timeout).
            half.settimeout(30)
            self.assertIn(b"incomplete request", half.recv(65536))
            half.close()
            p = wd.ctl("status")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(wd.running())

    def test_exit_3_when_not_running(self):
        with Wardend() as wd:
            wd.write_config(CONFIG.format(**wd.paths))
            p = wd.ctl("status")
            self.assertEqual(p.returncode, 3)
            self.assertIn("not running", p.stderr)
            p = run([WARDENCTL, "-s", os.path.join(wd.dir, "nope.sock"), "status"], check=False)
            self.assertEqual(p.returncode, 3)
            # A stale socket file left by a killed daemon: still exit 3.
            self.start(wd)
            wd.kill()
            self.assertTrue(os.path.exists(wd.paths["control"]))
            p = wd.ctl("pause", "--reason", "x")
            self.assertEqual(p.returncode, 3)
            # And a restart takes the stale socket over.
            self.start(wd)
            self.assertEqual(wd.ctl("status").returncode, 0)


if __name__ == "__main__":
    unittest.main()
