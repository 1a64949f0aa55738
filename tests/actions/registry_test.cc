#include <catch2/catch.hpp>
#include <set>

#include "tests/actions/action_test_util.h"

using namespace warden;
using namespace warden::action_test;

namespace {

// Minimal valid keys per type.
Keys MinimalKeys(const std::string& type) {
  if (type == "exec") return {{"command", "true"}};
  if (type == "service") return {{"name", "mariadb"}, {"op", "restart"}};
  if (type == "mysql_sql") return {{"sql", "SELECT 1"}};
  if (type == "notify") return {{"message", "hello"}};
  if (type == "haproxy") {
    return {{"socket", "/run/haproxy/admin.sock"}, {"backend", "mysql"}, {"server", "db1"},
            {"state", "drain"}};
  }
  return {};
}

}  // namespace

TEST_CASE("action registry lists every type once", "[actions][registry]") {
  std::set<std::string> names;
  for (const auto& t : ActionTypes()) {
    CHECK(names.insert(t.name).second);
    CHECK(FindActionType(t.name) == &t);
    CHECK(t.make != nullptr);
    CHECK(std::string(t.summary).size() > 10);
  }
  CHECK(names == std::set<std::string>{"exec", "service", "mysql_sql", "notify", "haproxy"});
  CHECK(FindActionType("nope") == nullptr);
  CHECK(FindActionType("EXEC") == nullptr);
}

TEST_CASE("action registry: every type builds from its minimal keys", "[actions][registry]") {
  for (const auto& t : ActionTypes()) {
    Built b = MakeAction(t.name, MinimalKeys(t.name));
    INFO(t.name << ": " << b.error());
    CHECK(b.errors.empty());
    CHECK(b.action);
  }
}

TEST_CASE("action registry: unknown keys are reported by Finish", "[actions][registry]") {
  for (const auto& t : ActionTypes()) {
    Keys keys = MinimalKeys(t.name);
    keys.emplace_back("bogus_key", "1");
    Built b = MakeAction(t.name, keys);
    INFO(t.name);
    REQUIRE(b.errors.size() == 1);
    CHECK(b.errors[0] == "test.ini:" + std::to_string(keys.size() + 1) +
                             ": unknown key 'bogus_key' for action type " + t.name);
  }
  CHECK(MakeAction("exec", {{"comand", "true"}}).errors ==
        std::vector<std::string>{
            "test.ini:1: [action t] needs 'command' (the program and its arguments)",
            "test.ini:2: unknown key 'comand' for action type exec"});
}

TEST_CASE("action registry: a missing required key names the section's file:line",
          "[actions][registry]") {
  for (const auto& t : ActionTypes()) {
    Built b = MakeAction(t.name, {});
    INFO(t.name);
    CHECK_FALSE(b.action);
    REQUIRE_FALSE(b.errors.empty());
    CHECK(b.errors[0].rfind("test.ini:1: [action t] needs '", 0) == 0);
  }
}
