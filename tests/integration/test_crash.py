"""Crash tests: wardend is killed with SIGKILL at random moments while it
runs checks, actions, a job and ships events to fluentd at a high rate, and
is restarted each time. After every kill the state file and the job journal
load; at the end no job step ran twice, seq in the events file is strictly
increasing with no gap and no duplicate, and fluentd received every seq.

CI runs a short form (20 kills). The full form:

    WARDEN_CRASH_KILLS=200 ctest -R test_crash --output-on-failure
    # or: cd tests/integration && python3 test_crash.py --kills 200

WARDEN_CRASH_SEED makes the moments repeatable (the seed is printed)."""

import json
import os
import random
import sys
import time
import unittest

from harness import FLIP_AND_NOTE, Wardend, base_config
from test_fluentd import Receiver

KILLS = int(os.environ.get("WARDEN_CRASH_KILLS", "20"))

# FLIP_AND_NOTE: some 15 events a second.
CONFIG = base_config("crash-test", mutex_off=True) + FLIP_AND_NOTE + """
; a job of three steps, each leaving "<run> <step> start|end" marks, with a
; short sleep inside so that kills land mid-step too
[action step_one]
type    = exec
command = /bin/sh -c 'r=$(cat {dir}/run_id); echo "$r one start" >> {dir}/ran; sleep 0.3; echo "$r one end" >> {dir}/ran'

[action step_two]
type    = exec
command = /bin/sh -c 'r=$(cat {dir}/run_id); echo "$r two start" >> {dir}/ran; sleep 0.3; echo "$r two end" >> {dir}/ran'

[action step_three]
type    = exec
command = /bin/sh -c 'r=$(cat {dir}/run_id); echo "$r three start" >> {dir}/ran; sleep 0.3; echo "$r three end" >> {dir}/ran'

[job marks]
steps = step_one, step_two, step_three

[fluentd]
address     = 127.0.0.1:{port}
ack_timeout = 5s
stop_flush  = 30s
"""


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


class Crash(unittest.TestCase):
    def setUp(self):
        self.seed = int(os.environ.get("WARDEN_CRASH_SEED") or random.randrange(1 << 30))
        print("crash test: %d kills, WARDEN_CRASH_SEED=%d" % (KILLS, self.seed), flush=True)
        self.rng = random.Random(self.seed)
        self.wd = Wardend()
        self.addCleanup(self.wd.__exit__, None, None, None)
        self.rx = Receiver(self.wd.dir)
        self.addCleanup(self.rx.stop)
        self.rx.start()
        self.run_id = 0
        write_atomically(os.path.join(self.wd.dir, "run_id"), "0\n")

    def ctl(self, *args):
        return self.wd.ctl(*args, timeout=30)

    def files_load(self):
        """What a restart reads is whole: the state file and the journal."""
        state_dir = self.wd.paths["state_dir"]
        for name in ("state.json", "jobs.json"):
            path = os.path.join(state_dir, name)
            if os.path.exists(path):
                with open(path) as f:
                    text = f.read()
                try:
                    json.loads(text)
                except ValueError as e:
                    self.fail("%s does not load after a kill (%s): %r" % (name, e, text[-300:]))

    def keep_the_job_going(self):
        """After a restart: a halt left by an interrupted job is resumed, and
        a new run is queued when none is queued or running."""
        st = self.wd.status()
        if st["halt"]["halted"]:
            p = self.ctl("resume")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            st = self.wd.status()
        jobs = st["jobs"]
        if jobs["running"] is None and not jobs["queue"]:
            self.run_id += 1
            write_atomically(os.path.join(self.wd.dir, "run_id"), "%d\n" % self.run_id)
            p = self.ctl("run", "marks")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_sigkill_at_random_moments_loses_and_repeats_nothing(self):
        config = CONFIG.format(port=self.rx.port, **self.wd.paths)
        for kill in range(KILLS):
            self.wd.start(config)
            self.wd.wait_event("daemon.start", timeout=60)
            self.keep_the_job_going()
            time.sleep(self.rng.uniform(0.05, 1.5))
            self.wd.kill()
            self.files_load()

        # A last, clean run: every held event goes out, the job finishes.
        self.wd.start(config)
        self.wd.wait_event("daemon.start", timeout=60)
        self.keep_the_job_going()
        deadline = time.monotonic() + 120
        while True:
            st = self.wd.status()
            if st["jobs"]["running"] is None and not st["jobs"]["queue"] \
                    and st["events"]["fluentd"]["backlog_events"] == 0:
                break
            self.assertLess(time.monotonic(), deadline, "not settled: %s" % st["jobs"])
            time.sleep(0.5)
        self.wd.stop()
        self.files_load()

        # seq: strictly increasing, no gap, no duplicate, every line whole.
        with open(self.wd.paths["events"]) as f:
            data = f.read()
        self.assertTrue(data.endswith("\n"), data[-300:])
        events = []
        for n, line in enumerate(data.splitlines(), 1):
            try:
                events.append(json.loads(line))
            except ValueError:
                self.fail("events file line %d does not parse: %r" % (n, line[:300]))
        seqs = [e["seq"] for e in events]
        for a, b in zip(seqs, seqs[1:]):
            self.assertEqual(b, a + 1, "seq %d follows %d in the events file" % (b, a))
        self.assertFalse([e for e in events if e["event"] == "events.dropped"])
        starts = [e for e in events if e["event"] == "daemon.start"]
        self.assertEqual(len(starts), KILLS + 1)

        # fluentd got every seq at least once.
        deadline = time.monotonic() + 30
        while True:
            got = {r["record"]["seq"] for r in self.rx.records()
                   if r["record"].get("host") == "crash-test"}
            missing = set(seqs) - got
            if not missing:
                break
            self.assertLess(time.monotonic(), deadline, "%d seqs never reached fluentd: %s"
                            % (len(missing), sorted(missing)[:20]))
            time.sleep(0.5)

        # No job step ran twice: each (run, step) started at most once.
        with open(os.path.join(self.wd.dir, "ran")) as f:
            marks = [line.split() for line in f.read().splitlines()]
        started = [(run, step) for run, step, what in marks if what == "start"]
        twice = {m for m in started if started.count(m) > 1}
        self.assertFalse(twice, "steps that ran twice: %s" % sorted(twice))
        # And the job did run, and got through whole runs between the kills.
        finished = [e for e in events if e["event"] == "job.finish"]
        self.assertGreaterEqual(len(finished), 1)
        interrupted = [e for e in events if e["event"] == "job.interrupted"]
        print("crash test: %d events, %d job runs (%d finished, %d interrupted), %d steps"
              % (len(events), self.run_id, len(finished), len(interrupted), len(started)),
              flush=True)


if __name__ == "__main__":
    if "--kills" in sys.argv:
        i = sys.argv.index("--kills")
        KILLS = int(sys.argv[i + 1])
        del sys.argv[i:i + 2]
    unittest.main()
