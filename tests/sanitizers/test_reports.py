"""Sanitizer reports fail tests: the sanitized build's own programs end with
exit 86 and a report on a bug (sanitizer_selftest, built only with
WARDEN_SANITIZE), and tests/integration/harness.py turns a report in any
output it captures, or a daemon that does not exit 0 at SIGTERM, into a
failure. Without this, a clean sanitized run could mean reports nobody saw.

Environment (set by CTest): PYTHONPATH with tests/integration,
SANITIZER_SELFTEST (sanitized builds only; its test is skipped otherwise)."""

import os
import subprocess
import tempfile
import textwrap
import time
import unittest
from unittest import mock

import harness

SELFTEST = os.environ.get("SANITIZER_SELFTEST")


class SanitizedBuild(unittest.TestCase):
    @unittest.skipUnless(SELFTEST, "not a WARDEN_SANITIZE build")
    def test_every_report_ends_with_86_and_fails_run(self):
        self.assertEqual(harness.run([SELFTEST, "ok"]).returncode, 0)
        for mode, kind in (("leak", "ERROR: LeakSanitizer: detected memory leaks"),
                           ("heap-overflow", "ERROR: AddressSanitizer: heap-buffer-overflow"),
                           ("use-after-free", "ERROR: AddressSanitizer: heap-use-after-free"),
                           ("signed-overflow", "runtime error: signed integer overflow")):
            p = subprocess.run([SELFTEST, mode], capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 86, "%s:\n%s" % (mode, p.stderr))
            self.assertIn(kind, p.stderr)
            self.assertIn("selftest.cc:", p.stderr, "no symbolized stack for %s" % mode)
            with self.assertRaises(AssertionError) as caught:
                harness.run([SELFTEST, mode], check=False)
            self.assertIn("sanitizer report from %s %s" % (SELFTEST, mode), str(caught.exception))
            self.assertIn(kind, str(caught.exception))


class HarnessCatchesReports(unittest.TestCase):
    """Against stand-in daemons: shell scripts that do at SIGTERM what a
    sanitized wardend does when it finds a leak at exit."""

    def daemon(self, on_term):
        d = tempfile.mkdtemp(prefix="warden-san-")
        self.addCleanup(harness._remove, d)
        script = harness.write_file(os.path.join(d, "wardend"), textwrap.dedent("""\
            #!/bin/sh
            trap '%s' TERM
            : > "%s/ready"
            while :; do sleep 0.05; done
            """ % (on_term, d)), mode=0o700)
        self.ready = os.path.join(d, "ready")
        patcher = mock.patch.object(harness, "WARDEND", script)
        patcher.start()
        self.addCleanup(patcher.stop)

    def start(self, wd):
        """Starts the stand-in and waits for its SIGTERM trap."""
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        wd.start("")
        deadline = time.monotonic() + 30
        while not os.path.exists(self.ready):
            self.assertLess(time.monotonic(), deadline, "stand-in daemon never ready")
            time.sleep(0.02)
        return wd

    def test_clean_exit_passes(self):
        self.daemon("exit 0")
        with harness.Wardend() as wd:
            self.start(wd)
            self.assertEqual(wd.stop(), 0)

    def test_report_at_exit_fails_stop_and_with_block(self):
        self.daemon('echo "==7==ERROR: LeakSanitizer: detected memory leaks" >&2; exit 86')
        wd = self.start(harness.Wardend())
        with self.assertRaises(AssertionError) as caught:
            wd.stop()
        self.assertIn("sanitizer report from wardend", str(caught.exception))
        with self.assertRaises(AssertionError):
            wd.__exit__(None, None, None)
        self.assertFalse(os.path.exists(wd.dir))
        with self.assertRaises(AssertionError):
            with harness.Wardend() as wd2:
                self.start(wd2)

    def test_report_with_exit_0_fails(self):
        self.daemon('echo "x.cc:1:2: runtime error: load of null pointer" >&2; exit 0')
        with self.assertRaises(AssertionError) as caught:
            with harness.Wardend() as wd:
                self.start(wd)
        self.assertIn("runtime error: load of null pointer", str(caught.exception))

    def test_non_zero_exit_fails_unless_killed(self):
        self.daemon("exit 3")
        with self.assertRaises(AssertionError) as caught:
            with harness.Wardend() as wd:
                self.start(wd)
        self.assertIn("wardend exited with 3", str(caught.exception))
        with harness.Wardend() as wd:
            self.start(wd)
            self.assertEqual(wd.kill(), -9)

    def test_report_in_command_output_fails_run(self):
        with self.assertRaises(AssertionError) as caught:
            harness.run(["sh", "-c", "echo 'SUMMARY: AddressSanitizer: x' >&2; exit 1"],
                        check=False)
        self.assertIn("sanitizer report from sh -c", str(caught.exception))
        self.assertEqual(harness.run(["sh", "-c", "echo fine >&2; exit 1"],
                                     check=False).returncode, 1)


if __name__ == "__main__":
    unittest.main()
