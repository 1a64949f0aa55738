#include <algorithm>

#include <catch2/catch.hpp>
#include <set>

#include "daemon/config/config.h"
#include "tests/support/action_harness.h"
#include "tests/support/temp_dir.h"
#include "tests/support/type_tables.h"

using namespace warden;
using namespace warden::testing;
using warden::testing::KeyValues;
using warden::testing::OwnKeys;

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

std::vector<std::string> LoadErrors(const std::string& sections) {
  warden::testing::TempDir dir;
  std::string path = dir.Write("warden.ini",
                               "[daemon]\nstate_dir = " + dir.path() +
                                   "\n[mutex]\nmode = off\n[mysql]\nsocket = "
                                   "/run/mysqld/mysqld.sock\nuser = warden\n" + sections);
  Diagnostics diag;
  auto config = LoadConfig(path, LoadOptions{}, diag);
  return diag.errors();
}

// The example's own keys: what the type builds from.
Keys MinimalKeys(const ActionType& t) {
  Keys out;
  for (const auto& kv : OwnKeys(t.example, t.options)) out.push_back(kv);
  return out;
}

}  // namespace

TEST_CASE("action registry lists every type once, with a sound table and an example",
          "[actions][registry]") {
  std::set<std::string> names;
  REQUIRE(ActionTypes().size() >= 5);
  for (const auto& t : ActionTypes()) {
    INFO(t.name);
    CHECK(names.insert(t.name).second);
    CHECK(FindActionType(t.name) == &t);
    CHECK(t.make != nullptr);
    CHECK(std::string(t.summary).size() > 10);
    CHECK(Joined(warden::testing::TableProblems(t.options, ActionCommonOptions())) == "");
    const std::string example = t.example;
    CHECK(example.rfind("[action ", 0) == 0);
    bool typed = false;
    for (const auto& [k, v] : warden::testing::ExampleKeys(example)) {
      typed = typed || (k == "type" && v == t.name);
    }
    CHECK(typed);
  }
  CHECK(FindActionType("nope") == nullptr);
  CHECK(FindActionType("EXEC") == nullptr);
  CHECK(Joined(warden::testing::TableProblems(ActionCommonOptions(), {})) == "");
}

TEST_CASE("action registry: every example validates and builds from its own keys",
          "[actions][registry]") {
  for (const auto& t : ActionTypes()) {
    INFO(t.name << "\n" << t.example);
    CHECK(Joined(LoadErrors(t.example)) == "");
    BuiltAction b = MakeAction(t.name, MinimalKeys(t));
    CHECK(b.error() == "");
    CHECK(b.action);
  }
}

TEST_CASE("action registry: each factory reads every key of its table, and no other",
          "[actions][registry]") {
  for (const auto& t : ActionTypes()) {
    for (const auto& spec : t.options) {
      INFO(t.name << ": " << spec.key);
      Keys keys = MinimalKeys(t);
      bool present = false;
      for (const auto& [k, v] : keys) present = present || k == spec.key;
      if (!present) keys.emplace_back(spec.key, warden::testing::SampleValue(spec));
      RawSection s = ActionSection(keys);
      Diagnostics diag;
      OptionReader opts(s, diag);
      auto action = BuildAction(t, opts, Common(t.name));
      opts.Finish("action type " + std::string(t.name));
      CHECK(opts.Asked(spec.key));
      CHECK_FALSE(AnyContains(diag.errors(), "internal error"));
      CHECK_FALSE(AnyContains(diag.errors(), "unknown key"));
    }
  }
}

TEST_CASE("the reference names each action type's keys and values, and no others",
          "[actions][registry][docs]") {
  auto rows = warden::testing::ReferenceTypeRows("[action NAME]");
  std::set<std::string> documented, registered;
  for (const auto& [name, words] : rows) documented.insert(name);
  for (const auto& t : ActionTypes()) registered.insert(t.name);
  CHECK(documented == registered);
  for (const auto& t : ActionTypes()) {
    INFO(t.name);
    CHECK(rows[t.name] == warden::testing::WordsOfTable(t.options));
  }
  CHECK(warden::testing::ReferenceKeys("[action NAME]") ==
        warden::testing::KeysOfTable(ActionCommonOptions()));
}

TEST_CASE("every action type has a sample in etc/", "[actions][registry]") {
  for (const auto& t : ActionTypes()) {
    INFO(t.name);
    CHECK_FALSE(warden::testing::SamplesOfType(t.name).empty());
  }
}

TEST_CASE("the loader takes every common key of an action", "[actions][registry]") {
  std::string section = "[action common]\ntype = mysql_sql\nsql = SELECT 1\n";
  for (const auto& spec : ActionCommonOptions()) {
    if (std::string(spec.key) != "type") {
      section += std::string(spec.key) + " = " + warden::testing::SampleValue(spec) + "\n";
    }
  }
  auto errors = LoadErrors(section);
  INFO(Joined(errors));
  CHECK_FALSE(AnyContains(errors, "unknown key"));
  CHECK_FALSE(AnyContains(errors, "internal error"));
}

TEST_CASE("action registry: unknown keys are reported by Finish", "[actions][registry]") {
  for (const auto& t : ActionTypes()) {
    Keys keys = MinimalKeys(t);
    int line = 2;   // the bogus key's: after the example's keys and their continued lines
    for (const auto& [k, v] : keys) line += 1 + static_cast<int>(std::count(v.begin(), v.end(), '\n'));
    keys.emplace_back("bogus_key", "1");
    BuiltAction b = MakeAction(t.name, keys);
    INFO(t.name);
    REQUIRE(b.errors.size() == 1);
    CHECK(b.errors[0] == "test.ini:" + std::to_string(line) +
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
    BuiltAction b = MakeAction(t.name, {});
    INFO(t.name);
    CHECK_FALSE(b.action);
    REQUIRE_FALSE(b.errors.empty());
    CHECK(b.errors[0].rfind("test.ini:1: [action t] needs '", 0) == 0);
    for (const auto& spec : t.options) {
      if (!spec.required) continue;
      INFO(spec.key);
      Keys keys;
      for (const auto& kv : MinimalKeys(t)) {
        if (kv.first != spec.key) keys.push_back(kv);
      }
      CHECK(MakeAction(t.name, keys).errors ==
            std::vector<std::string>{"test.ini:1: [action t] needs '" + std::string(spec.key) +
                                     "' (" + spec.help + ")"});
    }
  }
}
