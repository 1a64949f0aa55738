#include "daemon/config/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <catch2/catch.hpp>

#include "tests/support/config_loader.h"
#include "tests/support/temp_dir.h"

using namespace warden;
using warden::testing::TempDir;

namespace {

const char* kMinimal = R"([daemon]
host_id = db-test
state_dir = /tmp/warden-state
[mutex]
mode = off
)";

using Loaded = warden::testing::LoadedConfig;

Loaded Load(const TempDir& dir, const std::string& text, const std::string& name = "warden.ini") {
  return warden::testing::LoadConfigText(dir, text, name);
}

}  // namespace

TEST_CASE("a minimal config loads", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, kMinimal);
  INFO(l.All());
  REQUIRE(l.config);
  CHECK(l.config->daemon.host_id == "db-test");
  CHECK(l.config->mutex.mode == MutexConfig::Mode::kOff);
  CHECK(l.config->EventsPath() == "/tmp/warden-state/events.jsonl");
  CHECK(l.config->digest.size() == 16);
}

TEST_CASE("a missing [mutex] is an error that says what to set", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, "[daemon]\nhost_id = x\n");
  CHECK_FALSE(l.config);
  CHECK(l.Has("no [mutex] section: set url=…, backend=etcd or mode=off"));
}

TEST_CASE("every problem is reported with file:line in one run", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, std::string(kMinimal) + R"([check a]
type = tcp
host = 127.0.0.1
port = 3306
every = 10
warn = bigger than 5
trip = 5 of 3
colour = blue
[action b]
type = exec
command = /bin/true
cooldown = 10 minutes
[bogus thing]
x = 1
)");
  CHECK_FALSE(l.config);
  INFO(l.All());
  std::string f = dir / "warden.ini";
  CHECK(l.Has(f + ":10: every: duration '10' needs a unit"));
  CHECK(l.Has(f + ":11: warn: "));
  CHECK(l.Has(f + ":12: trip: "));
  CHECK(l.Has(f + ":13: unknown key 'colour' for check type tcp"));
  CHECK(l.Has(f + ":17: cooldown: "));
  CHECK(l.Has(f + ":18: unknown section [bogus thing]"));
  CHECK(l.errors.size() >= 6);
}

TEST_CASE("syntax errors name the line", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, std::string(kMinimal) + "this line has no equals sign\n[unclosed\n" +
                           "[action x]\ntype = exec\ncommand = " + std::string(300, 'a') + "\n");
  CHECK_FALSE(l.config);
  INFO(l.All());
  std::string f = dir / "warden.ini";
  CHECK(l.Has(f + ":6: expected 'key = value'"));
  CHECK(l.Has(f + ":7: section header '[unclosed' has no closing ']'"));
  CHECK(l.Has(f + ":10: line is longer than"));
}

TEST_CASE("a key set twice and a section defined twice are errors", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, std::string(kMinimal) +
                           "[action x]\ntype = exec\ntype = exec\ncommand = /bin/true\n"
                           "[check c]\ntype = file\npath = /\n[action x]\ntype = notify\nmessage = m\n");
  CHECK_FALSE(l.config);
  INFO(l.All());
  CHECK(l.Has(":8: key 'type' is set twice in [action x] (first at line 7)"));
  CHECK(l.Has(":13: [action x] is defined twice (first at "));
}

TEST_CASE("references between objects are checked", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, std::string(kMinimal) + R"([check a]
type = file
path = /
crit = == 0
depends = b
on_crit = missing_action
on_warn = notify_me
[check b]
type = file
path = /
depends = c
[check c]
type = file
path = /
depends = a
[check d]
type = file
path = /
depends = nope, d
[action notify_me]
type = notify
message = hi
)");
  CHECK_FALSE(l.config);
  INFO(l.All());
  CHECK(l.Has("on_crit names 'missing_action', which is neither an action nor a job"));
  CHECK(l.Has("on_warn can never fire: the check has no warn threshold"));
  CHECK(l.Has("depends cycle: "));
  CHECK(l.Has("depends on 'nope', which is not a check"));
  CHECK(l.Has("[check d] depends on itself"));
}

TEST_CASE("mysql connections are validated and referenced", "[config]") {
  TempDir dir;
  std::string pass = dir.Write("mysql.pass", "s3cret\n");
  Loaded l = Load(dir, std::string(kMinimal) + "[mysql]\nsocket = /run/mysqld/mysqld.sock\nuser = warden\n"
                           "password_file = " + pass + "\n"
                           "[mysql other]\nhost = localhost\nuser = x\n"
                           "[mysql third]\nuser = x\npassword = plain\n"
                           "[check a]\ntype = mysql_ping\nconnection = nowhere\n");
  CHECK_FALSE(l.config);
  INFO(l.All());
  CHECK(l.Has("host = localhost means the default unix socket"));
  CHECK(l.Has("[mysql third] needs 'socket' or 'host'"));
  CHECK(l.Has("passwords are read from a file"));
  CHECK(l.Has("connection 'nowhere' names no [mysql nowhere] section"));
}

TEST_CASE("fallback_port is read, and must be another port", "[config]") {
  TempDir dir;
  Loaded ok = Load(dir, std::string(kMinimal) +
                            "[mysql]\nsocket = /run/mysqld/mysqld.sock\nuser = w\n"
                            "fallback_port = 3307\n"
                            "[mysql tcp]\nhost = 10.0.0.5\nport = 3306\nuser = w\n");
  REQUIRE(ok.config);
  CHECK(ok.config->mysql.at("").fallback_port == 3307);
  CHECK(ok.config->mysql.at("tcp").fallback_port == 0);
  CHECK(ok.config->mysql.at("").Key() != ok.config->mysql.at("tcp").Key());

  Loaded bad = Load(dir, std::string(kMinimal) +
                             "[mysql]\nhost = 10.0.0.5\nport = 3306\nuser = w\n"
                             "fallback_port = 3306\n"
                             "[mysql b]\nhost = 10.0.0.5\nuser = w\nfallback_port = 70000\n");
  CHECK_FALSE(bad.config);
  INFO(bad.All());
  CHECK(bad.Has(":10: fallback_port is the same as port"));
  CHECK(bad.Has("fallback_port"));
  CHECK(bad.Has("70000"));
}

TEST_CASE("TLS settings of [mysql] are read and their mistakes named", "[config][tls]") {
  TempDir dir;
  std::string pass = dir.Write("mysql.pass", "s3cret\n");
  std::string ca = dir.Write("ca.pem", "CA\n", 0644);
  std::string cert = dir.Write("client.pem", "CERT\n", 0644);
  std::string key = dir.Write("client.key", "KEY\n", 0600);
  Loaded ok = Load(dir, std::string(kMinimal) +
                            "[mysql]\nhost = 10.0.0.5\nuser = w\npassword_file = " + pass +
                            "\nssl_mode = verify_identity\nssl_ca = " + ca + "\nssl_cert = " +
                            cert + "\nssl_key = " + key + "\ntls_version = TLSv1.2, TLSv1.3\n"
                            "[mysql sock]\nsocket = /run/mysqld/mysqld.sock\nuser = w\n"
                            "[mysql tcp]\nhost = 10.0.0.5\nuser = w\n");
  INFO(ok.All());
  REQUIRE(ok.config);
  const auto& m = ok.config->mysql.at("");
  CHECK(m.ssl_mode == warden::SslMode::kVerifyIdentity);
  CHECK(m.ssl_ca == ca);
  CHECK(m.ssl_key == key);
  CHECK(m.tls_version == "TLSv1.2,TLSv1.3");
  // Defaults: preferred over TCP, none on the socket.
  CHECK(ok.config->mysql.at("tcp").EffectiveSslMode() == warden::SslMode::kPreferred);
  CHECK(ok.config->mysql.at("sock").EffectiveSslMode() == warden::SslMode::kDisabled);
  CHECK(ok.config->mysql.at("").Key() != ok.config->mysql.at("tcp").Key());

  std::string open_key = dir.Write("open.key", "KEY\n", 0644);
  std::string open_pass = dir.Write("open.pass", "pw\n", 0640);
  Loaded bad = Load(dir, std::string(kMinimal) +
                             "[mysql a]\nhost = 10.0.0.5\nuser = w\nssl_mode = verify_ca\n"   // 6-9
                             "[mysql b]\nhost = 10.0.0.5\nuser = w\nssl_mode = disabled\n"    // 10-13
                             "ssl_ca = " + ca + "\n"                                            // 14
                             "[mysql c]\nhost = 10.0.0.5\nuser = w\nssl_cert = " + cert + "\n"  // 15-18
                             "[mysql d]\nhost = 10.0.0.5\nuser = w\nssl_cert = " + cert + "\n"  // 19-22
                             "ssl_key = " + open_key + "\n"                                     // 23
                             "tls_version = TLSv1.1\n"                                          // 24
                             "[mysql e]\nhost = 10.0.0.5\nuser = w\npassword_file = " +       // 25-28
                             open_pass + "\nssl_mode = sometimes\n");                           // 29
  CHECK_FALSE(bad.config);
  INFO(bad.All());
  CHECK(bad.Has(":9: ssl_mode = verify_ca needs ssl_ca or ssl_capath"));
  CHECK(bad.Has(":13: ssl_mode = disabled, but TLS settings are given"));
  CHECK(bad.Has(":18: ssl_cert and ssl_key go together"));
  CHECK(bad.Has(":23: ssl_key: " + open_key + " is mode 0644: a secret must not be readable"));
  CHECK(bad.Has(":24: tls_version: 'TLSv1.1' is not TLSv1.2 or TLSv1.3"));
  CHECK(bad.Has(":28: password_file: " + open_pass + " is mode 0640"));
  CHECK(bad.Has(":29:"));
  CHECK(bad.Has("sometimes"));
}

TEST_CASE("defaults_file fills what [mysql] does not set, and says where from", "[config][tls]") {
  TempDir dir;
  std::string ca = dir.Write("ca.pem", "CA\n", 0644);
  std::string cnf = dir.Write("my.cnf", "[client]\nuser = fromfile\npassword = filepw\n"
                                        "host = 10.0.0.7\nport = 3307\nsocket = /tmp/x.sock\n"
                                        "ssl-ca = " + ca + "\nssl-mode = VERIFY_CA\n"
                                        "[other]\nuser = otheruser\n");
  std::string pass = dir.Write("mysql.pass", "sectionpw\n");
  Loaded ok = Load(dir, std::string(kMinimal) +
                            "[mysql]\ndefaults_file = " + cnf + "\n"   // 6-7
                            "[mysql mine]\ndefaults_file = " + cnf + "\nuser = mine\n"
                            "password_file = " + pass + "\nsocket = /run/mysqld/mysqld.sock\n"
                            "[mysql other]\ndefaults_file = " + cnf + "\ndefaults_group = other\n"
                            "host = 10.0.0.9\n");
  INFO(ok.All());
  REQUIRE(ok.config);
  const auto& m = ok.config->mysql.at("");
  CHECK(m.user == "fromfile");
  CHECK(m.password == "filepw");
  CHECK(m.host == "10.0.0.7");   // host wins over the file's socket, as for the client
  CHECK(m.socket.empty());
  CHECK(m.port == 3307);
  CHECK(m.ssl_mode == warden::SslMode::kVerifyCa);
  CHECK(m.ssl_ca == ca);
  CHECK(m.origin.at("user") == cnf + ":2");
  CHECK(m.origin.at("password") == cnf + ":3");
  CHECK(std::find(ok.config->secrets.begin(), ok.config->secrets.end(), "filepw") !=
        ok.config->secrets.end());
  // The section's own keys win; its socket means none of the file's host/port.
  const auto& mine = ok.config->mysql.at("mine");
  CHECK(mine.user == "mine");
  CHECK(mine.password == "sectionpw");
  CHECK(mine.socket == "/run/mysqld/mysqld.sock");
  CHECK(mine.host.empty());
  CHECK(mine.origin.at("user").find("warden.ini:") != std::string::npos);
  CHECK(ok.config->mysql.at("other").user == "otheruser");

  std::string open = dir.Write("open.cnf", "[client]\nuser = u\n", 0644);
  Loaded bad = Load(dir, std::string(kMinimal) +
                             "[mysql a]\ndefaults_file = " + open + "\n" +                // 6-7
                             "[mysql b]\ndefaults_file = " + cnf + "\ndefaults_group = nope\n"
                             "[mysql c]\nhost = 10.0.0.5\nuser = u\ndefaults_group = client\n");
  CHECK_FALSE(bad.config);
  INFO(bad.All());
  CHECK(bad.Has(":7: defaults_file: " + open + " is mode 0644"));
  CHECK(bad.Has(":9: defaults_file: " + cnf + " has no [nope] group"));
  CHECK(bad.Has("defaults_group without defaults_file"));
}

TEST_CASE("the default connection is required when used", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, std::string(kMinimal) + "[check a]\ntype = mysql_ping\n");
  CHECK_FALSE(l.config);
  CHECK(l.Has("uses the default MySQL connection, but there is no [mysql] section"));
}

TEST_CASE("passwords are read and kept as secrets", "[config]") {
  TempDir dir;
  std::string pass = dir.Write("mysql.pass", "s3cret\n");
  Loaded l = Load(dir, std::string(kMinimal) + "[mysql]\nhost = 127.0.0.1\nport = 3307\nuser = warden\n"
                           "password_file = " + pass + "\n[check a]\ntype = mysql_ping\n");
  INFO(l.All());
  REQUIRE(l.config);
  CHECK(l.config->mysql.at("").password == "s3cret");
  CHECK(l.config->mysql.at("").port == 3307);
  CHECK(std::find(l.config->secrets.begin(), l.config->secrets.end(), "s3cret") !=
        l.config->secrets.end());
  Loaded missing = Load(dir, std::string(kMinimal) + "[mysql]\nhost = 127.0.0.1\nuser = warden\n"
                                 "password_file = /nonexistent/pass\n", "b.ini");
  CHECK(missing.Has("password_file: cannot read /nonexistent/pass"));
}

TEST_CASE("checks get defaults from [daemon]", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, "[daemon]\ninterval = 7s\njitter = 0%\n[mutex]\nurl = http://127.0.0.1:1/m\n"
                       "[check a]\ntype = file\npath = /\nwarn = > 1\ntrip = 3 of 5\nrecover = 2\n"
                       "repeat = 30m\n");
  INFO(l.All());
  REQUIRE(l.config);
  const CheckConfig* a = l.config->FindCheck("a");
  REQUIRE(a);
  CHECK(a->common.every.count() == 7000);
  CHECK(a->common.timeout.count() == 7000);
  CHECK(a->rules.trip.need == 3);
  CHECK(a->rules.trip.window == 5);
  CHECK(a->rules.recover == 2);
  CHECK(a->rules.repeat->count() == 1'800'000);
  CHECK(l.config->daemon.jitter == 0);
  CHECK(l.config->mutex.url == "http://127.0.0.1:1/m");
}

TEST_CASE("jitter = 0 is 0%, the way the samples write it for tests", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, "[daemon]\njitter = 0\n[mutex]\nmode = off\n");
  INFO(l.All());
  REQUIRE(l.config);
  CHECK(l.config->daemon.jitter == 0);
  Loaded bare = Load(dir, "[daemon]\njitter = 10\n[mutex]\nmode = off\n", "b.ini");
  CHECK(bare.Has("jitter: '10' is not a percentage"));
}

TEST_CASE("mutex settings", "[config]") {
  TempDir dir;
  Loaded both = Load(dir, "[mutex]\nmode = off\nurl = http://x/\n");
  CHECK(both.Has("mode = off and a url contradict"));
  Loaded none = Load(dir, "[mutex]\ntimeout = 2s\n", "b.ini");
  CHECK(none.Has("[mutex] needs url = …, backend = etcd or mode = off"));
  Loaded scheme = Load(dir, "[mutex]\nurl = ftp://x/\n", "c.ini");
  CHECK(scheme.Has("url must start with http://, https:// or file://"));
  std::string token = dir.Write("token", "tok-123\n");
  Loaded ok = Load(dir, "[mutex]\nurl = https://ops/m.json\ntoken_file = " + token +
                            "\ncache = 1s\npoll = 3s\ntimeout = 500ms\n", "d.ini");
  INFO(ok.All());
  REQUIRE(ok.config);
  CHECK(ok.config->mutex.token == "tok-123");
  CHECK(ok.config->mutex.cache.count() == 1000);
  CHECK(ok.config->mutex.poll.count() == 3000);
  CHECK(ok.config->mutex.timeout.count() == 500);
  // The token is a secret like a password: not readable by group or others.
  std::string open_token = dir.Write("open-token", "tok-123\n", 0640);
  Loaded open = Load(dir, "[mutex]\nurl = https://ops/m.json\ntoken_file = " + open_token + "\n",
                     "e.ini");
  CHECK_FALSE(open.config);
  CHECK(open.Has("e.ini:3: token_file: " + open_token +
                 " is mode 0640: a secret must not be readable by group or others"));
}

TEST_CASE("include globs are relative to the including file", "[config]") {
  TempDir dir;
  dir.Write("conf.d/10-a.ini", "[action a]\ntype = notify\nmessage = hello\n");
  dir.Write("conf.d/20-b.ini", "[check b]\ntype = file\npath = /\non_error = a\n");
  dir.Write("conf.d/ignored.txt", "garbage");
  Loaded l = Load(dir, "[daemon]\ninclude = conf.d/*.ini\n[mutex]\nmode = off\n");
  INFO(l.All());
  REQUIRE(l.config);
  CHECK(l.config->FindAction("a"));
  CHECK(l.config->FindCheck("b"));
  // Errors in included files name the included file.
  dir.Write("conf.d/30-bad.ini", "[check c]\ntype = nope\n");
  Loaded bad = Load(dir, "[daemon]\ninclude = conf.d/*.ini\n[mutex]\nmode = off\n", "w2.ini");
  CHECK(bad.Has(dir / "conf.d/30-bad.ini" + ":2: unknown check type 'nope'"));
  Loaded missing = Load(dir, "[daemon]\ninclude = nothere.ini\n[mutex]\nmode = off\n", "w3.ini");
  CHECK(missing.Has(":2: include 'nothere.ini': no such file"));
}

TEST_CASE("config files writable by others or owned by others are refused", "[config]") {
  TempDir dir;
  std::string path = dir.Write("warden.ini", kMinimal, 0664);
  Diagnostics diag;
  CHECK_FALSE(LoadConfig(path, LoadOptions{}, diag));
  REQUIRE(diag.errors().size() == 1);
  CHECK_THAT(diag.errors()[0], Catch::Contains("writable by group or others"));

  dir.Write("conf.d/x.ini", "[action a]\ntype = notify\nmessage = m\n", 0666);
  std::string main = dir.Write("w2.ini", "[daemon]\ninclude = conf.d/*.ini\n[mutex]\nmode = off\n");
  Diagnostics d2;
  CHECK_FALSE(LoadConfig(main, LoadOptions{}, d2));
  REQUIRE(d2.errors().size() == 1);
  CHECK_THAT(d2.errors()[0], Catch::Contains(":2: refusing config file") &&
                                 Catch::Contains("x.ini"));

  if (::geteuid() == 0) {
    std::string theirs = dir.Write("theirs.ini", kMinimal);
    REQUIRE(::chown(theirs.c_str(), 12345, 12345) == 0);
    Diagnostics d3;
    CHECK_FALSE(LoadConfig(theirs, LoadOptions{}, d3));
    REQUIRE(d3.errors().size() == 1);
    CHECK_THAT(d3.errors()[0], Catch::Contains("owned by uid 12345"));
  }
}

TEST_CASE("multi-line values only where allowed", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, std::string(kMinimal) + "[action a]\ntype = notify\nseverity = info\n"
                                               "  more\nmessage = one\n  two\n");
  CHECK_FALSE(l.config);
  INFO(l.All());
  CHECK(l.Has(":9: this indented line continues the value of 'severity'"));
}

TEST_CASE("[fleet] and a job's slot load, and their mistakes are named", "[config][fleet]") {
  TempDir dir;
  Loaded ok = Load(dir, std::string(kMinimal) + R"([fleet]
endpoints = http://10.0.0.1:2379, https://[::1]:2379/
prefix    = /prod/warden
slots     = 2
poll      = 5s
[action a]
type = notify
message = m
[job upgrade]
steps = a
slot  = chain-a
slots = 3
)");
  INFO(ok.All());
  REQUIRE(ok.config);
  CHECK(ok.config->fleet.enabled);
  CHECK(ok.config->fleet.etcd.endpoints ==
        std::vector<std::string>{"http://10.0.0.1:2379", "https://[::1]:2379"});
  CHECK(ok.config->fleet.prefix == "/prod/warden");
  CHECK(ok.config->fleet.slots == 2);
  CHECK(ok.config->fleet.poll == Duration(5000));
  CHECK(ok.config->FindJob("upgrade")->slot == "chain-a");
  CHECK(ok.config->FindJob("upgrade")->slots == 3);

  TempDir dir2;
  Loaded bad = Load(dir2, std::string(kMinimal) + R"([fleet]
endpoints = 10.0.0.1:2379
prefix    = warden/
slots     = 0
poll      = 10ms
cert_file = /etc/warden/c.pem
[action a]
type = notify
message = m
[job upgrade]
steps = a
slot  = chain a
)");
  CHECK_FALSE(bad.config);
  INFO(bad.All());
  CHECK(bad.Has("endpoints: "));
  CHECK(bad.Has("prefix must start with '/'"));
  CHECK(bad.Has("slots"));
  CHECK(bad.Has("poll must be at least 1s"));
  CHECK(bad.Has("cert_file and key_file go together"));
  CHECK(bad.Has("slot: 'chain a' is not a group name"));

  TempDir dir3;
  Loaded nofleet = Load(dir3, std::string(kMinimal) + R"([action a]
type = notify
message = m
[job upgrade]
steps = a
slot  = chain-a
)");
  CHECK(nofleet.Has("[job upgrade] slot = chain-a needs a [fleet] section"));
}

// [mutex] backend = etcd and [fleet] share their etcd keys: the same text
// on the same line gives the same value, or the same file:line message.
TEST_CASE("[mutex] backend = etcd and [fleet] read the etcd keys alike", "[config][fleet]") {
  TempDir dir;
  std::string pem = dir.Write("client.pem", "x");
  // Line 5 on is `keys`, in either section.
  auto as_mutex = [&](const std::string& keys) {
    return Load(dir, "[daemon]\nhost_id = db-test\n[mutex]\nbackend = etcd\n" + keys);
  };
  auto as_fleet = [&](const std::string& keys) {
    return Load(dir, "[daemon]\nhost_id = db-test\n[fleet]\nslots = 2\n" + keys +
                         "[mutex]\nmode = off\n");
  };
  const std::string ep = "endpoints = http://127.0.0.1:2379\n";
  const std::string path = dir / "warden.ini";

  SECTION("the same values") {
    const std::string keys = "endpoints = https://10.0.0.1:2379/, http://[::1]:2379\n"
                             "prefix = /prod/eu\ntimeout = 1500ms\nconnect_timeout = 300ms\n"
                             "ca_file = /etc/ssl/ca.pem\ncert_file = " + pem + "\nkey_file = " +
                             pem + "\ncluster_id = 0xcdf818194e3a8c32\n";
    Loaded m = as_mutex(keys);
    Loaded f = as_fleet(keys);
    INFO(m.All() << f.All());
    REQUIRE(m.config);
    REQUIRE(f.config);
    CHECK(m.config->mutex.etcd == f.config->fleet.etcd);
    CHECK(m.config->mutex.prefix == f.config->fleet.prefix);
    CHECK(f.config->fleet.etcd.endpoints ==
          std::vector<std::string>{"https://10.0.0.1:2379", "http://[::1]:2379"});
    CHECK(f.config->fleet.prefix == "/prod/eu");
    CHECK(f.config->fleet.etcd.timeout == Duration(1500));
    CHECK(f.config->fleet.etcd.connect_timeout == Duration(300));
    CHECK(f.config->fleet.etcd.ca_file == "/etc/ssl/ca.pem");
    CHECK(f.config->fleet.etcd.key_file == pem);
    CHECK(f.config->fleet.etcd.cluster_id == "14841639068965178418");
  }

  SECTION("the same mistakes, the same messages") {
    struct Case {
      std::string keys;
      std::string error;   // the whole message, file:line first
    };
    const std::vector<Case> cases = {
        {"endpoints = 127.0.0.1:2379\n",
         path + ":5: endpoints: '127.0.0.1:2379' is not http://HOST:PORT or https://HOST:PORT"},
        {ep + "prefix = /a b\n",
         path + ":6: prefix must start with '/', not end with '/' and hold no spaces (e.g. "
                "/warden)"},
        {ep + "prefix = warden/\n", path + ":6: prefix must start with '/'"},
        {ep + "cert_file = " + pem + "\n",
         path + ":6: cert_file and key_file go together (they may name the same PEM file)"},
        {ep + "key_file = " + pem + "\n",
         path + ":6: cert_file and key_file go together (they may name the same PEM file)"},
        {ep + "cert_file = /nonexistent/c.pem\nkey_file = " + pem + "\n",
         path + ":6: cert_file: cannot read /nonexistent/c.pem: No such file or directory"},
        {ep + "cluster_id = abc\n", path + ":6: cluster_id must be a decimal number"},
        {ep + "timeout = 0s\n", path + ":6: timeout must be longer than 0"},
        {ep + "connect_timeout = 0s\n", path + ":6: connect_timeout must be longer than 0"},
    };
    for (const auto& c : cases) {
      INFO(c.keys);
      Loaded m = as_mutex(c.keys);
      Loaded f = as_fleet(c.keys);
      INFO("[mutex]:\n" << m.All() << "[fleet]:\n" << f.All());
      CHECK_FALSE(m.config);
      CHECK_FALSE(f.config);
      CHECK(m.errors == f.errors);
      CHECK(m.Has(c.error));
    }
  }

  SECTION("no endpoints: the same message, for what needs them") {
    Loaded m = as_mutex("prefix = /w\n");
    Loaded f = as_fleet("prefix = /w\n");
    const std::string needs =
        " needs endpoints = http://HOST:PORT,… (the etcd cluster's client URLs)";
    CHECK(m.Has(path + ":4: backend = etcd" + needs));
    CHECK(f.Has(path + ":3: [fleet]" + needs));
  }
}

TEST_CASE("every sample config in etc/ validates", "[config]") {
  // The samples name real paths (/etc/warden/mysql.pass); validate their
  // structure without reading secrets or checking ownership.
  TempDir dir;
  for (const char* name : {"warden.ini", "demo/warden.ini"}) {
    std::string path = std::string(WARDEN_SOURCE_DIR) + "/etc/" + name;
    if (std::string(name) == "demo/warden.ini") {
      // As scripts/demo fills it in.
      std::ifstream in(path);
      std::ostringstream whole;   // (istreambuf_iterator: a gcc -O2 null-dereference false alarm)
      whole << in.rdbuf();
      std::string text = whole.str();
      for (auto [from, to] : {std::pair<std::string, std::string>{"@DIR@", "/tmp/demo"},
                              {"@EXTRA_PORT@", "3307"},
                              {"@METRICS_PORT@", "9187"}}) {
        for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
          text.replace(at, from.size(), to);
        }
      }
      path = dir.Write("demo.ini", text);
    }
    Diagnostics diag;
    LoadOptions opts;
    opts.check_ownership = false;
    opts.read_secrets = false;
    auto c = LoadConfig(path, opts, diag);
    std::string all;
    for (const auto& e : diag.errors()) all += e + "\n";
    INFO(path << "\n" << all);
    CHECK(c);
  }
}

TEST_CASE("service_command is checked at load", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, "[daemon]\nservice_command = /usr/bin/svc 'unterminated\n[mutex]\nmode = off\n");
  CHECK_FALSE(l.config);
  INFO(l.All());
  CHECK(l.Has(":2: service_command: "));
  Loaded ok = Load(dir, "[daemon]\nservice_command = /usr/sbin/service {name} {op}\n[mutex]\nmode = off\n",
                   "b.ini");
  INFO(ok.All());
  CHECK(ok.config);
}

TEST_CASE("jobs and waits load with their steps, schedule and timeouts", "[config][jobs]") {
  TempDir dir;
  Loaded l = Load(dir, std::string(kMinimal) + R"(
[check alive]
type = file
path = /
[action drain]
type = notify
message = draining
[wait healthy]
checks  = alive
for     = 30s
timeout = 10m
[job upgrade]
steps    = drain, healthy
schedule = 0 3 * * sun
timeout  = 90m
[job adhoc]
steps = drain
)");
  INFO(l.All());
  REQUIRE(l.config);
  const JobConfig* j = l.config->FindJob("upgrade");
  REQUIRE(j);
  CHECK(j->steps == std::vector<std::string>{"drain", "healthy"});
  REQUIRE(j->schedule);
  CHECK(j->schedule->text == "0 3 * * sun");
  CHECK(j->timeout == Duration(90 * 60'000));
  const JobConfig* adhoc = l.config->FindJob("adhoc");
  REQUIRE(adhoc);
  CHECK_FALSE(adhoc->schedule);
  CHECK(adhoc->timeout == Duration(2 * 3'600'000));   // the default: 2h
  const WaitConfig* w = l.config->FindWait("healthy");
  REQUIRE(w);
  CHECK(w->checks == std::vector<std::string>{"alive"});
  CHECK(w->hold == Duration(30'000));
  CHECK(w->timeout == Duration(600'000));
  CHECK_FALSE(l.config->FindJob("drain"));
}

TEST_CASE("job and wait mistakes are named with file:line", "[config][jobs]") {
  TempDir dir;
  Loaded l = Load(dir, std::string(kMinimal) + R"(
[check alive]
type = file
path = /
on_crit = healthy
[action drain]
type = notify
message = draining
[wait healthy]
checks  = alive, nosuch
for     = 10m
timeout = 5m
[wait drain]
checks = alive
[job upgrade]
steps    = drain, missing, other
schedule = 0 25 * * *
slot     = chain-a
[job other]
steps = drain
schedule = 0 0 30 2 *
[job empty]
timeout = 0s
colour = blue
)");
  CHECK_FALSE(l.config);
  INFO(l.All());
  CHECK(l.Has("[wait healthy] checks names 'nosuch', which is not a check"));
  CHECK(l.Has("for (10m) must be shorter than timeout (5m)"));
  CHECK(l.Has("[wait drain] has the name of [action drain]"));
  CHECK(l.Has("actions, waits and jobs share one namespace"));
  CHECK(l.Has("[job upgrade] step 'missing' is neither an action nor a wait"));
  CHECK(l.Has("[job upgrade] step 'other' is a job; a job's steps are actions and waits"));
  CHECK(l.Has("schedule: hour field '25' is out of range 0-23"));
  CHECK(l.Has("slot = chain-a needs a [fleet] section"));
  CHECK(l.Has("schedule: '0 0 30 2 *' never fires"));
  CHECK(l.Has("missing key 'steps'"));
  CHECK(l.Has("timeout must be longer than 0"));
  CHECK(l.Has("colour"));
  CHECK(l.Has("on_crit names 'healthy', a wait: waits are steps of jobs"));
  // Every message carries its place.
  for (const auto& e : l.errors) CHECK(e.find("warden.ini:") != std::string::npos);
}

TEST_CASE("a check's on_crit may name a job", "[config][jobs]") {
  TempDir dir;
  Loaded l = Load(dir, std::string(kMinimal) + R"(
[check alive]
type = file
path = /
crit = == 0
on_crit = repair
[action fix]
type = notify
message = fixing
[job repair]
steps = fix
)");
  INFO(l.All());
  REQUIRE(l.config);
  CHECK(l.config->FindCheck("alive")->on_crit == std::vector<std::string>{"repair"});
}

TEST_CASE("group on checks, actions and jobs, and max_pause, load; their mistakes are named",
          "[config]") {
  TempDir dir;
  Loaded ok = Load(dir, R"([daemon]
state_dir = /tmp/warden-state
max_pause = 4h
[mutex]
mode = off
[check c]
type = file
path = /
metric = exists
group = replication, disks
[action a]
type = exec
command = /bin/true
group = replication
[job j]
steps = a
group = maintenance
)");
  INFO(ok.All());
  REQUIRE(ok.config);
  CHECK(ok.config->daemon.max_pause == Duration(4 * 3'600'000));
  CHECK(ok.config->FindCheck("c")->groups == std::vector<std::string>{"replication", "disks"});
  CHECK(ok.config->FindAction("a")->groups == std::vector<std::string>{"replication"});
  CHECK(ok.config->FindJob("j")->groups == std::vector<std::string>{"maintenance"});
  CHECK(ok.config->HasGroup("disks"));
  CHECK(ok.config->HasGroup("maintenance"));
  CHECK_FALSE(ok.config->HasGroup("nosuch"));

  TempDir dir2;
  Loaded bad = Load(dir2, R"([daemon]
max_pause = 0s
[mutex]
mode = off
[check c]
type = file
path = /
metric = exists
group = a b
[action a]
type = exec
command = /bin/true
group = x, x
)");
  INFO(bad.All());
  CHECK_FALSE(bad.config);
  CHECK(bad.Has("max_pause must be longer than 0"));
  CHECK(bad.Has("group: 'a b' is not a group name"));
  CHECK(bad.Has("group: 'x' is named twice"));
  CHECK(ok.config->daemon.max_pause.has_value());
  CHECK_FALSE(Load(dir, kMinimal).config->daemon.max_pause.has_value());
}

TEST_CASE("[maintenance NAME] loads; its mistakes are named", "[config]") {
  TempDir dir;
  Loaded ok = Load(dir, std::string(kMinimal) + R"([maintenance backup]
schedule = 0 2 * * *
for = 90m
reason = nightly backup
[maintenance repl]
schedule = @weekly
for = 1h
scope = action fix
reason = r
[action fix]
type = exec
command = /bin/true
)");
  INFO(ok.All());
  REQUIRE(ok.config);
  REQUIRE(ok.config->maintenance.size() == 2);
  const MaintenanceConfig& m = ok.config->maintenance[0];
  CHECK(m.name == "backup");
  CHECK(m.schedule.text == "0 2 * * *");
  CHECK(m.hold == Duration(90 * 60'000));
  CHECK(m.scope_kind == "host");
  CHECK(m.reason == "nightly backup");
  CHECK(ok.config->maintenance[1].scope_kind == "action");
  CHECK(ok.config->maintenance[1].scope_name == "fix");

  TempDir dir2;
  Loaded bad = Load(dir2, std::string(kMinimal) + R"([maintenance a]
schedule = 0 0 30 2 *
for = 1h
reason = r
[maintenance b]
schedule = 61 * * * *
reason = r
scope = action nosuch
[maintenance c]
for = 1h
reason = r
scope = everything
)");
  INFO(bad.All());
  CHECK_FALSE(bad.config);
  CHECK(bad.Has("never fires"));
  CHECK(bad.Has("schedule: minute field"));
  CHECK(bad.Has("[maintenance b] needs 'for'"));
  CHECK(bad.Has("[maintenance c] needs 'schedule'"));
  CHECK(bad.Has("scope: 'everything' is not host, group NAME or action NAME"));
}

TEST_CASE("on_fail, the rollback flags and kill_grace load", "[config][jobs]") {
  TempDir dir;
  Loaded l = Load(dir, R"([daemon]
host_id = db-test
state_dir = /tmp/warden-state
kill_grace = 1500ms
[mutex]
mode = off
[action a]
type = notify
message = a
[job upgrade]
steps   = a
on_fail = downgrade
rollback_interrupted = yes
[job downgrade]
steps   = a
on_fail = page
[job page]
steps = a
)");
  INFO(l.All());
  REQUIRE(l.config);
  CHECK(l.config->daemon.kill_grace == Duration(1500));
  const JobConfig* up = l.config->FindJob("upgrade");
  REQUIRE(up);
  CHECK(up->on_fail == "downgrade");
  CHECK(up->rollback_interrupted);
  CHECK_FALSE(up->rollback_on_terminate);
  CHECK(l.config->FindJob("page")->on_fail.empty());
  Loaded d = Load(dir, kMinimal);
  REQUIRE(d.config);
  CHECK(d.config->daemon.kill_grace == Duration(10'000));
}

TEST_CASE("on_fail mistakes are named with file:line", "[config][jobs]") {
  TempDir dir;
  Loaded l = Load(dir, R"([daemon]
host_id = db-test
kill_grace = 10ms
[mutex]
mode = off
[fleet]
endpoints = http://127.0.0.1:2379
[action a]
type = notify
message = a
[job self]
steps   = a
on_fail = self
[job unknown]
steps   = a
on_fail = nosuch
[job to_action]
steps   = a
on_fail = a
[job x]
steps   = a
on_fail = y
[job y]
steps   = a
on_fail = z
[job z]
steps   = a
on_fail = x
[job into_cycle]
steps   = a
on_fail = x
[job slotted_rollback]
steps   = a
on_fail = slotted
[job slotted]
steps = a
slot  = chain-a
[job flags]
steps = a
rollback_on_terminate = yes
rollback_interrupted = no
)");
  CHECK_FALSE(l.config);
  INFO(l.All());
  CHECK(l.Has("warden.ini:3: kill_grace must be at least 100ms"));
  CHECK(l.Has("warden.ini:13: [job self] on_fail names the job itself"));
  CHECK(l.Has("warden.ini:16: [job unknown] on_fail names 'nosuch', which is not a job"));
  CHECK(l.Has("warden.ini:19: [job to_action] on_fail names 'a', which is not a job (a "
              "rollback is a job)"));
  CHECK(l.Has("warden.ini:22: [job x] on_fail makes a cycle (x -> y -> z -> x)"));
  CHECK(l.Has("warden.ini:34: [job slotted_rollback] on_fail = slotted: a rollback job takes "
              "no fleet slot"));
  CHECK(l.Has("warden.ini:40: rollback_on_terminate without on_fail = JOB means nothing"));
  CHECK(l.Has("warden.ini:41: rollback_interrupted without on_fail = JOB means nothing"));
  // One cycle, one message; a job leading into it is no cycle of its own.
  size_t cycles = 0;
  for (const auto& e : l.errors) cycles += e.find("makes a cycle") != std::string::npos;
  CHECK(cycles == 1);
}

TEST_CASE("a nagios check may fire on_warn and on_crit without thresholds", "[config]") {
  TempDir dir;
  Loaded l = Load(dir, std::string(kMinimal) + R"([check plugin]
type     = nagios
command  = /usr/lib/nagios/plugins/check_dummy 0
on_warn  = tell
on_crit  = tell
[check program]
type    = program
command = true
on_crit = tell
[action tell]
type    = notify
message = {check} is {state}
)");
  INFO(l.All());
  CHECK_FALSE(l.config);
  CHECK(l.Has("warden.ini:14: on_crit can never fire: the check has no crit threshold"));
  CHECK(l.errors.size() == 1);
}
