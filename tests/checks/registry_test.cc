#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "check_test_util.h"
#include "checks/check.h"

using warden::test::MakeCheck;

namespace {

// Minimal valid options per type, so every type can be built.
std::vector<std::pair<std::string, std::string>> ValidKeys(const std::string& type) {
  if (type == "mysql_status" || type == "mysql_variable") return {{"variable", "Uptime"}};
  if (type == "mysql_query") return {{"sql", "SELECT 1"}};
  if (type == "mysql_replica") return {{"field", "lag"}};
  if (type == "process") return {{"name", "mariadbd"}};
  if (type == "tcp") return {{"host", "127.0.0.1"}, {"port", "3306"}};
  if (type == "disk" || type == "file") return {{"path", "/"}};
  if (type == "program") return {{"command", "true"}};
  return {};
}

bool AnyContains(const std::vector<std::string>& errors, const std::string& part) {
  for (const auto& e : errors) {
    if (e.find(part) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("every documented check type is registered once and buildable", "[checks][registry]") {
  const std::vector<std::string> documented = {
      "mysql_ping", "mysql_status", "mysql_variable", "mysql_query", "mysql_replica",
      "process",    "tcp",          "disk",           "program",     "file"};
  std::set<std::string> seen;
  for (const auto& t : warden::CheckTypes()) {
    INFO(t.name);
    CHECK(seen.insert(t.name).second);
    CHECK(std::string(t.summary).size() > 5);
    CHECK(t.uses_mysql == (std::string(t.name).rfind("mysql_", 0) == 0));
  }
  CHECK(seen.size() == documented.size());
  for (const auto& name : documented) {
    INFO(name);
    const warden::CheckType* t = warden::FindCheckType(name);
    REQUIRE(t != nullptr);
    CHECK(t->name == name);
    auto built = MakeCheck(name, ValidKeys(name));
    CHECK(built.errors.empty());
    CHECK(built.check != nullptr);
  }
  CHECK(warden::FindCheckType("mysql") == nullptr);
  CHECK(warden::FindCheckType("") == nullptr);
}

TEST_CASE("a key the type does not know is reported with file:line", "[checks][registry]") {
  auto built = MakeCheck("disk", {{"path", "/"}, {"metrc", "free_pct"}});
  REQUIRE(built.errors.size() == 1);
  CHECK(built.errors[0] == "test.ini:3: unknown key 'metrc' for check type disk");
}

TEST_CASE("a missing required option is reported with file:line", "[checks][registry]") {
  for (const std::string type : {"mysql_status", "mysql_variable", "mysql_query", "mysql_replica",
                                 "tcp", "disk", "program", "file", "process"}) {
    INFO(type);
    auto built = MakeCheck(type, {});
    CHECK(built.check == nullptr);
    REQUIRE(!built.errors.empty());
    CHECK(built.errors[0].rfind("test.ini:1: [check t] needs '", 0) == 0);
  }
  auto tcp = MakeCheck("tcp", {{"host", "db"}});
  REQUIRE(tcp.errors.size() == 1);
  CHECK(tcp.errors[0].rfind("test.ini:1: [check t] needs 'port'", 0) == 0);
}

TEST_CASE("bad option values are reported at their line", "[checks][registry]") {
  auto metric = MakeCheck("disk", {{"path", "/"}, {"metric", "used_pct"}});
  CHECK(metric.check == nullptr);
  CHECK(AnyContains(
      metric.errors,
      "test.ini:3: metric: 'used_pct' is not one of free_pct, free_bytes, inodes_free_pct"));

  auto relative = MakeCheck("file", {{"path", "var/log/x"}});
  CHECK(relative.check == nullptr);
  CHECK(AnyContains(relative.errors, "test.ini:2: path must be absolute"));

  auto port = MakeCheck("tcp", {{"host", "db"}, {"port", "70000"}});
  CHECK(port.check == nullptr);
  CHECK(AnyContains(port.errors, "test.ini:3: port"));

  auto field = MakeCheck("mysql_replica", {{"field", "lag_seconds"}});
  CHECK(field.check == nullptr);
  CHECK(AnyContains(field.errors, "test.ini:2: field: 'lag_seconds' is not one of"));

  auto rate = MakeCheck("mysql_status", {{"variable", "Questions"}, {"rate", "sometimes"}});
  CHECK(AnyContains(rate.errors, "test.ini:3: rate"));

  auto quote = MakeCheck("program", {{"command", "check_lag 'unterminated"}});
  CHECK(quote.check == nullptr);
  CHECK(AnyContains(quote.errors, "test.ini:2: command: "));

  auto pipe = MakeCheck("program", {{"command", "ps | grep x"}});
  CHECK(pipe.check == nullptr);
  CHECK(AnyContains(pipe.errors, "test.ini:2: command: "));

  auto value = MakeCheck("program", {{"command", "true"}, {"value", "stderr"}});
  CHECK(value.check == nullptr);
  CHECK(AnyContains(value.errors, "test.ini:3: value: 'stderr' is not one of exit, stdout"));

  auto neither = MakeCheck("process", {});
  CHECK(AnyContains(neither.errors, "needs 'pidfile' or 'name'"));
}

TEST_CASE("optional keys are accepted", "[checks][registry]") {
  CHECK(MakeCheck("mysql_replica", {{"field", "io_running"}, {"channel", "src2"}}).errors.empty());
  CHECK(MakeCheck("mysql_status", {{"variable", "Questions"}, {"rate", "yes"}}).errors.empty());
  CHECK(MakeCheck("process", {{"pidfile", "/run/mysqld/mysqld.pid"}, {"name", "mariadbd"}})
            .errors.empty());
  CHECK(
      MakeCheck("program", {{"command", "check_x --warn 3"}, {"value", "stdout"}}).errors.empty());
  CHECK(MakeCheck("file", {{"path", "/tmp"}, {"metric", "age"}}).errors.empty());
  CHECK(MakeCheck("disk", {{"path", "/"}, {"metric", "inodes_free_pct"}}).errors.empty());
}
