"""A full disk under the state dir: the events file, the fluentd buffer, the
state file and the job journal live on a 2 MB tmpfs that a filler fills
while checks flip and actions run, and that is then freed. Nothing may be
torn or lost: every line of the events file parses, seq has no gap, fluentd
gets every seq, the state file and the journal load, a job step that the
journal cannot record does not start, and wardend says the trouble once and
its end once.

Needs root (mount); skipped otherwise."""

import errno
import json
import os
import shutil
import subprocess
import time
import unittest

from harness import COIN_AND_NOTE, Wardend, base_config
from test_fluentd import Receiver

CONFIG = base_config("itest-full", mutex_off=True) + """
[fluentd]
address     = 127.0.0.1:{port}
ack_timeout = 10s

; a job whose steps leave marks outside the tmpfs
[action mark_one]
type    = exec
command = /bin/sh -c 'echo one >> {dir}/ran'

[action mark_two]
type    = exec
command = /bin/sh -c 'echo two >> {dir}/ran'

[job marks]
steps = mark_one, mark_two
""" + COIN_AND_NOTE


@unittest.skipUnless(os.geteuid() == 0, "mounting a tmpfs needs root")
class FullDisk(unittest.TestCase):
    def setUp(self):
        self.wd = Wardend()
        self.mounted = False
        state = self.wd.paths["state_dir"]
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", state],
                       check=True)
        self.mounted = True
        self.rx = Receiver(self.wd.dir)   # its output is outside the tmpfs

    def tearDown(self):
        try:
            if self.wd.running():
                self.wd.kill()
            self.rx.stop()
        finally:
            if self.mounted:
                subprocess.run(["umount", "-l", self.wd.paths["state_dir"]], check=False)
            self.wd.__exit__(None, None, None)

    def fill(self):
        """Fills the tmpfs to the last byte; returns the filler's path."""
        filler = os.path.join(self.wd.paths["state_dir"], "filler")
        subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=4k"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        return filler

    def ran(self):
        try:
            with open(os.path.join(self.wd.dir, "ran")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def events_in_file(self):
        """Every line of the events file, parsed (a torn line fails the test),
        and seq checked for gaps and drops."""
        with open(self.wd.paths["events"]) as f:
            data = f.read()
        self.assertTrue(data.endswith("\n"), data[-300:])
        events = [json.loads(line) for line in data.splitlines()]
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, list(range(seqs[0], seqs[-1] + 1)), "events file has a gap")
        self.assertFalse([e for e in events if e["event"] == "events.dropped"])
        return events

    def received(self):
        return {r["record"]["seq"] for r in self.rx.records()
                if r["record"].get("host") == "itest-full"}

    def test_a_full_disk_tears_nothing_and_loses_nothing(self):
        self.rx.start()
        self.wd.start(CONFIG.format(port=self.rx.port, **self.wd.paths))
        self.wd.wait_for(lambda ev: len(ev) >= 6, timeout=60)

        filler = self.fill()
        deadline = time.monotonic() + 60
        while True:
            st = self.wd.status()
            if st["events"]["held"] >= 5 and st["events"]["fluentd"]["held"] >= 5:
                break
            self.assertLess(time.monotonic(), deadline,
                            "no events held while the disk is full: %s" % st["events"])
            time.sleep(0.5)
        self.assertEqual(st["events"]["file_error"], "No space left on device")
        self.assertTrue(st["events"]["file_error_since"])
        self.assertTrue(st["events"]["fluentd"]["last_error"])
        # Checks and actions go on meanwhile.
        runs = {c["name"]: c["runs"] for c in st["checks"]}
        time.sleep(3)
        st = self.wd.status()
        self.assertGreater({c["name"]: c["runs"] for c in st["checks"]}["coin"], runs["coin"])
        # What reached the file meanwhile (a line that still fits in the
        # file's last page) is whole: no partial line at its end.
        with open(self.wd.paths["events"]) as f:
            data = f.read()
        self.assertTrue(data.endswith("\n"), data[-300:])
        for line in data.splitlines():
            json.loads(line)

        os.unlink(filler)
        deadline = time.monotonic() + 30
        while True:
            st = self.wd.status()
            if st["events"]["held"] == 0 and st["events"]["file_error"] is None \
                    and st["events"]["fluentd"]["held"] == 0:
                break
            self.assertLess(time.monotonic(), deadline,
                            "held events not written after the disk was freed: %s" % st["events"])
            time.sleep(0.5)
        self.wd.wait_for(lambda ev: len(ev) >= 3, since=len(self.wd.events()), timeout=60)
        self.wd.stop()

        # The events file: every line whole, seq with no gap, no drop.
        seqs = [e["seq"] for e in self.events_in_file()]
        # fluentd got every one of them.
        self.rx.stop()
        self.assertEqual(set(seqs) - self.received(), set(), "not shipped")
        # The state file loads (never torn: written aside, then renamed).
        with open(os.path.join(self.wd.paths["state_dir"], "state.json")) as f:
            json.load(f)
        # Every fluentd buffer segment and the journal still read whole at
        # the next start: nothing cut, nothing set aside.
        self.wd.start()
        self.wd.wait_event("daemon.start")
        self.wd.stop()
        log = self.wd.log()
        self.assertNotIn("torn or corrupt record", log)
        self.assertNotIn("ignoring unreadable", log)
        self.assertNotIn("job journal unusable", log)
        # Said once each way, not once per event.
        self.assertEqual(log.count("cannot write events to"), 1, log[-3000:])
        self.assertEqual(log.count("events file {} is written again after".format(
            self.wd.paths["events"])), 1, log[-3000:])
        self.assertEqual(log.count("holding events in memory"), 1, log[-3000:])
        self.assertEqual(log.count("the buffer takes events again"), 1, log[-3000:])
        self.assertLessEqual(log.count("cannot save state"), 1, log[-3000:])

    def test_a_job_step_the_journal_cannot_record_waits_for_it(self):
        self.rx.start()
        self.wd.start(CONFIG.format(port=self.rx.port, **self.wd.paths))
        self.wd.wait_for(lambda ev: len(ev) >= 3, timeout=60)
        journal = os.path.join(self.wd.paths["state_dir"], "jobs.json")

        filler = self.fill()
        p = self.wd.ctl("run", "marks")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # Paused before its first step, which has not run; the journal is
        # what it was (whole, if it was written at all).
        deadline = time.monotonic() + 60
        while True:
            jobs = self.wd.status()["jobs"]
            running = jobs.get("running") or {}
            if running.get("paused", {}).get("reason") == "journal":
                break
            self.assertLess(time.monotonic(), deadline, "job not paused for the journal: %s"
                            % jobs)
            time.sleep(0.3)
        self.assertIn("No space left on device", jobs["journal_error"])
        self.assertTrue(jobs["journal_error_since"])
        self.assertIn("No space left on device", running["paused"]["detail"])
        self.assertEqual(running["step"], "mark_one")
        human = self.wd.ctl("status", check=True).stdout
        self.assertIn("journal   CANNOT WRITE since", human)
        time.sleep(2.5)   # a few more retries: still nothing ran
        self.assertEqual(self.ran(), [])
        if os.path.exists(journal):
            with open(journal) as f:
                json.load(f)

        os.unlink(filler)
        self.wd.wait_for(lambda ev: [e for e in ev if e["event"] == "job.finish"], timeout=60)
        self.assertEqual(self.ran(), ["one", "two"])   # each step once
        self.assertNotIn("journal_error", self.wd.status()["jobs"])
        self.wd.stop()

        with open(journal) as f:
            self.assertIsNone(json.load(f)["running"])
        events = [e for e in self.events_in_file() if e["event"].startswith("job.")]
        paused = [e for e in events if e["event"] == "job.paused"]
        self.assertEqual(len(paused), 1, paused)   # one event for the whole wait
        self.assertEqual(paused[0]["reason"], "journal")
        self.assertEqual([(e["event"], e.get("step"), e.get("result")) for e in events],
                         [("job.queued", None, None), ("job.start", None, None),
                          ("job.paused", "mark_one", "paused"),
                          ("job.step", "mark_one", "start"), ("job.step", "mark_one", "ok"),
                          ("job.step", "mark_two", "start"), ("job.step", "mark_two", "ok"),
                          ("job.finish", None, "ok")])
        self.rx.stop()
        self.assertEqual({e["seq"] for e in events} - self.received(), set(), "not shipped")
        log = self.wd.log()
        self.assertEqual(log.count("cannot write the job journal"), 1, log[-3000:])
        self.assertEqual(log.count("the job journal {} is written again".format(journal)), 1,
                         log[-3000:])

    def test_a_read_only_state_dir_is_said_and_caught_up_on(self):
        # A read-only bind mount over the state dir: files open for writing
        # (the events file, the buffer segment) go on, anything made anew
        # (state.json, jobs.json, seq, the acked file, a new segment) gets
        # EROFS. (A file system the kernel turns read-only fails the open
        # files too: that is the full-disk case above.)
        self.rx.start()
        self.wd.start(CONFIG.format(port=self.rx.port, **self.wd.paths))
        self.wd.wait_for(lambda ev: len(ev) >= 4, timeout=60)
        state = self.wd.paths["state_dir"]
        subprocess.run(["mount", "--bind", state, state], check=True)
        bound = True
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", state], check=True)
            p = self.wd.ctl("run", "marks")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            deadline = time.monotonic() + 60
            while True:
                st = self.wd.status()
                if st.get("state_save_error") and (st["jobs"]["running"] or {}).get(
                        "paused", {}).get("reason") == "journal":
                    break
                self.assertLess(time.monotonic(), deadline, "no trouble said: %s" % st)
                time.sleep(0.5)
            self.assertIn("Read-only file system", st["state_save_error"])
            self.assertIn("Read-only file system", st["jobs"]["journal_error"])
            self.assertEqual(self.ran(), [])
            runs = {c["name"]: c["runs"] for c in st["checks"]}
            time.sleep(2.5)
            st = self.wd.status()
            self.assertGreater({c["name"]: c["runs"] for c in st["checks"]}["coin"], runs["coin"])
        finally:
            if bound:
                subprocess.run(["umount", "-l", state], check=False)
        self.wd.wait_for(lambda ev: [e for e in ev if e["event"] == "job.finish"], timeout=60)
        self.assertEqual(self.ran(), ["one", "two"])
        deadline = time.monotonic() + 90
        while self.wd.status().get("state_save_error"):   # tried again every minute at most
            self.assertLess(time.monotonic(), deadline, "state never saved again")
            time.sleep(1)
        self.wd.stop()
        seqs = [e["seq"] for e in self.events_in_file()]
        self.rx.stop()
        self.assertEqual(set(seqs) - self.received(), set(), "not shipped")
        for name in ("state.json", "jobs.json"):
            with open(os.path.join(state, name)) as f:
                json.load(f)


def remove_tree(path, timeout=10):
    """rm -rf of a directory a running wardend writes in. The daemon makes
    and renames files there (state.json.tmp.<pid>, a buffer segment) while
    the tree is walked: an entry listed may be gone when it is unlinked
    (ENOENT, which rm -f ignores) and one made after the listing leaves the
    directory not empty at its rmdir (ENOTEMPTY: rm -rf fails too, and is
    run again). Both are the race of any removal beside a writer, not
    wardend's doing; the removal is done again until it succeeds."""
    def gone_already(func, entry, exc_info):
        if not (isinstance(exc_info[1], FileNotFoundError) and entry != path):
            raise exc_info[1]
    deadline = time.monotonic() + timeout
    while True:
        try:
            shutil.rmtree(path, onerror=gone_already)
            return
        except OSError as e:
            if e.errno != errno.ENOTEMPTY or time.monotonic() > deadline:
                raise


class DeletedStateDir(unittest.TestCase):
    """rm -rf of the state dir under a running wardend: it says so, makes
    the directory and its files again, and goes on (seq included)."""

    def test_the_state_dir_is_made_again(self):
        wd = Wardend()
        self.addCleanup(wd.__exit__, None, None, None)
        rx = Receiver(wd.dir)
        self.addCleanup(rx.stop)
        rx.start()
        wd.start(CONFIG.format(port=rx.port, **wd.paths))
        wd.wait_for(lambda ev: len(ev) >= 4, timeout=60)
        state = wd.paths["state_dir"]
        last_before = wd.events()[-1]["seq"]
        remove_tree(state)
        # Within a few seconds: the events file, the state file and the
        # fluentd buffer are there again.
        deadline = time.monotonic() + 30
        while not (os.path.exists(wd.paths["events"]) and
                   os.path.exists(os.path.join(state, "state.json")) and wd.events()):
            self.assertLess(time.monotonic(), deadline, "state dir not made again: %s"
                            % wd.log()[-2000:])
            time.sleep(0.3)
        p = wd.ctl("run", "marks", "--wait", timeout=60)   # the journal too
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        wd.wait_for(lambda ev: len(ev) >= 3, timeout=60)
        wd.stop()
        with open(wd.paths["events"]) as f:
            data = f.read()
        self.assertTrue(data.endswith("\n"))
        seqs = [json.loads(line)["seq"] for line in data.splitlines()]
        # seq goes on from where it was, no repeat, no gap after the first.
        self.assertGreater(seqs[0], last_before)
        self.assertEqual(seqs, list(range(seqs[0], seqs[-1] + 1)))
        for name in ("state.json", "jobs.json"):
            with open(os.path.join(state, name)) as f:
                json.load(f)
        self.assertEqual(os.stat(state).st_mode & 0o777, 0o750)
        log = wd.log()
        self.assertIn("was removed: made it again", log)
        self.assertIn("was gone: made it again", log)
        # Every event reached fluentd, those of the removed file included.
        rx.stop()
        got = {r["record"]["seq"] for r in rx.records()
               if r["record"].get("host") == "itest-full"}
        self.assertEqual(set(range(1, seqs[-1] + 1)) - got, set(), "not shipped")


if __name__ == "__main__":
    unittest.main()
