"""Hostile peers for the test_hostile_*.py integration tests (python3
standard library only): servers that answer slowly, drip-feed, flood, lie or
speak garbage, plus the measurements the tests assert on.

- HostileHttp: an HTTP(S) mutex server with a switchable .mode (see its
  docstring); .url, .paths (request paths seen), .tls_failures.
- HostileMysql: a MySQL peer that sends a malformed handshake or closes in
  the middle of a result set; .port, .connections (accept times).
- HostileFluentd: a forward-protocol peer that acks with a wrong chunk id or
  answers garbage; .port, .connections, .received (bytes).
- rss_kb(pid), self_signed_cert(dir), Ticks (a 1 s program check's
  timestamps: the loop's cadence), timed(fn).
"""

import os
import select
import socket
import ssl
import struct
import subprocess
import threading
import time

from harness import rss_kb  # noqa: F401 (re-exported for the tests)

CLEAR = b'{"held": false}'


class _Server:
    """A threaded TCP server on 127.0.0.1 (port 0): handle(conn) per
    connection, each in its own daemon thread. Closed by close()/__exit__."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self.connections = []          # monotonic accept times
        self._conns = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _accept(self):
        while not self._stopping.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.1)
            if not ready:
                continue
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            with self._lock:
                self.connections.append(time.monotonic())
                self._conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            conn.settimeout(30)
            self.handle(conn)
        except (OSError, ssl.SSLError, ValueError):
            pass        # the daemon hung up on us: that is the point
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stopping(self):
        return self._stopping.is_set()

    def close(self):
        self._stopping.set()
        self._thread.join()
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.close()
                except OSError:
                    pass


def _read_head(conn, limit=65536):
    """Reads an HTTP request head; returns the request line (str)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise OSError("closed before the request head ended")
        data += chunk
        if len(data) > limit:
            raise OSError("request head too long")
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def _answer(code, body, extra=b""):
    reason = {200: b"OK", 302: b"Found"}.get(code, b"Status")
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n%s\r\n" % (code, reason, len(body), extra)) + body


class HostileHttp(_Server):
    """A mutex server whose .mode (set at any time, read per request) is:

      clear         200 {"held": false} (what a good server says)
      slow:S        sleeps S seconds, then answers clear
      drip:S        a clear answer, one byte every S seconds
      huge_body     200, Content-Length 100 MB, and streams it (as JSON)
      huge_chunked  200, chunked, 100 MB of JSON without a length
      huge_headers  200 and 100 MB of header lines, never a body
      invalid_json  200 with an HTML page
      string_false  200 {"held": "false"}
      redirect      302 to /target, which would answer clear
    With tls=(cert, key) every connection is TLS first (a self-signed
    certificate, which a verifying client refuses); otherwise plain TCP,
    also when the client speaks TLS (it gets the plain HTTP answer back).
    .paths: request paths seen; .sent: bytes written per connection;
    .tls_failures: TLS handshakes the client broke off; .plain_to_tls: TLS
    ClientHellos a plain server answered in plain HTTP."""

    MB100 = 100 * 1024 * 1024

    def __init__(self, mode="clear", tls=None):
        self.mode = mode
        self.paths = []
        self.sent = []
        self.tls_failures = 0
        self.plain_to_tls = 0
        self._tls = None
        if tls:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        super().__init__()
        self.url = "%s://127.0.0.1:%d/mutex.json" % ("https" if tls else "http", self.port)

    def handle(self, conn):
        if self._tls:
            try:
                conn = self._tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                self.tls_failures += 1
                raise
        if not self._tls and conn.recv(1, socket.MSG_PEEK) == b"\x16":
            # A TLS ClientHello to a plain server: it answers in plain HTTP
            # what would read as clear, had the client accepted it.
            conn.sendall(_answer(200, CLEAR))
            self.plain_to_tls += 1
            return
        line = _read_head(conn)
        path = line.split(" ")[1] if line.count(" ") >= 2 else line
        self.paths.append(path)
        mode = self.mode
        sent = [0]

        def send(data):
            conn.sendall(data)
            sent[0] += len(data)

        try:
            if path == "/target":
                send(_answer(200, CLEAR))
            elif mode == "clear":
                send(_answer(200, CLEAR))
            elif mode.startswith("slow:"):
                time.sleep(float(mode[5:]))
                send(_answer(200, CLEAR))
            elif mode.startswith("drip:"):
                for b in _answer(200, CLEAR):
                    if self.stopping():
                        break
                    send(bytes([b]))
                    time.sleep(float(mode[5:]))
            elif mode == "huge_body":
                head = b'{"held": false, "pad": "'
                tail = b'"}'
                send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % self.MB100 + head)
                block = b"x" * (1 << 20)
                left = self.MB100 - len(head) - len(tail)
                while left > 0:
                    send(block[:min(left, len(block))])
                    left -= min(left, len(block))
                send(tail)
            elif mode == "huge_chunked":
                send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
                block = b" " * (1 << 20)
                for _ in range(100):
                    send(b"%x\r\n%s\r\n" % (len(block), block))
                send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(CLEAR), CLEAR))
            elif mode == "huge_headers":
                send(b"HTTP/1.1 200 OK\r\n")
                line = b"X-Pad: " + b"x" * 1000 + b"\r\n"
                for _ in range(self.MB100 // len(line)):
                    send(line)
            elif mode == "invalid_json":
                send(_answer(200, b"<html><body>502 Bad Gateway</body></html>"))
            elif mode == "string_false":
                send(_answer(200, b'{"held": "false"}'))
            elif mode == "redirect":
                send(_answer(302, CLEAR, b"Location: http://127.0.0.1:%d/target\r\n" % self.port))
            else:
                send(_answer(500, b'{"error": "unknown mode"}'))
        finally:
            self.sent.append(sent[0])


def self_signed_cert(directory):
    """A self-signed certificate for 127.0.0.1 made by `openssl req`; returns
    (cert_path, key_path)."""
    cert = os.path.join(directory, "hostile-cert.pem")
    key = os.path.join(directory, "hostile-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


# --- MySQL -------------------------------------------------------------------

def _mysql_packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xff]) + payload


def _read_mysql_packet(conn):
    head = b""
    while len(head) < 4:
        chunk = conn.recv(4 - len(head))
        if not chunk:
            raise OSError("closed")
        head += chunk
    length = head[0] | head[1] << 8 | head[2] << 16
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            raise OSError("closed")
        body += chunk
    return head[3], body


# CLIENT_LONG_PASSWORD | FOUND_ROWS | LONG_FLAG | CONNECT_WITH_DB | PROTOCOL_41 |
# TRANSACTIONS | SECURE_CONNECTION | MULTI_STATEMENTS | MULTI_RESULTS |
# PS_MULTI_RESULTS | PLUGIN_AUTH: no SSL, no DEPRECATE_EOF.
_CAPS = 0x000FA20F
_OK = b"\x00\x00\x00\x02\x00\x00\x00"


def _handshake_v10():
    scramble = b"abcdefghijklmnopqrst"
    return (b"\x0a" + b"5.7.99-hostile\x00" + struct.pack("<I", 7) + scramble[:8] + b"\x00" +
            struct.pack("<H", _CAPS & 0xffff) + b"\x21" + struct.pack("<H", 2) +
            struct.pack("<H", _CAPS >> 16) + bytes([21]) + b"\x00" * 10 +
            scramble[8:] + b"\x00" + b"mysql_native_password\x00")


class HostileMysql(_Server):
    """A MySQL peer whose .mode is:

      bad_handshake  garbage for an initial packet (protocol 0xf5)
      truncated_handshake  protocol 10 and a version, then nothing of the
                     rest (the connection stays open)
      close_mid_result  a proper handshake, accepts any login, answers OK to
                     anything but SELECT and SHOW GLOBAL VARIABLES, and to
                     those sends the column count and half a column
                     definition, then closes
      no_filter      a server (or a proxy) that refuses a WHERE on SHOW:
                     ERROR 1064 for any statement with one, SHOW GLOBAL
                     STATUS / VARIABLES answered with .rows (name, value),
                     OK to anything else
    .queries: the statements it received."""

    def __init__(self, mode):
        self.mode = mode
        self.queries = []
        super().__init__()

    def handle(self, conn):
        if self.mode == "bad_handshake":
            # Garbage where the handshake belongs (no protocol 10).
            conn.sendall(_mysql_packet(0, b"\xf5\x00garbage\xff\xfe" + bytes(range(64))))
            while not self.stopping() and conn.recv(4096):
                pass
            return
        if self.mode == "truncated_handshake":
            # Protocol 10 and a version string, then the packet ends where
            # the connection id, scramble and capabilities belong.
            conn.sendall(_mysql_packet(0, b"\x0a5.7.99-hostile\x00\x01"))
            while not self.stopping() and conn.recv(4096):
                pass
            return
        conn.sendall(_mysql_packet(0, _handshake_v10()))
        seq, _ = _read_mysql_packet(conn)           # the login: anything goes
        conn.sendall(_mysql_packet(seq + 1, _OK))
        while not self.stopping():
            seq, body = _read_mysql_packet(conn)
            if not body or body[0] == 0x01:         # COM_QUIT
                return
            if body[0] != 0x03:                     # COM_PING, ...: OK
                conn.sendall(_mysql_packet(seq + 1, _OK))
                continue
            sql = body[1:].decode(errors="replace")
            self.queries.append(sql)
            words = sql.upper().split()
            if self.mode == "no_filter":
                conn.sendall(self._no_filter_answer(seq, words))
                continue
            if words[:1] != ["SELECT"] and words[:3] != ["SHOW", "GLOBAL", "VARIABLES"]:
                conn.sendall(_mysql_packet(seq + 1, _OK))
                continue
            column = (b"\x03def\x00\x00\x00\x01a\x01a\x0c\x21\x00\x0b\x00\x00\x00"
                      b"\x08\x00\x00\x00\x00\x00")
            conn.sendall(_mysql_packet(seq + 1, b"\x01") +
                         _mysql_packet(seq + 2, column)[:12])
            return      # closed in the middle of the result set


    rows = [("Uptime", "4242"), ("Threads_connected", "3"), ("max_connections", "151")]

    def _no_filter_answer(self, seq, words):
        if "WHERE" in words:
            return _mysql_packet(seq + 1, b"\xff" + struct.pack("<H", 1064) + b"#42000" +
                                 b"You have an error in your SQL syntax near 'WHERE'")
        if words[:2] != ["SHOW", "GLOBAL"]:
            return _mysql_packet(seq + 1, _OK)

        def lenenc(b):
            return bytes([len(b)]) + b

        def column(name):
            return (lenenc(b"def") + lenenc(b"") + lenenc(b"") + lenenc(b"") + lenenc(name) +
                    lenenc(b"") + b"\x0c\x21\x00" + struct.pack("<I", 256) + b"\xfd" +
                    b"\x00\x00\x00\x00\x00")
        eof = b"\xfe\x00\x00\x02\x00"
        packets = [b"\x02", column(b"Variable_name"), column(b"Value"), eof]
        packets += [lenenc(n.encode()) + lenenc(v.encode()) for n, v in self.rows]
        packets.append(eof)
        return b"".join(_mysql_packet(seq + 1 + i, p) for i, p in enumerate(packets))


# --- fluentd -----------------------------------------------------------------

def _msgpack_str(s):
    data = s.encode()
    assert len(data) < 32
    return bytes([0xa0 | len(data)]) + data


class HostileFluentd(_Server):
    """A forward-protocol peer on .port whose .mode is:

      wrong_ack  reads what comes, answers each read with {"ack": "<wrong id>"}
                 (a well-formed ack for a chunk that was never sent)
      garbage    answers each read with bytes that are no msgpack at all
                 (0xc1 is never used by msgpack) and random-looking bytes
    .received: bytes read in total; .answers: answers written."""

    def __init__(self, mode):
        self.mode = mode
        self.received = 0
        self.answers = 0
        super().__init__()

    def handle(self, conn):
        n = 0
        while not self.stopping():
            data = conn.recv(65536)
            if not data:
                return
            self.received += len(data)
            n += 1
            if self.mode == "wrong_ack":
                answer = b"\x81" + _msgpack_str("ack") + _msgpack_str("0123456789abcdef-%d" % n)
            else:
                answer = b"\xc1\xc1" + os.urandom(64) + b"\xc1"
            conn.sendall(answer)
            self.answers += 1


# --- measurements ------------------------------------------------------------

class Ticks:
    """A 1 s program check that appends a timestamp per run to a file: the
    loop's cadence. .check(name) is its config section; .gaps(since) the
    intervals between runs started at or after `since` (time.time())."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "ticks")

    def check(self, name="tick"):
        return ("\n[check %s]\ntype = program\ncommand = /bin/sh -c 'date +%%s.%%N >> %s; echo 1'\n"
                "value = stdout\nevery = 1s\ntimeout = 5s\n" % (name, self.path))

    def times(self):
        try:
            with open(self.path) as f:
                return [float(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def gaps(self, since=0.0):
        t = [x for x in self.times() if x >= since]
        return [b - a for a, b in zip(t, t[1:])]

    def wait_gaps(self, since, n, timeout=None):
        """gaps(since) once there are n of them, or what there is after
        `timeout` (default 2 s a run, plus 5): a count taken over a fixed
        sleep is flaky on a loaded machine; a stalled loop still shows as a
        short count or a long gap."""
        deadline = time.monotonic() + (2 * n + 5 if timeout is None else timeout)
        while len(self.gaps(since)) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.gaps(since)


def timed(fn, *args, **kwargs):
    """(result, seconds) of fn(*args, **kwargs)."""
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - start
