// etcd watch (daemon/io/etcd_watch.h): the stream decoder with real and
// hostile input, EtcdWatch against a real etcd (tests/support/
// etcd_test_server.h) and a canned server, and the etcd mutex's watch
// (MutexClient with watch = yes) reacting long before its poll.
#include "daemon/io/etcd_watch.h"

#include <ev.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "daemon/io/mutex_client.h"
#include "tests/support/etcd_test_server.h"
#include "tests/support/run_loop.h"

namespace warden {
namespace {

using testing::CannedHttpServer;
using testing::EtcdTestServer;
using testing::RunUntil;

// Lines as etcd 3.4's gateway prints them.
const std::string kCreated =
    R"({"result":{"header":{"cluster_id":"15118495548433857066","member_id":"1","revision":"2","raft_term":"2"},"created":true}})";
const std::string kPut =
    R"({"result":{"header":{"cluster_id":"15118495548433857066","revision":"3"},"events":[{"kv":{"key":"L3dhcmRlbi9tdXRleA==","create_revision":"3","mod_revision":"3","version":"1","value":"c3RvcA=="}}]}})";
const std::string kDelete =
    R"({"result":{"header":{"cluster_id":"15118495548433857066","revision":"4"},"events":[{"type":"DELETE","kv":{"key":"L3dhcmRlbi9tdXRleA==","mod_revision":"4"}}]}})";
const std::string kProgress =
    R"({"result":{"header":{"cluster_id":"15118495548433857066","revision":"9"}}})";
const std::string kCompacted =
    R"({"result":{"header":{"cluster_id":"15118495548433857066","raft_term":"2"},"canceled":true,"compact_revision":"3"}})";

std::vector<EtcdWatchResponse> FeedAll(const std::string& stream, std::size_t piece,
                                       std::string* error) {
  EtcdWatchDecoder d;
  std::vector<EtcdWatchResponse> out;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    Status e = d.Feed(std::string_view(stream).substr(i, piece), &out);
    if (!e.ok()) {
      *error = e.message();
      return out;
    }
  }
  return out;
}

// What is wrong with `line`, "" when nothing is; a line that cannot be
// read must fail invalid.
std::string LineError(const std::string& line) {
  auto r = ParseEtcdWatchLine(line);
  if (r) return "";
  if (r.error().rfind("etcd error", 0) != 0) CHECK(r.code() == StatusCode::kInvalid);
  return r.error();
}

}  // namespace

TEST_CASE("etcd_watch: decoder reads etcd's lines", "[etcd][watch]") {
  const std::string stream = kCreated + "\n" + kPut + "\n" + kDelete + "\r\n\n" + kProgress +
                             "\n" + kCompacted + "\n";
  // Whole, and split at every size down to one byte: the same responses.
  for (std::size_t piece : {stream.size(), std::size_t{1000}, std::size_t{7}, std::size_t{1}}) {
    INFO("piece " << piece);
    std::string error;
    auto rs = FeedAll(stream, piece, &error);
    REQUIRE(error == "");
    REQUIRE(rs.size() == 5);
    CHECK(rs[0].created);
    CHECK(rs[0].header.revision == 2);
    CHECK(rs[0].header.cluster_id == "15118495548433857066");
    CHECK_FALSE(rs[0].progress());
    REQUIRE(rs[1].events.size() == 1);
    CHECK(rs[1].events[0].type == EtcdWatchEvent::Type::kPut);
    CHECK(rs[1].events[0].kv.key == "/warden/mutex");
    CHECK(rs[1].events[0].kv.value == "stop");
    CHECK(rs[1].events[0].kv.mod_revision == 3);
    REQUIRE(rs[2].events.size() == 1);
    CHECK(rs[2].events[0].type == EtcdWatchEvent::Type::kDelete);
    CHECK(rs[2].events[0].kv.mod_revision == 4);
    CHECK(rs[3].progress());
    CHECK(rs[3].header.revision == 9);
    CHECK(rs[4].canceled);
    CHECK(rs[4].compact_revision == 3);
    CHECK(rs[4].header.revision == 0);
  }
  // A line in the buffer is not a response yet.
  EtcdWatchDecoder d;
  std::vector<EtcdWatchResponse> out;
  CHECK(d.Feed(kPut.substr(0, 30), &out).ok());
  CHECK(out.empty());
  CHECK(d.buffered() == 30);
  CHECK(d.Feed(kPut.substr(30) + "\n" + kDelete.substr(0, 5), &out).ok());
  CHECK(out.size() == 1);
  CHECK(d.buffered() == 5);
}

TEST_CASE("etcd_watch: hostile lines end the stream with a clear error", "[etcd][watch]") {
  CHECK(LineError("{") .rfind("not JSON (", 0) == 0);
  CHECK(LineError("[1]") == "not a JSON object");
  CHECK(LineError("{}") == "no \"result\"");
  CHECK(LineError(R"({"result":{}})") == "no \"header\"");
  CHECK(LineError(R"({"result":{"header":{"revision":"12x"}}})") == "\"revision\" is not an int64");
  CHECK(LineError(R"({"result":{"header":{"revision":"99999999999999999999"}}})") ==
        "\"revision\" is not an int64");
  CHECK(LineError(R"({"result":{"header":{"cluster_id":"-1"}}})") ==
        "\"cluster_id\" is not a number");
  CHECK(LineError(R"({"result":{"header":{},"created":"yes"}})") == "\"created\" is not a boolean");
  CHECK(LineError(R"({"result":{"header":{},"events":{}}})") == "\"events\" is not an array");
  CHECK(LineError(R"({"result":{"header":{},"events":[1]}})") == "an event is not an object");
  CHECK(LineError(R"({"result":{"header":{},"events":[{"type":"BOGUS","kv":{}}]}})") ==
        "event type 'BOGUS' is not PUT or DELETE");
  CHECK(LineError(R"({"result":{"header":{},"events":[{}]}})") == "an event has no \"kv\"");
  CHECK(LineError(R"({"result":{"header":{},"events":[{"kv":{"key":"a!==","mod_revision":"1"}}]}})") ==
        "\"key\" is not base64");
  CHECK(LineError(R"({"result":{"header":{},"events":[{"kv":{"mod_revision":"1"}}]}})") ==
        "an event has no key");
  CHECK(LineError(R"({"result":{"header":{},"events":[{"kv":{"key":"YQ=="}}]}})") ==
        "an event has no \"mod_revision\"");
  CHECK(LineError(R"({"result":{"header":{},"cancel_reason":7}})") ==
        "\"cancel_reason\" is not a string");
  // etcd's errors, in the stream and as the gateway's own body.
  CHECK(LineError(R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})") ==
        "etcd error: etcdserver: no leader (code 14)");
  CHECK(LineError(R"({"error":"invalid character","message":"invalid character","code":2})") ==
        "etcd error: invalid character (code 2)");
  CHECK(LineError(R"({"error":{"message":"\u0001bad\nline"}})") == "etcd error:  bad line");
  // etcd's errors have the code of their gRPC code, never invalid, and
  // carry it as the peer code.
  auto unavailable = ParseEtcdWatchLine(R"({"error":{"grpc_code":14,"message":"no leader"}})");
  REQUIRE_FALSE(unavailable);
  CHECK(unavailable.code() == StatusCode::kTransient);
  CHECK(unavailable.peer_code() == 14);
  auto unknown = ParseEtcdWatchLine(R"({"error":"invalid character","code":2})");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.code() == StatusCode::kRefused);
  CHECK(unknown.peer_code() == 2);
  auto bare = ParseEtcdWatchLine(R"({"error":{}})");
  REQUIRE_FALSE(bare);
  CHECK(bare.error() == "etcd error");
  CHECK(bare.code() == StatusCode::kRefused);
  CHECK(bare.peer_code() == -1);

  // The decoder: the first bad line kills the stream, for good.
  EtcdWatchDecoder d;
  std::vector<EtcdWatchResponse> out;
  Status dead = d.Feed(kCreated + "\nnot json\n" + kPut + "\n", &out);
  CHECK(dead.message().rfind("not JSON", 0) == 0);
  CHECK(dead.code() == StatusCode::kInvalid);
  CHECK(out.size() == 1);
  CHECK(d.Feed(kPut + "\n", &out).message().rfind("not JSON", 0) == 0);
  CHECK(out.size() == 1);

  // A line over the bound, even without its end.
  EtcdWatchDecoder small(64);
  CHECK(small.Feed(std::string(40, ' '), &out).ok());
  Status over = small.Feed(std::string(40, ' '), &out);
  CHECK(over.message() == "a line over 0 KB");
  CHECK(over.code() == StatusCode::kInvalid);
  EtcdWatchDecoder big;
  CHECK(big.Feed(std::string(EtcdWatchDecoder::kMaxLine + 1, 'x'), &out).message() ==
        "a line over 1024 KB");
  // Blank lines are fine.
  EtcdWatchDecoder blank;
  CHECK(blank.Feed("\n\r\n  \n", &out).ok());
}

TEST_CASE("etcd_watch: against a real etcd", "[etcd][watch]") {
  EtcdTestServer etcd;
  etcd.Put("/warden/armed", "yes");
  struct ev_loop* loop = EV_DEFAULT;
  EtcdConfig config;
  config.endpoints = {etcd.endpoint()};
  config.timeout = Duration(2000);
  EtcdWatch watch(loop, config);
  std::vector<EtcdWatchResponse> got;
  std::optional<std::string> ended;
  auto start = [&](std::int64_t revision) {
    got.clear();
    ended.reset();
    watch.Start(0, "/warden/", EtcdPrefixEnd("/warden/"), revision,
                [&](const EtcdWatchResponse& r) { got.push_back(r); },
                [&](const std::string& e) { ended = e; });
    CHECK(got.empty());  // never inside Start
  };
  auto events = [&] {
    std::vector<std::string> out;
    for (const auto& r : got)
      for (const auto& e : r.events)
        out.push_back((e.type == EtcdWatchEvent::Type::kPut ? "put " : "del ") + e.kv.key + "=" +
                      e.kv.value);
    return out;
  };

  SECTION("created, then events as they happen; from a revision, the past too") {
    start(0);
    REQUIRE(RunUntil([&] { return !got.empty(); }, 10));
    CHECK(watch.created());
    CHECK(got.at(0).created);
    etcd.Put("/warden/mutex", "stop");
    etcd.Put("/other", "ignored");
    etcd.Delete("/warden/mutex");
    REQUIRE(RunUntil([&] { return events().size() == 2; }, 10));
    CHECK(events() == std::vector<std::string>{"put /warden/mutex=stop", "del /warden/mutex="});
    CHECK_FALSE(ended);
    // From revision 1: the whole history of the prefix, armed first.
    start(1);
    REQUIRE(RunUntil([&] { return events().size() == 3; }, 10));
    CHECK(events().front() == "put /warden/armed=yes");
    watch.Stop();
    etcd.Put("/warden/mutex", "after stop");
    RunUntil([] { return false; }, 0.3);
    CHECK(events().size() == 3);
    CHECK_FALSE(ended);
  }

  SECTION("a compacted start revision: canceled, then the end says why") {
    etcd.Put("/warden/x", "1");
    etcd.Put("/warden/x", "2");
    auto a = etcd.Post("/v3/kv/range", R"({"key":"AA=="})");
    auto rev = nlohmann::json::parse(a.body)["header"]["revision"].get<std::string>();
    REQUIRE(etcd.Post("/v3/kv/compaction", R"({"revision":")" + rev + R"("})").status == 200);
    start(2);
    REQUIRE(RunUntil([&] { return ended.has_value(); }, 10));
    CHECK(got.back().canceled);
    // etcd 3.4 sends no cancel_reason with it; later versions do.
    CHECK(ended->rfind("etcd watch " + etcd.endpoint() + ": canceled", 0) == 0);
    CHECK(ended->find("(compacted at " + rev + ")") != std::string::npos);
  }

  SECTION("etcd stops: the stream ends") {
    start(0);
    REQUIRE(RunUntil([&] { return watch.created(); }, 10));
    etcd.Stop();
    REQUIRE(RunUntil([&] { return ended.has_value(); }, 15));
    CHECK(ended->rfind("etcd watch " + etcd.endpoint() + ": ", 0) == 0);
  }

  SECTION("the wrong cluster") {
    config.cluster_id = "123";
    EtcdWatch other(loop, config);
    std::optional<std::string> end;
    other.Start(0, "/warden/", EtcdPrefixEnd("/warden/"), 0, nullptr,
                [&](const std::string& e) { end = e; });
    REQUIRE(RunUntil([&] { return end.has_value(); }, 10));
    CHECK(end->find(": cluster_id " + etcd.ClusterId() + " is not the configured 123") !=
          std::string::npos);
  }
}

TEST_CASE("etcd_watch: what a healthy etcd never says", "[etcd][watch]") {
  struct ev_loop* loop = EV_DEFAULT;
  CannedHttpServer server;
  EtcdConfig config;
  config.endpoints = {server.endpoint()};
  config.timeout = Duration(500);
  EtcdWatch watch(loop, config);
  std::optional<std::string> ended;
  std::vector<EtcdWatchResponse> got;
  auto run = [&] {
    ended.reset();
    got.clear();
    watch.Start(0, "/w/", "/w0", 5, [&](const EtcdWatchResponse& r) { got.push_back(r); },
                [&](const std::string& e) { ended = e; });
    REQUIRE(RunUntil([&] { return ended.has_value(); }, 10));
    return ended->substr(("etcd watch " + server.endpoint() + ": ").size());
  };
  server.Answer(503, R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})");
  CHECK(run() == "HTTP 503: etcdserver: no leader (code 14)");
  server.Answer(404, "404 page not found\n");
  CHECK(run() == "HTTP 404: 404 page not found");
  server.Answer(200, kCreated + "\n" + kPut + "\n");
  CHECK(run() == "stream ended");
  CHECK(got.size() == 2);
  server.Answer(200, kCreated + "\n" + kPut.substr(0, 20));
  CHECK(run() == "stream ended inside a line");
  server.Answer(200, kPut + "\n");
  CHECK(run() == "a response before \"created\"");
  CHECK(got.empty());
  server.Answer(200, kCreated + "\n" + kCreated + "\n");
  CHECK(run() == "a second \"created\"");
  server.Answer(200, kCreated + "\n{\"result\": 1}\n");
  CHECK(run() == "malformed stream: no \"result\"");
  server.Answer(200, kCreated + "\n" + R"({"error":{"grpc_code":14,"message":"lost leader"}})" + "\n");
  CHECK(run() == "etcd error: lost leader (code 14)");
  server.Set(CannedHttpServer::Mode::kHang);
  CHECK(run() == "no answer within 500 ms");
  server.Set(CannedHttpServer::Mode::kClose);
  CHECK(run().find("closed") != std::string::npos);
  // No endpoint at all.
  EtcdConfig none;
  EtcdWatch nowhere(loop, none);
  std::optional<std::string> end;
  nowhere.Start(0, "/w/", "/w0", 0, nullptr, [&](const std::string& e) { end = e; });
  CHECK_FALSE(end);
  REQUIRE(RunUntil([&] { return end.has_value(); }, 5));
  CHECK(*end == "etcd watch: no endpoints configured");
}

TEST_CASE("etcd_watch: the mutex hears a halt long before its poll", "[etcd][watch][mutex]") {
  EtcdTestServer etcd;
  etcd.Put("/warden/armed", "yes");
  MutexConfig c;
  c.mode = MutexConfig::Mode::kEtcd;
  c.etcd.endpoints = {etcd.endpoint()};
  c.etcd.timeout = Duration(1000);
  c.poll = Duration(30'000);
  c.cache = Duration(0);
  MutexClient client(EV_DEFAULT, c, "db-watch");
  std::vector<MutexAnswer> changes;
  std::vector<MutexWatchState> watch_states;
  client.SetOnChange([&](const MutexAnswer& a) { changes.push_back(a); });
  client.SetOnWatch([&](const MutexWatchState& w) { watch_states.push_back(w); });
  client.Start();
  REQUIRE(RunUntil([&] { return client.watch_state().up; }, 10));
  REQUIRE(changes.size() == 1);
  CHECK_FALSE(changes[0].held);
  CHECK(client.requests() == 1);
  CHECK(watch_states.at(0).up);
  CHECK(watch_states[0].endpoint == etcd.endpoint());

  // Within seconds, with the next poll 24 s or more away: the watch.
  etcd.Put("/warden/mutex", "fleet freeze");
  REQUIRE(RunUntil([&] { return changes.size() == 2; }, 10));
  CHECK(changes[1].held);
  CHECK(changes[1].reason == "fleet freeze");
  etcd.Put("/warden/slots/g/0", "{}");  // not the mutex: no change
  etcd.Delete("/warden/mutex");
  REQUIRE(RunUntil([&] { return changes.size() == 3; }, 10));
  CHECK_FALSE(changes[2].held);
  etcd.Delete("/warden/armed");
  REQUIRE(RunUntil([&] { return changes.size() == 4; }, 10));
  CHECK(changes[3].reason.rfind("etcd mutex not armed", 0) == 0);
  etcd.Put("/warden/armed", "yes");
  REQUIRE(RunUntil([&] { return changes.size() == 5; }, 10));
  CHECK(changes[4].reason == "clear");
  CHECK(client.requests() == 1);  // no poll was needed
  CHECK(client.watch_state().events == 4);

  // etcd goes away: the watch ends, a poll follows (after the backoff,
  // not the 30 s poll) and fails: held.
  etcd.Stop();
  REQUIRE(RunUntil([&] { return changes.size() == 6; }, 15));
  CHECK(changes[5].held);
  CHECK(changes[5].reason.find("etcd " + etcd.endpoint()) == 0);
  CHECK_FALSE(client.watch_state().up);
  CHECK_FALSE(client.watch_state().last_error.empty());
  // Back: the watch is re-established by the backoff's poll.
  etcd.Start();
  REQUIRE(RunUntil([&] { return client.watch_state().up && !changes.back().held; }, 45));
  CHECK(client.watch_state().started >= 2);
  etcd.Put("/warden/mutex", "again");
  REQUIRE(RunUntil([&] { return changes.back().held; }, 10));
  CHECK(changes.back().reason == "again");
  client.Stop();
}

TEST_CASE("etcd_watch: watch = no polls only; endpoints rotate per host", "[etcd][watch][mutex]") {
  EtcdTestServer etcd;
  etcd.Put("/warden/armed", "yes");
  MutexConfig c;
  c.mode = MutexConfig::Mode::kEtcd;
  c.etcd.endpoints = {etcd.endpoint()};
  c.poll = Duration(30'000);
  c.watch = false;
  MutexClient client(EV_DEFAULT, c, "db-nowatch");
  std::vector<MutexAnswer> changes;
  client.SetOnChange([&](const MutexAnswer& a) { changes.push_back(a); });
  client.Start();
  REQUIRE(RunUntil([&] { return !changes.empty(); }, 10));
  CHECK_FALSE(client.watch_state().enabled);
  etcd.Put("/warden/mutex", "stop");
  RunUntil([] { return false; }, 1.0);
  CHECK(changes.size() == 1);  // only the next poll will tell
  client.Stop();

  // The same hash everywhere (FNV-1a), and the first endpoint follows it.
  CHECK(HostHash("") == 0xcbf29ce484222325ULL);
  CHECK(HostHash("a") == 0xaf63dc4c8601ec8cULL);
  EtcdConfig ec;
  ec.endpoints = {"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"};
  for (std::size_t first : {0u, 1u, 2u, 5u}) {
    ec.first = first;
    EtcdClient e(EV_DEFAULT, ec);
    CHECK(e.current_endpoint() == ec.endpoints[first % 3]);
  }
  std::vector<int> used(3);
  for (int i = 0; i < 300; ++i) ++used[HostHash("db-" + std::to_string(i)) % 3];
  for (int n : used) CHECK(n > 60);  // spread, not all on one member
}

}  // namespace warden
