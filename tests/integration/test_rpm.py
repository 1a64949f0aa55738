"""The RPM: scripts/rpm builds it from rpm/warden.spec (one rpmbuild, a few
minutes on 2 cores) and this checks what it installs, with which modes, as
which config files, with which scriptlets, and that the packaged binaries run.

Skipped only when rpmbuild is missing (scripts/setup installs it: Debian
package rpm, EL rpm-build). Registered RUN_SERIAL with a long TIMEOUT in
tests/CMakeLists.txt: a compile next to the timing-sensitive tests would make
them flaky. WARDEN_TEST_RPM=PATH checks an RPM built before instead (for
working on this test; CTest always builds)."""

import gzip
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import SOURCE_DIR, _remove, run

SCRIPT = os.path.join(SOURCE_DIR, "scripts", "rpm")

# path -> (type and mode, owner, group); /usr/share/doc files are checked apart.
EXPECTED = {
    "/usr/sbin/wardend": (0o100755, "root", "root"),
    "/usr/bin/wardenctl": (0o100755, "root", "root"),
    "/usr/lib/systemd/system/wardend.service": (0o100644, "root", "root"),
    "/usr/share/bash-completion/completions/wardenctl": (0o100644, "root", "root"),
    "/etc/logrotate.d/warden": (0o100644, "root", "root"),
    "/etc/warden": (0o040750, "root", "root"),
    "/etc/warden/conf.d": (0o040750, "root", "root"),
    "/etc/warden/warden.ini": (0o100600, "root", "root"),
    "/etc/warden/warmup.sql": (0o100600, "root", "root"),
    "/var/lib/warden": (0o040750, "root", "root"),
    "/var/log/warden": (0o040750, "root", "root"),
}
SAMPLES = sorted(os.listdir(os.path.join(SOURCE_DIR, "etc", "conf.d")))
for name in SAMPLES:
    EXPECTED["/etc/warden/conf.d/" + name] = (0o100600, "root", "root")
# Man pages: docs/man/ installed by cmake --install. EL's rpm gzips them
# (brp-compress); Debian's leaves them as they are (its brp-compress fails
# under dash), so each is checked as PATH or PATH.gz (packaged()).
MAN_PAGES = {
    "/usr/share/man/man8/wardend.8": "docs/man/wardend.8",
    "/usr/share/man/man8/wardenctl.8": "docs/man/wardenctl.8",
    "/usr/share/man/man5/warden.ini.5": "docs/man/warden.ini.5",
}
for path in MAN_PAGES:
    EXPECTED[path] = (0o100644, "root", "root")
DOC_DIR = "/usr/share/doc/warden"     # the unit's Documentation= points here
DOCS = {DOC_DIR + "/README.md", DOC_DIR + "/behaviour.md", DOC_DIR + "/metrics.md",
        DOC_DIR + "/warden.yml", DOC_DIR + "/warden.json"}
CONFIG_FILES = {p for p in EXPECTED if p.startswith("/etc/") and stat.S_ISREG(EXPECTED[p][0])}

# Files in the package that are copies of files in the tree.
FROM_TREE = {
    "/usr/lib/systemd/system/wardend.service": "etc/systemd/wardend.service",
    "/etc/logrotate.d/warden": "etc/logrotate.d/warden",
    "/etc/warden/warden.ini": "etc/warden.ini",
    "/etc/warden/warmup.sql": "etc/warmup.sql",
    "/usr/share/bash-completion/completions/wardenctl": "etc/bash-completion/wardenctl",
}
for name in SAMPLES:
    FROM_TREE["/etc/warden/conf.d/" + name] = "etc/conf.d/" + name


def project_version():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        return re.search(r"project\(warden VERSION ([0-9.]+)", f.read()).group(1)


def read_cpio_newc(data):
    """{path: (mode, bytes)} from an uncompressed newc cpio archive."""
    out, pos = {}, 0
    while True:
        header = data[pos:pos + 110]
        if header[:6] not in (b"070701", b"070702"):
            raise AssertionError("not a newc cpio archive at offset %d" % pos)
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, filesize, namesize = fields[1], fields[6], fields[11]
        pos += 110
        name = data[pos:pos + namesize - 1].decode()
        pos = (pos + namesize + 3) & ~3
        body = data[pos:pos + filesize]
        pos = (pos + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out["/" + name.lstrip("./")] = (mode, body)


@unittest.skipUnless(shutil.which("rpmbuild"),
                     "rpmbuild not installed: scripts/setup installs it "
                     "(Debian package rpm, EL rpm-build)")
class RpmPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="warden-rpm-")
        try:
            if os.environ.get("WARDEN_TEST_RPM"):
                cls.rpm = os.environ["WARDEN_TEST_RPM"]
            else:
                # --werror: in CI this is the one gcc build (scripts/test
                # builds with clang), so gcc's warnings fail here.
                p = run([SCRIPT, "--topdir", cls.dir, "--werror"], timeout=1500, own_group=True)
                cls.rpm = p.stdout.strip().splitlines()[-1]
            cls.dump = {}
            for line in run(["rpm", "-qp", "--dump", cls.rpm]).stdout.splitlines():
                # path size mtime digest mode owner group isconfig isdoc rdev symlink
                path, _size, _mtime, _digest, mode, owner, group, isconfig, isdoc = \
                    line.split(" ")[:9]
                cls.dump[path] = (int(mode, 8), owner, group, isconfig == "1", isdoc == "1")
        except BaseException:
            _remove(cls.dir)
            raise

    @classmethod
    def tearDownClass(cls):
        _remove(cls.dir)

    def query(self, fmt):
        return run(["rpm", "-qp", "--qf", fmt, self.rpm]).stdout

    def files(self):
        """The package's paths, a gzipped man page under its MAN_PAGES name."""
        # EL adds /usr/lib/.build-id links next to the binaries (debuginfo).
        listed = run(["rpm", "-qpl", self.rpm]).stdout.split()
        return {p[:-3] if p.endswith(".gz") and p[:-3] in MAN_PAGES else p
                for p in listed if not p.startswith("/usr/lib/.build-id")}

    def packaged(self, path):
        """The path in the package of an EXPECTED path (a man page may be
        gzipped)."""
        if path in MAN_PAGES and path not in self.dump and path + ".gz" in self.dump:
            return path + ".gz"
        return path

    def test_name_and_version(self):
        self.assertEqual("warden %s" % project_version(), self.query("%{NAME} %{VERSION}"))
        self.assertTrue(os.path.basename(self.rpm).startswith("warden-%s-" % project_version()))

    def test_file_list(self):
        self.assertEqual(sorted(set(EXPECTED) | DOCS | {DOC_DIR}), sorted(self.files()))

    def test_modes_and_owners(self):
        for path, (mode, owner, group) in sorted(EXPECTED.items()):
            with self.subTest(path=path):
                got = self.dump[self.packaged(path)]
                self.assertEqual((oct(mode), owner, group), (oct(got[0]), got[1], got[2]))
        for path in DOCS:
            self.assertTrue(self.dump[path][4], "%s not marked %%doc" % path)

    def test_config_files_are_noreplace(self):
        flags = {}
        for line in self.query("[%{FILENAMES}\t%{FILEFLAGS:fflags}\n]").splitlines():
            path, _, fflags = line.partition("\t")
            flags[path] = fflags
        configs = {p for p, f in flags.items() if "c" in f}
        self.assertEqual(sorted(CONFIG_FILES), sorted(configs))
        for path in CONFIG_FILES:
            self.assertIn("n", flags[path], "%s: %%config without (noreplace)" % path)

    def test_scriptlets(self):
        scripts = run(["rpm", "-qp", "--scripts", self.rpm]).stdout
        parts = re.split(r"^(\w+) scriptlet.*:$", scripts, flags=re.M)
        by_name = dict(zip(parts[1::2], parts[2::2]))
        self.assertIn("getent group warden", by_name.get("preinstall", ""))
        self.assertIn("groupadd -r warden", by_name["preinstall"])
        for name in ("postinstall", "preuninstall", "postuninstall"):
            self.assertIn("wardend.service", by_name.get(name, ""), "%s:\n%s" % (name, scripts))

    def test_payload(self):
        # The packaged files are the tree's, and the packaged binaries run.
        cpio = subprocess.run(["rpm2cpio", self.rpm], capture_output=True, check=True,
                              timeout=120).stdout
        payload = read_cpio_newc(cpio)
        for packaged, source in FROM_TREE.items():
            with self.subTest(path=packaged), open(os.path.join(SOURCE_DIR, source), "rb") as f:
                self.assertEqual(f.read(), payload[packaged][1], "%s differs from %s"
                                 % (packaged, source))
        for path, source in MAN_PAGES.items():
            packaged = self.packaged(path)
            with self.subTest(path=packaged), open(os.path.join(SOURCE_DIR, source), "rb") as f:
                body = payload[packaged][1]
                if packaged.endswith(".gz"):
                    body = gzip.decompress(body)
                self.assertEqual(f.read(), body, "%s differs from %s" % (packaged, source))
        with tempfile.TemporaryDirectory(prefix="warden-rpm-bin-") as d:
            for name in ("/usr/sbin/wardend", "/usr/bin/wardenctl"):
                path = os.path.join(d, os.path.basename(name))
                with open(path, "wb") as f:
                    f.write(payload[name][1])
                os.chmod(path, 0o755)
            version = run([os.path.join(d, "wardend"), "--version"]).stdout
            # Built from a tarball, with the build id of the tree it was
            # made from (scripts/rpm): its commit.
            m = re.match(r"^wardend %s \(build (\S+)\)\n$" % re.escape(project_version()),
                         version)
            self.assertTrue(m, version)
            head = subprocess.run(["git", "-C", SOURCE_DIR, "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True)
            if head.returncode == 0:
                self.assertEqual(m.group(1).replace("-dirty", ""), head.stdout.strip())
            config = os.path.join(d, "warden.ini")
            fd = os.open(config, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("[daemon]\nstate_dir = %s\n[mutex]\nmode = off\n"
                        "[check root]\ntype = disk\npath = /\nmetric = free_pct\n" % d)
            run([os.path.join(d, "wardenctl"), "-c", config, "validate"])


if __name__ == "__main__":
    unittest.main()
