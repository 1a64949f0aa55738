"""The shipped samples are safe to copy: wardend running etc/warden.ini and
etc/conf.d/*.ini against a MariaDB of this test's own, for a day's worth of
probes of MySQL's TCP port, leaves the server's Aborted_connects,
Access_denied_errors and Aborted_clients where they were and writes no
"Aborted connection" / "Access denied" warning to its error log
(log_warnings = 2).

How the samples are run. The files are copied as they are, with these
changes only: the paths of the host (/var/lib/warden, /run/warden, the
server's socket, pidfile and datadir, /etc/warden/mysql.pass, warmup.sql)
point into the test's directories and at its server, port 3306 is the
server's port, `[control] group` is dropped (no such group here), the
mutex is a test double that stays held (no guarded action can run: the
samples restart services and purge binlogs), `jitter` is 0%, and every
`every` (and the default `interval`) is divided by 100 (10s -> 100ms, the
shortest the daemon allows; 1m -> 600ms).

A day. The sample that probes the port runs every 10 s: 8,640 probes a
day. 100 ms apart that would still take 864 s, so each check of the
samples that reaches the server's port (a `tcp` check of it, or a mysql
check whose `connection` is a `[mysql NAME]` with that `port`) runs as CLONES copies side by side, and
the test waits until their runs add up to DAY_PROBES. The other checks run
at their compressed pace meanwhile (mysql_alive, every 10 s, runs a few
hundred times): they keep one connection per worker, which a day does not
multiply. What a real day adds and this does not: the 5-minute idle close
of those connections.

It can fail: with the old sample (`type = tcp`, port 3306) every probe is
one aborted connect and one warning, and test_measurement_sees_an_aborted_connect
keeps that visible on each run, for `protocol = none` and `protocol = mysql`
(which reads the greeting and still counts: docs/behaviour.md)."""

import json
import os
import re
import signal
import time
import unittest

from harness import MariaDB, MutexServer, Wardend, base_config, SOURCE_DIR

DAY_PROBES = 8640          # 24 h / 10 s
CLONES = 32                # 320 probes a second at 100 ms: ~27 s for a day
COMPRESS = 100             # every / COMPRESS, at least 100 ms
DAY_TIMEOUT = 150          # seconds: a loaded machine is slower, never a pass
COUNTERS = ("Aborted_connects", "Aborted_connects_preauth", "Aborted_clients",
            "Access_denied_errors")
# What the server logs for a connection that ended badly (log_warnings >= 2).
BAD_LINE = re.compile(r"Aborted connection|Access denied|aborted", re.I)

UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def compress(duration):
    """A sample's duration (10s, 1m, 5m) divided by COMPRESS, as 'Nms'."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration)
    assert m, "a duration this test cannot read: %r" % duration
    return "%dms" % max(100, int(m.group(1)) * UNITS_MS[m.group(2)] // COMPRESS)


def sections(text):
    """[(header, body)] of an INI text; the text before the first header
    has header None."""
    out = [[None, []]]
    for line in text.splitlines(True):
        if re.match(r"^\[[^\]]*\]", line):
            out.append([line, []])
        else:
            out[-1][1].append(line)
    return [(h, "".join(b)) for h, b in out]


def key(body, name):
    m = re.search(r"^%s\s*=\s*([^;\s]+)" % re.escape(name), body, re.M)
    return m.group(1) if m else None


class Samples:
    """The samples rewritten for wd and db (see the module's docstring)."""

    def __init__(self, wd, db, mutex_url):
        self.wd, self.db = wd, db
        self.replace = [
            ("/var/lib/warden", wd.paths["state_dir"]),
            ("/var/log/warden/events.jsonl", wd.paths["events"]),
            ("/run/warden/wardend.sock", wd.paths["control"]),
            ("/var/lib/mysql/mysql.sock", db.socket),
            ("/run/mysqld/mysqld.pid", os.path.join(db.dir, "mysqld.pid")),
            ("/var/lib/mysql", db.dir),
            ("/etc/warden/mysql.pass", db.password_file),
            ("/etc/warden/warmup.sql", os.path.join(wd.dir, "warmup.sql")),
            ("https://ops.example.com/warden/mutex.json", mutex_url),
        ]
        self.tcp_checks = []   # the checks that reach the server over TCP

    def rewrite(self, text):
        for old, new in self.replace:
            text = text.replace(old, new)
        text = re.sub(r"^(port\s*=\s*)3306\b", r"\g<1>%d" % self.db.port, text, flags=re.M)
        text = re.sub(r"^(\s*(?:every|interval)\s*=\s*)(\w+)",
                      lambda m: m.group(1) + compress(m.group(2)), text, flags=re.M)
        text = re.sub(r"^(jitter\s*=\s*)\S+", r"\g<1>0%", text, flags=re.M)
        text = re.sub(r"^group\s*=.*\n", "", text, flags=re.M)
        return text

    def write(self):
        etc = os.path.join(SOURCE_DIR, "etc")
        with open(os.path.join(etc, "warmup.sql")) as f:
            self.wd.write("warmup.sql", f.read())
        conf = {}
        for name in sorted(os.listdir(os.path.join(etc, "conf.d"))):
            if name.endswith(".ini"):
                with open(os.path.join(etc, "conf.d", name)) as f:
                    conf[name] = self.rewrite(f.read())
        # [mysql NAME] sections to the server's port, then the checks that
        # use them, and tcp checks of that port.
        port = str(self.db.port)
        tcp_connections = set()
        for text in conf.values():
            for header, body in sections(text):
                m = header and re.match(r"^\[mysql\s+(\w+)\]", header)
                if m and key(body, "host") and key(body, "port") == port:
                    tcp_connections.add(m.group(1))
        for name, text in conf.items():
            out = []
            for header, body in sections(text):
                out.append((header or "") + body)
                m = header and re.match(r"^\[check\s+(\w+)\]", header)
                if m and ((key(body, "type") == "tcp" and key(body, "port") == port)
                          or key(body, "connection") in tcp_connections):
                    self.tcp_checks.append(m.group(1))
                    for i in range(2, CLONES + 1):
                        out.append("[check %s_%d]\n%s" % (m.group(1), i, body))
            self.wd.write("conf.d/" + name, "".join(out))
        with open(os.path.join(etc, "warden.ini")) as f:
            main = self.rewrite(f.read())
        self.wd.write_config(main)
        return self


def server_state(db):
    rows = db.sql("SHOW GLOBAL STATUS WHERE Variable_name IN (%s)"
                  % ", ".join("'%s'" % c for c in COUNTERS))
    return {name: int(value) for name, value in rows}


def error_log(db):
    with open(os.path.join(db.dir, "error.log"), errors="replace") as f:
        return f.read()


def status(wd, starting=False):
    """{check name: its status}; while starting, {} until the daemon answers."""
    p = wd.ctl("status", "--json")
    if p.returncode == 3 and starting:
        return {}
    if p.returncode != 0:
        raise AssertionError("wardenctl status: %s%s" % (p.stdout, p.stderr))
    return {c["name"]: c for c in json.loads(p.stdout)["checks"]}


class SamplesAreSafe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Its own server: the counters are server-wide. log_warnings = 2 is
        # 10.11's default; said here so that the error log test means it.
        cls.db = MariaDB(["--log-warnings=2"]).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.db.__exit__(None, None, None)

    def window(self):
        """(counters, error log offset) now; self.delta() compares."""
        time.sleep(0.3)   # the server's end of connections closed just before
        return server_state(self.db), len(error_log(self.db))

    def delta(self, before):
        counters, offset = before
        after = self.window()[0]
        lines = [l for l in error_log(self.db)[offset:].splitlines() if BAD_LINE.search(l)]
        return {c: after[c] - counters[c] for c in COUNTERS}, lines

    def delta_once(self, before, moved, timeout=20):
        """delta(), asked again until moved(counts, lines) holds or `timeout`
        passes: the server counts an aborted connect, and logs it, on its
        own thread once it sees the connection end, which on a loaded
        machine can come well after the probe closed it."""
        deadline = time.monotonic() + timeout
        while True:
            counts, lines = self.delta(before)
            if moved(counts, lines) or time.monotonic() > deadline:
                return counts, lines

    def test_a_day_of_the_samples_aborts_no_connection(self):
        with MutexServer("held:the samples test runs no action") as mutex, Wardend() as wd:
            samples = Samples(wd, self.db, mutex.url).write()
            self.assertTrue(samples.tcp_checks, "no sample check reaches the server over TCP")
            p = wd.ctl("validate")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            clones = status_names(samples.tcp_checks)
            before = self.window()
            started = time.monotonic()
            wd.start()
            deadline = started + DAY_TIMEOUT
            while True:
                time.sleep(1)
                self.assertTrue(wd.running(), "wardend exited:\n" + wd.log()[-3000:])
                checks = status(wd, starting=True)
                runs = sum(checks[n]["runs"] for n in clones) if checks else 0
                if runs >= DAY_PROBES or time.monotonic() > deadline:
                    break
            took = time.monotonic() - started
            wd.stop()
            counts, lines = self.delta(before)
            print("\n%d probes of %s (x%d) in %.1f s; server counters moved by %s; "
                  "%d warning lines" % (runs, ", ".join(samples.tcp_checks), CLONES, took,
                                        counts, len(lines)))
            self.assertGreaterEqual(runs, DAY_PROBES,
                                    "a day of probes did not run in %d s" % DAY_TIMEOUT)
            # The probes measured the server (a probe that cannot connect
            # aborts nothing and would pass).
            for n in clones:
                self.assertIn(checks[n]["state"], ("ok", "warn"), checks[n])
                self.assertFalse(checks[n]["last_error"], checks[n])
            self.assertEqual(counts, {c: 0 for c in COUNTERS})
            self.assertEqual(lines, [])

    def test_measurement_sees_an_aborted_connect(self):
        """The counters and the log this test reads do move for a probe that
        does not log in: tcp, bare or reading the greeting. Runs at start
        and three `wardenctl check` each: exactly 4 probes of each."""
        with Wardend() as wd:
            wd.write_config(base_config("samples-control", mutex_off=True).format(**wd.paths) + """
[check bare]
type  = tcp
host  = 127.0.0.1
port  = %(port)d
every = 1h

[check greeting]
type     = tcp
protocol = mysql
host     = 127.0.0.1
port     = %(port)d
every    = 1h
""" % {"port": self.db.port})
            before = self.window()
            wd.start()

            def both_ran(_events):
                checks = status(wd, starting=True)
                return checks and all(c["runs"] >= 1 for c in checks.values())
            wd.wait_for(both_ran, timeout=30)
            for _ in range(3):
                for name in ("bare", "greeting"):
                    p = wd.ctl("check", name)
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            checks = status(wd)
            wd.stop()
            counts, lines = self.delta_once(
                before, lambda c, l: c["Aborted_connects"] >= 8 and len(l) >= 8)
            print("\n8 probes without a login: counters moved by %s, %d warning lines"
                  % (counts, len(lines)))
            for name in ("bare", "greeting"):
                self.assertEqual(checks[name]["runs"], 4, checks[name])
                self.assertEqual(checks[name]["state"], "ok", checks[name])
            self.assertEqual(counts["Aborted_connects"], 8)
            self.assertEqual(counts["Access_denied_errors"], 0)
            self.assertEqual(len(lines), 8, lines)
            for line in lines:
                self.assertIn("closed normally without authentication", line)


    def test_a_stop_mid_read_aborts_no_connection(self):
        """SIGTERM while a status read waits on the server: wardend lets
        the read end before it closes the connection, so the server counts
        no aborted client and logs no "Aborted connection". The server is
        stopped (SIGSTOP) meanwhile, so that a read is surely in flight."""
        with Wardend() as wd:
            wd.start((base_config("samples-stop", mysql=True, mutex_off=True) + """
[check connected]
type     = mysql_status
variable = Threads_connected
every    = 1s
""").format(socket=self.db.socket, password_file=self.db.password_file, **wd.paths))

            def ran(_events):
                checks = status(wd, starting=True)
                return checks and checks["connected"]["runs"] >= 2
            wd.wait_for(ran, timeout=30)
            before = self.window()
            os.kill(self.db.pid, signal.SIGSTOP)
            try:
                time.sleep(1.5)     # at least one tick: a read waits on the server
                wd.signal(signal.SIGTERM)
                time.sleep(1)
                waited = wd.running()
            finally:
                os.kill(self.db.pid, signal.SIGCONT)
            rc = wd.stop()
            counts, lines = self.delta_once(before, lambda c, l: c["Aborted_clients"] or l,
                                            timeout=2)
            print("\nstop mid-read: waited for the read: %s; counters moved by %s; %s"
                  % (waited, counts, lines))
            self.assertEqual(rc, 0, wd.log()[-3000:])
            self.assertTrue(waited, "wardend did not wait for the read in flight")
            self.assertEqual(counts, {c: 0 for c in COUNTERS})
            self.assertEqual(lines, [])


def status_names(checks):
    return [n for c in checks for n in [c] + ["%s_%d" % (c, i) for i in range(2, CLONES + 1)]]


if __name__ == "__main__":
    unittest.main()
