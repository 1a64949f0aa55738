"""completion: wardenctl. etc/bash-completion/wardenctl is sourced in a
bash without startup files and asked for COMPREPLY the way bash asks it
(COMP_WORDS, COMP_CWORD, the function `complete -p wardenctl` names):

- the commands are exactly those of `wardenctl --help`, and each command
  (and fleet subcommand) is offered exactly the options its usage line
  gives it; before a command, the global options;
- without a daemon, names come from the config: `check` offers the
  [check NAME]s, `run` the actions and jobs (not waits, not checks), of the
  -c FILE and of the files its include names; `fleet release` the jobs'
  slot groups; files after -c;
- with a running wardend (tests/integration/harness.py), names come from
  it: a check added to the file is not offered until `wardenctl reload`,
  jobs still come from the file, and `-s SOCKET` alone finds them through
  the config the daemon reports;
- `help` is offered `check` and `action`, and then the types of the
  reference (docs/configuration.md's type tables), which the completion
  reads from `wardenctl help check` / `help action`;
- when the bash-completion package is there: `cmake --install` puts the
  file where it looks (share/bash-completion/completions under
  XDG_DATA_DIRS), it loads it on demand, and it completes the same.

Environment (set by CTest): WARDENCTL, WARDEND, WARDEN_SOURCE_DIR,
WARDEN_BUILD_DIR (for cmake --install; that test is skipped without it).
"""

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

from harness import SOURCE_DIR, WARDENCTL, Wardend, base_config, write_file

COMPLETION = os.path.join(SOURCE_DIR, "etc", "bash-completion", "wardenctl")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
BUILD_DIR = os.environ.get("WARDEN_BUILD_DIR")
OPTION = re.compile(r"(?<![\w-])--?[a-z][a-z-]*")


def usage():
    """(commands, {(command, subcommand or None): {options}}, global options)
    of `wardenctl --help`."""
    text = subprocess.run([WARDENCTL, "--help"], capture_output=True, text=True, check=True,
                          timeout=30).stdout
    commands_block = text.split("\ncommands:\n", 1)[1].split("\noptions:\n", 1)[0]
    options_block = text.split("\noptions:\n", 1)[1]
    commands, options = [], {}
    for line in commands_block.splitlines():
        m = re.match(r"^  ([a-z]\S*)(.*?)(?:\s{2,}.*)?$", line)
        if not m:
            continue
        command = m.group(1)
        commands.append(command)
        parts = (command + m.group(2)).split(" | ")
        if len(parts) == 1:
            options[(command, None)] = set(OPTION.findall(m.group(2)))
        for i, part in enumerate(parts if len(parts) > 1 else []):
            words = part.split()
            options[(command, words[1] if i == 0 else words[0])] = set(OPTION.findall(part))
    return commands, options, set(OPTION.findall(options_block))


def reference_types(heading):
    """The types of the `| type | keys |` table under `heading` in
    docs/configuration.md, sorted."""
    types, current, in_table = [], None, False
    with open(os.path.join(SOURCE_DIR, "docs", "configuration.md"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                current = line.strip()
            if line.startswith("| type | keys |"):
                in_table = True
                continue
            if not line.startswith("|"):
                in_table = False
            m = re.match(r"^\| `([a-z_]+)` \|", line)
            if in_table and current == heading and m:
                types.append(m.group(1))
    return sorted(types)


def complete(words, env=None, loader=None):
    """COMPREPLY for the command line `words` (its last word is the one
    being completed, "" for a new word). loader: bash lines that make the
    completion known (default: source the file of the tree)."""
    loader = loader or "source %s" % shlex.quote(COMPLETION)
    script = """
%s
COMP_WORDS=(%s)
COMP_CWORD=%d
COMP_LINE=%s
COMP_POINT=${#COMP_LINE}
spec=$(complete -p wardenctl) || exit 99
function=$(sed -n 's/.* -F \\([^ ]*\\) .*/\\1/p' <<< "$spec")
"$function" wardenctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%%s\\n' "${COMPREPLY[@]}"
""" % (loader, " ".join(shlex.quote(w) for w in words), len(words) - 1,
       shlex.quote(" ".join(words)))
    child_env = dict(os.environ)
    # A loaded machine (the sanitized build) must not make the daemon look
    # absent: the names would then come from the file.
    child_env["WARDENCTL_COMPLETION_TIMEOUT"] = "60"
    child_env["PATH"] = os.path.dirname(os.path.abspath(WARDENCTL)) + ":" + child_env["PATH"]
    child_env.update(env or {})
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, timeout=60, env=child_env)
    assert p.returncode == 0 and not p.stderr, "bash: exit %d\n%s" % (p.returncode, p.stderr)
    return sorted(line for line in p.stdout.splitlines() if line)


CONFIG = """
[daemon]
state_dir = {dir}/state
include   = conf.d/*.ini, extra.ini   ; a comment
[control]
socket = {dir}/nobody.sock
[mutex]
mode = off
[check disk_root]
type = disk
path = /
"""
INCLUDED = """
[check  file_there]
type = file
path = /
  [action page_dba]
type    = notify
message = {{check}} is {{state}}
; [action commented_out]
[wait healthy]
checks = disk_root
[job upgrade]
steps = page_dba, healthy
slot  = chain-a
"""
EXTRA = """
[job by_hand]
steps = page_dba
slot = chain-b
"""


class WithoutDaemon(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.commands, cls.options, cls.global_options = usage()
        cls.dir = tempfile.mkdtemp(prefix="warden-completion-")
        cls.config = write_file(os.path.join(cls.dir, "warden.ini"),
                                CONFIG.format(dir=cls.dir))
        os.mkdir(os.path.join(cls.dir, "conf.d"))
        write_file(os.path.join(cls.dir, "conf.d", "a.ini"), INCLUDED.format())
        write_file(os.path.join(cls.dir, "extra.ini"), EXTRA)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_commands_are_those_of_the_usage(self):
        self.assertGreater(len(self.commands), 8)
        self.assertEqual(sorted(self.commands), complete(["wardenctl", ""]))
        self.assertEqual(["reload", "resume", "run"], complete(["wardenctl", "r"]))
        self.assertEqual(["status"], complete(["wardenctl", "-c", self.config, "st"]))

    def test_global_options_before_a_command(self):
        offered = complete(["wardenctl", "-"])
        self.assertTrue(self.global_options <= set(offered), offered)
        self.assertEqual(["--config"], complete(["wardenctl", "--c"]))

    def test_each_command_is_offered_the_options_of_its_usage(self):
        for (command, sub), options in sorted(self.options.items(), key=str):
            with self.subTest(command=command, sub=sub):
                words = ["wardenctl", command] + ([sub] if sub else [])
                if command in ("check", "run"):
                    words.append("some_name")
                self.assertEqual(sorted(options), complete(words + ["-"]))
        self.assertEqual(["--dry-run", "--json", "--wait"],
                         complete(["wardenctl", "run", "x", "--"]))
        self.assertEqual(["--dry-run", "--json"], complete(["wardenctl", "run", "x", "--wait", "-"]))
        # --event and --check of events -f repeat: offered again.
        self.assertEqual(["--check", "--event", "--json", "-n"],
                         complete(["wardenctl", "events", "-f", "--event", "a", "-"]))

    def test_fleet_subcommands(self):
        subs = sorted(sub for (command, sub) in self.options if command == "fleet")
        self.assertEqual(["cancel", "clear", "halt", "release", "run", "status"], subs)
        self.assertEqual(subs, complete(["wardenctl", "fleet", ""]))

    def test_names_from_the_config_and_its_includes(self):
        self.assertEqual(["disk_root", "file_there"],
                         complete(["wardenctl", "-c", self.config, "check", ""]))
        self.assertEqual(["by_hand", "page_dba", "upgrade"],
                         complete(["wardenctl", "-c", self.config, "run", ""]))
        # Options may follow the command.
        self.assertEqual(["page_dba"], complete(["wardenctl", "run", "-c", self.config, "p"]))
        self.assertEqual(["chain-a", "chain-b"],
                         complete(["wardenctl", "--config", self.config, "fleet", "release", ""]))
        # One name only: `run NAME` takes no second one.
        self.assertEqual([], complete(["wardenctl", "-c", self.config, "run", "upgrade", ""]))
        # A config that cannot be read gives no names, and no error.
        self.assertEqual([], complete(["wardenctl", "-c", self.dir + "/missing.ini", "run", ""]))

    def test_help_offers_the_types_of_the_reference(self):
        self.assertEqual(["action", "check"], complete(["wardenctl", "help", ""]))
        for kind, heading in (("check", "## [check NAME]"), ("action", "## [action NAME]")):
            with self.subTest(kind=kind):
                types = reference_types(heading)
                self.assertGreater(len(types), 4)
                self.assertEqual(types, complete(["wardenctl", "help", kind, ""]))
                self.assertEqual([t for t in types if t.startswith("mysql_")],
                                 complete(["wardenctl", "help", kind, "mysql_"]))
                # One type only.
                self.assertEqual([], complete(["wardenctl", "help", kind, types[0], ""]))
        self.assertEqual([], complete(["wardenctl", "help", "job", ""]))

    def test_files_after_config_and_socket(self):
        prefix = os.path.join(self.dir, "wa")
        self.assertEqual([self.config], complete(["wardenctl", "-c", prefix]))
        self.assertEqual([self.config], complete(["wardenctl", "status", "-s", prefix]))
        self.assertEqual([], complete(["wardenctl", "pause", "--reason", ""]))

    @unittest.skipUnless(os.path.exists(BASH_COMPLETION), "bash-completion is not installed "
                         "(scripts/setup installs it)")
    @unittest.skipUnless(BUILD_DIR, "WARDEN_BUILD_DIR is not set")
    def test_installed_where_bash_completion_loads_it(self):
        prefix = os.path.join(self.dir, "prefix")
        subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], check=True,
                       capture_output=True, timeout=120)
        installed = os.path.join(prefix, "share", "bash-completion", "completions", "wardenctl")
        with open(installed, "rb") as f, open(COMPLETION, "rb") as g:
            self.assertEqual(g.read(), f.read())
        loader = ("source %s\n__load_completion wardenctl || exit 98"
                  % shlex.quote(BASH_COMPLETION))
        env = {"XDG_DATA_DIRS": os.path.join(prefix, "share"),
               "BASH_COMPLETION_USER_DIR": os.path.join(self.dir, "no-user-dir")}
        self.assertEqual(sorted(self.commands), complete(["wardenctl", ""], env, loader))
        self.assertEqual(["by_hand", "page_dba", "upgrade"],
                         complete(["wardenctl", "-c", self.config, "run", ""], env, loader))
        self.assertEqual([self.config],
                         complete(["wardenctl", "-c", os.path.join(self.dir, "wa")], env, loader))


DAEMON_CONFIG = base_config("completion-test", mutex_off=True) + """
[check disk_root]
type  = disk
path  = /
every = 1h

[action page_dba]
type    = notify
message = {{check}} is {{state}}

[job nightly]
steps    = page_dba
schedule = 0 3 * * *

[job by_hand]
steps = page_dba
"""
ADDED = """
[check added_later]
type  = file
path  = /
every = 1h
"""


class WithDaemon(unittest.TestCase):
    def test_names_come_from_the_running_daemon(self):
        with Wardend() as wd:
            wd.start(DAEMON_CONFIG.format(**wd.paths))
            wd.wait_event("daemon.start")
            config = wd.paths["config"]
            self.assertEqual(["disk_root"], complete(["wardenctl", "-c", config, "check", ""]))
            # A check added to the file is not the daemon's until a reload.
            wd.write_config(wd.config + ADDED)
            self.assertEqual(["disk_root"], complete(["wardenctl", "-c", config, "check", ""]))
            self.assertEqual(["by_hand", "nightly", "page_dba"],
                             complete(["wardenctl", "-c", config, "run", ""]))
            self.assertEqual(0, wd.ctl("reload").returncode)
            self.assertEqual(["added_later", "disk_root"],
                             complete(["wardenctl", "-c", config, "check", ""]))
            # The socket alone: the daemon names its config, for the jobs.
            socket = wd.paths["control"]
            self.assertEqual(["added_later", "disk_root"],
                             complete(["wardenctl", "-s", socket, "check", ""]))
            self.assertEqual(["by_hand", "nightly", "page_dba"],
                             complete(["wardenctl", "run", "-s", socket, ""]))


if __name__ == "__main__":
    unittest.main()
