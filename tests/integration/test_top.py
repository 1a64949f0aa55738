"""wardenctl top through a pseudo-terminal (Python's pty and termios): it
enters the alternate screen, draws the status (the check's state and
value), redraws it every second with what changed, cuts it to the
terminal's size, and on `q` leaves with exit 0, the screen and cursor put
back and the terminal's settings (canonical mode, echo) as they were.
Ctrl-C leaves the same way; without a terminal it refuses (exit 2); with no
daemon it says so (exit 3)."""

import fcntl
import os
import select
import struct
import subprocess
import termios
import time
import unittest

from harness import WARDENCTL, Wardend, base_config, slack

CONFIG = base_config("top-host", mutex_off=True) + """
[check level]
type    = program
command = cat {dir}/level
value   = stdout
every   = 300ms
warn    = > 5
crit    = > 10
"""

ENTER = b"\x1b[?1049h"
LEAVE = b"\x1b[?1049l"
HOME = b"\x1b[H"


class Terminal:
    """wardenctl top on a pty of `rows` x `cols`; .out is all it wrote."""

    def __init__(self, args, rows=40, cols=120):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.slave = slave
        self.before = termios.tcgetattr(slave)
        self.proc = subprocess.Popen([WARDENCTL] + args, stdin=slave, stdout=slave,
                                     stderr=slave, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        self.out = b""

    def read_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate(self.out):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("not seen within %.0f s; the terminal got:\n%r"
                                     % (timeout, self.out[-3000:]))
            r, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:    # EIO: the other end is closed
                    time.sleep(0.05)

    def frames(self):
        return self.out.count(HOME)

    def wait_exit(self, timeout):
        code = self.proc.wait(timeout=timeout)
        # What it wrote before it exited.
        while select.select([self.master], [], [], 0.1)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.out += chunk
        return code

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


class Top(unittest.TestCase):
    def start(self, wd):
        wd.write("level", "3\n")
        wd.start(CONFIG.format(**wd.paths))
        wd.wait_event("check.state", check="level", state="ok")

    def test_draws_redraws_and_quits_on_q(self):
        with Wardend() as wd:
            self.start(wd)
            t = Terminal(["-c", wd.paths["config"], "top"], rows=30, cols=100)
            try:
                t.read_until(lambda o: ENTER in o and b"top-host" in o and b"level" in o,
                             slack(10))
                t.read_until(lambda o: o.count(HOME) >= 3, slack(10))   # every second
                first = t.out
                self.assertIn(b"(q quits)", first)
                self.assertRegex(first, rb"level +program +ok +3 ")
                # What changes is on a later frame.
                wd.write("level", "42\n")
                wd.wait_event("check.state", check="level", state="crit")
                seen = t.frames()
                t.read_until(lambda o: o.count(HOME) >= seen + 2 and
                             b"crit" in o[len(first):], slack(10))
                self.assertRegex(t.out[len(first):], rb"level +program +crit +42 ")
                # Cut to the terminal: no line of a frame is wider than 100
                # columns (escape sequences aside).
                frame = t.out.split(HOME)[-2]    # a whole one: the last may be partial
                for line in frame.split(b"\n"):
                    text = line.replace(b"\r", b"").replace(b"\x1b[K", b"").replace(b"\x1b[J", b"")
                    text = text.replace(b"\x1b[7m", b"").replace(b"\x1b[0m", b"")
                    self.assertLessEqual(len(text.decode(errors="replace")), 100, text)
                self.assertLessEqual(len(frame.split(b"\n")), 30)
                # q: out, at once, with the screen, the cursor and the
                # terminal's settings as they were.
                os.write(t.master, b"q")
                self.assertEqual(t.wait_exit(slack(5)), 0)
                self.assertTrue(t.out.rstrip().endswith(LEAVE), t.out[-200:])
                self.assertIn(b"\x1b[?25h", t.out[-50:])
                after = termios.tcgetattr(t.slave)
                self.assertEqual(after, t.before)
                self.assertTrue(after[3] & termios.ICANON and after[3] & termios.ECHO)
            finally:
                t.close()

    def test_ctrl_c_restores_the_terminal_too(self):
        with Wardend() as wd:
            self.start(wd)
            t = Terminal(["-c", wd.paths["config"], "top", "--group", "nope"])
            try:
                # An unknown group is refused like status refuses it.
                self.assertEqual(t.wait_exit(slack(10)), 1)
                self.assertIn(b"no check, action or job is in group 'nope'", t.out)
                self.assertNotIn(ENTER, t.out)
            finally:
                t.close()
            t = Terminal(["-c", wd.paths["config"], "top"])
            try:
                t.read_until(lambda o: o.count(HOME) >= 2, slack(10))
                os.write(t.master, b"\x03")    # Ctrl-C: the terminal sends SIGINT
                self.assertEqual(t.wait_exit(slack(5)), 0)
                self.assertTrue(t.out.rstrip().endswith(LEAVE), t.out[-200:])
                self.assertEqual(termios.tcgetattr(t.slave), t.before)
            finally:
                t.close()

    def test_needs_a_terminal_and_a_daemon(self):
        with Wardend() as wd:
            self.start(wd)
            p = subprocess.run([WARDENCTL, "-c", wd.paths["config"], "top"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 2)
            self.assertIn("top needs a terminal", p.stderr)
            self.assertNotIn("\x1b[", p.stdout)
            t = Terminal(["-s", os.path.join(wd.dir, "nobody.sock"), "top"])
            try:
                self.assertEqual(t.wait_exit(slack(10)), 3)
                self.assertIn(b"wardend is not running", t.out)
                self.assertNotIn(ENTER, t.out)
            finally:
                t.close()


if __name__ == "__main__":
    unittest.main()
