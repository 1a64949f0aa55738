// [metrics] validation (daemon/config/metrics_config.cc through LoadConfig).
#include <algorithm>
#include <catch2/catch.hpp>

#include "daemon/config/config.h"
#include "tests/support/temp_dir.h"

using namespace warden;
using warden::testing::TempDir;

namespace {

const char* kBase = "[daemon]\nhost_id = db-test\nstate_dir = /tmp/warden-state\n[mutex]\nmode = off\n";
// kBase is 5 lines: [metrics] is line 6, its first key line 7.

struct Loaded {
  std::shared_ptr<const Config> config;
  std::vector<std::string> errors;
  bool Has(const std::string& needle) const {
    return std::any_of(errors.begin(), errors.end(),
                       [&](const std::string& e) { return e.find(needle) != std::string::npos; });
  }
  std::string All() const {
    std::string s;
    for (const auto& e : errors) s += e + "\n";
    return s;
  }
};

Loaded Load(const std::string& metrics) {
  TempDir dir;
  std::string path = dir.Write("warden.ini", std::string(kBase) + "[metrics]\n" + metrics);
  Diagnostics diag;
  Loaded l;
  l.config = LoadConfig(path, LoadOptions{}, diag);
  l.errors = diag.errors();
  return l;
}

}  // namespace

TEST_CASE("metrics: listen, textfile and the default interval", "[config][metrics]") {
  Loaded l = Load("listen = 127.0.0.1:9187\ntextfile = /var/lib/node_exporter/warden.prom\n");
  INFO(l.All());
  REQUIRE(l.config);
  const MetricsConfig& m = l.config->metrics;
  CHECK(m.enabled);
  CHECK(m.listen == "127.0.0.1:9187");
  CHECK(m.host == "127.0.0.1");
  CHECK(m.port == 9187);
  CHECK(m.textfile == "/var/lib/node_exporter/warden.prom");
  CHECK(m.interval == Duration(15'000));
}

TEST_CASE("metrics: IPv6, localhost and an interval", "[config][metrics]") {
  Loaded v6 = Load("listen = [::1]:9187\ninterval = 30s\n");
  INFO(v6.All());
  REQUIRE(v6.config);
  CHECK(v6.config->metrics.host == "::1");
  CHECK(v6.config->metrics.interval == Duration(30'000));
  Loaded local = Load("listen = localhost:9100\n");
  REQUIRE(local.config);
  CHECK(local.config->metrics.host == "127.0.0.1");
}

TEST_CASE("metrics: without the section nothing is served", "[config][metrics]") {
  TempDir dir;
  std::string path = dir.Write("warden.ini", kBase);
  Diagnostics diag;
  auto c = LoadConfig(path, LoadOptions{}, diag);
  REQUIRE(c);
  CHECK_FALSE(c->metrics.enabled);
  CHECK(c->metrics.listen.empty());
  CHECK(c->metrics.textfile.empty());
}

TEST_CASE("metrics: bad values are reported at their line", "[config][metrics]") {
  CHECK(Load("listen = db1.example.com:9187\n").Has(":7: listen: 'db1.example.com' is not an IP address"));
  CHECK(Load("listen = 127.0.0.1\n").Has(":7: listen: '127.0.0.1' is not host:port"));
  CHECK(Load("listen = 127.0.0.1:0\n").Has(":7: listen: port:"));
  CHECK(Load("listen = 127.0.0.1:70000\n").Has(":7: listen: port:"));
  CHECK(Load("textfile = warden.prom\n").Has(":7: textfile: 'warden.prom' is not an absolute path"));
  CHECK(Load("textfile = /var/lib/\n").Has(":7: textfile: '/var/lib/' names a directory"));
  CHECK(Load("listen = 127.0.0.1:9187\ninterval = 100ms\n").Has(":8: interval must be at least 1s"));
  CHECK(Load("listen = 127.0.0.1:9187\ninterval = soon\n").Has(":8:"));
  CHECK(Load("listen = 127.0.0.1:9187\nport = 9187\n").Has(":8:"));
  Loaded empty = Load("interval = 15s\n");
  CHECK(empty.Has(":6: [metrics] needs listen = host:port, textfile = /path, or both"));
  CHECK_FALSE(empty.config);
}
