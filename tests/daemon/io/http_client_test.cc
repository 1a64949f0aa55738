// HttpClient against a real HTTP server (tests/data/mutex_server.py) on
// loopback, driven on EV_DEFAULT.
#include "daemon/io/http_client.h"

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
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace warden {
namespace {

using testing::RunFor;
using testing::RunUntil;
using testing::TempDir;
using testing::TestServer;
using testing::TickCounter;
using testing::UnusedPort;

namespace fs = std::filesystem;

// Starts one request and waits for its response.
HttpResponse Fetch(HttpClient& client, const HttpRequest& req) {
  std::optional<HttpResponse> got;
  bool returned = false;
  bool called_inside_start = false;
  client.Start(req, [&](HttpResponse r) {
    if (!returned) called_inside_start = true;
    got = std::move(r);
  });
  returned = true;
  CHECK_FALSE(called_inside_start);
  REQUIRE(RunUntil([&] { return got.has_value(); }, 30));
  return *got;
}

HttpRequest Get(const std::string& url) {
  HttpRequest r;
  r.url = url;
  return r;
}

}  // namespace

TEST_CASE("http_client: GET returns status and body, callback from the loop", "[http]") {
  TestServer server;
  HttpClient client(EV_DEFAULT);
  HttpRequest req = Get(server.Url());
  req.headers = {"X-Warden-Host: db-17", "Authorization: Bearer abc"};
  HttpResponse r = Fetch(client, req);
  CHECK(r.ok);
  CHECK(r.http_status == 200);
  CHECK(r.error.empty());
  CHECK(nlohmann::json::parse(r.body) == nlohmann::json{{"held", false}});
  auto log = server.Requests();
  REQUIRE(log.size() == 1);
  CHECK(log[0]["method"] == "GET");
  CHECK(log[0]["host"] == "db-17");
  CHECK(log[0]["auth"] == "Bearer abc");
  CHECK(client.in_flight() == 0);
}

TEST_CASE("http_client: POST sends its body", "[http]") {
  TestServer server;
  HttpClient client(EV_DEFAULT);
  HttpRequest req = Get(server.Url("http", "/v3/kv/range"));
  req.method = HttpRequest::Method::kPost;
  req.headers = {"Content-Type: application/json"};
  req.body = std::string(5000, 'a');  // large enough for curl's Expect: 100-continue
  HttpResponse r = Fetch(client, req);
  CHECK(r.ok);
  CHECK(r.http_status == 200);
  auto log = server.Requests();
  REQUIRE(log.size() == 1);
  CHECK(log[0]["method"] == "POST");
  CHECK(log[0]["body_len"] == 5000);
}

TEST_CASE("http_client: a non-200 status is a completed response", "[http]") {
  TestServer server;
  server.SetMode("status:503");
  HttpClient client(EV_DEFAULT);
  HttpResponse r = Fetch(client, Get(server.Url()));
  CHECK(r.ok);
  CHECK(r.http_status == 503);
}

TEST_CASE("http_client: redirects are not followed", "[http]") {
  TestServer server;
  server.SetMode("redirect");
  HttpClient client(EV_DEFAULT);
  HttpResponse r = Fetch(client, Get(server.Url()));
  CHECK(r.ok);
  CHECK(r.http_status == 302);
  CHECK(server.Requests().size() == 1);
}

TEST_CASE("http_client: timeout, and the loop keeps running meanwhile", "[http]") {
  TestServer server;
  server.SetMode("slow:5");
  HttpClient client(EV_DEFAULT);
  TickCounter ticker;
  HttpRequest req = Get(server.Url());
  req.timeout = Duration(700);
  HttpResponse r = Fetch(client, req);
  ticker.Stop();
  CHECK_FALSE(r.ok);
  CHECK(r.http_status == 0);
  CHECK(r.error == "timed out after 700 ms");
  CHECK(ticker.ticks() >= 5);
}

TEST_CASE("http_client: connection refused", "[http]") {
  HttpClient client(EV_DEFAULT);
  HttpResponse r = Fetch(client, Get("http://127.0.0.1:" + std::to_string(UnusedPort()) + "/"));
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.error, Catch::StartsWith("connection refused"));
}

TEST_CASE("http_client: connection closed without an answer", "[http]") {
  TestServer server;
  server.SetMode("close");
  HttpClient client(EV_DEFAULT);
  HttpResponse r = Fetch(client, Get(server.Url()));
  CHECK_FALSE(r.ok);
  CHECK(r.error == "connection closed without an answer");
}

TEST_CASE("http_client: a body over max_body aborts the transfer", "[http]") {
  TestServer server;
  server.SetMode("oversized");
  HttpClient client(EV_DEFAULT);
  HttpResponse r = Fetch(client, Get(server.Url()));
  CHECK_FALSE(r.ok);
  CHECK(r.error == "body over 64 KB");
  CHECK(r.body.empty());
}

TEST_CASE("http_client: file:// URLs", "[http]") {
  TempDir dir;
  dir.Write("answer.json", "{\"held\": true}");
  HttpClient client(EV_DEFAULT);

  HttpResponse r = Fetch(client, Get("file://" + (dir / "answer.json")));
  CHECK(r.ok);
  CHECK(r.http_status == 0);
  CHECK(r.body == "{\"held\": true}");

  r = Fetch(client, Get("file://" + (dir / "missing.json")));
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.error.empty());

  dir.Write("big.json", std::string(70 * 1024, ' '));
  r = Fetch(client, Get("file://" + (dir / "big.json")));
  CHECK_FALSE(r.ok);
  CHECK(r.error == "body over 64 KB");
}

TEST_CASE("http_client: other schemes and bad URLs fail through the callback", "[http]") {
  HttpClient client(EV_DEFAULT);
  HttpResponse r = Fetch(client, Get("ftp://127.0.0.1/x"));
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.error.empty());
  r = Fetch(client, Get(""));
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.error.empty());
}

TEST_CASE("http_client: many requests at once", "[http]") {
  TestServer server;
  HttpClient client(EV_DEFAULT);
  int done = 0;
  int good = 0;
  for (int i = 0; i < 8; ++i) {
    client.Start(Get(server.Url()), [&](HttpResponse r) {
      ++done;
      if (r.ok && r.http_status == 200) ++good;
    });
  }
  CHECK(client.in_flight() == 8);
  REQUIRE(RunUntil([&] { return done == 8; }, 30));
  CHECK(good == 8);
  CHECK(server.Requests().size() == 8);
}

TEST_CASE("http_client: Cancel and destruction drop callbacks", "[http]") {
  TestServer server;
  server.SetMode("slow:1");
  int calls = 0;
  {
    HttpClient client(EV_DEFAULT);
    auto id = client.Start(Get(server.Url()), [&](HttpResponse) { ++calls; });
    client.Start(Get(server.Url()), [&](HttpResponse) { ++calls; });
    RunUntil([&] { return server.Requests().size() == 2; }, 20);
    CHECK(client.Cancel(id));
    CHECK_FALSE(client.Cancel(id));
    CHECK(client.in_flight() == 1);
  }  // destroyed with one request in flight
  RunFor(1.5);
  CHECK(calls == 0);
}

TEST_CASE("http_client: a callback may start a request or destroy the client", "[http]") {
  TempDir dir;
  dir.Write("a.json", "{}");
  std::string url = "file://" + (dir / "a.json");

  SECTION("start from a callback") {
    HttpClient client(EV_DEFAULT);
    int calls = 0;
    client.Start(Get(url), [&](HttpResponse r) {
      ++calls;
      CHECK(r.ok);
      client.Start(Get(url), [&](HttpResponse r2) {
        ++calls;
        CHECK(r2.ok);
      });
    });
    REQUIRE(RunUntil([&] { return calls == 2; }, 10));
  }
  SECTION("destroy from a callback") {
    auto client = std::make_unique<HttpClient>(EV_DEFAULT);
    int calls = 0;
    for (int i = 0; i < 3; ++i) {
      client->Start(Get(url), [&](HttpResponse) {
        ++calls;
        client.reset();
      });
    }
    REQUIRE(RunUntil([&] { return calls > 0; }, 10));
    RunFor(0.2);
    CHECK(calls == 1);
  }
}

}  // namespace warden
