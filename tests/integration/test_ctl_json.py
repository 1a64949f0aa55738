"""wardenctl for scripts: every command's --json output is one JSON object
with "schema" and "ok", errors included, with the text output's exit code;
wardend --version and wardenctl --version print the same version and build.
No MariaDB needed: a file check, exec actions and a job."""

import json
import os
import re
import subprocess
import unittest

from harness import Wardend, base_config, run, WARDEND, WARDENCTL

CONFIG = base_config("json-test", mutex_off=True) + """
[check flag]
type   = file
path   = {dir}/flag
metric = exists
crit   = == 0
group  = disks

[action fix]
type    = exec
command = /bin/true
group   = disks

[action broken]
type    = exec
command = /bin/sh -c 'exit 3'

[job deploy]
steps = fix
"""

BUILD = r"(?:[0-9a-f]{7,40}(?:-dirty)?|unknown)"


def usage_commands():
    text = run([WARDENCTL, "--help"]).stdout
    block = text.split("\ncommands:\n", 1)[1].split("\noptions:\n", 1)[0]
    return {m.group(1) for m in re.finditer(r"^  ([a-z]\S*)", block, re.M)}


class Version(unittest.TestCase):
    def test_both_binaries_print_the_same_version_and_build(self):
        daemon = run([WARDEND, "--version"]).stdout
        ctl = run([WARDENCTL, "--version"]).stdout
        m = re.match(r"^wardend (\d+\.\d+\.\d+\S*) \(build (%s)\)\n$" % BUILD, daemon)
        self.assertTrue(m, repr(daemon))
        self.assertEqual("wardenctl %s (build %s)\n" % (m.group(1), m.group(2)), ctl)
        self.assertEqual(run([WARDENCTL, "version"]).stdout, ctl)
        j = json.loads(run([WARDENCTL, "version", "--json"]).stdout)
        self.assertEqual(j, {"schema": 1, "ok": True, "program": "wardenctl",
                             "version": m.group(1), "build": m.group(2)})
        # Built from this tree: the build names one of its commits.
        source = os.environ.get("WARDEN_SOURCE_DIR", "")
        inside = subprocess.run(["git", "-C", source, "rev-parse", "--show-toplevel"],
                                capture_output=True, text=True)
        if source and inside.returncode == 0 and \
                os.path.realpath(inside.stdout.strip()) == os.path.realpath(source):
            commit = m.group(2).replace("-dirty", "")
            self.assertNotEqual(commit, "unknown")
            found = subprocess.run(["git", "-C", source, "cat-file", "-e", commit + "^{commit}"])
            self.assertEqual(found.returncode, 0, "build %s is no commit of %s" % (commit, source))


class Json(unittest.TestCase):
    def parse(self, p, code, what):
        self.assertEqual(p.returncode, code, "%s: %s%s" % (what, p.stdout, p.stderr))
        try:
            j = json.loads(p.stdout)
        except ValueError as e:
            self.fail("%s: stdout is not one JSON object (%s): %r" % (what, e, p.stdout))
        self.assertIsInstance(j, dict, what)
        self.assertEqual(j.get("schema"), 1, what)
        self.assertIsInstance(j.get("ok"), bool, what)
        # A check not ok, or a dry run the guard would block, ran: ok, exit 1.
        if code != 0 and what.split()[0] != "check" and "--dry-run" not in what:
            self.assertIs(j["ok"], False, what)
            self.assertIsInstance(j.get("error"), str, what)
            self.assertTrue(j["error"], what)
        return j

    def test_every_command_prints_json_that_parses(self):
        with Wardend() as wd:
            wd.write("flag", "")
            wd.start(CONFIG.format(**wd.paths))
            wd.wait_event("check.state", check="flag", state="ok")
            # (arguments, exit code): every command of the usage, its
            # refusals and failures too.
            cases = [
                (["status"], 0),
                (["status", "--group", "disks"], 0),
                (["status", "--group", "nope"], 1),
                (["check", "flag"], 0),
                (["check", "--group", "disks"], 0),
                (["check", "nope"], 1),
                (["run", "fix", "--dry-run"], 0),
                (["run", "fix", "--wait"], 0),
                (["run", "broken", "--wait"], 1),
                (["run", "fix"], 0),
                (["run", "nope"], 1),
                (["run", "deploy", "--dry-run"], 0),
                (["run", "deploy", "--wait"], 0),
                (["resume"], 0),
                (["abort"], 0),                     # nothing runs: says so
                (["abort", "--job", "nope"], 1),
                (["top"], 2),   # a terminal view: no --json (status --json is its form)
                (["pause", "--reason", "json", "--for", "1h"], 0),
                (["pause", "--reason", "json", "--group", "nope"], 1),
                (["run", "fix", "--dry-run"], 1),   # the guard would block it
                (["unpause"], 0),
                (["unpause", "--all"], 0),
                (["disable", "flag", "--reason", "json", "--for", "1h"], 0),
                (["enable", "flag"], 0),
                (["enable", "nope"], 1),
                (["reload"], 0),
                (["events", "-n", "3"], 0),
                (["events", "--event", "check.state"], 1),   # filters need -f
                (["events", "-f", "--check", "nope"], 1),
                (["validate"], 0),
                (["version"], 0),
                (["fleet", "status"], 1),   # no [fleet] and no etcd mutex
                (["fleet", "halt", "--reason", "x"], 1),
                (["fleet", "clear"], 1),
                (["fleet", "release", "g", "h"], 1),
                (["help"], 0),
                (["help", "check"], 0),
                (["help", "action", "exec"], 0),
                (["help", "check", "nope"], 2),
            ]
            seen = set()
            for args, code in cases:
                what = " ".join(args)
                with self.subTest(command=what):
                    j = self.parse(wd.ctl(*(args + ["--json"]), timeout=60), code, what)
                    seen.add(args[0])
                    if what == "status":
                        self.assertEqual(j["host"], "json-test")
                        self.assertIs(j["ok"], True)
                    if what == "check flag":
                        self.assertEqual((j["check"], j["result"]), ("flag", "ok"))
                    if what == "run fix --wait":
                        self.assertEqual(j["event"]["event"], "action.finish")
                    if what == "run broken --wait":
                        self.assertEqual(j["event"]["result"], "fail")
                    if what == "events -n 3":
                        self.assertEqual(len(j["events"]), 3)
                    if what.startswith("pause --reason json --for"):
                        self.assertEqual((j["scope"], j["no_expiry"]), ("host", False))
                    if what == "validate":
                        self.assertEqual((j["checks"], j["actions"], j["jobs"]), (1, 2, 1))
                    if what == "fleet status":
                        self.assertIn("no [fleet]", j["error"])
                    if what == "help":
                        self.assertEqual({c["name"] for c in j["commands"]}, usage_commands())
                    if what == "help action exec":
                        self.assertIn("command", [o["key"] for o in j["options"]])
                        self.assertIn("[action", j["example"])
            self.assertEqual(sorted(usage_commands() - seen), [],
                             "commands of the usage without a --json case here")

            # A check not ok: ok (it ran) but exit 1, as the text output.
            os.unlink(os.path.join(wd.dir, "flag"))
            j = self.parse(wd.ctl("check", "flag", "--json"), 1, "check flag (crit)")
            self.assertEqual(j["result"], "crit")

            # Whatever fails, stdout holds the JSON: an invalid config...
            bad = wd.write("bad.ini", "[check x]\ntype = nope\n")
            p = run([WARDENCTL, "-c", bad, "validate", "--json"], check=False)
            j = self.parse(p, 1, "validate (bad)")
            self.assertTrue(any("nope" in e for e in j["errors"]), j)
            # ... a daemon that cannot be reached (exit 3) ...
            p = run([WARDENCTL, "-s", os.path.join(wd.dir, "none.sock"), "status", "--json"],
                    check=False)
            j = self.parse(p, 3, "status (no daemon)")
            self.assertIn("not running", j["error"])
            self.assertEqual(p.stderr, "")
            # ... and a usage error (exit 2; the usage still on stderr).
            p = wd.ctl("status", "--bogus", "--json")
            j = self.parse(p, 2, "status --bogus")
            self.assertIs(j["usage"], True)
            self.assertIn("usage:", p.stderr)


if __name__ == "__main__":
    unittest.main()
