"""The Grafana dashboard etc/grafana/warden.json: its structure (every
panel has targets on the datasource variable, the datasource and host
variables are there), and every panel's PromQL run against a real
Prometheus (Debian's `prometheus`) scraping two real wardend processes:
each query parses and returns series, with $host set to one of them and
$__rate_interval to 1m; the host variable's query lists both hosts."""

import json
import os
import shutil
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import Wardend, base_config, free_port, slack
from test_prometheus import Prometheus

PROMETHEUS = shutil.which("prometheus")
DASHBOARD = os.path.join(os.environ.get("WARDEN_SOURCE_DIR", os.path.join(
    os.path.dirname(__file__), "..", "..")), "etc", "grafana", "warden.json")

# Two hosts: db-a has a check in crit, a job running and a fluentd that does
# not answer (a backlog); db-b is quiet. Both have an action the guard checks.
CONFIG = base_config("{host}", mutex_off=True) + """
[metrics]
listen = 127.0.0.1:{port}

[fluentd]
address = 127.0.0.1:{fluentd}

[check load]
type    = program
command = cat {dir}/load
value   = stdout
every   = 500ms
warn    = > 5
crit    = > 10
on_crit = fix

[check broken]
type    = program
command = /bin/sh -c 'exit 3'
value   = stdout
every   = 500ms

[action fix]
type     = exec
command  = true
cooldown = 1h

[action slow]
type    = exec
command = sleep 60
timeout = 5m

[job upgrade]
steps = slow
"""


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def targets(dashboard):
    """(panel title, expr) of every panel's every target."""
    out = []
    for p in dashboard["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    return out


def substitute(expr, host):
    return expr.replace("$__rate_interval", "1m").replace("$host", host)


class DashboardStructure(unittest.TestCase):
    def test_panels_targets_and_variables(self):
        d = load_dashboard()
        self.assertEqual(d["title"], "warden")
        self.assertTrue(d["uid"])
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        host = variables["host"]
        self.assertEqual(host["type"], "query")
        self.assertEqual(host["datasource"]["uid"], "${datasource}")
        self.assertEqual(host["query"]["query"], "label_values(warden_build_info, host)")
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
        self.assertEqual(rows, ["Fleet", "Host $host"])
        for p in d["panels"]:
            self.assertIn("gridPos", p, p["title"])
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${datasource}"},
                             p["title"])
            self.assertTrue(p["targets"], "panel %r has no query" % p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
            for t in p["targets"]:
                self.assertTrue(t["expr"].strip(), p["title"])
                self.assertEqual(t["datasource"]["uid"], "${datasource}", p["title"])
        # The drill-down's panels are filtered by the host variable.
        after = False
        for p in d["panels"]:
            if p["type"] == "row":
                after = p["title"] == "Host $host"
            elif after:
                for t in p["targets"]:
                    self.assertIn('{host=~"$host"}', t["expr"], p["title"])
        # Every metric the fleet overview needs is asked for somewhere.
        exprs = " ".join(e for _, e in targets(d))
        for metric in ("warden_check_state", "warden_action_runs_total",
                       "warden_action_blocked_total", "warden_queue_halted", "warden_paused",
                       "warden_job_running", "warden_fluentd_backlog_events",
                       "warden_mutex_held", "warden_check_value"):
            self.assertIn(metric, exprs)


@unittest.skipUnless(PROMETHEUS, "prometheus (Debian's package) is not installed")
class DashboardQueries(unittest.TestCase):
    def query(self, prom, expr):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            prom.port, urllib.parse.urlencode({"query": expr}))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)      # 400: the query did not parse; the answer says why
        except OSError:
            return None              # not listening yet

    def test_every_query_returns_series_from_two_wardends(self):
        d = load_dashboard()
        with Wardend() as a, Wardend() as b:
            ports = {}
            for wd, host, load in ((a, "db-a", "50\n"), (b, "db-b", "1\n")):
                ports[host] = free_port()
                wd.write("load", load)
                wd.start(CONFIG.format(host=host, port=ports[host], fluentd=free_port(),
                                       **wd.paths))
            a.wait_event("check.state", check="load", state="crit", timeout=slack(20))
            b.wait_event("check.state", check="load", state="ok", timeout=slack(20))
            p = a.ctl("run", "upgrade")
            self.assertEqual(p.returncode, 0, p.stderr)
            a.wait_event("job.step", job="upgrade", step="slow", result="start")
            with Prometheus(*ports.values()) as prom:
                queries = [(title, substitute(e, "db-a")) for title, e in targets(d)]
                # Until every query has series (two scrapes of both targets
                # for rate() and increase()), or the deadline.
                deadline = time.monotonic() + slack(30)
                missing = queries
                while True:
                    self.assertIsNone(prom.proc.poll(), "prometheus exited:\n" + prom.output())
                    left = []
                    for title, expr in missing:
                        answer = self.query(prom, expr)
                        if answer is None:
                            left.append((title, expr))
                            continue
                        self.assertEqual(answer.get("status"), "success",
                                         "%s: %s: %s" % (title, expr, answer))
                        if not answer["data"]["result"]:
                            left.append((title, expr))
                    missing = left
                    if not missing or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                self.assertEqual(missing, [], "queries without series")
                # The host variable lists both hosts.
                url = "http://127.0.0.1:%d/api/v1/label/host/values?%s" % (
                    prom.port, urllib.parse.urlencode({"match[]": "warden_build_info"}))
                with urllib.request.urlopen(url, timeout=5) as r:
                    self.assertEqual(sorted(json.load(r)["data"]), ["db-a", "db-b"])
                # The overview's figures are the two hosts'.
                hosts = self.query(prom, "count(warden_build_info) or vector(0)")
                self.assertEqual(float(hosts["data"]["result"][0]["value"][1]), 2)
                bad = self.query(prom, substitute(
                    '(warden_check_state{state=~"warn|crit|error"} == 1) * on(instance) '
                    'group_left(host) warden_build_info', "db-a"))
                seen = sorted((r["metric"]["host"], r["metric"]["check"], r["metric"]["state"])
                              for r in bad["data"]["result"])
                self.assertEqual(seen, [("db-a", "broken", "error"), ("db-a", "load", "crit"),
                                        ("db-b", "broken", "error")])
                # A query that does not parse would have been seen: the check
                # above asks the same API.
                self.assertEqual(self.query(prom, "sum by (")["status"], "error")


if __name__ == "__main__":
    unittest.main()
