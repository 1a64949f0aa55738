// MutexClient against a real HTTP server (tests/data/mutex_server.py) on
// loopback and against file:// answers, driven on EV_DEFAULT.
#include "daemon/io/mutex_client.h"

#include "tests/support/mutex_ask.h"
#include "tests/support/mutex_test_server.h"
#include "tests/support/run_loop.h"

#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace warden {
namespace {

using testing::TempDir;
using testing::TestServer;
using testing::UnusedPort;

namespace fs = std::filesystem;

using warden::testing::AskMutex;
using warden::testing::RunFor;
using warden::testing::RunUntil;
using warden::testing::TickCounter;

MutexConfig HttpConfig(const std::string& url) {
  MutexConfig c;
  c.mode = MutexConfig::Mode::kHttp;
  c.url = url;
  c.timeout = Duration(2000);
  c.cache = Duration(0);
  c.poll = Duration(15'000);
  return c;
}

MutexAnswer AskFile(const std::string& content) {
  TempDir dir;
  dir.Write("mutex.json", content);
  MutexClient client(EV_DEFAULT, HttpConfig("file://" + (dir / "mutex.json")), "db-17");
  return AskMutex(client);
}

}  // namespace

TEST_CASE("mutex_client: HTTP answers", "[mutex]") {
  struct Case {
    std::string mode;
    bool held;
    std::string reason;  // exact, or a prefix when it ends with "..."
  };
  const std::vector<Case> cases = {
      {"clear", false, "clear"},
      {"held:upgrade of chain-a by alice", true, "upgrade of chain-a by alice"},
      {"held:", true, "held"},
      {"status:500", true, "HTTP 500"},
      {"status:503", true, "HTTP 503"},
      {"status:204", true, "HTTP 204"},
      {"close", true, "connection closed without an answer"},
      {"malformed", true, "malformed answer: ..."},
      {"string_false", true, "malformed answer: \"held\" is not a boolean"},
      {"oversized", true, "body over 64 KB"},
      {"redirect", true, "HTTP 302"},  // not followed: /target would say clear
  };
  TestServer server;
  MutexClient client(EV_DEFAULT, HttpConfig(server.Url()), "db-17");
  size_t requests = 0;
  for (const auto& c : cases) {
    INFO("mode " << c.mode);
    server.SetMode(c.mode);
    MutexAnswer a = AskMutex(client);
    CHECK(a.held == c.held);
    if (c.reason.ends_with("...")) {
      CHECK_THAT(a.reason, Catch::StartsWith(c.reason.substr(0, c.reason.size() - 3)));
    } else {
      CHECK(a.reason == c.reason);
    }
    CHECK_FALSE(a.from_cache);
    CHECK(a.at <= std::chrono::steady_clock::now());
    CHECK(server.Requests().size() == ++requests);
  }
}

TEST_CASE("mutex_client: connection refused is held", "[mutex]") {
  MutexClient client(
      EV_DEFAULT, HttpConfig("http://127.0.0.1:" + std::to_string(UnusedPort()) + "/m"), "db-17");
  MutexAnswer a = AskMutex(client);
  CHECK(a.held);
  CHECK_THAT(a.reason, Catch::StartsWith("connection refused"));
}

TEST_CASE("mutex_client: a slow server is held at the timeout; the loop keeps running", "[mutex]") {
  TestServer server;
  server.SetMode("slow:5");
  MutexConfig cfg = HttpConfig(server.Url());
  cfg.timeout = Duration(800);
  MutexClient client(EV_DEFAULT, cfg, "db-17");
  TickCounter ticker;
  MutexAnswer a = AskMutex(client);
  ticker.Stop();
  CHECK(a.held);
  CHECK(a.reason == "timed out after 800 ms");
  CHECK(ticker.ticks() >= 5);
}

TEST_CASE("mutex_client: file:// answers", "[mutex]") {
  SECTION("clear") {
    MutexAnswer a = AskFile(R"({"held": false})");
    CHECK_FALSE(a.held);
    CHECK(a.reason == "clear");
  }
  SECTION("held") {
    MutexAnswer a = AskFile(R"({"held": true, "reason": "fleet upgrade"})");
    CHECK(a.held);
    CHECK(a.reason == "fleet upgrade");
  }
  SECTION("malformed") {
    MutexAnswer a = AskFile(R"({"held": false)");
    CHECK(a.held);
    CHECK_THAT(a.reason, Catch::StartsWith("malformed answer: "));
  }
  SECTION("not an object") {
    MutexAnswer a = AskFile("false");
    CHECK(a.held);
    CHECK(a.reason == "malformed answer: not a JSON object");
  }
  SECTION("no held") {
    MutexAnswer a = AskFile(R"({"reason": "x"})");
    CHECK(a.held);
    CHECK(a.reason == "malformed answer: no \"held\"");
  }
  SECTION("empty file") {
    MutexAnswer a = AskFile("");
    CHECK(a.held);
    CHECK_THAT(a.reason, Catch::StartsWith("malformed answer: "));
  }
  SECTION("over 64 KB") {
    MutexAnswer a = AskFile(R"({"held": false, "pad": ")" + std::string(70 * 1024, 'x') + "\"}");
    CHECK(a.held);
    CHECK(a.reason == "body over 64 KB");
  }
  SECTION("missing file") {
    TempDir dir;
    MutexClient client(EV_DEFAULT, HttpConfig("file://" + (dir / "nope.json")), "db-17");
    MutexAnswer a = AskMutex(client);
    CHECK(a.held);
    CHECK_FALSE(a.reason.empty());
    CHECK(a.reason != "clear");
  }
}

TEST_CASE("mutex_client: a long or binary reason is bounded and printable", "[mutex]") {
  MutexAnswer a =
      AskFile(R"({"held": true, "reason": "line1\nline2)" + std::string(1000, 'y') + "\"}");
  CHECK(a.held);
  CHECK(a.reason.size() <= 260);
  CHECK_THAT(a.reason, Catch::StartsWith("line1 line2yyy"));
}

TEST_CASE("mutex_client: TLS is verified; ca_file trusts a private CA", "[mutex]") {
  TempDir dir;
  std::string cert = dir / "cert.pem";
  std::string key = dir / "key.pem";
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
      " -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  TestServer server(cert, key);
  MutexConfig cfg = HttpConfig(server.Url("https"));

  SECTION("an unknown CA is held") {
    MutexClient client(EV_DEFAULT, cfg, "db-17");
    MutexAnswer a = AskMutex(client);
    CHECK(a.held);
    CHECK_THAT(a.reason, Catch::StartsWith("TLS error: "));
    CHECK(server.Requests().empty());
  }
  SECTION("ca_file makes it trusted") {
    cfg.ca_file = cert;
    MutexClient client(EV_DEFAULT, cfg, "db-17");
    MutexAnswer a = AskMutex(client);
    CHECK_FALSE(a.held);
    CHECK(a.reason == "clear");
    CHECK(server.Requests().size() == 1);
  }
  SECTION("plain HTTP to the TLS port is held") {
    MutexClient client(EV_DEFAULT, HttpConfig(server.Url("http")), "db-17");
    MutexAnswer a = AskMutex(client);
    CHECK(a.held);
    CHECK(a.reason != "clear");
  }
  SECTION("HTTPS to a plain HTTP port is held") {
    TestServer plain;
    MutexClient client(EV_DEFAULT, HttpConfig(plain.Url("https")), "db-17");
    MutexAnswer a = AskMutex(client);
    CHECK(a.held);
    CHECK_THAT(a.reason, Catch::StartsWith("TLS error: "));
  }
}

TEST_CASE("mutex_client: sends X-Warden-Host and the bearer token", "[mutex]") {
  TestServer server;
  MutexConfig cfg = HttpConfig(server.Url());
  {
    MutexClient client(EV_DEFAULT, cfg, "db-17");
    AskMutex(client);
  }
  cfg.token = "s3cret-token";
  {
    MutexClient client(EV_DEFAULT, cfg, "db-18");
    AskMutex(client);
  }
  auto log = server.Requests();
  REQUIRE(log.size() == 2);
  CHECK(log[0]["method"] == "GET");
  CHECK(log[0]["path"] == "/mutex.json");
  CHECK(log[0]["host"] == "db-17");
  CHECK(log[0]["auth"].is_null());
  CHECK(log[1]["host"] == "db-18");
  CHECK(log[1]["auth"] == "Bearer s3cret-token");
}

TEST_CASE("mutex_client: a clear answer is cached, a held one never", "[mutex]") {
  TestServer server;
  MutexConfig cfg = HttpConfig(server.Url());
  cfg.cache = Duration(1500);
  MutexClient client(EV_DEFAULT, cfg, "db-17");

  MutexAnswer first = AskMutex(client);
  CHECK_FALSE(first.held);
  CHECK_FALSE(first.from_cache);
  MutexAnswer second = AskMutex(client);
  CHECK_FALSE(second.held);
  CHECK(second.from_cache);
  CHECK(second.at == first.at);
  CHECK(server.Requests().size() == 1);
  CHECK(client.requests() == 1);

  RunFor(2.0);  // past the cache
  MutexAnswer third = AskMutex(client);
  CHECK_FALSE(third.held);
  CHECK_FALSE(third.from_cache);
  CHECK(server.Requests().size() == 2);

  server.SetMode("held:maintenance");
  RunFor(2.0);
  CHECK(AskMutex(client).held);
  MutexAnswer again = AskMutex(client);
  CHECK(again.held);
  CHECK_FALSE(again.from_cache);
  CHECK(server.Requests().size() == 4);
}

TEST_CASE("mutex_client: concurrent queries join one request", "[mutex]") {
  TestServer server;
  server.SetMode("slow:0.5");
  MutexClient client(EV_DEFAULT, HttpConfig(server.Url()), "db-17");
  std::vector<MutexAnswer> answers;
  for (int i = 0; i < 3; ++i) client.Query([&](MutexAnswer a) { answers.push_back(a); });
  CHECK(client.busy());
  REQUIRE(RunUntil([&] { return answers.size() == 3; }, 30));
  for (const auto& a : answers) {
    CHECK_FALSE(a.held);
    CHECK_FALSE(a.from_cache);
  }
  CHECK(server.Requests().size() == 1);
  CHECK(client.requests() == 1);
  CHECK_FALSE(client.busy());
}

TEST_CASE("mutex_client: mode = off is always clear without I/O", "[mutex]") {
  MutexConfig cfg;
  cfg.mode = MutexConfig::Mode::kOff;
  MutexClient client(EV_DEFAULT, cfg, "db-17");
  int changes = 0;
  client.SetOnChange([&](MutexAnswer a) {
    ++changes;
    CHECK_FALSE(a.held);
  });
  client.Start();
  CHECK(changes == 0);  // never inside Start()
  REQUIRE(RunUntil([&] { return changes == 1; }, 10));
  MutexAnswer a = AskMutex(client);
  CHECK_FALSE(a.held);
  CHECK(a.reason == "mutex off");
  AskMutex(client);
  CHECK(changes == 1);
  CHECK(client.requests() == 0);
  REQUIRE(client.last().has_value());
  CHECK(client.last()->reason == "mutex off");
}

TEST_CASE("mutex_client: poll reports changes only", "[mutex]") {
  TestServer server;
  MutexConfig cfg = HttpConfig(server.Url());
  cfg.poll = Duration(200);
  cfg.cache = Duration(5000);
  MutexClient client(EV_DEFAULT, cfg, "db-17");
  std::vector<MutexAnswer> changes;
  client.SetOnChange([&](MutexAnswer a) { changes.push_back(a); });
  CHECK_FALSE(client.last().has_value());
  CHECK_FALSE(client.last_age().has_value());
  client.Start();
  CHECK(changes.empty());

  REQUIRE(RunUntil([&] { return changes.size() == 1; }, 20));
  CHECK_FALSE(changes[0].held);
  CHECK(changes[0].reason == "clear");

  // Unchanged answers: polls happen (the cache does not stop them), no change.
  size_t before = server.Requests().size();
  REQUIRE(RunUntil([&] { return server.Requests().size() >= before + 3; }, 20));
  CHECK(changes.size() == 1);

  server.SetMode("held:maintenance");
  REQUIRE(RunUntil([&] { return changes.size() == 2; }, 20));
  CHECK(changes[1].held);
  CHECK(changes[1].reason == "maintenance");

  server.SetMode("held:other reason");
  REQUIRE(RunUntil([&] { return changes.size() == 3; }, 20));
  CHECK(changes[2].reason == "other reason");

  // A Query sees the poll's answer state: held is never served from cache.
  MutexAnswer q = AskMutex(client);
  CHECK(q.held);
  CHECK_FALSE(q.from_cache);

  server.SetMode("clear");
  REQUIRE(RunUntil([&] { return changes.size() == 4; }, 20));
  CHECK_FALSE(changes[3].held);
  before = server.Requests().size();
  RunFor(0.7);
  CHECK(changes.size() == 4);
  CHECK(server.Requests().size() > before);

  REQUIRE(client.last().has_value());
  CHECK_FALSE(client.last()->held);
  REQUIRE(client.last_age().has_value());
  CHECK(client.last_age()->count() >= 0);
  CHECK(client.last_age()->count() < 10'000);

  client.Stop();
  RunFor(0.1);  // let an in-flight poll finish
  before = server.Requests().size();
  RunFor(0.7);
  CHECK(server.Requests().size() == before);
}

TEST_CASE("mutex_client: destruction with a query in flight drops its callback", "[mutex]") {
  TestServer server;
  server.SetMode("slow:1");
  int calls = 0;
  {
    MutexClient client(EV_DEFAULT, HttpConfig(server.Url()), "db-17");
    client.Query([&](MutexAnswer) { ++calls; });
    RunUntil([&] { return server.Requests().size() == 1; }, 20);
  }
  RunFor(1.5);
  CHECK(calls == 0);
}


TEST_CASE("mutex_client: a terminating halt over HTTP and in etcd's halt record", "[mutex]") {
  auto http = [](const std::string& body) {
    HttpResponse r;
    r.ok = true;
    r.http_status = 200;
    r.body = body;
    return InterpretMutexResponse(r, false);
  };
  MutexAnswer a = http(R"({"held": true, "terminate": true, "reason": "bad rpm"})");
  CHECK((a.held && a.terminate && a.reason == "bad rpm"));
  a = http(R"({"held": true, "terminate": true})");
  CHECK((a.held && a.terminate && a.reason == "held"));
  // Only the boolean true terminates; held stays held whatever it says.
  for (const char* body : {R"({"held": true, "reason": "x"})", R"({"held": true, "terminate": "yes"})",
                           R"({"held": true, "terminate": 1})", R"({"held": true, "terminate": false})"}) {
    INFO(body);
    a = http(body);
    CHECK(a.held);
    CHECK_FALSE(a.terminate);
  }
  a = http(R"({"held": false, "terminate": true})");   // clear is clear
  CHECK_FALSE(a.held);
  CHECK_FALSE(a.terminate);

  auto etcd = [](std::vector<EtcdKv> mutex) {
    EtcdTxnResult txn;
    txn.succeeded = true;
    EtcdOpResult armed;
    armed.kvs.push_back(EtcdKv{"/warden/armed", "yes"});
    EtcdOpResult m;
    m.kvs = std::move(mutex);
    txn.responses = {armed, m};
    return InterpretEtcdMutex(EtcdResult<EtcdTxnResult>(txn), "/warden");
  };
  a = etcd({EtcdKv{"/warden/mutex", R"({"reason":"bad rpm","terminate":true})"}});
  CHECK((a.held && a.terminate && a.reason == "bad rpm"));
  a = etcd({EtcdKv{"/warden/mutex", "plain reason"}});
  CHECK((a.held && !a.terminate && a.reason == "plain reason"));
  // JSON without a string reason is text, as before the halt record.
  a = etcd({EtcdKv{"/warden/mutex", R"({"terminate":true})"}});
  CHECK((a.held && !a.terminate && a.reason == R"({"terminate":true})"));
  a = etcd({EtcdKv{"/warden/mutex", R"({"reason":"x","terminate":tru)"}});
  CHECK((a.held && !a.terminate));
  a = etcd({});
  CHECK_FALSE(a.held);
}

}  // namespace warden
