#include "daemon/engine/state.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/engine/guard.h"
#include "tests/support/temp_dir.h"

using namespace warden;
using warden::testing::TempDir;

namespace {

PersistedState Sample() {
  PersistedState s;
  Pause host;
  host.reason = "disk swap on db-17";
  host.by = "uid 0 gid 0 pid 42";
  host.uid = 0;
  host.pid = 42;
  host.at_ms = 1'700'000'000'123;
  s.pauses.push_back(host);
  Pause group;
  group.scope = {PauseScope::Kind::kGroup, "replication"};
  group.reason = "swapping disk";
  group.by = "uid 1000 (alice) pid 7";
  group.uid = 1000;
  group.pid = 7;
  group.at_ms = 1'700'000'000'200;
  group.until_ms = 1'700'003'600'200;
  s.pauses.push_back(group);
  Pause off;
  off.scope = {PauseScope::Kind::kCheck, "connections"};
  off.reason = "noisy until the fix";
  off.by = "uid 0 (root) pid 9";
  off.uid = 0;
  off.pid = 9;
  off.at_ms = 1'700'000'000'300;
  off.until_ms = 1'700'000'900'300;
  s.disabled.push_back(off);
  Pause window;
  window.reason = "weekly backup";
  window.by = "maintenance backup";
  window.at_ms = 1'700'000'000'000;
  window.until_ms = 1'700'007'200'000;
  window.window = "backup";
  s.pauses.push_back(window);
  CheckRecord c;
  c.state = "crit";
  c.value = "27";
  c.unit = "%";
  c.detail = "CRITICAL: 27 connections free";
  c.error = "";
  c.since_ms = 1'700'000'000'000;
  c.last_run_ms = 1'700'000'001'000;
  c.runs = 17;
  c.overruns = 2;
  c.digest = "00112233aabbccdd";
  s.checks["connections"] = c;
  ActionRecord a;
  a.last_end_ms = 1'700'000'000'500;
  a.starts_ms = {1'700'000'000'100, 1'700'000'000'400};
  s.actions["kill_sleepers"] = a;
  s.actions["never_ended"] = ActionRecord{std::nullopt, {1'700'000'000'200}};
  return s;
}

// The state as a JSON tree, built with nlohmann: what StateText must
// write, as that tree's dump(1) (how the file was written before).
nlohmann::json Tree(const PersistedState& s, std::int64_t saved_ms) {
  nlohmann::json j = nlohmann::json::object();
  j["format"] = kStateFormat;
  j["saved"] = Rfc3339FromMs(saved_ms);
  const Pause* host = nullptr;
  nlohmann::json pauses = nlohmann::json::object();
  for (const auto& p : s.pauses) {
    if (p.scope.kind == PauseScope::Kind::kHost && p.window.empty()) host = &p;   // wardenctl's
    pauses[PauseKey(p)] = {{"scope", ScopeKindName(p.scope.kind)}, {"name", p.scope.name},
                           {"reason", p.reason}, {"by", p.by}, {"uid", p.uid},
                           {"pid", p.pid}, {"at_ms", p.at_ms}, {"until_ms", p.until_ms},
                           {"window", p.window}};
  }
  j["pauses"] = std::move(pauses);
  j["pause"] = {{"paused", host != nullptr},
                {"reason", host ? host->reason : ""},
                {"by", host ? host->by : ""},
                {"at_ms", host ? host->at_ms : 0}};
  nlohmann::json disabled = nlohmann::json::object();
  for (const auto& p : s.disabled) {
    disabled[p.scope.name] = {{"reason", p.reason}, {"by", p.by}, {"uid", p.uid},
                              {"pid", p.pid}, {"at_ms", p.at_ms}, {"until_ms", p.until_ms}};
  }
  j["disabled"] = std::move(disabled);
  nlohmann::json checks = nlohmann::json::object();
  for (const auto& [name, c] : s.checks) {
    checks[name] = {{"state", c.state},       {"value", c.value},
                    {"unit", c.unit},         {"detail", c.detail},
                    {"error", c.error},       {"since_ms", c.since_ms},
                    {"last_run_ms", c.last_run_ms}, {"runs", c.runs},
                    {"overruns", c.overruns}, {"digest", c.digest}};
  }
  j["checks"] = std::move(checks);
  nlohmann::json actions = nlohmann::json::object();
  for (const auto& [name, a] : s.actions) {
    nlohmann::json one = nlohmann::json::object();
    one["last_end_ms"] = a.last_end_ms ? nlohmann::json(*a.last_end_ms) : nlohmann::json(nullptr);
    one["starts_ms"] = a.starts_ms;
    actions[name] = std::move(one);
  }
  j["actions"] = std::move(actions);
  return j;
}

constexpr std::int64_t kSaved = 1'700'000'002'345;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> CorruptFiles(const TempDir& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (e.path().filename().string().rfind("state.json.corrupt-", 0) == 0) {
      out.push_back(e.path().string());
    }
  }
  return out;
}

ActionCommon Budgeted(const std::string& name) {
  ActionCommon a;
  a.name = name;
  a.type = "exec";
  a.budget = Budget{2, Duration(3'600'000)};
  return a;
}

GuardDecision Ask(Guard& g, const ActionCommon& a) {
  GuardDecision out;
  bool called = false;
  g.Consult(a, [&](GuardDecision d) {
    out = d;
    called = true;
  });
  REQUIRE(called);  // no mutex client: answered inside Consult
  return out;
}

}  // namespace

TEST_CASE("state round-trips through JSON", "[state]") {
  PersistedState s = Sample();
  auto back = StateFromJson(StateText(s, kSaved));
  REQUIRE(back.ok());
  // Pauses come back by key (the file keeps them in key order).
  REQUIRE(back->pauses.size() == 3);
  CHECK(back->pauses[0] == s.pauses[1]);   // "group replication"
  CHECK(back->pauses[1] == s.pauses[0]);   // "host"
  CHECK(back->pauses[2] == s.pauses[2]);   // "host (maintenance backup)"
  CHECK(back->disabled == s.disabled);
  REQUIRE(back->checks.count("connections") == 1);
  const CheckRecord& c = back->checks["connections"];
  CHECK(c.state == "crit");
  CHECK(c.value == "27");
  CHECK(c.unit == "%");
  CHECK(c.detail == "CRITICAL: 27 connections free");
  CHECK(c.runs == 17);
  CHECK(c.overruns == 2);
  CHECK(c.digest == "00112233aabbccdd");
  CHECK(c.last_run_ms == 1'700'000'001'000);
  REQUIRE(back->actions.count("kill_sleepers") == 1);
  CHECK(back->actions["kill_sleepers"].last_end_ms == 1'700'000'000'500);
  CHECK(back->actions["kill_sleepers"].starts_ms.size() == 2);
  CHECK_FALSE(back->actions["never_ended"].last_end_ms.has_value());
}

TEST_CASE("the state file is written as a dump of its JSON tree would be, whatever its text",
          "[state]") {
  auto same = [](const PersistedState& s) {
    CHECK(StateText(s, kSaved) == Tree(s, kSaved).dump(1) + "\n");
  };
  same(PersistedState{});   // no check, no action: {} and {}
  PersistedState s = Sample();
  same(s);
  // Text that must be escaped: quotes, backslashes, control characters,
  // UTF-8 beyond ASCII, DEL; names too; an empty list of starts.
  CheckRecord c = s.checks["connections"];
  c.value = "say \"hi\" \\ C:\\path\ttab\nline\r\x01\x1f\x7f";
  c.error = "ERROR 1045 (28000): Accès refusé pour 'warden'@'localhost' — ✓";
  c.state = "ok";
  c.runs = UINT64_MAX;
  c.since_ms = -5;
  s.checks["quote\"d \\ name\n"] = c;
  s.checks["ünïcödé"] = c;
  s.actions["no_starts"] = ActionRecord{std::nullopt, {}};
  s.pauses[0].reason = "tab\there";
  same(s);
  auto back = StateFromJson(StateText(s, kSaved));
  REQUIRE(back.ok());
  CHECK(back->checks == s.checks);

  // Bytes that are not UTF-8 (a program's output): written as U+FFFD, the
  // file still valid JSON (a dump of the tree threw on them).
  PersistedState raw;
  raw.checks["raw"].value = "a\xff\xfe" "b";
  const std::string text = StateText(raw, kSaved);
  CHECK_THROWS(Tree(raw, kSaved).dump(1));
  auto loaded = StateFromJson(text);
  REQUIRE(loaded.ok());
  CHECK(loaded->checks["raw"].value == "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
}

TEST_CASE("state parsing is strict and says which field is wrong", "[state]") {
  auto j = nlohmann::json::parse(StateText(Sample(), kSaved));
  SECTION("truncated") {
    std::string text = j.dump();
    auto r = StateFromJson(text.substr(0, text.size() / 2));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("not valid JSON"));
  }
  SECTION("wrong type") {
    j["pause"]["paused"] = "yes";
    auto r = StateFromJson(j.dump());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("pause.paused"));
  }
  SECTION("negative counter") {
    j["checks"]["connections"]["runs"] = -1;
    auto r = StateFromJson(j.dump());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("checks.connections.runs"));
  }
  SECTION("unknown format") {
    j["format"] = 99;
    auto r = StateFromJson(j.dump());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("format 99"));
  }
  SECTION("not an object") {
    CHECK_FALSE(StateFromJson("[1,2]").ok());
    CHECK_FALSE(StateFromJson("").ok());
  }
}

TEST_CASE("state file: missing, saved, loaded", "[state]") {
  TempDir dir;
  StateFile f(dir / "state.json");
  auto none = f.Load();
  CHECK_FALSE(none.existed);
  CHECK(none.error.empty());
  CHECK(none.state.pauses.empty());

  REQUIRE(f.Save(Sample()).ok());
  CHECK((std::filesystem::status(dir / "state.json").permissions() &
         std::filesystem::perms::others_all) == std::filesystem::perms::none);
  auto loaded = f.Load();
  CHECK(loaded.existed);
  CHECK(loaded.error.empty());
  CHECK(loaded.state.pauses.size() == 3);
  CHECK(loaded.state.checks.at("connections").state == "crit");
  // No temp files are left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("a corrupt state file is set aside and reported, never fatal", "[state]") {
  TempDir dir;
  std::string full = StateText(Sample(), kSaved);
  dir.Write("state.json", full.substr(0, full.size() - 40));   // torn write
  StateFile f(dir / "state.json");
  auto loaded = f.Load();
  CHECK(loaded.existed);
  CHECK_THAT(loaded.error, Catch::Contains("state.json"));
  CHECK_THAT(loaded.error, Catch::Contains("not valid JSON"));
  CHECK(loaded.state.pauses.empty());      // empty state, not half of one
  CHECK(loaded.state.checks.empty());
  CHECK_FALSE(std::filesystem::exists(dir / "state.json"));
  auto aside = CorruptFiles(dir);
  REQUIRE(aside.size() == 1);
  CHECK(loaded.set_aside == aside[0]);
  CHECK(Slurp(aside[0]) == full.substr(0, full.size() - 40));   // kept for a post-mortem
  // The next start finds no file: no crash loop, no repeated report.
  auto again = f.Load();
  CHECK_FALSE(again.existed);
  CHECK(again.error.empty());
}

TEST_CASE("an empty state file is corrupt too", "[state]") {
  TempDir dir;
  dir.Write("state.json", "");
  StateFile f(dir / "state.json");
  auto loaded = f.Load();
  CHECK_FALSE(loaded.error.empty());
  CHECK(CorruptFiles(dir).size() == 1);
}

TEST_CASE("clock conversions keep times within a few ms", "[state]") {
  auto now = std::chrono::steady_clock::now();
  auto ten_min_ago = now - std::chrono::minutes(10);
  std::int64_t ms = SteadyToWallMs(ten_min_ago);
  CHECK(std::llabs(WallMsNow() - ms - 600'000) < 50);
  auto back = WallMsToSteady(ms);
  auto diff = std::chrono::duration_cast<std::chrono::milliseconds>(back - ten_min_ago).count();
  CHECK(std::llabs(diff) < 50);
  CHECK(Rfc3339FromMs(1'700'000'000'123) == "2023-11-14T22:13:20.123Z");
}

TEST_CASE("guard history survives a capture and restore: budget and cooldown", "[state]") {
  PersistedState s;
  {
    Guard g(nullptr);
    auto a = Budgeted("restart");
    auto t = std::chrono::steady_clock::now() - std::chrono::minutes(5);
    g.RecordStart(a, t);
    g.RecordEnd("restart", t + std::chrono::seconds(1));
    g.RecordStart(a, t + std::chrono::minutes(1));
    g.RecordEnd("restart", t + std::chrono::minutes(1) + std::chrono::seconds(1));
    CHECK(Ask(g, a).reason == "budget");
    CaptureGuard(g, s);
  }
  // Through the file, as after kill -9 and a restart.
  TempDir dir;
  StateFile f(dir / "state.json");
  REQUIRE(f.Save(s).ok());
  auto loaded = f.Load();
  REQUIRE(loaded.error.empty());
  REQUIRE(loaded.state.actions.at("restart").starts_ms.size() == 2);

  Guard fresh(nullptr);
  auto a = Budgeted("restart");
  CHECK(Ask(fresh, a).allowed);   // before restoring: the history is gone
  RestoreGuard(loaded.state, fresh);
  auto d = Ask(fresh, a);
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == "budget");
  CHECK_THAT(d.detail, Catch::Contains("spent"));

  ActionCommon cool;
  cool.name = "restart";
  cool.type = "exec";
  cool.cooldown = Duration(600'000);   // 10 min; the last run ended 4 min ago
  d = Ask(fresh, cool);
  CHECK(d.reason == "cooldown");
  cool.cooldown = Duration(60'000);    // 1 min: over
  CHECK(Ask(fresh, cool).allowed);
}

TEST_CASE("pause is restored into the guard", "[state]") {
  PersistedState s = Sample();
  Guard g(nullptr);
  for (const auto& p : s.pauses) g.pauses().Set(p);
  auto d = Ask(g, Budgeted("x"));
  CHECK(d.reason == "paused");
  CHECK_THAT(d.detail, Catch::Contains("disk swap on db-17"));
}

TEST_CASE("a state file of an earlier version: its host pause is read, without expiry",
          "[state]") {
  auto j = nlohmann::json::parse(StateText(PersistedState{}, kSaved));
  j.erase("pauses");
  j.erase("disabled");
  j["pause"] = {{"paused", true}, {"reason", "old"}, {"by", "uid 0 (root)"}, {"at_ms", 5}};
  auto r = StateFromJson(j.dump());
  REQUIRE(r.ok());
  REQUIRE(r->pauses.size() == 1);
  CHECK(r->pauses[0].scope.kind == PauseScope::Kind::kHost);
  CHECK(r->pauses[0].reason == "old");
  CHECK(r->pauses[0].until_ms == 0);
  CHECK(r->disabled.empty());
  j["pause"]["paused"] = false;
  auto none = StateFromJson(j.dump());
  REQUIRE(none.ok());
  CHECK(none->pauses.empty());
}

TEST_CASE("state: a pause with a wrong scope or field is refused by name", "[state]") {
  auto j = nlohmann::json::parse(StateText(Sample(), kSaved));
  SECTION("unknown scope") {
    j["pauses"]["host"]["scope"] = "galaxy";
    auto r = StateFromJson(j.dump());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("pauses.host.scope"));
  }
  SECTION("a group without its name") {
    j["pauses"]["group replication"]["name"] = "";
    auto r = StateFromJson(j.dump());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("pauses.group replication.name"));
  }
  SECTION("expiry not a number") {
    j["disabled"]["connections"]["until_ms"] = "soon";
    auto r = StateFromJson(j.dump());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("disabled.connections.until_ms"));
  }
}

TEST_CASE("a state file of an earlier version: checks without detail or unit load with none",
          "[state]") {
  auto j = nlohmann::json::parse(StateText(Sample(), kSaved));
  j["checks"]["connections"].erase("detail");
  j["checks"]["connections"].erase("unit");
  auto r = StateFromJson(j.dump());
  REQUIRE(r.ok());
  const CheckRecord& c = r->checks.at("connections");
  CHECK(c.value == "27");
  CHECK(c.detail.empty());
  CHECK(c.unit.empty());
  // Present, they must be strings.
  j["checks"]["connections"]["detail"] = 5;
  auto bad = StateFromJson(j.dump());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error() == "checks.connections.detail is not a string");
}
