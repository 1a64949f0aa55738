"""A real Prometheus (Debian's `prometheus`) scrapes the real wardend every
second on loopback; its HTTP API (/api/v1/query) then shows a check's state
and an action's counter change after the test made them change."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from harness import Wardend, base_config, free_port, slack

PROMETHEUS = shutil.which("prometheus")

CONFIG = base_config("itest-prom", mutex_off=True) + """
[metrics]
listen = 127.0.0.1:{port}

[check flag]
type = program
command = cat {flag}
value = stdout
every = 300ms
crit = > 10
on_crit = fix

[action fix]
type = exec
command = true
"""

PROMETHEUS_YML = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: warden
    static_configs:
      - targets: [%s]
"""


class Prometheus:
    """prometheus on 127.0.0.1 in a temporary directory, stopped on exit,
    scraping 127.0.0.1:PORT for each of target_ports every second."""

    def __init__(self, *target_ports):
        self.dir = tempfile.mkdtemp(prefix="warden-prom-")
        self.port = free_port()
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(PROMETHEUS_YML % ", ".join('"127.0.0.1:%d"' % p for p in target_ports))
        self.log = os.path.join(self.dir, "prometheus.log")
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [PROMETHEUS, "--config.file=" + config,
                 "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def output(self):
        with open(self.log) as f:
            return f.read()

    def query(self, expr):
        """The instant vector of expr: [(labels, float value)], [] if none
        (or Prometheus not answering yet)."""
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            self.port, urllib.parse.urlencode({"query": expr}))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                answer = json.load(r)
        except OSError:
            return []
        if answer.get("status") != "success":
            raise AssertionError("query %s: %s" % (expr, answer))
        return [(v["metric"], float(v["value"][1])) for v in answer["data"]["result"]]

    def wait_value(self, expr, want, timeout):
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "prometheus exited:\n" + self.output()
            got = self.query(expr)
            if len(got) == 1 and got[0][1] == want:
                return got[0][0]
            time.sleep(0.25)
        raise AssertionError("%s is %r, not %r\n%s" % (expr, got, want, self.output()))


@unittest.skipUnless(PROMETHEUS, "prometheus (Debian's package) is not installed")
class RealPrometheus(unittest.TestCase):
    def test_state_and_counter_seen_through_the_api(self):
        with Wardend() as wd:
            port = free_port()
            flag = wd.write("flag", "3\n")
            wd.start(CONFIG.format(port=port, flag=flag, **wd.paths))
            wd.wait_event("check.state", check="flag", state="ok")
            with Prometheus(port) as prom:
                wait = slack(20)
                # Scraped, healthy, and the target's labels are Prometheus's.
                labels = prom.wait_value('up{job="warden"}', 1, wait)
                self.assertEqual(labels["instance"], "127.0.0.1:%d" % port)
                prom.wait_value('warden_check_state{check="flag",state="ok"}', 1, wait)
                prom.wait_value('warden_action_runs_total{action="fix",result="ok"}', 0, wait)
                info = prom.wait_value("warden_build_info", 1, wait)
                self.assertEqual(info["host"], "itest-prom")

                wd.write("flag", "50\n")
                wd.wait_event("action.finish", action="fix", result="ok")
                prom.wait_value('warden_check_state{check="flag",state="crit"}', 1, wait)
                prom.wait_value('warden_check_state{check="flag",state="ok"}', 0, wait)
                prom.wait_value('warden_check_value{check="flag"}', 50, wait)
                prom.wait_value('warden_action_runs_total{action="fix",result="ok"}', 1, wait)
                prom.wait_value('warden_action_duration_seconds_count{action="fix"}', 1, wait)
                # Every scrape of the run went through: none failed.
                self.assertEqual(prom.query("scrape_samples_scraped == 0"), [])


if __name__ == "__main__":
    unittest.main()
