"""Helpers for warden's integration tests (python3 standard library only).

Each test starts what it needs, in its own temporary directory, on port 0:

    with MariaDB() as db, Wardend() as wd:
        wd.start(CONFIG.format(**wd.paths, socket=db.socket))
        wd.wait_event("check.state", check="alive", state="ok")

- MariaDB: a private server (scripts/mariadb-sandbox); .socket .port .user
  .password .password_file .dir; .sql(stmt) -> rows; .stop() / .start().
- HungPeer: a TCP port that accepts and never answers; .port.
- MutexServer: tests/data/mutex_server.py; .url; .set("held:maintenance").
- Wardend: the daemon under test; .paths, .start(config, env=), .events(),
  .wait_for(pred), .wait_event(name, **fields), .ctl(...), .status() (the
  parsed `status --json`), .wait_control(), .stop(), .kill();
  Wardend(wrapper=[...]) runs it under a wrapper command (strace), .pid().
- base_config(host_id, ...): the [daemon]/[log]/[control]/[mysql]/[mutex]
  sections a test config starts with (etcd_mutex() for an etcd [mutex]).
- marking_action(name, ...), ran(wd): exec job steps that leave their name
  in a file, and what they left; read_pid(path), alive_groups(pgids).

Environment (set by CTest): WARDEND, WARDENCTL, WARDEN_SOURCE_DIR.
WARDEN_KEEP_TMP=1 keeps the temporary directories for a post-mortem.
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SOURCE_DIR = os.environ.get("WARDEN_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANDBOX = os.path.join(SOURCE_DIR, "scripts", "mariadb-sandbox")
MUTEX_SERVER = os.path.join(SOURCE_DIR, "tests", "data", "mutex_server.py")


def _binary(var, name):
    return os.environ.get(var) or os.path.join(SOURCE_DIR, "build", name)


WARDEND = _binary("WARDEND", "wardend")
WARDENCTL = _binary("WARDENCTL", "wardenctl")

# The first line of an AddressSanitizer, LeakSanitizer or UBSan report
# (scripts/test builds wardend and wardenctl with them: tests/sanitizers/).
# A report in the output of a command or of the daemon fails the test whatever
# its exit code, so one in a run that was expected to fail is not missed.
SANITIZER_REPORT = re.compile(
    r"^(==\d+==ERROR: \w+Sanitizer|SUMMARY: \w+Sanitizer|.*: runtime error: )", re.M)

# True when wardend and wardenctl are the sanitized build (set by CTest): they
# are slower and ASan holds freed memory back, so RSS and latency bounds are
# stretched there (rss_margin_kb, slack) rather than dropped.
SANITIZED = os.environ.get("WARDEN_SANITIZED") == "1"

# The sanitized wardend's ASan quarantine: freed memory ASan holds back to
# catch a use after free, counted in VmRSS. The default (256 MB) would grow
# RSS under any churn until it fills; a bounded one lets the RSS-flatness
# tests keep their meaning: growth beyond rss_margin_kb() is not quarantine.
QUARANTINE_MB = 16


def rss_margin_kb(kb):
    """An allowed RSS growth of kb in the plain build; in the sanitized one,
    plus the quarantine and its shadow memory and redzones (x1.5)."""
    return kb + (QUARANTINE_MB * 1024 * 3 // 2 if SANITIZED else 0)


def slack(seconds):
    """A latency bound for the plain build, stretched for the sanitized one
    (clang -O0 and ASan make each program start and request several times
    slower)."""
    return seconds * (3 if SANITIZED else 1)


def base_config(host_id, workers=2, level="info", mysql=False, mutex_off=False, jitter="0%",
                mutex=None, socket=None, control="", daemon="", log="",
                state_dir="{state_dir}"):
    """The sections most test configs start with, as a template for
    str.format(**wd.paths, ...): [daemon] (every 1 s, `jitter`, `workers`
    threads), [log] at `level`, with mysql=True the default [mysql]
    connection ({socket}, {password_file}: the sandbox's), and [mutex]. A
    test appends its own checks, actions and jobs. mysql may also be a str:
    more [mysql] keys.

    workers=None or level=None leave the key out (wardend's default).
    mutex: the [mutex] section's keys ("url = {url}", etcd_mutex(...), a
    {placeholder}); mutex_off=True is mutex="mode = off"; neither, no
    section. socket: a [control] socket path; control: more [control] keys;
    without either, Wardend.write_config gives the test its own socket.
    daemon, log: more keys for [daemon] and [log] (one a line). state_dir:
    another state directory than the test's own."""
    if mutex_off:
        assert mutex is None, "mutex_off and mutex"
        mutex = "mode = off"
    text = "\n[daemon]\nhost_id   = %s\nstate_dir = %s\ninterval  = 1s\njitter    = %s\n" % (
        host_id, state_dir, jitter)
    if workers is not None:
        text += "workers   = %d\n" % workers
    text += _lines(daemon)
    text += "\n[log]\n"
    if level is not None:
        text += "level  = %s\n" % level
    text += "events = {events}\n" + _lines(log)
    if socket is not None or control:
        text += "\n[control]\nsocket = %s\n" % (socket or "{control}") + _lines(control)
    if mysql:
        text += """
[mysql]
socket        = {socket}
user          = warden
password_file = {password_file}
""" + _lines(mysql if isinstance(mysql, str) else "")
    if mutex is not None:
        text += "\n[mutex]\n" + _lines(mutex)
    return text


def _lines(keys):
    """keys ("a = 1\nb = 2", or "") as whole lines."""
    return keys.strip("\n") + "\n" if keys.strip() else ""


def etcd_mutex(endpoints="{endpoint}", timeout="1s", cache="0s", poll="300ms"):
    """The keys of an etcd [mutex] for base_config(mutex=...): the test's
    etcd (default {endpoint}), prefix /warden."""
    return """backend   = etcd
endpoints = %s
prefix    = /warden
timeout   = %s
cache     = %s
poll      = %s
""" % (endpoints, timeout, cache, poll)


def mysql_peer(name, port_key, timeout="2s"):
    """A `[mysql NAME]` connection to a peer on loopback, for the same
    templates: its port from `{port_key}`, the sandbox's {password_file}."""
    return """
[mysql %s]
host = 127.0.0.1
port = {%s}
user = warden
password_file = {password_file}
connect_timeout = %s
query_timeout   = %s
""" % (name, port_key, timeout, timeout)


def _check_no_report(what, output):
    m = SANITIZER_REPORT.search(output)
    if m:
        raise AssertionError("sanitizer report from %s:\n%s" % (what, output[m.start():]))


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, check=True, timeout=60, own_group=False, **kwargs):
    """Runs cmd (a list), returns CompletedProcess with text stdout/stderr.

    check=True raises AssertionError showing the command and its output.
    own_group=True runs it in a process group of its own and kills the whole
    group at the timeout: a build (rpmbuild, cmake, the compilers) would
    otherwise go on orphaned, eating the CPU of the tests after it. (Not the
    default: ctest's own timeout kills its test's group, which a command in
    a group of its own would escape.)"""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    args = [str(c) for c in cmd]
    if own_group:
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, **kwargs) as proc:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
                raise subprocess.TimeoutExpired(args, timeout, out, err) from None
        p = subprocess.CompletedProcess(args, proc.returncode, out, err)
    else:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    _check_no_report(" ".join(map(str, cmd)), p.stderr)
    if check and p.returncode != 0:
        raise AssertionError("command failed (exit %d): %s\n--- stdout\n%s--- stderr\n%s"
                             % (p.returncode, " ".join(map(str, cmd)), p.stdout, p.stderr))
    return p


def _tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return "(%s)" % e


def _remove(path):
    if os.environ.get("WARDEN_KEEP_TMP"):
        print("kept %s" % path, file=sys.stderr)
    else:
        shutil.rmtree(path, ignore_errors=True)


def write_file(path, text, mode=0o600):
    """Writes text to path atomically, with mode (0600 by default)."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


def rss_kb(pid):
    """VmRSS of pid in kB (from /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


# A steady source of events for config templates (str.format: braces are
# doubled): every second a random byte, crit about every other run, so a
# check.state about every other second and an action (note) for each crit.
COIN_AND_NOTE = """
[check coin]
type    = program
command = od -An -N1 -tu1 /dev/urandom
value   = stdout
every   = 1s
timeout = 5s
crit    = > 127
on_crit = note

[action note]
type     = notify
severity = info
message  = {{check}} is {{state}}
"""


# The same, faster: ten runs a second (the clock's nanoseconds), a state
# change about every other run and an action (note) for each crit: some 15
# events a second.
FLIP_AND_NOTE = """
[check flip]
type    = program
command = sh -c 'date +%N'
value   = stdout
every   = 100ms
timeout = 2s
crit    = > 500000000
on_crit = note

[action note]
type     = notify
severity = info
message  = {{check}} is {{state}}
"""


def marking_action(name, mark=None, then=None, timeout=None):
    """An exec `[action NAME]` for job tests (a template for the same
    str.format): it appends `mark` (default NAME) to {dir}/ran, which
    ran(wd) reads back, then runs the shell text `then` (its exit status is
    the action's), e.g. then="echo disk on fire >&2; exit 4"."""
    command = "echo %s >> {dir}/ran" % (mark or name)
    if then:
        command += "; " + then
    text = "\n[action %s]\ntype    = exec\ncommand = /bin/sh -c '%s'\n" % (name, command)
    if timeout:
        text += "timeout = %s\n" % timeout
    return text


def ran(wd):
    """The marks that marking_action steps left in wd's {dir}/ran, in order."""
    try:
        with open(os.path.join(wd.dir, "ran")) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def read_pid(path, timeout=30):
    """Waits for a test's command to write its pid (`echo $$ > path`);
    returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise AssertionError("%s never written" % path)


def alive_groups(pgids):
    """The process groups of `pgids` that still have a live (not zombie)
    process."""
    left = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids and fields[0] != "Z":
            left.add(int(fields[2]))
    return left


def match(events, event=None, **fields):
    """The events named `event` (any if None) whose fields equal **fields."""
    return [e for e in events
            if (event is None or e.get("event") == event)
            and all(e.get(k) == v for k, v in fields.items())]


class MariaDB:
    """A private MariaDB server in a temporary directory (~1-2 s to start).

    args: extra mariadbd options, e.g. ["--log-bin", "--server-id=2"]."""

    def __init__(self, args=()):
        self.args = list(args)
        self.dir = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="warden-db-")
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.dir:
            run([SANDBOX, "stop", self.dir], check=False)
            _remove(self.dir)
            self.dir = None

    def start(self):
        """Starts (or restarts) the server on the same data dir and port."""
        run([SANDBOX, "start", self.dir, "--"] + self.args, timeout=90)
        env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("=")
                env[key] = value
        self.socket = env["MYSQL_SOCKET"]
        self.host = env["MYSQL_HOST"]
        self.port = int(env["MYSQL_PORT"])
        self.user = env["MYSQL_USER"]
        self.password_file = env["MYSQL_PASSWORD_FILE"]
        self.admin_user = env["MYSQL_ADMIN_USER"]
        self.pid = int(env["MYSQL_PID"])
        with open(self.password_file) as f:
            self.password = f.read()

    def stop(self):
        run([SANDBOX, "stop", self.dir], timeout=60)

    def sql(self, statement, as_warden=False):
        """Runs statement(s); returns the rows as lists of strings.

        As the admin over the socket, or as_warden over TCP with the password.
        Values are as `mariadb --batch` prints them (NULL, \\t, \\n escaped)."""
        if as_warden:
            who = ["-h127.0.0.1", "-P%d" % self.port, "-u" + self.user,
                   "-p" + self.password]
        else:
            who = ["--socket=" + self.socket, "-u" + self.admin_user]
        p = run(["mariadb", "--no-defaults"] + who +
                ["--batch", "--skip-column-names", "-e", statement])
        return [line.split("\t") for line in p.stdout.splitlines()]


class HungPeer:
    """Listens on 127.0.0.1 (port 0), accepts connections, never answers."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.connections = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stopping.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.1)
            if ready:
                conn, _ = self._listener.accept()
                self.connections.append(conn)   # held open, never read or written

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stopping.set()
        self._thread.join()
        self._listener.close()
        for conn in self.connections:
            conn.close()


class MutexServer:
    """The HTTP mutex double (tests/data/mutex_server.py) on a free port.

    .url; .set(mode) with mode "clear", "held:REASON", "status:CODE",
    "slow:SECONDS", "close", "malformed", ...; .requests() the request log."""

    def __init__(self, mode="clear", script=MUTEX_SERVER):
        self.mode = mode
        self.script = script
        self.dir = None
        self.proc = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="warden-mutex-")
        self.control = os.path.join(self.dir, "control")
        self.request_log = os.path.join(self.dir, "requests.log")
        self.output = os.path.join(self.dir, "output.log")
        self.set(self.mode)
        try:
            with open(self.output, "w") as out:
                self.proc = subprocess.Popen(
                    [sys.executable, self.script, self.control, self.request_log],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            self.port = self._read_port(timeout=10)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.url = "http://127.0.0.1:%d/mutex.json" % self.port
        return self

    def _read_port(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.output) as f:
                first = f.readline()
            if first.endswith("\n"):
                return int(first)
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError("mutex server did not print its port (exit %s):\n%s"
                             % (self.proc.poll(), _tail(self.output)))

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.dir:
            _remove(self.dir)
            self.dir = None

    def set(self, mode):
        """Sets the answer to the following requests (atomic file replace)."""
        self.mode = mode
        write_file(self.control, mode + "\n", 0o644)

    def requests(self):
        """The request log: one entry per line, JSON-decoded when it is JSON."""
        try:
            with open(self.request_log) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append(line)
        return out


class Wardend:
    """The daemon under test, in its own temporary directory.

    wd.paths (usable before start, for config placeholders):
      dir, config, state_dir, events, control (socket path), log ([log] file).
    The daemon's stdout/stderr go to dir/wardend.out.

    wrapper: a command that runs wardend as its child, prepended to
    wardend's command line (e.g. ["strace", "-f", ..., "--"]). .proc is then
    the wrapper, which must exit as its child did (strace does); signals
    (signal(), stop(), kill()) go to wardend itself, the wrapper's child
    (.pid()), as a wrapper may not forward them: strace -o FILE blocks them."""

    def __init__(self, config=None, args=(), wrapper=()):
        self.dir = tempfile.mkdtemp(prefix="warden-wd-")
        self.paths = {
            "dir": self.dir,
            "config": os.path.join(self.dir, "warden.ini"),
            "state_dir": os.path.join(self.dir, "state"),
            "events": os.path.join(self.dir, "state", "events.jsonl"),
            "control": os.path.join(self.dir, "wardend.sock"),
            "log": os.path.join(self.dir, "wardend.log"),
        }
        os.makedirs(self.paths["state_dir"], mode=0o700)
        self.output = os.path.join(self.dir, "wardend.out")
        self.config = config
        self.args = list(args)
        self.wrapper = list(wrapper)
        self.proc = None
        self.killed = False    # ended by kill(): no exit code to check
        self.started_at = 0    # number of events before the latest start

    def __enter__(self):
        if self.config is not None:
            self.start()
        return self

    def __exit__(self, *exc):
        try:
            if self.running():
                try:
                    self.stop(timeout=15)
                except subprocess.TimeoutExpired:
                    self.kill()
            if exc[0] is None:
                self.check_exit()
        finally:
            _remove(self.dir)

    def write(self, name, text, mode=0o600):
        """Writes a file in the test's directory (includes, pidfiles...)."""
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return write_file(path, text, mode)

    def write_config(self, text):
        """Writes the config. One without a [control] section gets the test's
        own socket, so that parallel tests never share /run/warden."""
        self.config = text
        if "[control]" not in text:
            text = text + "\n[control]\nsocket = %s\n" % self.paths["control"]
        return self.write("warden.ini", text)

    def start(self, config=None, env=None):
        """Writes config (if given) and starts wardend; does not wait.

        env: variables added to (or, with value None, removed from) the
        daemon's environment, e.g. {"NOTIFY_SOCKET": path}."""
        assert not self.running(), "wardend already running"
        child_env = None
        if SANITIZED and "quarantine_size_mb" not in os.environ.get("ASAN_OPTIONS", ""):
            env = dict(env or {})
            env.setdefault("ASAN_OPTIONS", ":".join(
                filter(None, [os.environ.get("ASAN_OPTIONS"),
                              "quarantine_size_mb=%d" % QUARANTINE_MB])))
        if env:
            child_env = dict(os.environ)
            for key, value in env.items():
                if value is None:
                    child_env.pop(key, None)
                else:
                    child_env[key] = str(value)
        if config is not None:
            self.write_config(config)
        elif self.config is not None and not os.path.exists(self.paths["config"]):
            self.write_config(self.config)
        self.started_at = len(self.events())
        self.killed = False
        with open(self.output, "a") as out:
            self.proc = subprocess.Popen(self.wrapper + [WARDEND, "-c", self.paths["config"]]
                                         + self.args,
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=child_env)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self, timeout=10):
        """wardend's pid: .proc's, or with a wrapper its (only) child's once
        the wrapper has started it; None when it has exited."""
        if not self.wrapper:
            return self.proc.pid
        deadline = time.monotonic() + timeout
        while self.running():
            try:
                with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                    children = f.read().split()
            except OSError:
                children = []
            if children:
                return int(children[0])
            if time.monotonic() > deadline:
                raise AssertionError("the wrapper %s started no wardend" % self.wrapper[0])
            time.sleep(0.01)
        return None

    def signal(self, sig):
        if not self.wrapper:
            self.proc.send_signal(sig)
            return
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=30):
        """SIGTERM, wait; returns the exit code after check_exit()."""
        if self.running():
            self.signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.check_exit()
        return rc

    def kill(self):
        if self.running():
            self.signal(signal.SIGKILL)
            self.killed = True
            if self.wrapper:
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
        return self.proc.wait()

    def check_exit(self):
        """Raises AssertionError when the daemon's output holds a sanitizer
        report, or when it ended with anything but exit 0 and neither kill()
        nor SIGTERM's default action (a stop before wardend set its handler)
        ended it: a leak found at exit, a UBSan report, a crash. Done by
        stop() and on leaving the with block."""
        if self.proc is None or self.proc.poll() is None:
            return
        out = ""
        if os.path.exists(self.output):
            with open(self.output, errors="replace") as f:
                out = f.read()
        _check_no_report("wardend", out)
        if self.proc.returncode not in (0, -signal.SIGTERM) and not self.killed:
            raise AssertionError("wardend exited with %s\n--- wardend output\n%s"
                                 % (self.proc.returncode, "".join(out.splitlines(True)[-40:])))

    def ctl(self, *args, check=False, timeout=30):
        """Runs `wardenctl -c CONFIG ARGS...`; returns CompletedProcess."""
        return run([WARDENCTL, "-c", self.paths["config"]] + list(args),
                   check=check, timeout=timeout)

    def status(self, *args, timeout=30):
        """`wardenctl status --json ARGS...`, parsed; raises AssertionError
        (with wardenctl's output) unless it exits 0."""
        p = self.ctl("status", "--json", *args, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError("wardenctl status --json %s: exit %d\n%s%s"
                                 % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return json.loads(p.stdout)

    def wait_control(self, timeout=20):
        """Waits until the control socket exists (wardend answers on it).
        Raises AssertionError with the daemon's log on timeout or when
        wardend exits."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.paths["control"]):
            exited = self.proc.poll() is not None
            if exited or time.monotonic() >= deadline:
                why = ("wardend exited with %s" % self.proc.returncode if exited
                       else "timeout after %ss" % timeout)
                raise AssertionError("%s waiting for the control socket %s\n--- wardend log\n%s"
                                     % (why, self.paths["control"],
                                        "".join(self.log().splitlines(True)[-40:])))
            time.sleep(0.05)

    def events(self):
        """All events so far, parsed; a partly written last line is left out."""
        try:
            with open(self.paths["events"], errors="replace") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        lines = data.split("\n")
        complete, partial = lines[:-1], lines[-1]
        out = [json.loads(line) for line in complete if line.strip()]
        if partial.strip():
            try:
                out.append(json.loads(partial))
            except ValueError:
                pass
        return out

    def log(self):
        """The daemon's output (and its [log] file, when it wrote one)."""
        text = ""
        for path in (self.output, self.paths["log"]):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += f.read()
        return text

    def mark(self, timeout=15):
        """len(events()) once every event wardend has emitted so far is in
        the file, for `since=`: what comes after it happened after this
        call. The events file is written off wardend's loop, so an event of
        a command that has just answered may reach the file a moment later;
        counting the lines alone would take that one as new. Needs a running
        wardend whose events file takes its writes."""
        last = self.status()["events"]["last_seq"]
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if not last or (events and events[-1]["seq"] >= last):
                return len(events)
            if time.monotonic() >= deadline:
                raise AssertionError("events file stuck before seq %d (last there: %s)\n%s"
                                     % (last, events[-1]["seq"] if events else None,
                                        self.log()[-2000:]))
            time.sleep(0.02)

    def wait_for(self, predicate, timeout=30, since=0):
        """Polls until predicate(events[since:]) is truthy and returns it (or
        the events when it is not a list). Raises AssertionError with the last
        events and the daemon's log on timeout or when wardend exits."""
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc is not None and self.proc.poll() is not None
            events = self.events()[since:]
            result = predicate(events)
            if result:
                return result if isinstance(result, list) else events
            if exited or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        why = ("wardend exited with %s" % self.proc.returncode if exited
               else "timeout after %ss" % timeout)
        raise AssertionError(
            "%s waiting for %s\n--- last events\n%s\n--- wardend log\n%s"
            % (why, getattr(predicate, "__name__", predicate),
               "\n".join(json.dumps(e) for e in events[-30:]),
               "".join(self.log().splitlines(True)[-40:])))

    def wait_event(self, event, timeout=30, since=None, **fields):
        """Waits for an event named `event` with **fields; returns the matches.
        since defaults to the events of the latest start."""
        if since is None:
            since = self.started_at

        def has_event(events):
            return match(events, event, **fields)
        has_event.__name__ = " ".join([event] + ["%s=%r" % kv for kv in fields.items()])
        return self.wait_for(has_event, timeout=timeout, since=since)


class HAProxy:
    """A real HAProxy (/usr/sbin/haproxy -db) in a temporary directory, with a
    python TCP echo server behind it that the test controls.

    Runtime API: .socket (DIR/admin.sock, level admin), .user_socket
    (DIR/user.sock, level user), .address ("127.0.0.1:P", level admin).
    Traffic: frontend on 127.0.0.1:.frontend_port -> backend .backend
    ("mysql") -> server .server ("db1") -> the echo server (or target_port,
    e.g. a MariaDB's); no health checks.
    .command(text, socket=None) -> HAProxy's answer; .admin_state() ->
    srv_admin_state of db1 as HAProxy reports it; .sessions() -> its scur;
    .set_state("ready"); .connect() -> a client socket whose session has
    reached the echo server (close it to end the session)."""

    BINARY = "/usr/sbin/haproxy"

    def __init__(self, backend="mysql", server="db1", target_port=None):
        self.backend = backend
        self.server = server
        self.target_port = target_port   # the server's port instead of the echo server's
        self.dir = None
        self.proc = None
        self._clients = []
        self._echo_conns = []
        self._echo = None
        self._stopping = threading.Event()

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="warden-haproxy-")
        try:
            self._start_echo()
            self.socket = os.path.join(self.dir, "admin.sock")
            self.user_socket = os.path.join(self.dir, "user.sock")
            self.frontend_port = free_port()
            self.address = "127.0.0.1:%d" % free_port()
            self.config = write_file(os.path.join(self.dir, "haproxy.cfg"), """\
global
  stats socket {socket} mode 600 level admin
  stats socket {user_socket} mode 600 level user
  stats socket ipv4@{address} level admin

defaults
  mode tcp
  timeout connect 2s
  timeout client 120s
  timeout server 120s

frontend fe
  bind 127.0.0.1:{frontend_port}
  default_backend {backend}

backend {backend}
  server {server} 127.0.0.1:{echo_port}
""".format(socket=self.socket, user_socket=self.user_socket, address=self.address,
           frontend_port=self.frontend_port, backend=self.backend, server=self.server,
           echo_port=self.target_port or self.echo_port), 0o644)
            self.output = os.path.join(self.dir, "haproxy.out")
            with open(self.output, "w") as out:
                self.proc = subprocess.Popen([self.BINARY, "-db", "-f", self.config],
                                             stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 15
            while True:
                try:
                    if "srv_admin_state" in self.command("show servers state"):
                        break
                except OSError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("haproxy did not start (exit %s):\n%s"
                                         % (self.proc.poll(), _tail(self.output)))
                time.sleep(0.05)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for c in self._clients:
            c.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stopping.set()
        if self._echo:
            self._echo.join()
            self._listener.close()
        for c in self._echo_conns:
            c.close()
        if self.dir:
            _remove(self.dir)
            self.dir = None

    def _start_echo(self):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.echo_port = self._listener.getsockname()[1]
        self._echo = threading.Thread(target=self._serve_echo, daemon=True)
        self._echo.start()

    def _serve_echo(self):
        conns = []
        while not self._stopping.is_set():
            ready, _, _ = select.select([self._listener] + conns, [], [], 0.1)
            for s in ready:
                if s is self._listener:
                    conn, _ = self._listener.accept()
                    conns.append(conn)
                    self._echo_conns.append(conn)
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if data:
                    s.sendall(data)
                else:
                    conns.remove(s)
                    s.close()

    def command(self, text, socket_path=None, timeout=10):
        """Sends one runtime-API command; returns the whole answer (str).
        socket_path: a unix socket path or "HOST:PORT"; default the admin one."""
        where = socket_path or self.socket
        if where.startswith("/"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = where
        else:
            host, _, port = where.rpartition(":")
            s = socket.socket()
            target = (host, int(port))
        with s:
            s.settimeout(timeout)
            s.connect(target)
            s.sendall(text.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    def _row(self, answer, separator, header_prefix, key, name):
        lines = [l for l in answer.splitlines() if l.strip()]
        header = [l for l in lines if l.startswith(header_prefix)]
        if not header:
            raise AssertionError("no table in HAProxy's answer: %r" % answer)
        columns = header[0][len(header_prefix):].split(separator)
        for line in lines:
            if line.startswith("#"):
                continue
            row = dict(zip(columns, line.split(separator)))
            if row.get(key) == name:
                return row
        raise AssertionError("no row for %s in HAProxy's answer: %r" % (name, answer))

    def admin_state(self, server=None):
        """srv_admin_state (0 ready, bit 0x01 maint, bit 0x08 drain)."""
        answer = self.command("show servers state " + self.backend)
        row = self._row(answer, " ", "# ", "srv_name", server or self.server)
        return int(row["srv_admin_state"])

    def sessions(self, server=None):
        """The server's current sessions (scur)."""
        answer = self.command("show stat")
        row = self._row(answer, ",", "# ", "svname", server or self.server)
        return int(row["scur"])

    def set_state(self, state, server=None):
        answer = self.command("set server %s/%s state %s"
                              % (self.backend, server or self.server, state))
        if answer.strip():
            raise AssertionError("set server %s: %s" % (state, answer.strip()))

    def connect(self, timeout=10):
        """A client connection through the frontend whose session reached the
        echo server (one round trip done). Closed at exit if still open."""
        c = socket.create_connection(("127.0.0.1", self.frontend_port), timeout=timeout)
        self._clients.append(c)
        c.sendall(b"ping\n")
        got = b""
        while len(got) < 5:
            data = c.recv(64)
            if not data:
                raise AssertionError("the session through haproxy closed: %r" % got)
            got += data
        return c


class Etcd:
    """A real etcd (/usr/bin/etcd, Debian's etcd-server): one member on
    127.0.0.1, free client and peer ports, data in a temporary directory.

    .endpoint ("http://127.0.0.1:P"); .put(key, value), .delete(key),
    .get(key) -> str or None (through etcd's v3 JSON gateway, base64 done
    here; etcdctl is not needed); .stop() / .start() (same data and ports);
    .cluster_id (decimal, as the gateway prints it)."""

    BINARY = "/usr/bin/etcd"

    def __init__(self):
        self.dir = None
        self.proc = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="warden-etcd-")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.client_port
        self.output = os.path.join(self.dir, "etcd.out")
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.stop()
        if self.dir:
            _remove(self.dir)
            self.dir = None

    def start(self, timeout=30):
        """Starts (or restarts) the member; returns once it answers."""
        assert not self.running(), "etcd already running"
        peer = "http://127.0.0.1:%d" % self.peer_port
        args = [self.BINARY, "--name", "warden-test",
                "--data-dir", os.path.join(self.dir, "data"),
                "--listen-client-urls", self.endpoint,
                "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "warden-test=" + peer,
                "--initial-cluster-state", "new",
                "--initial-cluster-token", "warden-test-%d" % self.client_port]
        with open(self.output, "a") as out:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.cluster_id = self._post("/v3/kv/range", {"key": "AA=="},
                                             timeout=1)["header"]["cluster_id"]
                return self
            except (OSError, ValueError, KeyError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("etcd did not start (exit %s):\n%s"
                                     % (self.proc.poll(), _tail(self.output)))
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM and wait (SIGKILL after timeout)."""
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _post(self, path, body, timeout=10):
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        req = urllib.request.Request(self.endpoint + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with opener.open(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode())

    @staticmethod
    def _b64(text):
        import base64
        data = text.encode() if isinstance(text, str) else text
        return base64.b64encode(data).decode()

    def put(self, key, value):
        self._post("/v3/kv/put", {"key": self._b64(key), "value": self._b64(value)})

    def delete(self, key):
        """Deletes key; returns how many keys were deleted (0 or 1)."""
        return int(self._post("/v3/kv/deleterange", {"key": self._b64(key)}).get("deleted", 0))

    def get(self, key):
        """The value (str, UTF-8 with replacement) or None when absent."""
        import base64
        kvs = self._post("/v3/kv/range", {"key": self._b64(key)}).get("kvs", [])
        if not kvs:
            return None
        return base64.b64decode(kvs[0].get("value", "")).decode(errors="replace")
