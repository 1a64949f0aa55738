#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "checks/check.h"
#include "daemon/config/config.h"
#include "tests/support/check_harness.h"
#include "tests/support/temp_dir.h"
#include "tests/support/type_tables.h"

using warden::testing::MakeCheck;
using namespace warden::testing;

namespace {

bool AnyContains(const std::vector<std::string>& errors, const std::string& part) {
  for (const auto& e : errors) {
    if (e.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string Joined(const std::vector<std::string>& errors) {
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  return all;
}

// What the loader says about `sections` with a [mutex] and a [mysql].
std::vector<std::string> LoadErrors(const std::string& sections) {
  TempDir dir;
  std::string path = dir.Write("warden.ini",
                               "[daemon]\nstate_dir = " + dir.path() +
                                   "\n[mutex]\nmode = off\n[mysql]\nsocket = "
                                   "/run/mysqld/mysqld.sock\nuser = warden\n" + sections);
  warden::Diagnostics diag;
  auto config = warden::LoadConfig(path, warden::LoadOptions{}, diag);
  return diag.errors();
}

}  // namespace

// The types are the registry's; what each accepts is its table's. These
// walk both, so a new type is covered by its registry line.
TEST_CASE("every check type is registered once, with a sound table and an example",
          "[checks][registry]") {
  std::set<std::string> seen;
  REQUIRE(warden::CheckTypes().size() >= 10);
  for (const auto& t : warden::CheckTypes()) {
    INFO(t.name);
    CHECK(seen.insert(t.name).second);
    CHECK(warden::FindCheckType(t.name) == &t);
    CHECK(std::string(t.summary).size() > 5);
    CHECK(t.uses_mysql == (std::string(t.name).rfind("mysql_", 0) == 0));
    CHECK(t.make != nullptr);
    CHECK(Joined(TableProblems(t.options, warden::CheckCommonOptions())) == "");
    const std::string example = t.example;
    CHECK(example.rfind("[check ", 0) == 0);
    bool typed = false;
    for (const auto& [k, v] : ExampleKeys(example)) typed = typed || (k == "type" && v == t.name);
    CHECK(typed);
  }
  CHECK(warden::FindCheckType("mysql") == nullptr);
  CHECK(warden::FindCheckType("") == nullptr);
  CHECK(Joined(TableProblems(warden::CheckCommonOptions(), {})) == "");
}

TEST_CASE("each check type's example validates through the loader", "[checks][registry]") {
  for (const auto& t : warden::CheckTypes()) {
    INFO(t.name << "\n" << t.example);
    auto errors = LoadErrors(t.example);
    CHECK(Joined(errors) == "");
    // And builds from its own keys alone, the way the loader builds it.
    auto built = MakeCheck(t.name, OwnKeys(t.example, t.options));
    CHECK(Joined(built.errors) == "");
    CHECK(built.check != nullptr);
  }
}

TEST_CASE("each check type's factory reads every key of its table, and no other",
          "[checks][registry]") {
  for (const auto& t : warden::CheckTypes()) {
    for (const auto& spec : t.options) {
      INFO(t.name << ": " << spec.key);
      KeyValues keys = OwnKeys(t.example, t.options);
      bool present = false;
      for (const auto& [k, v] : keys) present = present || k == spec.key;
      if (!present) keys.emplace_back(spec.key, SampleValue(spec));
      warden::RawSection s = warden::testing::CheckSection(keys);
      warden::Diagnostics diag;
      warden::OptionReader opts(s, diag);
      warden::CheckCommon common;
      common.name = "t";
      common.type = t.name;
      auto check = warden::BuildCheck(t, opts, common);
      opts.Finish("check type " + std::string(t.name));
      // Read by the factory (a key it never looks at is no key of the type).
      CHECK(opts.Asked(spec.key));
      // A key the factory reads that the table does not declare is an
      // internal error, whatever the keys.
      CHECK_FALSE(AnyContains(diag.errors(), "internal error"));
      CHECK_FALSE(AnyContains(diag.errors(), "unknown key"));
    }
  }
}

TEST_CASE("the reference names each check type's keys and values, and no others",
          "[checks][registry][docs]") {
  auto rows = ReferenceTypeRows("[check NAME]");
  std::set<std::string> documented, registered;
  for (const auto& [name, words] : rows) documented.insert(name);
  for (const auto& t : warden::CheckTypes()) registered.insert(t.name);
  CHECK(documented == registered);
  for (const auto& t : warden::CheckTypes()) {
    INFO(t.name);
    CHECK(rows[t.name] == WordsOfTable(t.options));
  }
  CHECK(ReferenceKeys("[check NAME]") == KeysOfTable(warden::CheckCommonOptions()));
}

TEST_CASE("every check type has a sample in etc/", "[checks][registry]") {
  for (const auto& t : warden::CheckTypes()) {
    INFO(t.name);
    CHECK_FALSE(SamplesOfType(t.name).empty());
  }
}

TEST_CASE("the loader takes every common key of a check", "[checks][registry]") {
  std::string section = "[check common]\ntype = mysql_ping\n";
  for (const auto& spec : warden::CheckCommonOptions()) {
    if (std::string(spec.key) != "type") section += std::string(spec.key) + " = " + SampleValue(spec) + "\n";
  }
  auto errors = LoadErrors(section);
  INFO(Joined(errors));
  CHECK_FALSE(AnyContains(errors, "unknown key"));
  CHECK_FALSE(AnyContains(errors, "internal error"));
}

TEST_CASE("a key the type does not know is reported with file:line", "[checks][registry]") {
  auto built = MakeCheck("disk", {{"path", "/"}, {"metrc", "free_pct"}});
  REQUIRE(built.errors.size() == 1);
  CHECK(built.errors[0] == "test.ini:3: unknown key 'metrc' for check type disk");
}

TEST_CASE("a missing required option is reported with file:line", "[checks][registry]") {
  for (const auto& t : warden::CheckTypes()) {
    for (const auto& spec : t.options) {
      if (!spec.required) continue;
      INFO(t.name << ": " << spec.key);
      KeyValues keys;
      for (const auto& kv : OwnKeys(t.example, t.options)) {
        if (kv.first != spec.key) keys.push_back(kv);
      }
      auto built = MakeCheck(t.name, keys);
      CHECK(built.check == nullptr);
      CHECK(built.errors == std::vector<std::string>{"test.ini:1: [check t] needs '" +
                                                     std::string(spec.key) + "' (" + spec.help +
                                                     ")"});
    }
  }
  auto tcp = MakeCheck("tcp", {{"host", "db"}});
  REQUIRE(tcp.errors.size() == 1);
  CHECK(tcp.errors[0] == "test.ini:1: [check t] needs 'port' (TCP port, 1-65535)");
  auto neither = MakeCheck("process", {});
  CHECK(neither.errors == std::vector<std::string>{
                              "test.ini:1: [check t] needs 'pidfile' or 'name' (or both)"});
}

TEST_CASE("a key the table gives a default reads as it when absent", "[checks][registry]") {
  const warden::CheckType* disk = warden::FindCheckType("disk");
  REQUIRE(disk);
  warden::RawSection s = warden::testing::CheckSection({{"path", "/"}});
  warden::Diagnostics diag;
  warden::OptionReader opts(s, diag);
  opts.Declare(disk->options, "check type disk");
  CHECK(opts.GetChoice("metric") == "free_pct");
  CHECK(opts.Text("path") == "/");
  // Read as another kind than declared, or not declared at all: the code
  // and its table disagree.
  CHECK_FALSE(opts.GetBool("path"));
  CHECK_FALSE(opts.Text("colour"));
  CHECK(diag.errors() ==
        std::vector<std::string>{
            "test.ini:1: internal error: check type disk reads 'path' as boolean, but its option "
            "table declares text",
            "test.ini:1: internal error: check type disk reads 'colour', which its option table "
            "does not declare"});
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
