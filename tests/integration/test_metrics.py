"""[metrics]: the Prometheus page served by the real wardend (GET /metrics,
nothing else), the same page in the node_exporter textfile, both checked by
Debian's `promtool check metrics`, and values that follow what the daemon
does (a check going crit, the action it fires, the pause)."""

import http.client
import json
import os
import re
import shutil
import subprocess
import time
import unittest

from harness import MutexServer, Wardend, base_config, free_port, slack

PROMTOOL = shutil.which("promtool")


def scrape(port, path="/metrics", method="GET", timeout=10):
    """(status, headers dict, body text) of one request to wardend."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def samples(text):
    """{'name{labels}': value} of a page (labels as written)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def promtool(text):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).strip()


CONFIG = base_config("itest-metrics", mutex_off=True) + """
[metrics]
listen   = 127.0.0.1:{port}
textfile = {textfile}
interval = 1s

[check flag]
type = program
command = cat {flag}
value = stdout
every = 300ms
crit = > 10
on_crit = fix

[action fix]
type = exec
command = touch {marker}
"""


@unittest.skipUnless(PROMTOOL, "promtool (Debian's prometheus package) is not installed")
class Metrics(unittest.TestCase):
    def wait_sample(self, port, key, want, timeout=30):
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = samples(scrape(port)[2]).get(key)
            if got == want:
                return
            time.sleep(0.2)
        self.fail("%s is %r, not %r" % (key, got, want))

    def test_page_textfile_and_promtool(self):
        with Wardend() as wd:
            port = free_port()
            flag = wd.write("flag", "3\n")
            textfile = os.path.join(wd.dir, "textfile", "warden.prom")
            os.makedirs(os.path.dirname(textfile))
            marker = os.path.join(wd.dir, "ran")
            wd.start(CONFIG.format(port=port, textfile=textfile, flag=flag, marker=marker,
                                   **wd.paths))
            wd.wait_event("check.state", check="flag", state="ok")

            status, headers, page = scrape(port)
            self.assertEqual(status, 200)
            self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
            rc, out = promtool(page)
            self.assertEqual((rc, out), (0, ""), page)
            s = samples(page)
            self.assertEqual(s['warden_check_state{check="flag",state="ok"}'], 1)
            self.assertEqual(s['warden_check_state{check="flag",state="crit"}'], 0)
            self.assertEqual(s['warden_check_value{check="flag"}'], 3)
            self.assertGreaterEqual(s['warden_check_runs_total{check="flag"}'], 1)
            self.assertEqual(s['warden_check_errors_total{check="flag"}'], 0)
            self.assertLess(abs(s['warden_check_last_run_timestamp_seconds{check="flag"}']
                                - time.time()), 30)
            self.assertEqual(s['warden_action_runs_total{action="fix",result="ok"}'], 0)
            self.assertEqual(s['warden_paused'], 0)
            self.assertEqual(s['warden_mutex_held'], 0)
            self.assertEqual(s['warden_job_queue_length'], 0)
            info = [k for k in s if k.startswith("warden_build_info{")]
            self.assertEqual(len(info), 1, info)
            self.assertIn('host="itest-metrics"', info[0])
            # The host is a label of warden_build_info only.
            self.assertEqual([k for k in s if "host=" in k], info)

            # Nothing but GET /metrics (and the status page: test_status_page.py).
            self.assertEqual(scrape(port, "/")[0], 200)
            self.assertEqual(scrape(port, "/index.html")[0], 404)
            self.assertEqual(scrape(port, "/metrics/")[0], 404)
            self.assertEqual(scrape(port, "/api/v1/query")[0], 404)
            status, headers, _ = scrape(port, method="POST")
            self.assertEqual(status, 405)
            self.assertEqual(headers.get("allow"), "GET, HEAD")
            self.assertEqual(scrape(port, method="DELETE")[0], 405)
            # HEAD: GET's answer without the body.
            status, headers, body = scrape(port, method="HEAD")
            self.assertEqual(status, 200)
            self.assertEqual(body, "")
            self.assertTrue(headers.get("content-type", "").startswith("text/plain; version=0.0.4"))
            self.assertGreater(int(headers.get("content-length", "0")), 1000)

            # Crit: the state moves, the action runs and is counted.
            wd.write("flag", "50\n")
            wd.wait_event("action.finish", action="fix")
            self.wait_sample(port, 'warden_action_runs_total{action="fix",result="ok"}', 1)
            page = scrape(port)[2]
            s = samples(page)
            self.assertEqual(s['warden_check_state{check="flag",state="crit"}'], 1)
            self.assertEqual(s['warden_check_state{check="flag",state="ok"}'], 0)
            self.assertEqual(s['warden_check_value{check="flag"}'], 50)
            self.assertEqual(s['warden_action_duration_seconds_count{action="fix"}'], 1)
            self.assertEqual(s['warden_action_duration_seconds_bucket{action="fix",le="+Inf"}'], 1)
            self.assertEqual(promtool(page), (0, ""))

            # A paused host: the gauge, and the guard's block counted.
            self.assertEqual(wd.ctl("pause", "--reason", "test").returncode, 0)
            self.wait_sample(port, "warden_paused", 1)
            wd.write("flag", "3\n")
            wd.wait_event("check.state", check="flag", state="ok", prev_state="crit")
            wd.write("flag", "60\n")
            wd.wait_event("action.blocked", action="fix", reason="paused")
            self.wait_sample(port, 'warden_action_blocked_total{action="fix",reason="paused"}', 1)

            # A value that is no number: no value series, errors counted.
            wd.write("flag", "many\n")
            wd.wait_event("check.state", check="flag", state="error")
            page = scrape(port)[2]
            s = samples(page)
            self.assertNotIn('warden_check_value{check="flag"}', s)
            self.assertEqual(s['warden_check_state{check="flag",state="error"}'], 1)

            # The textfile: the same families, rewritten every interval,
            # accepted by promtool.
            deadline = time.monotonic() + slack(10)
            text = ""
            while time.monotonic() < deadline:
                with open(textfile) as f:
                    text = f.read()
                if 'warden_check_state{check="flag",state="error"} 1' in text:
                    break
                time.sleep(0.2)
            self.assertIn('warden_check_state{check="flag",state="error"} 1', text)
            self.assertEqual(promtool(text), (0, ""), text)
            self.assertEqual(sorted(re.findall(r"^# TYPE (\S+)", text, re.M)),
                             sorted(re.findall(r"^# TYPE (\S+)", page, re.M)))
            self.assertEqual(oct(os.stat(textfile).st_mode & 0o777), "0o644")
            # No temporary file is left beside it for the collector to read.
            self.assertEqual(os.listdir(os.path.dirname(textfile)), ["warden.prom"])

    def test_fluentd_backlog_job_and_halt(self):
        from test_fluentd import Receiver
        with Wardend() as wd:
            rx = Receiver(wd.dir).start()
            try:
                port = free_port()
                gate = os.path.join(wd.dir, "gate")
                wd.start(base_config("itest-metrics-job", mutex_off=True).format(**wd.paths) + """
[metrics]
listen      = 127.0.0.1:%d
status_page = no

[fluentd]
address     = 127.0.0.1:%d
ack_timeout = 1s

[action hold]
type    = exec
command = sh -c 'while [ ! -e %s ]; do sleep 0.05; done'
timeout = 60s

[action boom]
type    = exec
command = false

[job upgrade]
steps = hold, boom
""" % (port, rx.port, gate))
                wd.wait_event("daemon.start")
                self.wait_sample(port, "warden_fluentd_connected", 1)
                # status_page = no: only /metrics.
                for path in ("/", "/status.json"):
                    status, _, body = scrape(port, path)
                    self.assertEqual(status, 404, path)
                    self.assertEqual(body, "not found: wardend serves only /metrics\n")
                self.wait_sample(port, "warden_fluentd_backlog_events", 0)
                s = samples(scrape(port)[2])
                self.assertGreaterEqual(s["warden_fluentd_last_ack_age_seconds"], 0)
                self.assertLess(s["warden_fluentd_last_ack_age_seconds"], slack(30))
                self.assertEqual(s["warden_fluentd_dropped_events_total"], 0)

                # fluentd stops acking: the backlog grows and the last ack ages.
                rx.set("noack")
                self.assertEqual(wd.ctl("run", "upgrade").returncode, 0)
                wd.wait_event("job.step", job="upgrade", step="hold", result="start")
                self.wait_sample(port, 'warden_job_running{job="upgrade",step="hold"}', 1)
                page = scrape(port)[2]
                self.assertEqual(promtool(page), (0, ""), page)
                s = samples(page)
                self.assertGreater(s["warden_fluentd_backlog_events"], 0)
                self.assertEqual(s["warden_job_queue_length"], 0)
                self.assertEqual(s["warden_queue_halted"], 0)

                # The second step fails: the queue halts, no job runs.
                open(gate, "w").close()
                wd.wait_event("job.fail", job="upgrade")
                self.wait_sample(port, "warden_queue_halted", 1)
                s = samples(scrape(port)[2])
                self.assertFalse([k for k in s if k.startswith("warden_job_running")], s)
                self.assertEqual(s['warden_action_runs_total{action="boom",result="fail"}'], 1)
                self.assertEqual(s['warden_action_runs_total{action="hold",result="ok"}'], 1)

                rx.set("ack")
                self.wait_sample(port, "warden_fluentd_backlog_events", 0, timeout=slack(30))
            finally:
                rx.stop()

    def test_mutex_held_and_its_answer_age(self):
        with MutexServer("held:upgrade window") as mutex, Wardend() as wd:
            port = free_port()
            wd.start(base_config("itest-metrics-mutex").format(**wd.paths) + """
[mutex]
url  = %s
poll = 1s

[metrics]
listen = 127.0.0.1:%d
""" % (mutex.url, port))
            wd.wait_event("mutex.state", held=True)
            self.wait_sample(port, "warden_mutex_held", 1)
            age = samples(scrape(port)[2])["warden_mutex_answer_age_seconds"]
            self.assertGreaterEqual(age, 0)
            self.assertLess(age, slack(10))
            mutex.set("clear")
            wd.wait_event("mutex.state", held=False)
            self.wait_sample(port, "warden_mutex_held", 0)

    def test_address_in_use_is_reported_not_fatal(self):
        import socket
        with socket.socket() as taken, Wardend() as wd:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            flag = wd.write("flag", "3\n")
            wd.start(CONFIG.format(port=port, textfile=os.path.join(wd.dir, "w.prom"), flag=flag,
                                   marker=os.path.join(wd.dir, "ran"), **wd.paths))
            start = wd.wait_event("daemon.start")[0]
            self.assertIn("metrics listen 127.0.0.1:%d: cannot serve" % port,
                          start["metrics_error"])
            wd.wait_event("check.state", check="flag", state="ok")
            status = json.loads(wd.ctl("status", "--json").stdout)
            self.assertIn("127.0.0.1:%d" % port, status["metrics_error"])
            self.assertIn("metrics endpoint not served", wd.log())
            self.assertTrue(wd.running())
            # The textfile does not depend on the endpoint.
            deadline = time.monotonic() + slack(10)
            while not os.path.exists(os.path.join(wd.dir, "w.prom")):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.1)


if __name__ == "__main__":
    unittest.main()
