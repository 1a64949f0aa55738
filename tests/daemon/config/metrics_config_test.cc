// [metrics] validation (daemon/config/metrics_config.cc through LoadConfig).
#include <catch2/catch.hpp>

#include "daemon/config/section_common.h"
#include "tests/support/config_loader.h"

using namespace warden;
using warden::testing::LoadedConfig;
using warden::testing::LoadConfigText;
using warden::testing::LoadSection;
using warden::testing::kMinimalConfig;
using warden::testing::TempDir;

namespace {

using Loaded = LoadedConfig;

// [metrics] is line 6 of the config, its first key line 7.
Loaded Load(const std::string& body) { return LoadSection("metrics", body); }

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
  Loaded l = LoadConfigText(dir, kMinimalConfig);
  REQUIRE(l.config);
  CHECK_FALSE(l.config->metrics.enabled);
  CHECK(l.config->metrics.listen.empty());
  CHECK(l.config->metrics.textfile.empty());
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

TEST_CASE("an address is host:port with an IP address, as every key that takes one reads it",
          "[config]") {
  auto v6 = ParseHostPort("[::1]:9187", "host:port");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 9187);
  auto local = ParseHostPort("localhost:24224", "host:port");
  REQUIRE(local.ok());
  CHECK(local->host == "127.0.0.1");
  CHECK(ParseHostPort("::1:9187", "host:port").error() == "'::1:9187' is not host:port");
  CHECK(ParseHostPort("[::1]9187", "host:port").error() == "'[::1]9187' is not host:port");
  CHECK(ParseHostPort(":9187", "host:port or unix:/path").error() ==
        "':9187' is not host:port or unix:/path");
  CHECK(ParseHostPort("db1:9187", "host:port").error().find("'db1' is not an IP address") == 0);
  CHECK(ParseHostPort("127.0.0.1:0", "host:port").error().find("port: ") == 0);
  CHECK(ParseHostPort("127.0.0.1:65536", "host:port").error().find("port: ") == 0);
}
