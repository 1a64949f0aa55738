"""Actions that inform: alertmanager against a real Alertmanager
(prometheus-alertmanager, started here on loopback with a scratch storage
dir), webhook against a small recording HTTP server. Both fire with the
mutex held (they change nothing), and the alert is resolved when the check
recovers."""

import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import MariaDB, MutexServer, Wardend, base_config, free_port, match

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"

AM_CONFIG = """
route:
  receiver: nobody
receivers:
  - name: nobody
"""


class Alertmanager:
    """A private Alertmanager on 127.0.0.1 (no cluster), its storage in a
    temporary directory."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="warden-am-")
        config = os.path.join(self.dir, "alertmanager.yml")
        with open(config, "w") as f:
            f.write(AM_CONFIG)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.out = open(os.path.join(self.dir, "am.out"), "w")
        self.proc = subprocess.Popen(
            [ALERTMANAGER, "--config.file=" + config, "--storage.path=" + self.dir,
             "--web.listen-address=127.0.0.1:%d" % self.port, "--cluster.listen-address="],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise AssertionError("alertmanager did not start")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def alerts(self):
        """GET /api/v2/alerts: the alerts it lists (active ones by default)."""
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as r:
            return json.load(r)

    def wait_alerts(self, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            alerts = self.alerts()
            if predicate(alerts):
                return alerts
            if time.monotonic() > deadline:
                raise AssertionError("alertmanager lists %s" % json.dumps(alerts))
            time.sleep(0.2)


class Recorder:
    """An HTTP server on 127.0.0.1 that records every request (path,
    headers, body) and answers from a list of statuses (the last one
    repeats)."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests = []
        self.lock = threading.Lock()

    def __enter__(self):
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with rec.lock:
                    rec.requests.append({"path": self.path, "headers": dict(self.headers),
                                         "body": body.decode("utf-8", "replace")})
                    status = rec.statuses.pop(0) if len(rec.statuses) > 1 else rec.statuses[0]
                data = b'{"accepted": %s}' % (b"true" if status == 200 else b"false")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def got(self):
        with self.lock:
            return list(self.requests)


class Alerts(unittest.TestCase):
    def test_alertmanager_fires_while_crit_and_resolves_on_recovery(self):
        with Alertmanager() as am, MutexServer("held:upgrade window") as mutex, Wardend() as wd:
            level = wd.write("level", "1\n")
            wd.start((base_config("itest-am") + """
[mutex]
url   = {mutex_url}
cache = 500ms

[check load]
type    = program
command = cat {level}
value   = stdout
crit    = > 5
on_crit = page

[action page]
type        = alertmanager
url         = {am}
labels      = severity=critical team=dba
annotations = summary="{{check}} is {{state}} on {{host}}"
              description="value {{value}}, threshold {{threshold}}"
timeout     = 10s
cooldown    = 1s
""").format(mutex_url=mutex.url, level=level, am=am.url, **wd.paths))
            wd.wait_event("check.state", check="load", state="ok")
            # Asked beforehand, the guard lets it through the held mutex.
            p = wd.ctl("run", "page", "--dry-run")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("guard: allowed", p.stdout)
            wd.write("level", "9\n")
            start = wd.wait_event("action.start", action="page")[0]
            # The mutex is held, and the action ran all the same: it informs.
            self.assertTrue(start["informs"])
            self.assertIn("held mutex", start["note"])
            fin = wd.wait_event("action.finish", action="page")[0]
            self.assertEqual(fin["result"], "ok", fin)
            self.assertEqual(fin["http_status"], 200)
            self.assertEqual(fin["alert"], "firing")
            self.assertFalse(match(wd.events(), "action.blocked", action="page"))

            def ours(alerts):
                return [a for a in alerts if a["labels"].get("alertname") == "load"]
            listed = ours(am.wait_alerts(ours))
            self.assertEqual(len(listed), 1)
            alert = listed[0]
            self.assertEqual(alert["labels"], {"alertname": "load", "instance": "itest-am",
                                               "severity": "critical", "team": "dba"})
            self.assertEqual(alert["annotations"]["summary"], "load is crit on itest-am")
            self.assertEqual(alert["annotations"]["description"], "value 9, threshold > 5")
            self.assertEqual(alert["status"]["state"], "active")

            # Recovery: the same labels again with endsAt, without on_recover.
            wd.write("level", "0\n")
            wd.wait_event("check.state", check="load", state="ok", prev_state="crit")
            res = wd.wait_for(lambda ev: [e for e in match(ev, "action.finish", action="page")
                                          if e.get("resolve")])[0]
            self.assertEqual(res["result"], "ok", res)
            self.assertEqual(res["alert"], "resolved")
            self.assertEqual(res["state"], "ok")
            self.assertEqual(res["labels"], fin["labels"])
            am.wait_alerts(lambda alerts: not ours(alerts))
            self.assertEqual(wd.stop(), 0)

    def test_alertmanager_down_fails_with_the_reason_within_the_timeout(self):
        port = free_port()
        with Wardend() as wd:
            level = wd.write("level", "9\n")
            wd.start((base_config("itest-am", mutex_off=True) + """
[check load]
type    = program
command = cat {level}
value   = stdout
crit    = > 5
on_crit = page

[action page]
type    = alertmanager
url     = http://127.0.0.1:{port}
timeout = 2s
""").format(level=level, port=port, **wd.paths))
            fin = wd.wait_event("action.finish", action="page")[0]
            self.assertEqual(fin["result"], "fail")
            self.assertIn("connection refused", fin["error"])
            self.assertGreaterEqual(fin["attempts"], 2)
            self.assertLess(fin["duration_ms"], 10000)

    def test_webhook_escapes_sends_headers_and_token_and_retries_a_500(self):
        with MariaDB() as db, Recorder([500, 200]) as hook, Wardend() as wd:
            token = wd.write("hook.token", "t0ken-s3cret\n", mode=0o600)
            wd.start((base_config("itest-hook", mysql=True, mutex_off=True) + """
[check motd]
type = mysql_query
sql  = SELECT 'say "hi" \\\\ back'
crit = != ok
on_crit = hook

[action hook]
type       = webhook
url        = {url}
body       = {{"text": "{{check}} is {{state}} on {{host}}",
              "value": "{{value}}", "threshold": "{{threshold}}"}}
headers    = X-Team: dba
             X-Source: warden
token_file = {token}
timeout    = 10s
""").format(url=hook.url, token=token, socket=db.socket, password_file=db.password_file,
            **wd.paths))
            fin = wd.wait_event("action.finish", action="hook")[0]
            self.assertEqual(fin["result"], "ok", fin)
            self.assertEqual(fin["attempts"], 2)
            self.assertEqual(fin["http_status"], 200)
            self.assertEqual(fin["answer"], '{"accepted": true}')
            got = hook.got()
            self.assertEqual(len(got), 2)
            for r in got:
                self.assertEqual(r["path"], "/hook")
                self.assertEqual(r["headers"]["Authorization"], "Bearer t0ken-s3cret")
                self.assertEqual(r["headers"]["X-Team"], "dba")
                self.assertEqual(r["headers"]["X-Source"], "warden")
                self.assertEqual(r["headers"]["Content-Type"], "application/json")
                body = json.loads(r["body"])
                self.assertEqual(body, {"text": "motd is crit on itest-hook",
                                        "value": 'say "hi" \\ back', "threshold": "!= ok"})
            # The token is in no event and not in the log.
            with open(wd.paths["events"]) as f:
                self.assertNotIn("t0ken-s3cret", f.read())
            self.assertNotIn("t0ken-s3cret", wd.log())

    def test_webhook_token_file_must_be_private(self):
        with Wardend() as wd:
            token = wd.write("hook.token", "t0ken\n", mode=0o644)
            wd.write_config(base_config("itest-hook", mutex_off=True).format(**wd.paths) + """
[action hook]
type       = webhook
url        = http://127.0.0.1:9/hook
token_file = %s
""" % token)
            p = wd.ctl("validate")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("token_file: %s is mode 0644: a secret must not be readable by group "
                          "or others" % token, p.stdout + p.stderr)
            self.assertRegex(p.stdout + p.stderr, r"warden\.ini:\d+: token_file")


if __name__ == "__main__":
    unittest.main()
