#include "actions/alertmanager.h"

#include <catch2/catch.hpp>

#include "daemon/io/http_client.h"
#include "tests/support/action_harness.h"
#include "tests/support/mutex_test_server.h"

using namespace warden;
using namespace warden::testing;

TEST_CASE("alertmanager: the alerts URL and label names", "[actions][alertmanager]") {
  CHECK(AlertsUrl("http://am:9093") == "http://am:9093/api/v2/alerts");
  CHECK(AlertsUrl("http://am:9093/") == "http://am:9093/api/v2/alerts");
  CHECK(AlertsUrl("https://am/prefix/api/v2/alerts") == "https://am/prefix/api/v2/alerts");
  CHECK(IsLabelName("team_1"));
  CHECK_FALSE(IsLabelName("1team"));
  CHECK_FALSE(IsLabelName("team-a"));
  CHECK_FALSE(IsLabelName(""));
}

TEST_CASE("alertmanager: config errors", "[actions][alertmanager]") {
  CHECK(MakeAction("alertmanager", {}).error() ==
        "test.ini:1: [action t] needs 'url' (Alertmanager's base URL (http:// or https://))");
  CHECK(MakeAction("alertmanager", {{"url", "am:9093"}}).error() ==
        "test.ini:2: url: 'am:9093' is not an http:// or https:// URL");
  CHECK(MakeAction("alertmanager", {{"url", "http://am"}, {"labels", "sev=crit state={state}"}})
            .error() ==
        "test.ini:3: labels: state: unknown placeholder {state} (known: {action} {check} {host}) "
        "(labels name the alert: they must read the same when it fires and when it resolves; put "
        "the state and the value in annotations)");
  CHECK(MakeAction("alertmanager", {{"url", "http://am"}, {"labels", "team-a=x"}}).error() ==
        "test.ini:3: labels: 'team-a' is not a label name (letters, digits and _, not starting "
        "with a digit)");
  CHECK(MakeAction("alertmanager", {{"url", "http://am"}, {"annotations", "summary"}}).error() ==
        "test.ini:3: annotations: 'summary' is not NAME=VALUE");
  CHECK(MakeAction("alertmanager", {{"url", "http://am"}, {"annotations", "a=1 a=2"}}).error() ==
        "test.ini:3: annotations: a is set twice");
  CHECK(MakeAction("alertmanager", {{"url", "http://am"}, {"annotations", "s=\"{x}"}}).error() ==
        "test.ini:3: annotations: unterminated double quote (opened at character 3)");
  CHECK(MakeAction("alertmanager",
                   {{"url", "http://am"}, {"annotations", "summary=\"{check} is {state}: {value} "
                                                          "{threshold}\""}})
            .errors.empty());
}

TEST_CASE("alertmanager: posts firing, then resolved", "[actions][alertmanager]") {
  warden::testing::TestServer server;
  BuiltAction b = MakeAction("alertmanager", {{"url", server.Url("http", "")},
                                        {"labels", "severity=critical"},
                                        {"annotations", "summary=\"{check} {state} {threshold}\""}});
  INFO(b.error());
  REQUIRE(b.action);
  ActionHarness h;
  HttpClient http(h.loop);
  h.rt.http = &http;
  h.rt.host = "db-17";
  ActionCommon common = Common("alertmanager");
  common.timeout = Duration(3000);
  Trigger crit{"check", "lag", "crit", "712"};
  crit.threshold = "> 600";
  auto fired = h.Run(*b.action, common, crit);
  INFO(fired.error);
  CHECK(fired.ok);
  CHECK(fired.extra["alert"] == "firing");
  CHECK(fired.extra["labels"] ==
        nlohmann::json{{"alertname", "lag"}, {"instance", "db-17"}, {"severity", "critical"}});
  Trigger ok{"check", "lag", "ok", "3"};
  ok.resolve = true;
  auto resolved = h.Run(*b.action, common, ok);
  CHECK(resolved.ok);
  CHECK(resolved.extra["alert"] == "resolved");
  auto reqs = server.Requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0]["path"] == "/api/v2/alerts");
  CHECK(reqs[0]["method"] == "POST");
}
