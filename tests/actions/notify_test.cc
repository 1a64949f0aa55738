#include "actions/notify.h"

#include <catch2/catch.hpp>

#include "tests/support/action_harness.h"

using namespace warden;
using namespace warden::testing;

TEST_CASE("notify: placeholder expansion", "[actions][notify]") {
  std::map<std::string, std::string> values = {{"check", "replica_lag"}, {"value", "712"}};
  auto s = ExpandPlaceholders("{check} is {value}s behind", values);
  REQUIRE(s.ok());
  CHECK(*s == "replica_lag is 712s behind");

  auto literal = ExpandPlaceholders("{} {Check} { check } {value", values);
  REQUIRE(literal.ok());
  CHECK(*literal == "{} {Check} { check } {value");

  auto twice = ExpandPlaceholders("{value}{value}", values);
  REQUIRE(twice.ok());
  CHECK(*twice == "712712");

  auto unknown = ExpandPlaceholders("lag {lag}", values);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error() == "unknown placeholder {lag} (known: {check} {value})");
}

TEST_CASE("notify: runs with the trigger's values", "[actions][notify]") {
  BuiltAction b = MakeAction(
      "notify",
      {{"severity", "critical"}, {"message", "{host}: {check} is {state} ({value})\nby {action}"}});
  INFO(b.error());
  REQUIRE(b.errors.empty());
  REQUIRE(b.action);
  ActionHarness h;
  h.rt.host = "db-17";
  auto out = h.Run(*b.action, Common("notify"), Trigger{"check", "replica_lag", "crit", "712"});
  CHECK(out.ok);
  CHECK(out.error.empty());
  CHECK(out.extra["severity"] == "critical");
  CHECK(out.extra["message"] == "db-17: replica_lag is crit (712)\nby t");
}

TEST_CASE("notify: default severity is warning", "[actions][notify]") {
  BuiltAction b = MakeAction("notify", {{"message", "hello"}});
  REQUIRE(b.action);
  ActionHarness h;
  auto out = h.Run(*b.action, Common("notify"));
  CHECK(out.ok);
  CHECK(out.extra["severity"] == "warning");
  CHECK(out.extra["message"] == "hello");
}

TEST_CASE("notify: config errors", "[actions][notify]") {
  CHECK(MakeAction("notify", {}).error() ==
        "test.ini:1: [action t] needs 'message' (the text of the event)");
  CHECK(MakeAction("notify", {{"message", "x"}, {"severity", "loud"}}).error() ==
        "test.ini:3: severity: 'loud' is not one of info, warning, critical");
  CHECK(MakeAction("notify", {{"message", "lag is {lag}"}}).error() ==
        "test.ini:2: message: unknown placeholder {lag} (known: {action} {check} {host} {state} "
        "{value})");
  const ActionType* t = FindActionType("notify");
  REQUIRE(t);
  CHECK_FALSE(t->guarded);
  CHECK_FALSE(t->uses_mysql);
}
