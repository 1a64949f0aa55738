// [mutex] backend = etcd: the config keys, and MutexClient against a real
// etcd (tests/support/etcd_test_server.h), driven on EV_DEFAULT.
#include <ev.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/io/mutex_client.h"
#include "tests/support/config_loader.h"
#include "tests/support/etcd_test_server.h"
#include "tests/support/mutex_ask.h"
#include "tests/support/run_loop.h"
#include "tests/support/temp_dir.h"

namespace warden {
namespace {

using testing::CannedHttpServer;
using testing::EtcdTestServer;
using testing::FreeLoopbackPort;
using testing::TempDir;

using warden::testing::AskMutex;
using warden::testing::RunUntil;

MutexConfig EtcdMutex(std::vector<std::string> endpoints, const std::string& prefix = "/warden") {
  MutexConfig c;
  c.mode = MutexConfig::Mode::kEtcd;
  c.etcd.endpoints = std::move(endpoints);
  c.prefix = prefix;
  c.etcd.timeout = Duration(1000);
  c.cache = Duration(0);
  c.poll = Duration(15'000);
  return c;
}

const std::string kNotArmed =
    "etcd mutex not armed: /warden/armed is missing (etcdctl put /warden/armed yes)";

using Loaded = testing::LoadedConfig;

Loaded Load(const TempDir& dir, const std::string& mutex_section) {
  return testing::LoadConfigText(dir, "[daemon]\nhost_id = db-test\n[mutex]\n" + mutex_section);
}

}  // namespace

TEST_CASE("mutex_etcd: config keys", "[etcd][config]") {
  TempDir dir;
  SECTION("a full etcd section") {
    std::string pem = dir.Write("client.pem", "x");
    Loaded l = Load(dir,
                    "backend = etcd\n"
                    "endpoints = http://10.0.0.1:2379, https://etcd-2.example.com:2379/\n"
                    "prefix = /fleet/eu\n"
                    "timeout = 1500ms\ncache = 2s\npoll = 5s\n"
                    "ca_file = /etc/ssl/etcd-ca.pem\n"
                    "cert_file = " + pem + "\nkey_file = " + pem + "\n"
                    "cluster_id = 0xcdf818194e3a8c32\nwatch = no\n");
    INFO(l.errors.size());
    REQUIRE(l.config);
    const MutexConfig& m = l.config->mutex;
    CHECK(m.mode == MutexConfig::Mode::kEtcd);
    CHECK(m.etcd.endpoints ==
          std::vector<std::string>{"http://10.0.0.1:2379", "https://etcd-2.example.com:2379"});
    CHECK(m.prefix == "/fleet/eu");
    CHECK(m.etcd.timeout.count() == 1500);
    CHECK(m.cache.count() == 2000);
    CHECK(m.poll.count() == 5000);
    CHECK(m.etcd.ca_file == "/etc/ssl/etcd-ca.pem");
    CHECK(m.etcd.cert_file == pem);
    CHECK(m.etcd.key_file == pem);
    CHECK(m.etcd.cluster_id == "14841639068965178418");
    CHECK_FALSE(m.watch);
    CHECK(m.url.empty());
  }
  SECTION("defaults") {
    Loaded l = Load(dir, "backend = etcd\nendpoints = http://127.0.0.1:2379\n");
    REQUIRE(l.config);
    CHECK(l.config->mutex.prefix == "/warden");
    CHECK(l.config->mutex.etcd.cluster_id.empty());
    CHECK(l.config->mutex.watch);
  }
  SECTION("errors, with file:line") {
    struct Case {
      std::string section;
      std::string error;
    };
    const std::vector<Case> cases = {
        {"backend = etcd\n", "warden.ini:4: backend = etcd needs endpoints = http://HOST:PORT"},
        {"backend = etcd\nendpoints = 127.0.0.1:2379\n",
         "warden.ini:5: endpoints: '127.0.0.1:2379' is not http://HOST:PORT or https://HOST:PORT"},
        {"backend = etcd\nendpoints = http://127.0.0.1\n", "(no port)"},
        {"backend = etcd\nendpoints = http://a:1,,http://b:2\n", "empty name in list"},
        {"backend = etcd\nendpoints = http://a:1\nurl = http://x/m\n",
         "warden.ini:6: url and backend = etcd are mutually exclusive"},
        {"backend = etcd\nendpoints = http://a:1\nmode = off\n",
         "mode = off and backend = etcd contradict each other"},
        {"backend = etcd\nendpoints = http://a:1\nprefix = warden\n",
         "warden.ini:6: prefix must start with '/'"},
        {"backend = etcd\nendpoints = http://a:1\nprefix = /warden/\n", "prefix must start"},
        {"backend = etcd\nendpoints = http://a:1\nwatch = maybe\n", "warden.ini:6: watch"},
        {"url = http://x/m\nwatch = yes\n", "warden.ini:5: watch is for backend = etcd"},
        {"backend = etcd\nendpoints = http://a:1\ncluster_id = abc\n",
         "warden.ini:6: cluster_id must be a decimal number"},
        {"backend = etcd\nendpoints = http://a:1\ncert_file = /etc/hostname\n",
         "cert_file and key_file go together"},
        {"backend = etcd\nendpoints = http://a:1\ncert_file = /nonexistent.pem\nkey_file = "
         "/nonexistent.pem\n",
         "cert_file: cannot read /nonexistent.pem"},
        {"backend = etcd\nendpoints = http://a:1\ntoken_file = /etc/hostname\n",
         "token_file is for url = "},
        {"url = http://x/m\nendpoints = http://a:1\n", "warden.ini:5: endpoints is for backend = etcd"},
        {"url = http://x/m\nprefix = /w\n", "prefix is for backend = etcd"},
        {"backend = http\n", "backend = http needs url"},
        {"backend = zookeeper\n", "backend: 'zookeeper' is not http or etcd"},
        {"backend = etcd\nendpoints = http://a:1\nendpoint = http://b:2\n",
         "unknown key 'endpoint'"},
    };
    for (const auto& c : cases) {
      INFO(c.section);
      Loaded l = Load(dir, c.section);
      CHECK_FALSE(l.config);
      CHECK(l.Has(c.error));
    }
  }
}

TEST_CASE("mutex_etcd: armed, held, not armed", "[etcd][mutex]") {
  EtcdTestServer etcd;
  MutexClient client(EV_DEFAULT, EtcdMutex({etcd.endpoint()}), "db-17");

  MutexAnswer unarmed = AskMutex(client);
  CHECK(unarmed.held);
  CHECK(unarmed.reason == kNotArmed);

  etcd.Put("/warden/armed", "yes");
  MutexAnswer clear = AskMutex(client);
  CHECK_FALSE(clear.held);
  CHECK(clear.reason == "clear");

  etcd.Put("/warden/mutex", "fleet freeze: INC-4711 (alice)");
  MutexAnswer held = AskMutex(client);
  CHECK(held.held);
  CHECK(held.reason == "fleet freeze: INC-4711 (alice)");

  // The mutex wins even without the sentinel; an empty value still holds.
  etcd.Delete("/warden/armed");
  etcd.Put("/warden/mutex", "");
  MutexAnswer empty = AskMutex(client);
  CHECK(empty.held);
  CHECK(empty.reason == "/warden/mutex is set");

  // A reason with control characters or raw bytes stays one printable line.
  etcd.Put("/warden/mutex", std::string("line1\nline2 \xff\xfe", 14));
  MutexAnswer odd = AskMutex(client);
  CHECK(odd.held);
  CHECK(odd.reason == "line1 line2 ??");

  etcd.Delete("/warden/mutex");
  CHECK(AskMutex(client).reason == kNotArmed);
  etcd.Put("/warden/armed", "yes");
  CHECK_FALSE(AskMutex(client).held);

  // Keys that only share the prefix's characters do not count.
  etcd.Put("/warden/mutex2", "x");
  etcd.Put("/warden/mutex/sub", "x");
  CHECK_FALSE(AskMutex(client).held);
  CHECK(client.requests() == 8);
}

TEST_CASE("mutex_etcd: another prefix is another switch", "[etcd][mutex]") {
  EtcdTestServer etcd;
  etcd.Put("/warden/armed", "yes");
  etcd.Put("/warden/mutex", "global");
  etcd.Put("/eu/armed", "yes");
  MutexClient eu(EV_DEFAULT, EtcdMutex({etcd.endpoint()}, "/eu"), "db-17");
  CHECK_FALSE(AskMutex(eu).held);
  etcd.Delete("/eu/armed");
  CHECK(AskMutex(eu).reason ==
        "etcd mutex not armed: /eu/armed is missing (etcdctl put /eu/armed yes)");
}

TEST_CASE("mutex_etcd: etcd stopped mid-run is held, clear again after restart",
          "[etcd][mutex]") {
  EtcdTestServer etcd;
  etcd.Put("/warden/armed", "yes");
  MutexConfig cfg = EtcdMutex({etcd.endpoint()});
  cfg.poll = Duration(200);
  cfg.cache = Duration(5000);
  MutexClient client(EV_DEFAULT, cfg, "db-17");
  std::vector<MutexAnswer> changes;
  client.SetOnChange([&](MutexAnswer a) { changes.push_back(a); });
  client.Start();
  REQUIRE(RunUntil([&] { return changes.size() == 1; }, 20));
  CHECK_FALSE(changes[0].held);

  etcd.Stop();
  REQUIRE(RunUntil([&] { return changes.size() == 2; }, 20));
  CHECK(changes[1].held);
  CHECK(changes[1].reason == "etcd " + etcd.endpoint() + ": connection refused");
  // Held is never served from the cache.
  MutexAnswer q = AskMutex(client);
  CHECK(q.held);
  CHECK_FALSE(q.from_cache);

  etcd.Start();
  REQUIRE(RunUntil([&] { return changes.size() == 3; }, 30));
  CHECK_FALSE(changes[2].held);
  CHECK(changes[2].reason == "clear");

  etcd.Put("/warden/mutex", "maintenance");
  REQUIRE(RunUntil([&] { return changes.size() == 4; }, 20));
  CHECK(changes[3].held);
  CHECK(changes[3].reason == "maintenance");
  client.Stop();
}

TEST_CASE("mutex_etcd: a clear answer is cached like HTTP's", "[etcd][mutex]") {
  EtcdTestServer etcd;
  etcd.Put("/warden/armed", "yes");
  MutexConfig cfg = EtcdMutex({etcd.endpoint()});
  cfg.cache = Duration(5000);
  MutexClient client(EV_DEFAULT, cfg, "db-17");
  CHECK_FALSE(AskMutex(client).from_cache);
  MutexAnswer second = AskMutex(client);
  CHECK_FALSE(second.held);
  CHECK(second.from_cache);
  CHECK(client.requests() == 1);
}

TEST_CASE("mutex_etcd: wrong cluster_id, failover, and etcd's errors are held",
          "[etcd][mutex]") {
  EtcdTestServer etcd;
  etcd.Put("/warden/armed", "yes");

  SECTION("wrong cluster_id") {
    MutexConfig cfg = EtcdMutex({etcd.endpoint()});
    cfg.etcd.cluster_id = "42";
    MutexClient client(EV_DEFAULT, cfg, "db-17");
    MutexAnswer a = AskMutex(client);
    CHECK(a.held);
    CHECK(a.reason == "etcd " + etcd.endpoint() + ": cluster_id " + etcd.ClusterId() +
                          " is not the configured 42");
  }
  SECTION("the right cluster_id") {
    MutexConfig cfg = EtcdMutex({etcd.endpoint()});
    cfg.etcd.cluster_id = etcd.ClusterId();
    MutexClient client(EV_DEFAULT, cfg, "db-17");
    CHECK_FALSE(AskMutex(client).held);
  }
  SECTION("a dead endpoint first") {
    std::string dead = "http://127.0.0.1:" + std::to_string(FreeLoopbackPort());
    MutexClient client(EV_DEFAULT, EtcdMutex({dead, etcd.endpoint()}), "db-17");
    CHECK_FALSE(AskMutex(client).held);
  }
  SECTION("canned answers") {
    CannedHttpServer canned;
    MutexClient client(EV_DEFAULT, EtcdMutex({canned.endpoint()}), "db-17");
    canned.Answer(503, R"({"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"})");
    MutexAnswer a = AskMutex(client);
    CHECK(a.held);
    CHECK(a.reason == "etcd " + canned.endpoint() + ": HTTP 503: etcdserver: no leader (code 14)");
    canned.Answer(200, R"({"responses":[]})");
    CHECK(AskMutex(client).reason ==
          "etcd " + canned.endpoint() + ": malformed answer: no \"header\"");
    canned.Answer(200, "not json");
    CHECK_THAT(AskMutex(client).reason,
               Catch::StartsWith("etcd " + canned.endpoint() + ": malformed answer: not JSON"));
    canned.Set(CannedHttpServer::Mode::kHang);
    CHECK(AskMutex(client).reason == "etcd " + canned.endpoint() + ": timed out after 1000 ms");
    // The request is one txn with two reads, never "serializable".
    auto body = nlohmann::json::parse(canned.bodies().at(0));
    CHECK(body["compare"].empty());
    REQUIRE(body["success"].size() == 2);
    CHECK(body["success"][0]["request_range"]["key"] == Base64Encode("/warden/armed"));
    CHECK(body["success"][1]["request_range"]["key"] == Base64Encode("/warden/mutex"));
    CHECK(body.dump().find("serializable") == std::string::npos);
  }
}

}  // namespace warden
