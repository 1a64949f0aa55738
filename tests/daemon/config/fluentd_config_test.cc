// [fluentd] validation (daemon/config/fluentd_config.cc through LoadConfig).
#include <catch2/catch.hpp>

#include "tests/support/config_loader.h"

using namespace warden;
using warden::testing::LoadedConfig;
using warden::testing::LoadConfigText;
using warden::testing::LoadSection;
using warden::testing::kMinimalConfig;
using warden::testing::TempDir;

namespace {

using Loaded = LoadedConfig;

// [fluentd] is line 6 of the config, its first key line 7.
Loaded Load(const std::string& body) { return LoadSection("fluentd", body); }

}  // namespace

TEST_CASE("fluentd: defaults with a TCP address", "[config][fluentd]") {
  Loaded l = Load("address = 127.0.0.1:24224\n");
  INFO(l.All());
  REQUIRE(l.config);
  const FluentdConfig& f = l.config->fluentd;
  CHECK(f.enabled);
  CHECK(f.host == "127.0.0.1");
  CHECK(f.port == 24224);
  CHECK(f.unix_path.empty());
  CHECK(f.tag == "warden");
  CHECK(f.ack);
  CHECK(f.buffer_limit == 256ull * 1024 * 1024);
  CHECK(f.chunk_limit == 1024ull * 1024);
  CHECK(f.ack_timeout == Duration(60'000));
  CHECK(f.stop_flush == Duration(5'000));
}

TEST_CASE("fluentd: without the section delivery is off", "[config][fluentd]") {
  TempDir dir;
  Loaded l = LoadConfigText(dir, kMinimalConfig);
  REQUIRE(l.config);
  CHECK_FALSE(l.config->fluentd.enabled);
}

TEST_CASE("fluentd: every key is read", "[config][fluentd]") {
  Loaded l = Load("address = [::1]:24225\ntag = ops.db\nack = no\nbuffer_limit = 64MB\n"
                  "chunk_limit = 512KB\nack_timeout = 5s\nstop_flush = 2500ms\n");
  INFO(l.All());
  REQUIRE(l.config);
  const FluentdConfig& f = l.config->fluentd;
  CHECK(f.host == "::1");
  CHECK(f.port == 24225);
  CHECK(f.tag == "ops.db");
  CHECK_FALSE(f.ack);
  CHECK(f.buffer_limit == 64ull << 20);
  CHECK(f.chunk_limit == 512ull << 10);
  CHECK(f.ack_timeout == Duration(5000));
  CHECK(f.stop_flush == Duration(2500));
}

TEST_CASE("fluentd: stop_flush = 0 means no wait at stop", "[config][fluentd]") {
  Loaded l = Load("address = 127.0.0.1:24224\nstop_flush = 0\n");
  INFO(l.All());
  REQUIRE(l.config);
  CHECK(l.config->fluentd.stop_flush == Duration(0));
}

TEST_CASE("fluentd: bad ack_timeout and stop_flush values name their line", "[config][fluentd]") {
  struct Case {
    const char* keys;
    const char* error;
  };
  for (const Case& c : {
           Case{"ack_timeout = 50ms\n", "warden.ini:8: ack_timeout must be at least 100ms"},
           Case{"ack_timeout = 0\n", "warden.ini:8: ack_timeout must be at least 100ms"},
           Case{"ack_timeout = soon\n", "warden.ini:8: ack_timeout:"},
           Case{"ack_timeout = 60\n", "warden.ini:8: ack_timeout: duration '60' needs a unit"},
           Case{"stop_flush = 2m\n", "warden.ini:8: stop_flush must be at most 1m (0: no wait"},
           Case{"stop_flush = -1s\n", "warden.ini:8: stop_flush:"},
           Case{"stop_flush = 5\n", "warden.ini:8: stop_flush: duration '5' needs a unit"},
       }) {
    Loaded l = Load(std::string("address = 127.0.0.1:24224\n") + c.keys);
    INFO(c.keys << l.All());
    CHECK_FALSE(l.config);
    CHECK(l.Has(c.error));
  }
}

TEST_CASE("fluentd: localhost is 127.0.0.1; other names are refused", "[config][fluentd]") {
  Loaded ok = Load("address = localhost:24224\n");
  REQUIRE(ok.config);
  CHECK(ok.config->fluentd.host == "127.0.0.1");
  Loaded bad = Load("address = fluentd.example.com:24224\n");
  CHECK_FALSE(bad.config);
  INFO(bad.All());
  CHECK(bad.Has("warden.ini:7: address: 'fluentd.example.com' is not an IP address"));
}

TEST_CASE("fluentd: malformed addresses name their line", "[config][fluentd]") {
  for (const char* a : {"127.0.0.1", "127.0.0.1:", ":24224", "127.0.0.1:99999", "unix:relative"}) {
    Loaded l = Load(std::string("address = ") + a + "\nack = no\n");
    INFO(a << "\n" << l.All());
    CHECK_FALSE(l.config);
    CHECK(l.Has("warden.ini:7: address:"));
  }
}

TEST_CASE("fluentd: a unix address with ack = yes is an error", "[config][fluentd]") {
  SECTION("ack by default") {
    Loaded l = Load("address = unix:/run/fluentd/fluentd.sock\n");
    INFO(l.All());
    CHECK_FALSE(l.config);
    CHECK(l.Has("warden.ini:7: ack = yes (the default) with a unix: address"));
  }
  SECTION("ack said explicitly") {
    Loaded l = Load("address = unix:/run/fluentd/fluentd.sock\nack = yes\n");
    CHECK_FALSE(l.config);
    CHECK(l.Has("warden.ini:8: ack = yes"));
  }
  SECTION("ack = no is fine") {
    Loaded l = Load("address = unix:/run/fluentd/fluentd.sock\nack = no\n");
    INFO(l.All());
    REQUIRE(l.config);
    CHECK(l.config->fluentd.unix_path == "/run/fluentd/fluentd.sock");
    CHECK_FALSE(l.config->fluentd.ack);
  }
}

TEST_CASE("fluentd: unknown keys, bad values and a missing address are errors", "[config][fluentd]") {
  Loaded l = Load("adress = 127.0.0.1:24224\nack = maybe\nbuffer_limit = 256\nchunk_limit = 1KB\n"
                  "tag = .bad\n");
  INFO(l.All());
  CHECK_FALSE(l.config);
  CHECK(l.Has("warden.ini:6: [fluentd] needs 'address'"));
  CHECK(l.Has("warden.ini:7: unknown key 'adress' for [fluentd]"));
  CHECK(l.Has("warden.ini:8: ack:"));
  CHECK(l.Has("warden.ini:9: buffer_limit:"));
  CHECK(l.Has("warden.ini:10: chunk_limit must be between 16KB and 64MB"));
  CHECK(l.Has("warden.ini:11: tag: '.bad' is not a fluentd tag prefix"));
}

TEST_CASE("fluentd: the buffer must hold at least two chunks", "[config][fluentd]") {
  Loaded l = Load("address = 127.0.0.1:24224\nbuffer_limit = 1MB\nchunk_limit = 1MB\n");
  CHECK_FALSE(l.config);
  CHECK(l.Has("warden.ini:8: buffer_limit must be at least twice chunk_limit"));
}

TEST_CASE("fluentd: [fluentd] takes no name", "[config][fluentd]") {
  TempDir dir;
  Loaded l = LoadConfigText(dir, std::string(kMinimalConfig) + "[fluentd x]\naddress = 127.0.0.1:1\n");
  CHECK_FALSE(l.config);
}
