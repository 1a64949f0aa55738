"""TLS to MariaDB, against real servers with a private CA made here by
openssl: one with require_secure_transport = ON and a certificate for
127.0.0.1, one whose certificate names another host. Each ssl_mode does what
it says, verify_ca and verify_identity fail closed with the reason, a user
that REQUIREs X509 needs the client certificate, and every connection says
program_name = wardend."""

import json
import os
import subprocess
import time
import unittest

from harness import MariaDB, Wardend, base_config


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d):
    """ca.pem signs server.pem (127.0.0.1), wrongname.pem (db.example.com) and
    client.pem; other.pem is a CA that signed none of them."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=warden test CA", cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out",
            "other.pem", "-days", "2", "-subj", "/CN=another CA", cwd=d)
    for name, subject, san in (("server", "/CN=127.0.0.1", "IP:127.0.0.1"),
                               ("wrongname", "/CN=db.example.com", "DNS:db.example.com"),
                               ("client", "/CN=x509user", None)):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", subject, cwd=d)
        ext = []
        if san:
            with open(os.path.join(d, name + ".ext"), "w") as f:
                f.write("subjectAltName=%s\n" % san)
            ext = ["-extfile", name + ".ext"]
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", *ext, cwd=d)
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o600 if name.endswith(".key") else 0o644)


class MysqlTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wd = Wardend()
        cls.pki = os.path.join(cls.wd.dir, "pki")
        os.makedirs(cls.pki)
        make_pki(cls.pki)
        # The server's key must be readable by mariadbd (root or this user).
        p = lambda n: os.path.join(cls.pki, n)
        cls.db = MariaDB(["--ssl-ca=" + p("ca.pem"), "--ssl-cert=" + p("server.pem"),
                          "--ssl-key=" + p("server.key"), "--require-secure-transport=ON",
                          "--performance-schema=ON"]).__enter__()
        cls.other = MariaDB(["--ssl-ca=" + p("ca.pem"), "--ssl-cert=" + p("wrongname.pem"),
                             "--ssl-key=" + p("wrongname.key")]).__enter__()
        cls.db.sql("ALTER USER warden@'%' REQUIRE SSL")
        cls.db.sql("CREATE USER x509user@'%' IDENTIFIED BY 'x509pw' REQUIRE X509")
        cls.x509_pass = cls.wd.write("x509.pass", "x509pw")
        cls.db.sql("CREATE USER plainuser@'%' IDENTIFIED BY 'plainpw'")   # no REQUIRE
        cls.plain_pass = cls.wd.write("plain.pass", "plainpw")
        cls.mycnf = cls.wd.write("my.cnf", "[client]\nhost = 127.0.0.1\nport = %d\n"
                                 "user = warden\npassword = \"%s\"\nssl-ca = %s\n"
                                 "ssl-mode = VERIFY_IDENTITY\n"
                                 % (cls.db.port, cls.db.password, p("ca.pem")))

    @classmethod
    def tearDownClass(cls):
        cls.wd.__exit__(None, None, None)
        cls.db.__exit__(None, None, None)
        cls.other.__exit__(None, None, None)

    def config(self):
        p = lambda n: os.path.join(self.pki, n)
        sections = {
            # name: (port, user, password_file, extra keys)
            "": (self.db.port, "warden", self.db.password_file, ""),   # default: preferred
            "disabled": (self.db.port, "warden", self.db.password_file, "ssl_mode = disabled"),
            "disabled_plain": (self.db.port, "plainuser", self.plain_pass, "ssl_mode = disabled"),
            "preferred_plain": (self.db.port, "plainuser", self.plain_pass, ""),
            "required": (self.db.port, "warden", self.db.password_file, "ssl_mode = required"),
            "verify_ca": (self.db.port, "warden", self.db.password_file,
                          "ssl_mode = verify_ca\nssl_ca = " + p("ca.pem")),
            "wrong_ca": (self.db.port, "warden", self.db.password_file,
                         "ssl_mode = verify_ca\nssl_ca = " + p("other.pem")),
            "identity": (self.db.port, "warden", self.db.password_file,
                         "ssl_mode = verify_identity\nssl_ca = " + p("ca.pem")),
            "identity_wrong": (self.other.port, "warden", self.other.password_file,
                               "ssl_mode = verify_identity\nssl_ca = " + p("ca.pem")),
            "ca_wrongname": (self.other.port, "warden", self.other.password_file,
                             "ssl_mode = verify_ca\nssl_ca = " + p("ca.pem")),
            "x509": (self.db.port, "x509user", self.x509_pass,
                     "ssl_mode = verify_ca\nssl_ca = %s\nssl_cert = %s\nssl_key = %s"
                     % (p("ca.pem"), p("client.pem"), p("client.key"))),
            "x509_nocert": (self.db.port, "x509user", self.x509_pass, "ssl_mode = required"),
            "tls13": (self.db.port, "warden", self.db.password_file,
                      "ssl_mode = required\ntls_version = TLSv1.3"),
            # Everything from a my.cnf, as a DBA keeps it.
            "mycnf": (None, None, None, "defaults_file = " + self.mycnf),
        }
        text = base_config("tls-test", level=None, mutex_off=True).format(**self.wd.paths)
        for name, (port, user, pw, extra) in sections.items():
            title = "[mysql %s]" % name if name else "[mysql]"
            if port is None:
                text += "\n%s\n%s\n" % (title, extra)
            else:
                text += "\n%s\nhost = 127.0.0.1\nport = %d\nuser = %s\npassword_file = %s\n%s\n" % (
                    title, port, user, pw, extra)
            check = name or "default"
            text += "\n[check %s]\ntype = mysql_ping\nevery = 1s\n" % check
            if name:
                text += "connection = %s\n" % name
        # What the server says of the connections: encrypted, and which TLS.
        text += """
[check default_encrypted]
type = mysql_query
sql  = SELECT VARIABLE_VALUE <> '' FROM information_schema.SESSION_STATUS
         WHERE VARIABLE_NAME = 'Ssl_cipher'
crit = < 1

[check tls13_version]
type       = mysql_query
connection = tls13
sql        = SELECT VARIABLE_VALUE = 'TLSv1.3' FROM information_schema.SESSION_STATUS
               WHERE VARIABLE_NAME = 'Ssl_version'
crit       = < 1
"""
        return text, sections

    def test_each_ssl_mode_does_what_it_says(self):
        text, sections = self.config()
        self.wd.start(text)
        self.wd.wait_event("daemon.start")
        deadline = time.monotonic() + 60
        while True:
            st = json.loads(self.wd.ctl("status", "--json", check=True).stdout)
            checks = {c["name"]: c for c in st["checks"]}
            if all(c["state"] != "pending" for c in checks.values()):
                break
            self.assertLess(time.monotonic(), deadline, checks)
            time.sleep(0.5)
        state = {n: (c["state"], c["last_error"]) for n, c in checks.items()}
        for ok in ("mycnf", "default", "preferred_plain", "required", "verify_ca", "identity", "ca_wrongname", "x509",
                   "tls13", "default_encrypted", "tls13_version"):
            self.assertEqual(state[ok][0], "ok", (ok, state[ok]))
        def error(name, *needles):
            s, e = state[name]
            self.assertEqual(s, "error", (name, state[name]))
            for n in needles:
                self.assertIn(n, e, (name, e))
        # The server's refusal, named: the user REQUIREs SSL; the server
        # requires secure transport of everyone.
        error("disabled", "[mysql disabled] 127.0.0.1:%d" % self.db.port,
              "Access denied for user 'warden'")
        # (MariaDB refuses insecure transport with a plain "Access denied":
        # the error says what ssl_mode = disabled has to do with it.)
        error("disabled_plain", "[mysql disabled_plain]", "Access denied for user 'plainuser'",
              "ssl_mode = disabled: a server with require_secure_transport = ON")
        # Fail closed, with the reason.
        error("wrong_ca", "[mysql wrong_ca]", "certificate")
        error("identity_wrong", "[mysql identity_wrong]", "Validation of SSL server certificate")
        error("x509_nocert", "Access denied for user 'x509user'")

        # validate says where the my.cnf connection's settings came from,
        # never the password itself.
        out = self.wd.ctl("validate", check=True).stdout
        self.assertIn("[mysql mycnf] 127.0.0.1:%d warden, ssl_mode verify_identity:" % self.db.port,
                      out)
        self.assertRegex(out, r"password +from %s:5" % self.mycnf)
        self.assertNotIn(self.db.password, out)
        # Who is connected: wardend, in performance_schema.
        attrs = {row[0] for row in self.db.sql(
            "SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs "
            "WHERE ATTR_NAME = 'program_name'")}
        self.assertIn("wardend", attrs)
        self.wd.stop()


if __name__ == "__main__":
    unittest.main()
