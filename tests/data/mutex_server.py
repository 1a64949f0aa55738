#!/usr/bin/env python3
"""A mutex server for tests (docs/mutex.md, "HTTP protocol").

    mutex_server.py CONTROL_FILE LOG_FILE [CERT_PEM KEY_PEM]

Listens on 127.0.0.1, on a free port that it prints as the first line of
stdout; with CERT_PEM and KEY_PEM it speaks HTTPS. For each request it reads CONTROL_FILE (so a test can change the
behaviour mid-run; a missing or empty file means `clear`) and answers:

  clear            200 {"held": false}
  held:REASON      200 {"held": true, "reason": REASON}
  terminate:REASON 200 {"held": true, "terminate": true, "reason": REASON}
  status:CODE      CODE with the body {"held": false} (only the status is wrong)
  slow:SECONDS     sleeps, then answers like `clear`
  close            closes the connection without answering
  malformed        200 with a body that is not JSON
  string_false     200 {"held": "false"}
  oversized        200 {"held": false, "pad": "..."}, about 100 KB
  redirect         302 to /target (which would answer `clear`), body {"held": false}

GET and POST behave the same. Before answering, each request appends one
JSON line to LOG_FILE: {"method", "path", "host" (X-Warden-Host or null),
"auth" (Authorization or null), "body_len"}.

Exits on SIGTERM, and by itself when its parent process goes away.
"""

import http.server
import json
import os
import signal
import ssl
import sys
import threading
import time


def main():
    if len(sys.argv) not in (3, 5):
        sys.stderr.write(__doc__)
        return 2
    control_path, log_path = sys.argv[1], sys.argv[2]
    log_lock = threading.Lock()
    parent = os.getppid()

    def mode():
        try:
            with open(control_path, encoding="utf-8") as f:
                text = f.read().strip()
        except OSError:
            text = ""
        return text or "clear"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        def send(self, code, body, extra=None):
            data = body if isinstance(body, bytes) else body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout): fine
            self.close_connection = True

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            with log_lock, open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps({
                    "method": self.command,
                    "path": self.path,
                    "host": self.headers.get("X-Warden-Host"),
                    "auth": self.headers.get("Authorization"),
                    "body_len": len(body),
                }) + "\n")
                f.flush()
            if self.path == "/target":
                return self.send(200, '{"held": false}')
            m = mode()
            clear = '{"held": false}'
            if m == "clear":
                self.send(200, clear)
            elif m.startswith("held:"):
                self.send(200, json.dumps({"held": True, "reason": m[5:]}))
            elif m.startswith("terminate:"):
                self.send(200, json.dumps({"held": True, "terminate": True, "reason": m[10:]}))
            elif m.startswith("status:"):
                self.send(int(m[7:]), clear)
            elif m.startswith("slow:"):
                time.sleep(float(m[5:]))
                self.send(200, clear)
            elif m == "close":
                self.close_connection = True  # nothing written
            elif m == "malformed":
                self.send(200, '{"held": fal')
            elif m == "string_false":
                self.send(200, '{"held": "false"}')
            elif m == "oversized":
                self.send(200, json.dumps({"held": False, "pad": "x" * (100 * 1024)}))
            elif m == "redirect":
                port = self.server.server_address[1]
                self.send(302, clear, {"Location": "http://127.0.0.1:%d/target" % port})
            else:
                self.send(500, json.dumps({"error": "unknown mode " + m}))

        do_GET = handle_any
        do_POST = handle_any

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # broken pipes after client timeouts are expected

    server = Server(("127.0.0.1", 0), Handler)
    if len(sys.argv) == 5:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    def watch_parent():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    print(server.server_address[1], flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
