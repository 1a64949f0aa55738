#include "actions/webhook.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "actions/http_post.h"
#include "daemon/io/http_client.h"
#include "tests/support/action_harness.h"
#include "tests/support/mutex_test_server.h"

using namespace warden;
using namespace warden::testing;

TEST_CASE("webhook: placeholders are replaced JSON-escaped", "[actions][webhook]") {
  std::map<std::string, std::string> values = {{"check", "a\"b\\c"}, {"value", "1\n2\t\x01"}};
  auto s = ExpandJsonPlaceholders(R"({"c": "{check}", "v": "{value}"})", values);
  REQUIRE(s.ok());
  CHECK(*s == R"({"c": "a\"b\\c", "v": "1\n2\t\u0001"})");
  auto parsed = nlohmann::json::parse(*s);
  CHECK(parsed["c"] == "a\"b\\c");
  CHECK(parsed["v"] == "1\n2\t\x01");
  CHECK_FALSE(ExpandJsonPlaceholders("{lag}", values).ok());
}

TEST_CASE("webhook: config errors", "[actions][webhook]") {
  CHECK(MakeAction("webhook", {}).error() ==
        "test.ini:1: [action t] needs 'url' (where to POST (http:// or https://))");
  CHECK(MakeAction("webhook", {{"url", "ftp://x/"}}).error() ==
        "test.ini:2: url: 'ftp://x/' is not an http:// or https:// URL");
  CHECK(MakeAction("webhook", {{"url", "http:///x"}}).error() ==
        "test.ini:2: url: 'http:///x' has no host");
  CHECK(MakeAction("webhook", {{"url", "http://h/"}, {"body", R"({"v": {value}})"}}).error() ==
        "test.ini:3: body: not JSON once its placeholders are replaced (each placeholder goes "
        "inside a JSON string: \"{value}\")");
  CHECK(MakeAction("webhook", {{"url", "http://h/"}, {"body", R"({"v": "{lag}"})"}}).error() ==
        "test.ini:3: body: unknown placeholder {lag} (known: {action} {check} {host} {state} "
        "{threshold} {value})");
  CHECK(MakeAction("webhook", {{"url", "http://h/"}, {"headers", "X-Team dba"}}).error() ==
        "test.ini:3: headers: 'X-Team dba' is not \"Name: value\" (one per line)");
  CHECK(MakeAction("webhook", {{"url", "http://h/"}, {"headers", "Authorization: Bearer x"}})
            .error() == "test.ini:3: headers: a token goes in token_file = PATH (a private file), "
                        "not in the configuration");
  CHECK(MakeAction("webhook", {{"url", "http://h/"}, {"token_file", "hook.token"}}).error() ==
        "test.ini:3: token_file: 'hook.token' is not an absolute path");
  CHECK(MakeAction("webhook", {{"url", "http://h/"}, {"token_file", "/nonexistent/t"}}).error() ==
        "test.ini:3: token_file: cannot read /nonexistent/t: No such file or directory");

  warden::testing::TempDir dir;
  dir.Write("token", "s3cret\n");
  ::chmod((dir / "token").c_str(), 0644);
  CHECK(MakeAction("webhook", {{"url", "http://h/"}, {"token_file", dir / "token"}}).error() ==
        "test.ini:3: token_file: " + (dir / "token") +
            " is mode 0644: a secret must not be readable by group or others (chmod 600 " +
            (dir / "token") + ")");
  ::chmod((dir / "token").c_str(), 0600);
  CHECK(
      MakeAction("webhook", {{"url", "http://h/"}, {"token_file", dir / "token"}}).errors.empty());
}

namespace {

struct HttpHarness : ActionHarness {
  HttpClient http{loop};
  HttpHarness() { rt.http = &http; }
};

}  // namespace

TEST_CASE("webhook: posts with the token, retries a 500, reports the answer",
          "[actions][webhook]") {
  warden::testing::TestServer server;
  warden::testing::TempDir dir;
  dir.Write("token", "s3cret\n");
  ::chmod((dir / "token").c_str(), 0600);
  BuiltAction b =
      MakeAction("webhook", {{"url", server.Url("http", "/hook")}, {"token_file", dir / "token"}});
  INFO(b.error());
  REQUIRE(b.action);
  HttpHarness h;
  ActionCommon common = Common("webhook");
  common.timeout = Duration(3000);

  auto ok = h.Run(*b.action, common, Trigger{"check", "lag", "crit", "712"});
  INFO(ok.error);
  CHECK(ok.ok);
  CHECK(ok.extra["http_status"] == 200);
  CHECK(ok.extra["attempts"] == 1);
  CHECK(ok.extra["answer"] == R"({"held": false})");
  auto reqs = server.Requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0]["method"] == "POST");
  CHECK(reqs[0]["path"] == "/hook");
  CHECK(reqs[0]["auth"] == "Bearer s3cret");

  // Every answer a 500: retried with backoff until the timeout leaves no
  // time, then a failure naming the peer's answer.
  server.SetMode("status:500");
  auto fail = h.Run(*b.action, common, Trigger{"check", "lag", "crit", "712"});
  CHECK_FALSE(fail.ok);
  CHECK(fail.extra["http_status"] == 500);
  CHECK(fail.extra["attempts"].get<int>() >= 3);
  CHECK(fail.error.find("HTTP 500: {\"held\": false}") != std::string::npos);
  CHECK(fail.error.find("no time left for another within the timeout") != std::string::npos);
  CHECK(server.Requests().size() == 1 + fail.extra["attempts"].get<size_t>());

  // A 404 is the peer's final word: not retried.
  server.SetMode("status:404");
  auto final_answer = h.Run(*b.action, common, Trigger{"check", "lag", "crit", "712"});
  CHECK_FALSE(final_answer.ok);
  CHECK(final_answer.extra["attempts"] == 1);
  CHECK(final_answer.error.find("not retried: the peer's final answer") != std::string::npos);

  // The token file made readable to others: refused at run time, nothing sent.
  size_t before = server.Requests().size();
  ::chmod((dir / "token").c_str(), 0640);
  auto refused = h.Run(*b.action, common, Trigger{"check", "lag", "crit", "712"});
  CHECK_FALSE(refused.ok);
  CHECK(refused.error.find("token_file: " + (dir / "token") + " is mode 0640") == 0);
  CHECK(server.Requests().size() == before);
}

TEST_CASE("webhook: a peer that is not there fails within the timeout", "[actions][webhook]") {
  int port = warden::testing::UnusedPort();
  BuiltAction b = MakeAction("webhook", {{"url", "http://127.0.0.1:" + std::to_string(port) + "/"}});
  REQUIRE(b.action);
  HttpHarness h;
  ActionCommon common = Common("webhook");
  common.timeout = Duration(1500);
  auto begin = std::chrono::steady_clock::now();
  auto out = h.Run(*b.action, common, Trigger{"check", "lag", "crit", "712"});
  auto took = std::chrono::steady_clock::now() - begin;
  CHECK_FALSE(out.ok);
  CHECK(out.extra["http_status"] == 0);
  CHECK(out.extra["attempts"].get<int>() >= 2);
  CHECK(out.error.find("connection refused") != std::string::npos);
  CHECK(took < std::chrono::seconds(10));
}

TEST_CASE("http_post: the answer as shown", "[actions][webhook]") {
  CHECK(ShowAnswer("  ok\n", {}) == "ok");
  CHECK(ShowAnswer("token abc in \xff\x01 line\nnext", {"abc"}) == "token **** in ?? line next");
  CHECK(ShowAnswer(std::string(400, 'x'), {}).size() == 300);
}
