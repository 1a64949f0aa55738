// EtcdClient against a real etcd (tests/support/etcd_test_server.h) and
// against a canned HTTP server for the answers a healthy etcd never gives,
// driven on EV_DEFAULT.
#include "daemon/io/etcd_client.h"

#include <ev.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/etcd_test_server.h"
#include "tests/support/run_loop.h"
#include "tests/support/temp_dir.h"

namespace warden {
namespace {

using testing::CannedHttpServer;
using testing::EtcdTestServer;
using testing::FreeLoopbackPort;
using Kind = EtcdError::Kind;

using warden::testing::RunUntil;
using warden::testing::TickCounter;

// Starts a call with a callback, checks it is not called inside the call,
// and runs the loop until it is.
template <typename T>
EtcdResult<T> Wait(const std::function<void(EtcdClient::Callback<T>)>& start) {
  std::optional<EtcdResult<T>> got;
  bool returned = false;
  bool inside = false;
  start([&](EtcdResult<T> r) {
    if (!returned) inside = true;
    got.emplace(std::move(r));
  });
  returned = true;
  CHECK_FALSE(inside);
  REQUIRE(RunUntil([&] { return got.has_value(); }, 30));
  return std::move(*got);
}

EtcdResult<EtcdRange> Get(EtcdClient& c, const std::string& key, const std::string& end = "") {
  return Wait<EtcdRange>([&](auto cb) { c.Range(key, end, cb); });
}
EtcdResult<EtcdPutResult> Put(EtcdClient& c, const std::string& key, const std::string& value) {
  return Wait<EtcdPutResult>([&](auto cb) { c.Put(key, value, cb); });
}
EtcdResult<EtcdDeleteResult> Del(EtcdClient& c, const std::string& key,
                                 const std::string& end = "") {
  return Wait<EtcdDeleteResult>([&](auto cb) { c.Delete(key, end, cb); });
}
EtcdResult<EtcdTxnResult> Txn(EtcdClient& c, std::vector<EtcdCompare> cmp,
                              std::vector<EtcdOp> success, std::vector<EtcdOp> failure) {
  return Wait<EtcdTxnResult>([&](auto cb) { c.Txn(cmp, success, failure, cb); });
}

EtcdConfig Config(std::vector<std::string> endpoints, int timeout_ms = 2000) {
  EtcdConfig c;
  c.endpoints = std::move(endpoints);
  c.timeout = Duration(timeout_ms);
  c.connect_timeout = Duration(std::min(timeout_ms, 1000));
  return c;
}

std::string Refused() { return "http://127.0.0.1:" + std::to_string(FreeLoopbackPort()); }

const char* kHeader =
    R"("header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"7","raft_term":"2"})";

}  // namespace

TEST_CASE("etcd_client: base64 is strict both ways", "[etcd]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += 37) {
    std::string s = all.substr(0, n);
    auto back = Base64Decode(Base64Encode(s));
    REQUIRE(back.has_value());
    CHECK(*back == s);
  }
  CHECK(Base64Encode("") == "");
  CHECK(Base64Encode("f") == "Zg==");
  CHECK(Base64Encode("fo") == "Zm8=");
  CHECK(Base64Encode("foo") == "Zm9v");
  CHECK(Base64Encode("/warden/mutex") == "L3dhcmRlbi9tdXRleA==");
  CHECK(Base64Decode("Zm9vYg==") == std::optional<std::string>("foob"));
  for (const char* bad : {"Z", "Zg", "Zg=", "Zg===", "Z===", "Zh==", "Zm9=", "Zg==Zg==",
                          "Zm 9v", "Zm9v\n", "Zm-v", "Zm_v", "=Zm9", "Z=g="}) {
    INFO(bad);
    CHECK_FALSE(Base64Decode(bad).has_value());
  }
}

TEST_CASE("etcd_client: int64, cluster id, endpoint and prefix helpers", "[etcd]") {
  CHECK(ParseEtcdInt64("0") == std::optional<std::int64_t>(0));
  CHECK(ParseEtcdInt64("42") == std::optional<std::int64_t>(42));
  CHECK(ParseEtcdInt64("-3") == std::optional<std::int64_t>(-3));
  CHECK(ParseEtcdInt64("9223372036854775807") ==
        std::optional<std::int64_t>(9223372036854775807LL));
  CHECK(ParseEtcdInt64("-9223372036854775808").has_value());
  for (const char* bad : {"", "-", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "9223372036854775808",
                          "99999999999999999999", "abc"}) {
    INFO(bad);
    CHECK_FALSE(ParseEtcdInt64(bad).has_value());
  }

  auto dec = ParseEtcdClusterId("14841639068965178418");
  REQUIRE(dec.ok());
  CHECK(*dec == "14841639068965178418");
  auto hex = ParseEtcdClusterId("0xcdf818194e3a8c32");
  REQUIRE(hex.ok());
  CHECK(*hex == "14841639068965178418");
  CHECK_FALSE(ParseEtcdClusterId("cdf818194e3a8c32").ok());
  CHECK_FALSE(ParseEtcdClusterId("0x").ok());
  CHECK_FALSE(ParseEtcdClusterId("").ok());
  CHECK_FALSE(ParseEtcdClusterId("18446744073709551616").ok());

  auto ok = ParseEtcdEndpoint("http://127.0.0.1:2379/");
  REQUIRE(ok.ok());
  CHECK(*ok == "http://127.0.0.1:2379");
  CHECK(ParseEtcdEndpoint("https://etcd-1.example.com:2379").ok());
  CHECK(ParseEtcdEndpoint("http://[::1]:2379").ok());
  for (const char* bad : {"127.0.0.1:2379", "http://127.0.0.1", "http://127.0.0.1:0",
                          "http://127.0.0.1:65536", "http://:2379", "http://h:2379/v3",
                          "unix:///run/etcd.sock", "http://h:23x9", "ftp://h:1",
                          "http://h:-1"}) {
    INFO(bad);
    CHECK_FALSE(ParseEtcdEndpoint(bad).ok());
  }

  CHECK(EtcdPrefixEnd("/warden/slots/a/") == "/warden/slots/a0");
  CHECK(EtcdPrefixEnd(std::string("a\xff", 2)) == "b");
  CHECK(EtcdPrefixEnd(std::string("\xff\xff", 2)) == std::string(1, '\0'));
  CHECK(EtcdPrefixEnd("") == std::string(1, '\0'));
}

TEST_CASE("etcd_client: a txn answer is read whole, or fails invalid naming why", "[etcd]") {
  using K = EtcdOp::Kind;
  const std::string header = R"("header":{"cluster_id":"7","revision":"9"})";
  auto ok = ParseEtcdTxnAnswer(
      "{" + header + R"(,"succeeded":true,"responses":[{"response_range":{"kvs":[{"key":"YQ==",)"
          R"("value":"Yg==","mod_revision":"4"}],"count":"1"}},{"response_delete_range":)"
          R"({"deleted":"2"}},{"response_put":{}}]})",
      {K::kRange, K::kDelete, K::kPut}, {});
  REQUIRE(ok.ok());
  CHECK(ok->header.revision == 9);
  CHECK(ok->header.cluster_id == "7");
  CHECK(ok->succeeded);
  REQUIRE(ok->responses.size() == 3);
  REQUIRE(ok->responses[0].kvs.size() == 1);
  CHECK(ok->responses[0].kvs[0].key == "a");
  CHECK(ok->responses[0].kvs[0].mod_revision == 4);
  CHECK(ok->responses[0].count == 1);
  CHECK(ok->responses[1].deleted == 2);
  // The failure branch ran: its (no) ops.
  auto failed = ParseEtcdTxnAnswer("{" + header + "}", {K::kRange}, {});
  REQUIRE(failed.ok());
  CHECK_FALSE(failed->succeeded);
  CHECK(failed->responses.empty());

  struct Case {
    std::string body;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"{\"header\":", "not JSON ("},
      {"[1]", "not a JSON object"},
      {R"({"succeeded":true})", "no \"header\""},
      {"{" + header + R"(,"succeeded":"yes"})", "\"succeeded\" is not a boolean"},
      {"{" + header + R"(,"succeeded":true,"responses":{}})", "\"responses\" is not an array"},
      {"{" + header + R"(,"succeeded":true})", "0 responses for 1 operations"},
      {"{" + header + R"(,"succeeded":true,"responses":[7]})",
       "response 0 has no \"response_range\""},
      {"{" + header + R"(,"succeeded":true,"responses":[{"response_range":{"kvs":{}}}]})",
       "\"kvs\" is not an array"},
      {"{" + header + R"(,"succeeded":true,"responses":[{"response_range":{"kvs":[1]}}]})",
       "a \"kvs\" entry is not an object"},
      {"{" + header + R"(,"succeeded":true,"responses":[{"response_range":{"kvs":[{"key":"!"}]}}]})",
       "\"key\" is not base64"},
      {"{" + header + R"(,"succeeded":true,"responses":[{"response_range":{"count":"x"}}]})",
       "\"count\" is not an int64"},
  };
  for (const auto& c : cases) {
    INFO(c.body);
    auto r = ParseEtcdTxnAnswer(c.body, {K::kRange}, {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == StatusCode::kInvalid);
    if (c.message.ends_with("(")) {
      CHECK_THAT(r.error(), Catch::StartsWith(c.message));
    } else {
      CHECK(r.error() == c.message);
    }
  }
  auto deleted = ParseEtcdTxnAnswer(
      "{" + header + R"(,"succeeded":true,"responses":[{"response_delete_range":{"deleted":1.5}}]})",
      {K::kDelete}, {});
  REQUIRE_FALSE(deleted.ok());
  CHECK(deleted.code() == StatusCode::kInvalid);
  CHECK(deleted.error() == "\"deleted\" is not an int64");
}

TEST_CASE("etcd_client: put, range, txn and delete round trips on a real etcd", "[etcd]") {
  EtcdTestServer etcd;
  EtcdClient client(EV_DEFAULT, Config({etcd.endpoint()}));
  const std::string prefix = std::string("/t/\x00\xff\n k", 8);
  const std::string key = prefix + "one";
  const std::string value = std::string("v\x00\x01\xfe\"{}", 7);

  auto empty = Get(client, key);
  REQUIRE(empty.ok());
  CHECK(empty->kvs.empty());
  CHECK(empty->count == 0);
  CHECK(empty->header.revision >= 1);
  CHECK(empty->header.cluster_id == etcd.ClusterId());

  auto put = Put(client, key, value);
  REQUIRE(put.ok());
  CHECK(put->header.revision > empty->header.revision);
  CHECK(etcd.Get(key) == std::optional<std::string>(value));

  auto got = Get(client, key);
  REQUIRE(got.ok());
  REQUIRE(got->kvs.size() == 1);
  CHECK(got->kvs[0].key == key);
  CHECK(got->kvs[0].value == value);
  CHECK(got->kvs[0].create_revision == put->header.revision);
  CHECK(got->kvs[0].mod_revision == put->header.revision);
  CHECK(got->kvs[0].version == 1);
  CHECK(got->count == 1);

  // An empty value is omitted by the gateway: it reads back as "".
  REQUIRE(Put(client, prefix + "two", "").ok());
  auto both = Get(client, prefix, EtcdPrefixEnd(prefix));
  REQUIRE(both.ok());
  REQUIRE(both->kvs.size() == 2);
  CHECK(both->kvs[1].key == prefix + "two");
  CHECK(both->kvs[1].value.empty());
  CHECK(both->count == 2);

  SECTION("txn: create only if missing, like a slot acquire") {
    const std::string mutex = prefix + "mutex";
    const std::string slot = prefix + "slots/g/0";
    auto first = Txn(client, {EtcdCompare::Missing(mutex), EtcdCompare::Missing(slot)},
                     {EtcdOp::Put(slot, "mine")}, {EtcdOp::Range(mutex), EtcdOp::Range(slot)});
    REQUIRE(first.ok());
    CHECK(first->succeeded);
    REQUIRE(first->responses.size() == 1);
    CHECK(first->responses[0].kind == EtcdOp::Kind::kPut);
    CHECK(etcd.Get(slot) == std::optional<std::string>("mine"));

    auto second = Txn(client, {EtcdCompare::Missing(mutex), EtcdCompare::Missing(slot)},
                      {EtcdOp::Put(slot, "theirs")}, {EtcdOp::Range(mutex), EtcdOp::Range(slot)});
    REQUIRE(second.ok());
    CHECK_FALSE(second->succeeded);
    REQUIRE(second->responses.size() == 2);
    CHECK(second->responses[0].kvs.empty());
    REQUIRE(second->responses[1].kvs.size() == 1);
    CHECK(second->responses[1].kvs[0].value == "mine");
    CHECK(etcd.Get(slot) == std::optional<std::string>("mine"));

    // A halt set first stops the acquire of a free slot.
    etcd.Put(mutex, "fleet freeze");
    auto halted = Txn(client, {EtcdCompare::Missing(mutex), EtcdCompare::Missing(slot + "x")},
                      {EtcdOp::Put(slot + "x", "mine")}, {EtcdOp::Range(mutex)});
    REQUIRE(halted.ok());
    CHECK_FALSE(halted->succeeded);
    REQUIRE(halted->responses[0].kvs.size() == 1);
    CHECK(halted->responses[0].kvs[0].value == "fleet freeze");
    CHECK_FALSE(etcd.Get(slot + "x").has_value());
  }

  SECTION("txn: delete only if the value is still ours, like a slot release") {
    auto theirs = Txn(client, {EtcdCompare::ValueIs(key, "not ours")}, {EtcdOp::Delete(key)},
                      {EtcdOp::Range(key)});
    REQUIRE(theirs.ok());
    CHECK_FALSE(theirs->succeeded);
    REQUIRE(theirs->responses.size() == 1);
    CHECK(theirs->responses[0].kvs.size() == 1);
    CHECK(etcd.Get(key).has_value());

    auto ours = Txn(client, {EtcdCompare::ValueIs(key, value)}, {EtcdOp::Delete(key)},
                    {EtcdOp::Range(key)});
    REQUIRE(ours.ok());
    CHECK(ours->succeeded);
    REQUIRE(ours->responses.size() == 1);
    CHECK(ours->responses[0].kind == EtcdOp::Kind::kDelete);
    CHECK(ours->responses[0].deleted == 1);
    CHECK_FALSE(etcd.Get(key).has_value());
  }

  SECTION("txn: two reads in one request; revision compares") {
    auto reads = Txn(client, {}, {EtcdOp::Range(key), EtcdOp::RangePrefix(prefix)}, {});
    REQUIRE(reads.ok());
    CHECK(reads->succeeded);
    REQUIRE(reads->responses.size() == 2);
    CHECK(reads->responses[0].kvs.size() == 1);
    CHECK(reads->responses[1].count == 2);
    auto newer = Txn(client,
                     {EtcdCompare::Revision(key, EtcdCompare::Target::kMod,
                                            EtcdCompare::Result::kGreater, put->header.revision)},
                     {}, {});
    REQUIRE(newer.ok());
    CHECK_FALSE(newer->succeeded);
    auto version = Txn(client,
                       {EtcdCompare::Revision(key, EtcdCompare::Target::kVersion,
                                              EtcdCompare::Result::kEqual, 1)},
                       {}, {});
    REQUIRE(version.ok());
    CHECK(version->succeeded);
  }

  SECTION("delete, and a prefix delete") {
    auto one = Del(client, key);
    REQUIRE(one.ok());
    CHECK(one->deleted == 1);
    auto none = Del(client, key);
    REQUIRE(none.ok());
    CHECK(none->deleted == 0);
    auto rest = Del(client, prefix, EtcdPrefixEnd(prefix));
    REQUIRE(rest.ok());
    CHECK(rest->deleted == 1);
    auto gone = Get(client, prefix, EtcdPrefixEnd(prefix));
    REQUIRE(gone.ok());
    CHECK(gone->kvs.empty());
  }
}

TEST_CASE("etcd_client: requests are linearizable base64 JSON", "[etcd]") {
  CannedHttpServer canned;
  canned.Answer(200, std::string("{") + kHeader + "}");
  EtcdClient client(EV_DEFAULT, Config({canned.endpoint()}));
  REQUIRE(Get(client, "/warden/mutex", "/warden/mutey").ok());
  auto txn_result = Txn(client, {EtcdCompare::Missing("/a")}, {EtcdOp::Put("/a", "b")}, {});
  REQUIRE(txn_result.ok());
  CHECK_FALSE(txn_result->succeeded);
  auto bodies = canned.bodies();
  REQUIRE(bodies.size() == 2);
  auto range = nlohmann::json::parse(bodies[0]);
  CHECK(range["key"] == "L3dhcmRlbi9tdXRleA==");
  CHECK(range["range_end"] == Base64Encode("/warden/mutey"));
  CHECK_FALSE(range.contains("serializable"));
  auto txn = nlohmann::json::parse(bodies[1]);
  CHECK(txn["compare"][0]["target"] == "CREATE");
  CHECK(txn["compare"][0]["result"] == "EQUAL");
  CHECK(txn["compare"][0]["create_revision"] == "0");
  CHECK(txn["success"][0]["request_put"]["value"] == "Yg==");
}

TEST_CASE("etcd_client: fails over from a dead endpoint and remembers the live one", "[etcd]") {
  EtcdTestServer etcd;
  etcd.Put("/k", "v");
  const std::string dead = Refused();

  SECTION("refused first") {
    EtcdClient client(EV_DEFAULT, Config({dead, etcd.endpoint()}));
    CHECK(client.current_endpoint() == dead);
    auto r = Get(client, "/k");
    REQUIRE(r.ok());
    REQUIRE(r->kvs.size() == 1);
    CHECK(client.current_endpoint() == etcd.endpoint());
    // A write after a refused connection is safe to send elsewhere too.
    EtcdClient writer(EV_DEFAULT, Config({dead, etcd.endpoint()}));
    REQUIRE(Put(writer, "/k2", "v2").ok());
    CHECK(etcd.Get("/k2") == std::optional<std::string>("v2"));
  }

  SECTION("a 503 (a member without quorum) first: reads move on, then stay") {
    CannedHttpServer canned;
    canned.Answer(503, R"({"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"})");
    EtcdClient client(EV_DEFAULT, Config({canned.endpoint(), etcd.endpoint()}));
    auto r = Get(client, "/k");
    REQUIRE(r.ok());
    CHECK(canned.requests() == 1);
    CHECK(client.current_endpoint() == etcd.endpoint());
    REQUIRE(Get(client, "/k").ok());
    CHECK(canned.requests() == 1);

    // A write that was sent is never resent: its outcome is unknown.
    EtcdClient writer(EV_DEFAULT, Config({canned.endpoint(), etcd.endpoint()}));
    auto w = Put(writer, "/k3", "v3");
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().kind == Kind::kHttp);
    CHECK(w.error().http_status == 503);
    CHECK(w.error().maybe_applied);
    CHECK_FALSE(etcd.Get("/k3").has_value());
  }

  SECTION("a silent member first: a read moves on within the total timeout") {
    CannedHttpServer hung;
    hung.Set(CannedHttpServer::Mode::kHang);
    EtcdConfig cfg = Config({hung.endpoint(), etcd.endpoint()}, 1500);
    EtcdClient client(EV_DEFAULT, cfg);
    // The silent one gets half of the budget, the live one the rest.
    auto start = std::chrono::steady_clock::now();
    auto r = Get(client, "/k");
    REQUIRE(r.ok());
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1500));
    CHECK(hung.requests() == 1);
    CHECK(client.current_endpoint() == etcd.endpoint());
    // A write that was sent to the silent one is not resent.
    EtcdClient writer(EV_DEFAULT, cfg);
    auto w = Put(writer, "/k4", "v4");
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().kind == Kind::kNoAnswer);
    CHECK(w.error().maybe_applied);
    CHECK(w.error().message == "etcd " + hung.endpoint() + ": timed out after 1500 ms");
    CHECK_FALSE(etcd.Get("/k4").has_value());
  }

  SECTION("all endpoints dead: one error naming each") {
    const std::string dead2 = Refused();
    EtcdClient client(EV_DEFAULT, Config({dead, dead2}));
    auto r = Get(client, "/k");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == Kind::kUnreachable);
    CHECK_FALSE(r.error().maybe_applied);
    CHECK(r.error().message == "etcd " + dead + ": connection refused; etcd " + dead2 +
                                   ": connection refused");
  }
}

TEST_CASE("etcd_client: every failure is one clear error", "[etcd]") {
  struct Case {
    std::string name;
    int status;
    std::string body;
    Kind kind;
    std::string message;  // after "etcd <endpoint>: "; a prefix when it ends with "..."
    bool maybe_applied;
    int code;
  };
  const std::string h = kHeader;
  const std::vector<Case> cases = {
      {"400 with etcd's body", 400,
       R"({"error":"illegal base64 data at input byte 0","message":"illegal base64 data at input byte 0","code":3})",
       Kind::kHttp, "HTTP 400: illegal base64 data at input byte 0 (code 3)", false, 3},
      {"quorum loss 503", 503,
       R"({"error":"etcdserver: request timed out","code":14,"message":"etcdserver: request timed out"})",
       Kind::kHttp, "HTTP 503: etcdserver: request timed out (code 14)", true, 14},
      {"500 with only error", 500, R"({"error":"boom","code":2})", Kind::kHttp,
       "HTTP 500: boom (code 2)", true, 2},
      {"404 plain text", 404, "404 page not found\n", Kind::kHttp, "HTTP 404: 404 page not found",
       false, -1},
      {"502 empty", 502, "", Kind::kHttp, "HTTP 502", true, -1},
      {"200 without header", 200, R"({"kvs":[]})", Kind::kMalformed,
       "malformed answer: no \"header\"", true, -1},
      {"200 not JSON", 200, "<html>proxy error</html>", Kind::kMalformed,
       "malformed answer: not JSON (...", true, -1},
      {"200 not an object", 200, "[1,2]", Kind::kMalformed, "malformed answer: not a JSON object",
       true, -1},
      {"200 bad revision", 200,
       R"({"header":{"cluster_id":"1","revision":"12x"}})", Kind::kMalformed,
       "malformed answer: \"revision\" is not an int64", true, -1},
      {"200 bad base64", 200,
       "{" + h + R"(,"kvs":[{"key":"!!","value":"eA=="}],"count":"1"})", Kind::kMalformed,
       "malformed answer: \"key\" is not base64", true, -1},
      {"200 float count", 200, "{" + h + R"(,"count":1.5})", Kind::kMalformed,
       "malformed answer: \"count\" is not an int64", true, -1},
  };
  CannedHttpServer canned;
  EtcdClient client(EV_DEFAULT, Config({canned.endpoint()}));
  for (const auto& c : cases) {
    INFO(c.name);
    canned.Answer(c.status, c.body);
    auto r = Get(client, "/warden/mutex");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == c.kind);
    std::string want = "etcd " + canned.endpoint() + ": " + c.message;
    if (want.ends_with("...")) {
      CHECK_THAT(r.error().message, Catch::StartsWith(want.substr(0, want.size() - 3)));
    } else {
      CHECK(r.error().message == want);
    }
    CHECK(r.error().message.find('\n') == std::string::npos);
    // For a write: 4xx means "not applied", anything else "maybe".
    CHECK(r.error().maybe_applied == c.maybe_applied);
    CHECK(r.error().code == c.code);
  }

  SECTION("a txn whose responses do not match its ops") {
    canned.Answer(200, "{" + h + R"(,"succeeded":true,"responses":[{"response_put":{}}]})");
    auto r = Txn(client, {}, {EtcdOp::Range("/a"), EtcdOp::Range("/b")}, {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message ==
          "etcd " + canned.endpoint() + ": malformed answer: 1 responses for 2 operations");
    auto wrong = Txn(client, {}, {EtcdOp::Range("/a")}, {});
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.error().message == "etcd " + canned.endpoint() +
                                       ": malformed answer: response 0 has no \"response_range\"");
  }
  SECTION("omitted fields read as empty") {
    canned.Answer(200, R"({"header":{}})");
    auto r = Txn(client, {EtcdCompare::Missing("/a")}, {EtcdOp::Put("/a", "b")}, {});
    REQUIRE(r.ok());
    CHECK_FALSE(r->succeeded);  // omitted: false
    CHECK(r->responses.empty());
    CHECK(r->header.revision == 0);
    CHECK(r->header.cluster_id.empty());
  }
  SECTION("connection closed without an answer") {
    canned.Set(CannedHttpServer::Mode::kClose);
    auto r = Get(client, "/a");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == Kind::kNoAnswer);
    CHECK(r.error().message ==
          "etcd " + canned.endpoint() + ": connection closed without an answer");
  }
}

TEST_CASE("etcd_client: refused and timeout", "[etcd]") {
  SECTION("refused") {
    const std::string dead = Refused();
    EtcdClient client(EV_DEFAULT, Config({dead}));
    auto r = Get(client, "/a");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == Kind::kUnreachable);
    CHECK(r.error().message == "etcd " + dead + ": connection refused");
    auto w = Put(client, "/a", "b");
    REQUIRE_FALSE(w.ok());
    CHECK_FALSE(w.error().maybe_applied);
  }
  SECTION("a listener that never answers; the loop keeps running") {
    CannedHttpServer hung;
    hung.Set(CannedHttpServer::Mode::kHang);
    EtcdClient client(EV_DEFAULT, Config({hung.endpoint()}, 700));
    TickCounter ticker;
    auto start = std::chrono::steady_clock::now();
    auto w = Put(client, "/a", "b");
    auto took = std::chrono::steady_clock::now() - start;
    ticker.Stop();
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().kind == Kind::kNoAnswer);
    CHECK(w.error().maybe_applied);
    CHECK(w.error().message == "etcd " + hung.endpoint() + ": timed out after 700 ms");
    CHECK(took < std::chrono::seconds(3));
    CHECK(ticker.ticks() >= 5);
  }
  SECTION("no endpoints: an error from the loop") {
    EtcdClient client(EV_DEFAULT, Config({}));
    auto r = Get(client, "/a");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "etcd: no endpoints configured");
  }
}

TEST_CASE("etcd_client: a wrong cluster_id is an error, the right one passes", "[etcd]") {
  EtcdTestServer etcd;
  EtcdConfig cfg = Config({etcd.endpoint()});
  cfg.cluster_id = etcd.ClusterId();
  {
    EtcdClient client(EV_DEFAULT, cfg);
    REQUIRE(Get(client, "/a").ok());
  }
  cfg.cluster_id = "12345";
  EtcdClient client(EV_DEFAULT, cfg);
  auto r = Get(client, "/a");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == Kind::kWrongCluster);
  CHECK(r.error().message == "etcd " + etcd.endpoint() + ": cluster_id " + etcd.ClusterId() +
                                 " is not the configured 12345");
}

TEST_CASE("etcd_client: cancel and destruction drop callbacks", "[etcd]") {
  CannedHttpServer hung;
  hung.Set(CannedHttpServer::Mode::kHang);
  int calls = 0;
  {
    EtcdClient client(EV_DEFAULT, Config({hung.endpoint()}, 20'000));
    auto id = client.Range("/a", "", [&](EtcdResult<EtcdRange>) { ++calls; });
    CHECK(client.in_flight() == 1);
    CHECK(client.Cancel(id));
    CHECK_FALSE(client.Cancel(id));
    CHECK(client.in_flight() == 0);
    client.Range("/b", "", [&](EtcdResult<EtcdRange>) { ++calls; });
    // The cancelled one never left: only /b reaches the server.
    REQUIRE(RunUntil([&] { return hung.requests() >= 1; }, 10));
  }
  RunUntil([] { return false; }, 0.3);
  CHECK(calls == 0);

  // A callback may destroy the client.
  CannedHttpServer canned;
  canned.Answer(503, "{}");
  auto owned = std::make_unique<EtcdClient>(EV_DEFAULT, Config({canned.endpoint()}));
  bool called = false;
  owned->Range("/a", "", [&](EtcdResult<EtcdRange>) {
    called = true;
    owned.reset();
  });
  REQUIRE(RunUntil([&] { return called; }, 10));
  CHECK(owned == nullptr);
}

TEST_CASE("etcd_client: TLS with a private CA and a client certificate", "[etcd]") {
  testing::TempDir dir;
  testing::TestPki pki = testing::MakeTestPki(dir.path());
  EtcdTestServer::Options options;
  options.tls = &pki;
  EtcdTestServer etcd(options);
  etcd.Put("/tls", "yes");
  EtcdConfig cfg = Config({etcd.endpoint()});

  SECTION("an unknown CA fails the handshake, nothing sent") {
    EtcdClient client(EV_DEFAULT, cfg);
    auto r = Get(client, "/tls");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == Kind::kUnreachable);
    CHECK_THAT(r.error().message, Catch::Contains("TLS error"));
  }
  SECTION("the CA but no client certificate: refused by etcd") {
    cfg.ca_file = pki.ca;
    EtcdClient client(EV_DEFAULT, cfg);
    auto r = Get(client, "/tls");
    REQUIRE_FALSE(r.ok());
  }
  SECTION("the CA and the client certificate") {
    cfg.ca_file = pki.ca;
    cfg.cert_file = pki.client_cert;
    cfg.key_file = pki.client_key;
    EtcdClient client(EV_DEFAULT, cfg);
    auto r = Get(client, "/tls");
    REQUIRE(r.ok());
    REQUIRE(r->kvs.size() == 1);
    CHECK(r->kvs[0].value == "yes");
  }
}

}  // namespace warden

namespace warden {

TEST_CASE("etcd_client: a lease keeps its keys while kept alive, and they go with it", "[etcd]") {
  EtcdTestServer etcd;
  EtcdClient client(EV_DEFAULT, Config({etcd.endpoint()}));
  auto lease = Wait<EtcdLeaseResult>([&](auto cb) { client.LeaseGrant(2, cb); });
  REQUIRE(lease.ok());
  CHECK(lease->id != 0);
  CHECK(lease->ttl >= 2);
  auto put = Txn(client, {}, {EtcdOp::Put("/l/k", "v", lease->id)}, {});
  REQUIRE(put.ok());
  CHECK(etcd.Get("/l/k") == std::optional<std::string>("v"));
  auto alive = Wait<EtcdLeaseResult>([&](auto cb) { client.LeaseKeepAlive(lease->id, cb); });
  REQUIRE(alive.ok());
  CHECK(alive->id == lease->id);
  CHECK(alive->ttl >= 1);
  // Not kept alive: the key goes when the TTL runs out (etcd checks leases
  // about every 500 ms), and a keepalive then says ttl 0.
  REQUIRE(RunUntil([&] { return !etcd.Get("/l/k").has_value(); }, 15));
  auto gone = Wait<EtcdLeaseResult>([&](auto cb) { client.LeaseKeepAlive(lease->id, cb); });
  REQUIRE(gone.ok());
  CHECK(gone->ttl == 0);
}

TEST_CASE("etcd_client: lease answers are checked", "[etcd]") {
  CannedHttpServer canned;
  EtcdClient client(EV_DEFAULT, Config({canned.endpoint()}));
  const std::string where = "etcd " + canned.endpoint() + ": malformed answer: ";
  canned.Answer(200, std::string("{") + kHeader + R"(,"TTL":"2"})");
  auto no_id = Wait<EtcdLeaseResult>([&](auto cb) { client.LeaseGrant(2, cb); });
  REQUIRE_FALSE(no_id.ok());
  CHECK(no_id.error().message == where + "no lease \"ID\"");
  canned.Answer(200, std::string("{") + kHeader + R"(,"ID":"x1","TTL":"2"})");
  auto bad = Wait<EtcdLeaseResult>([&](auto cb) { client.LeaseGrant(2, cb); });
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == where + "\"ID\" is not an int64");
  // A keepalive's answer is one object of a stream, under "result".
  canned.Answer(200, std::string("{") + kHeader + R"(,"ID":"5","TTL":"2"})");
  auto unwrapped = Wait<EtcdLeaseResult>([&](auto cb) { client.LeaseKeepAlive(5, cb); });
  REQUIRE_FALSE(unwrapped.ok());
  CHECK(unwrapped.error().message == where + "no \"result\"");
  canned.Answer(200, R"({"error":{"grpc_code":5,"message":"lease not found"}})");
  auto error = Wait<EtcdLeaseResult>([&](auto cb) { client.LeaseKeepAlive(5, cb); });
  REQUIRE_FALSE(error.ok());
  CHECK_THAT(error.error().message, Catch::StartsWith(where + "etcd error: "));
  canned.Answer(200, std::string(R"({"result":{)") + kHeader + R"(,"ID":"5","TTL":"3"}})");
  auto ok = Wait<EtcdLeaseResult>([&](auto cb) { client.LeaseKeepAlive(5, cb); });
  REQUIRE(ok.ok());
  CHECK(ok->ttl == 3);
}

}  // namespace warden
