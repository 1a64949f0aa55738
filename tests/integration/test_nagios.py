"""Nagios plugins as checks, and warden's checks as a Nagios plugin.

wardend runs Debian's monitoring-plugins (check_dummy, check_disk,
check_mysql against a MariaDB of this test's own) as `type = nagios`
checks: the exit status is the verdict, through the evaluator (trip,
actions), the first line goes into check.state and status, `perfdata =
LABEL` picks a value and its unit. `wardenctl check NAME --nagios` prints
one plugin line and exits 0/1/2/3, for ok, warn, crit and everything else
(an error, an unknown check, bad arguments, no daemon)."""

import json
import os
import re
import unittest

from harness import WARDENCTL, MariaDB, Wardend, base_config, free_port, match, run

PLUGINS = next((d for d in ("/usr/lib/nagios/plugins", "/usr/lib64/nagios/plugins")
                if os.path.exists(os.path.join(d, "check_dummy"))), "/usr/lib/nagios/plugins")

CONFIG = base_config("nagios-test", mutex_off=True) + """
[check flip]
type     = nagios
command  = sh -c 'exec {plugins}/check_dummy "$(cat {dir}/flip.state)" "flip says $(cat {dir}/flip.state)"'
every    = 1h
on_warn  = tell
on_crit  = tell
on_error = tell

[check disk]
type     = nagios
command  = {plugins}/check_disk -w 0% -c 0% -p /
perfdata = /
every    = 1h

[check disk_used]
type     = nagios
command  = {plugins}/check_disk -w 0% -c 0% -p /
perfdata = /
crit     = > 0
every    = 1h

[check mysql]
type     = nagios
command  = {plugins}/check_mysql -H 127.0.0.1 -P {port} -f {dir}/client.cnf -g client
perfdata = Threads_connected
warn     = > 1000
every    = 1h

[check mysql_down]
type     = nagios
command  = {plugins}/check_mysql -H 127.0.0.1 -P {closed} -f {dir}/client.cnf -g client
perfdata = Threads_connected
warn     = > 1000
every    = 1h

[check no_label]
type     = nagios
command  = {plugins}/check_dummy 0 fine
perfdata = queries
every    = 1h

[check bad_perfdata]
type     = nagios
command  = sh -c 'echo "OK - looks fine | queries=lots"'
perfdata = queries
every    = 1h

[check slow]
type     = nagios
command  = sleep 30
timeout  = 500ms
every    = 1h

[check gone]
type     = nagios
command  = {dir}/no-such-plugin -H localhost
every    = 1h

[action tell]
type    = notify
message = {{check}} is {{state}}
"""


class NagiosTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = MariaDB().__enter__()
        cls.wd = Wardend()
        try:
            cls.wd.write("flip.state", "0\n")
            cls.wd.write("client.cnf", "[client]\nuser=%s\npassword=%s\n"
                         % (cls.db.user, cls.db.password.strip()))
            cls.wd.start(CONFIG.format(plugins=PLUGINS, port=cls.db.port, closed=free_port(),
                                       **cls.wd.paths))
            cls.wd.wait_event("daemon.start")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.wd.__exit__(None, None, None)
        finally:
            cls.db.__exit__(None, None, None)

    def nagios(self, name, *more):
        """wardenctl check NAME --nagios: (exit code, the one line)."""
        p = self.wd.ctl("check", name, "--nagios", *more, timeout=60)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 1, (p.stdout, p.stderr))
        return p.returncode, lines[0]

    def set_flip(self, state):
        self.wd.write("flip.state", "%d\n" % state)

    def test_verdicts_flow_through_the_engine(self):
        """ok, warn, crit from the exit status: states, events with the
        plugin's line, actions fired without thresholds; 3 is an error."""
        for state, word, code in ((0, "OK", 0), (1, "WARNING", 1), (2, "CRITICAL", 2)):
            self.set_flip(state)
            self.assertEqual(self.nagios("flip"),
                             (code, "WARDEN flip %s - %s: flip says %d" % (word, word, state)))
        self.set_flip(3)
        self.assertEqual(
            self.nagios("flip"),
            (3, "WARDEN flip UNKNOWN - nagios check flip: sh: UNKNOWN (exit status 3): "
                "UNKNOWN: flip says 3"))
        self.wd.wait_event("check.state", check="flip", state="error")
        events = self.wd.events()
        warn = match(events, "check.state", check="flip", state="warn")[-1]
        self.assertEqual(warn["detail"], "WARNING: flip says 1")
        self.assertEqual(warn["threshold"], "")
        self.assertEqual(warn["value"], "")
        crit = match(events, "check.state", check="flip", state="crit")[-1]
        self.assertEqual(crit["detail"], "CRITICAL: flip says 2")
        error = match(events, "check.state", check="flip", state="error")[-1]
        self.assertIn("UNKNOWN (exit status 3)", error["error"])
        for state in ("warn", "crit", "error"):
            self.wd.wait_event("action.finish", action="tell", message="flip is " + state)
        # Back to ok: on_recover (none here), state ok, the detail in status.
        self.set_flip(0)
        self.assertEqual(self.nagios("flip")[0], 0)
        status = json.loads(self.wd.ctl("status", "--json", check=True).stdout)
        flip = next(c for c in status["checks"] if c["name"] == "flip")
        self.assertEqual((flip["state"], flip["detail"]), ("ok", "OK: flip says 0"))
        text = self.wd.ctl("status", check=True).stdout
        self.assertRegex(text, r"(?m)^flip +nagios +ok .*OK: flip says 0$")

    def test_perfdata_value_and_unit(self):
        """check_disk's '/' perfdata: the value in bytes, its unit kept in
        the event, the status and the plugin line."""
        code, line = self.nagios("disk")
        self.assertEqual(code, 0, line)
        m = re.fullmatch(r"WARDEN disk OK - DISK OK - free space: / .* \| disk=(\d+)B;;", line)
        self.assertTrue(m, line)
        self.assertGreater(int(m.group(1)), 0)
        event = self.wd.wait_event("check.state", check="disk", state="ok")[-1]
        self.assertEqual(event["unit"], "B")
        self.assertTrue(event["detail"].startswith("DISK OK"), event)
        self.assertGreater(int(event["value"]), 0)
        status = json.loads(self.wd.ctl("status", "--json", check=True).stdout)
        disk = next(c for c in status["checks"] if c["name"] == "disk")
        self.assertEqual(disk["unit"], "B")

    def test_threshold_worse_than_the_plugin_wins(self):
        """The plugin says OK; crit = > 0 on its value says crit: crit,
        and the plugin line carries warden's threshold as a range."""
        code, line = self.nagios("disk_used")
        self.assertEqual(code, 2, line)
        self.assertRegex(line, r"^WARDEN disk_used CRITICAL - DISK OK - .* \| disk_used=\d+B;;~:0$")
        event = self.wd.wait_event("check.state", check="disk_used", state="crit")[-1]
        self.assertEqual(event["threshold"], "> 0")

    def test_check_mysql_against_mariadb(self):
        """check_mysql logs in to the test's server: OK, Threads_connected
        as the value; on a closed port it says CRITICAL with no perfdata,
        and that verdict stands (crit, no value)."""
        code, line = self.nagios("mysql")
        self.assertEqual(code, 0, line)
        self.assertRegex(line, r"^WARDEN mysql OK - Uptime: \d+ .* \| mysql=\d+;~:1000;$")
        code, line = self.nagios("mysql_down")
        self.assertEqual(code, 2, line)
        self.assertRegex(line, r"^WARDEN mysql_down CRITICAL - Can't connect to")
        self.assertNotIn("|", line)
        event = self.wd.wait_event("check.state", check="mysql_down", state="crit")[-1]
        self.assertEqual((event["value"], event["error"]), ("", ""))
        self.assertIn("Can't connect", event["detail"])

    def test_error_paths(self):
        """A missing label, perfdata that cannot be read, a timeout and a
        plugin that cannot start are errors (UNKNOWN, 3) naming the check."""
        code, line = self.nagios("no_label")
        self.assertEqual(
            (code, line),
            (3, "WARDEN no_label UNKNOWN - nagios check no_label: %s/check_dummy said OK, but "
                "printed no perfdata 'queries' (no perfdata at all); its output: 'OK: fine'"
             % PLUGINS))
        code, line = self.nagios("bad_perfdata")
        self.assertEqual(code, 3, line)
        self.assertIn("nagios check bad_perfdata: sh said OK, but its perfdata cannot be read: "
                      "perfdata item \"queries=lots\": the value 'lots' is not a number; its "
                      "output: 'OK - looks fine / queries=lots'", line)
        code, line = self.nagios("slow")
        self.assertEqual(code, 3, line)
        self.assertRegex(line, r"^WARDEN slow UNKNOWN - sleep: timed out")
        code, line = self.nagios("gone")
        self.assertEqual(code, 3, line)
        self.assertIn("no-such-plugin", line)
        self.wd.wait_event("check.state", check="no_label", state="error")

    def test_nagios_line_when_there_is_no_result(self):
        """Unknown check, disabled check, --group, bad arguments and no
        daemon: one UNKNOWN line and 3, never 1 or 2."""
        self.assertEqual(self.nagios("nope"),
                         (3, "WARDEN nope UNKNOWN - no check named 'nope'"))
        self.wd.ctl("disable", "no_label", "--reason", "test", check=True)
        try:
            code, line = self.nagios("no_label")
            self.assertEqual(code, 3)
            self.assertRegex(line, r"^WARDEN no_label UNKNOWN - check no_label is disabled \(test")
        finally:
            self.wd.ctl("enable", "no_label", check=True)
        p = self.wd.ctl("check", "--group", "g", "--nagios")
        self.assertEqual((p.returncode, p.stdout),
                         (3, "WARDEN UNKNOWN - wardenctl check --nagios takes one check NAME, "
                             "not --group\n"))
        p = self.wd.ctl("check", "flip", "--nagios", "--bogus")
        self.assertEqual((p.returncode, p.stdout),
                         (3, "WARDEN UNKNOWN - wardenctl: bad arguments (see its stderr)\n"))
        self.assertIn("unknown option '--bogus'", p.stderr)
        gone = os.path.join(self.wd.dir, "no-such.sock")
        p = self.wd.ctl("-s", gone, "check", "flip", "--nagios")
        self.assertEqual((p.returncode, p.stdout),
                         (3, "WARDEN flip UNKNOWN - wardend is not running (no control socket "
                             "%s)\n" % gone))
        self.assertEqual(p.stderr, "")
        missing = os.path.join(self.wd.dir, "no-such.ini")
        p = run([WARDENCTL, "-c", missing, "check", "flip", "--nagios"], check=False)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"^WARDEN flip UNKNOWN - cannot find the control socket: "
                                   r".*no-such\.ini.* \(or use -s SOCKET\)\n$")
        # Without --nagios the same failure still says so on stderr, exit 3.
        p = self.wd.ctl("-s", gone, "check", "flip")
        self.assertEqual((p.returncode, p.stdout), (3, ""))
        self.assertIn("wardend is not running", p.stderr)


if __name__ == "__main__":
    unittest.main()
