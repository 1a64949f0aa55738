"""Monit, the tool the benchmarks compare wardend with (Debian's monit
5.33): `running(checks)` starts `monit -I` on a private control file with
`set daemon 1` (a 1 s cycle) and the given check statements, in a temp dir,
and stops it afterwards. Used by check_cost.py and isolation.py."""

import contextlib
import os
import shutil
import subprocess
import tempfile

HEADER = """set daemon 1
set logfile {dir}/monit.log
set pidfile {dir}/monit.pid
set idfile {dir}/monit.id
set statefile {dir}/monit.state
"""


@contextlib.contextmanager
def running(checks, binary="monit"):
    """Yields the Popen of Monit running `checks` (monitrc statements)."""
    d = tempfile.mkdtemp(prefix="warden-monit-")
    try:
        rc = os.path.join(d, "monitrc")
        fd = os.open(rc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # monit insists
        with os.fdopen(fd, "w") as f:
            f.write(HEADER.format(dir=d) + checks)
        with open(os.path.join(d, "monit.out"), "w") as out:
            proc = subprocess.Popen([binary, "-I", "-c", rc], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(d, ignore_errors=True)
