"""The status page in a real browser: wardend with checks that are ok,
warn, crit, in error (its error text carries a <script> and an
<img onerror>) and disabled, and a running job; headless Chromium (Debian's
`chromium`) loads http://127.0.0.1:PORT/ with every host name but loopback
unresolvable, and the RENDERED document (--dump-dom, after the browser
parsed it and ran whatever it would run) has each check's row with its
state, bad first, the job and its step, the injected markup as text that
did not run, and no URL outside the host. A screenshot is taken (set
WARDEN_STATUS_SCREENSHOT=PATH to keep it: docs/status-page.png is one)."""

import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import MutexServer, Wardend, base_config, free_port, slack

CHROMIUM = shutil.which("chromium")

# What the error text of the `backup_age` check carries: were it markup,
# the script would retitle the page and add an element, the image's
# handler would add another.
INJECTED = ("<script>document.title='owned';document.body.insertAdjacentHTML("
            "'beforeend','<p id=owned>owned</p>')</script>"
            "<img src=x onerror=\"document.body.appendChild("
            "document.createElement('p')).id='owned2'\">")

CONFIG = base_config("db-17") + """
[mutex]
url = {mutex_url}

[metrics]
listen = 127.0.0.1:{port}

[check connections]
type    = program
command = cat {dir}/connections
value   = stdout
every   = 1s
warn    = > 100
crit    = > 150

[check replication_lag]
type    = program
command = cat {dir}/lag
value   = stdout
every   = 1s
warn    = > 30
crit    = > 300

[check mysql_alive]
type    = program
command = true
every   = 1s
crit    = != 0

[check backup_age]
type    = program
command = /bin/sh {dir}/backup_age.sh
value   = stdout
every   = 1s
crit    = > 86400

[check disk_data]
type    = program
command = echo 61
value   = stdout
every   = 1s
warn    = > 80
crit    = > 90

[action rolling_restart]
type    = exec
command = sleep 60
timeout = 5m

[job upgrade]
steps = rolling_restart
"""

BACKUP_SCRIPT = """cat >&2 <<'EOF'
%s
EOF
exit 1
""" % INJECTED

STATES = {"connections": "crit", "replication_lag": "warn", "mysql_alive": "ok",
          "backup_age": "error", "disk_data": "disabled"}


class Dom(html.parser.HTMLParser):
    """What the test reads from the rendered document: the title, every
    element's tag and id, and the checks table's rows as lists of cell
    texts (with the state badge's text and the row's data-state)."""

    def __init__(self):
        super().__init__()
        self.title = ""
        self.tags = []          # (tag, id)
        self.rows = []          # [data-state, [cell texts]]
        self.text = []
        self._in_title = False
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a.get("id")))
        if tag == "title":
            self._in_title = True
        if tag == "tr" and "check" in (a.get("class") or "").split():
            self._row = [a.get("data-state"), []]
        if tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row[1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._in_title:
            self.title += data
        if self._cell is not None:
            self._cell.append(data)


def chromium(args, out_dir, timeout):
    """Runs headless Chromium as root can (no sandbox), with a profile of
    its own and no name but loopback resolvable; returns stdout."""
    profile = tempfile.mkdtemp(prefix="warden-chromium-", dir=out_dir)
    cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
           "--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
           "--disable-extensions", "--disable-background-networking", "--disable-sync",
           "--disable-component-update", "--disable-default-apps",
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"] + args
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("chromium exited %d: %s" % (p.returncode, p.stderr[-2000:]))
    return p.stdout


@unittest.skipUnless(CHROMIUM, "chromium (Debian's package) is not installed")
class StatusPageInChromium(unittest.TestCase):
    def test_rendered_page(self):
        with MutexServer("clear") as mutex, Wardend() as wd, \
                tempfile.TemporaryDirectory(prefix="warden-page-") as tmp:
            port = free_port()
            wd.write("connections", "172\n")
            wd.write("lag", "45\n")
            wd.write("backup_age.sh", BACKUP_SCRIPT)
            # A password in the mutex's URL is not shown.
            mutex_url = mutex.url.replace("http://", "http://warden:s3cret-pw@")
            wd.start(CONFIG.format(port=port, mutex_url=mutex_url, **wd.paths))
            for check, state in STATES.items():
                if state != "disabled":
                    wd.wait_event("check.state", check=check, state=state, timeout=slack(20))
            p = wd.ctl("disable", "disk_data", "--reason", "<i>fsck</i> on /data", "--for", "1h")
            self.assertEqual(p.returncode, 0, p.stderr)
            p = wd.ctl("run", "upgrade")
            self.assertEqual(p.returncode, 0, p.stderr)
            wd.wait_event("job.step", job="upgrade", step="rolling_restart", result="start")
            url = "http://127.0.0.1:%d/" % port

            # The source: no URL but its own JSON link, no script element.
            with urllib.request.urlopen(url, timeout=slack(10)) as r:
                source = r.read().decode()
            self.assertEqual(re.findall(r"(?:https?:)?//[^\s\"'<>]+", source), [])
            self.assertNotIn("<script", source)
            with urllib.request.urlopen(url + "status.json", timeout=slack(10)) as r:
                status = r.read().decode()
            for text in (source, status):
                self.assertNotIn("s3cret-pw", text)
            self.assertEqual(json.loads(status)["schema"], 1)   # as status --json's
            self.assertEqual(json.loads(status)["mutex"]["url"],
                             mutex.url.replace("http://", "http://****@"))

            started = time.monotonic()
            dom_text = chromium(["--dump-dom", url], tmp, timeout=slack(30))
            dom = Dom()
            dom.feed(dom_text)
            # The injected script did not run: the title is the page's own and
            # no element it or the image's handler would add is there.
            self.assertEqual(dom.title, "warden db-17")
            ids = [i for _, i in dom.tags]
            self.assertNotIn("owned", ids)
            self.assertNotIn("owned2", ids)
            tags = [t for t, _ in dom.tags]
            self.assertNotIn("script", tags)
            self.assertNotIn("img", tags)
            # Every check has its row and its state, as colour class and as
            # text, worst first.
            rows = {cells[0].split()[0]: (state, cells) for state, cells in dom.rows}
            self.assertEqual(sorted(rows), sorted(STATES), dom.rows)
            for check, want in STATES.items():
                state, cells = rows[check]
                self.assertEqual(state, want, check)
                self.assertEqual(cells[1], want, check)   # the badge's word
            order = [cells[0].split()[0] for _, cells in dom.rows]
            self.assertEqual(order, ["connections", "backup_age", "replication_lag",
                                     "disk_data", "mysql_alive"])
            self.assertEqual(rows["connections"][1][2], "172")
            self.assertIn("warn > 100", rows["connections"][1][3])
            self.assertIn("crit > 150", rows["connections"][1][3])
            # The error text is there, as text.
            self.assertIn(INJECTED, rows["backup_age"][1][6])
            self.assertIn("(disabled: <i>fsck</i> on /data)", rows["disk_data"][1][0])
            text = "".join(dom.text)
            self.assertIn("upgrade", text)
            self.assertIn("step 1/1 rolling_restart", " ".join(text.split()))
            self.assertIn("job.step", text)           # the last events
            self.assertIn("mutex", text)
            self.assertIn("clear", text)

            # A screenshot of it, as a person would see it.
            shot = os.path.join(tmp, "status.png")
            chromium(["--screenshot=" + shot, "--window-size=1280,960", "--hide-scrollbars",
                      url], tmp, timeout=slack(30))
            with open(shot, "rb") as f:
                png = f.read()
            self.assertTrue(png.startswith(b"\x89PNG\r\n\x1a\n"))
            self.assertGreater(len(png), 20000)    # a page, not a blank
            if os.environ.get("WARDEN_STATUS_SCREENSHOT"):
                shutil.copy(shot, os.environ["WARDEN_STATUS_SCREENSHOT"])
            print("chromium: %.1f s for the DOM and the screenshot" % (time.monotonic() - started))


if __name__ == "__main__":
    unittest.main()
