"""The modes of what wardend creates, whatever its umask: started with a
permissive umask (0000) and a strict one (0077), every directory and file
it made must have the mode docs/behaviour.md ("File modes") gives."""

import os
import stat
import unittest

from harness import Wardend, free_port

CONFIG = """
[daemon]
host_id   = modes-db
state_dir = {dir}/var/lib/warden
interval  = 1s
jitter    = 0%

[log]
file   = {dir}/log/warden/wardend.log
events = {dir}/spool/warden/events.jsonl

[control]
socket = {dir}/run/warden/wardend.sock

[mutex]
mode = off

[fluentd]
address     = 127.0.0.1:{fluentd_port}
stop_flush  = 0s

[check root]
type   = disk
path   = /
metric = free_pct
crit   = > 0
on_crit = touch

[action touch]
type    = exec
command = /bin/true

[job one]
steps = touch
"""


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class Modes(unittest.TestCase):
    maxDiff = None

    def run_with_umask(self, umask):
        with Wardend() as wd:
            d = wd.dir
            wd.paths["events"] = os.path.join(d, "spool", "warden", "events.jsonl")
            old = os.umask(umask)
            try:
                wd.start(CONFIG.format(dir=d, fluentd_port=free_port()))
            finally:
                os.umask(old)
            wd.wait_event("action.finish", action="touch", timeout=60)
            p = wd.ctl("run", "one", "--wait", timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            p = wd.ctl("pause", "--reason", "modes test")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

            state_dir = os.path.join(d, "var", "lib", "warden")
            buffer_dir = os.path.join(state_dir, "buffer")
            segments = [os.path.join(buffer_dir, f) for f in os.listdir(buffer_dir)
                        if f.endswith(".seg")]
            self.assertTrue(segments, "no buffer segment in %s" % buffer_dir)
            expected = {
                # parents wardend had to create: 0755; its own directories
                os.path.join(d, "var"): 0o755,
                os.path.join(d, "var", "lib"): 0o755,
                state_dir: 0o750,
                buffer_dir: 0o700,
                os.path.join(d, "log"): 0o755,
                os.path.join(d, "log", "warden"): 0o750,
                os.path.join(d, "spool"): 0o755,
                os.path.join(d, "spool", "warden"): 0o750,
                os.path.join(d, "run"): 0o755,
                os.path.join(d, "run", "warden"): 0o755,
                # files
                os.path.join(state_dir, "state.json"): 0o600,
                os.path.join(state_dir, "jobs.json"): 0o600,
                os.path.join(state_dir, "seq"): 0o600,
                os.path.join(d, "spool", "warden", "events.jsonl"): 0o640,
                os.path.join(d, "log", "warden", "wardend.log"): 0o640,
                os.path.join(d, "run", "warden", "wardend.sock"): 0o660,
            }
            for seg in segments:
                expected[seg] = 0o600
            got = {path: mode(path) for path in expected}
            self.assertEqual({p: oct(m) for p, m in got.items()},
                             {p: oct(m) for p, m in expected.items()})
            self.assertTrue(stat.S_ISSOCK(os.lstat(
                os.path.join(d, "run", "warden", "wardend.sock")).st_mode))

            # Nothing else wardend made is missing from the list above (after
            # the stop: no temporary file of a save in flight; the socket is gone).
            self.assertEqual(wd.stop(), 0)
            del expected[os.path.join(d, "run", "warden", "wardend.sock")]
            made = set()
            for top in ("var", "log", "spool", "run"):
                for root, dirs, files in os.walk(os.path.join(d, top)):
                    for name in dirs + files:
                        made.add(os.path.join(root, name))
            self.assertEqual(sorted(made - set(expected)), [])

    def test_permissive_umask(self):
        self.run_with_umask(0o000)

    def test_strict_umask(self):
        self.run_with_umask(0o077)


if __name__ == "__main__":
    unittest.main()
