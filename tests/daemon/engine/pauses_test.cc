#include "daemon/engine/pauses.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "daemon/engine/guard.h"
#include "support/fake_time.h"
#include "tests/support/guard_ask.h"

using namespace warden;
using namespace std::chrono_literals;
using warden::testing::AskGuard;
using warden::testing::ExecAction;
using warden::testing::FakeTime;

namespace {

// 2026-12-07T13:00:00Z
constexpr std::int64_t kNoon = 1'796'648'400'000;

Pause Make(PauseScope scope, std::string reason, std::int64_t at, std::int64_t until) {
  Pause p;
  p.scope = std::move(scope);
  p.reason = std::move(reason);
  p.by = "uid 0 (root) pid 1";
  p.at_ms = at;
  p.until_ms = until;
  return p;
}

const PauseScope kHost{};
const PauseScope kRepl{PauseScope::Kind::kGroup, "replication"};

}  // namespace

TEST_CASE("pauses: one per scope, several scopes at once", "[pauses]") {
  PauseSet set;
  CHECK_FALSE(set.Set(Make(kHost, "first", kNoon, 0)));
  CHECK_FALSE(set.Set(Make(kRepl, "disk", kNoon, kNoon + 3'600'000)));
  auto replaced = set.Set(Make(kHost, "second", kNoon + 1, kNoon + 60'000));
  REQUIRE(replaced);
  CHECK(replaced->reason == "first");
  REQUIRE(set.all().size() == 2);
  CHECK(set.Find(kHost)->reason == "second");
  CHECK(set.NextExpiry() == kNoon + 60'000);
  CHECK(set.Remove(kRepl)->reason == "disk");
  CHECK_FALSE(set.Remove(kRepl));
  CHECK(set.all().size() == 1);
}

TEST_CASE("pauses: which one blocks, and expiry on the wall clock", "[pauses]") {
  PauseSet set;
  set.Set(Make(kRepl, "swapping disk", kNoon, kNoon + 3'600'000));
  set.Set(Make({PauseScope::Kind::kAction, "restart"}, "bad binary", kNoon, kNoon + 60'000));
  set.Set(Make({PauseScope::Kind::kCheck, "lag"}, "noisy", kNoon, 0));
  const std::vector<std::string> repl = {"db", "replication"}, none;

  // A group pause stops only that group's actions.
  CHECK(set.Blocking("failover", repl, "", kNoon)->scope == kRepl);
  CHECK(set.Blocking("failover", none, "", kNoon) == nullptr);
  // The action's own pause ranks before its group's.
  CHECK(set.Blocking("restart", repl, "", kNoon)->scope.kind == PauseScope::Kind::kAction);
  // A check's pause stops what that check fires, nothing else.
  CHECK(set.Blocking("notify", none, "lag", kNoon)->reason == "noisy");
  CHECK(set.Blocking("notify", none, "other", kNoon) == nullptr);

  // At its expiry a pause blocks nothing, before anything removed it.
  CHECK(set.Blocking("restart", none, "", kNoon + 59'999) != nullptr);
  CHECK(set.Blocking("restart", none, "", kNoon + 60'000) == nullptr);
  CHECK(set.Blocking("restart", repl, "", kNoon + 60'000)->scope == kRepl);

  auto gone = set.TakeExpired(kNoon + 60'000);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].reason == "bad binary");
  CHECK(set.all().size() == 2);
  CHECK(set.TakeExpired(kNoon + 3'600'000).size() == 1);
  // No expiry: never taken.
  CHECK(set.TakeExpired(kNoon + 365LL * 24 * 3'600'000).empty());
  CHECK(set.all().size() == 1);
  CHECK_FALSE(set.NextExpiry());
}

TEST_CASE("pauses: the host pause blocks first; the longer of two of a kind is named",
          "[pauses]") {
  PauseSet set;
  set.Set(Make({PauseScope::Kind::kGroup, "a"}, "short", kNoon, kNoon + 1000));
  set.Set(Make({PauseScope::Kind::kGroup, "b"}, "long", kNoon, kNoon + 9000));
  CHECK(set.Blocking("x", {"a", "b"}, "", kNoon)->reason == "long");
  set.Set(Make({PauseScope::Kind::kGroup, "c"}, "forever", kNoon, 0));
  CHECK(set.Blocking("x", {"a", "b", "c"}, "", kNoon)->reason == "forever");
  set.Set(Make(kHost, "host", kNoon, kNoon + 10));
  CHECK(set.Blocking("x", {"a", "b", "c"}, "", kNoon)->reason == "host");
}

TEST_CASE("pauses: what the guard says names the pause", "[pauses]") {
  CHECK(DescribeBlock(Make(kRepl, "swapping disk", kNoon, kNoon + 3'600'000), kNoon) ==
        "paused (group replication, until 14:00 UTC): swapping disk");
  CHECK(DescribeBlock(Make(kHost, "disk", kNoon, 0), kNoon) == "paused (host, no expiry): disk");
  CHECK(DescribeBlock(Make({PauseScope::Kind::kAction, "fix"}, "r", kNoon, kNoon + 2 * 86'400'000 + 5000),
                      kNoon) == "paused (action fix, until 2026-12-09 13:00:05 UTC): r");
}

TEST_CASE("pauses: --until", "[pauses]") {
  CHECK(ParseUntil("14:00", kNoon).value() == kNoon + 3'600'000);
  // A time of day already past today is tomorrow's.
  CHECK(ParseUntil("12:30", kNoon).value() == kNoon + 23 * 3'600'000 + 1'800'000);
  CHECK(ParseUntil("2026-12-07 14:00", kNoon).value() == kNoon + 3'600'000);
  CHECK(ParseUntil("2026-12-07T14:00:30Z", kNoon).value() == kNoon + 3'630'000);
  for (const char* bad : {"", "14", "1400", "25:00", "14:60", "tomorrow", "2026-02-30 10:00",
                          "14:00Z", "2026-12-07", "2026-12-07 14:00 UTC"}) {
    INFO(bad);
    auto r = ParseUntil(bad, kNoon);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("is not a time"));
  }
  auto past = ParseUntil("2026-12-07 12:00", kNoon);
  REQUIRE_FALSE(past.ok());
  CHECK_THAT(past.error(), Catch::Contains("has already passed"));
}

TEST_CASE("guard: a pause with an expiry lets the action through once it has passed",
          "[pauses][guard]") {
  FakeTime t;
  Guard g(nullptr, t);
  g.SetGroups({{"failover", {"replication"}}, {"job:rebuild", {"replication"}}});
  g.pauses().Set(Make(kRepl, "swapping disk", t.WallMs(), t.WallMs() + 3000));
  GuardDecision d = AskGuard(g, ExecAction("failover"));
  CHECK(d.reason == "paused");
  CHECK_THAT(d.detail, Catch::StartsWith("paused (group replication, until "));
  CHECK_THAT(d.detail, Catch::EndsWith("): swapping disk"));
  CHECK(AskGuard(g, ExecAction("job:rebuild")).reason == "paused");
  CHECK(AskGuard(g, ExecAction("restart")).allowed);  // not in the group
  // A job's own pause names the job, whose steps ask as "job:NAME".
  g.pauses().Set(Make({PauseScope::Kind::kAction, "deploy"}, "hold it", t.WallMs(), 0));
  CHECK(AskGuard(g, ExecAction("job:deploy")).reason == "paused");
  CHECK(AskGuard(g, ExecAction("deploy2")).allowed);
  g.pauses().Remove({PauseScope::Kind::kAction, "deploy"});
  t.Advance(2999ms);
  CHECK(AskGuard(g, ExecAction("failover")).reason == "paused");
  t.Advance(1ms);
  CHECK(AskGuard(g, ExecAction("failover")).allowed);  // expired, though still in the set
  CHECK(g.pauses().all().size() == 1);
  // With a listener, the guard hands the expired pause over before it answers.
  std::vector<Pause> heard;
  g.SetOnExpired([&](std::vector<Pause> gone) { heard = std::move(gone); });
  CHECK(AskGuard(g, ExecAction("failover")).allowed);
  REQUIRE(heard.size() == 1);
  CHECK(heard[0].reason == "swapping disk");
  CHECK(g.pauses().empty());

  // A check's pause: the actions it fires, not the same action fired otherwise.
  g.pauses().Set(Make({PauseScope::Kind::kCheck, "lag"}, "noisy", t.WallMs(), 0));
  CHECK(AskGuard(g, ExecAction("restart"), "lag").reason == "paused");
  CHECK(AskGuard(g, ExecAction("restart"), "").allowed);
  CHECK(g.host_pause() == nullptr);
  g.SetPaused(true, "all");
  REQUIRE(g.host_pause() != nullptr);
  CHECK(AskGuard(g, ExecAction("restart")).detail == "paused (host, no expiry): all");
}

TEST_CASE("pauses: a maintenance window is open from each firing for its length",
          "[pauses][maintenance]") {
  // Minutes only: the same in every zone whose offset is whole quarter hours.
  auto every10 = ParseCron("*/10 * * * *");
  REQUIRE(every10.ok());
  const Duration hold(5 * 60'000);
  // kNoon is 13:00:00 UTC, a firing.
  auto at = [&](std::int64_t ms) { return WindowAt(*every10, hold, ms); };
  REQUIRE(at(kNoon));
  CHECK(at(kNoon)->start_ms == kNoon);
  CHECK(at(kNoon)->end_ms == kNoon + 300'000);
  CHECK(at(kNoon + 299'999)->start_ms == kNoon);
  CHECK_FALSE(at(kNoon + 300'000));        // closed at its end
  CHECK_FALSE(at(kNoon - 1));              // 12:59:59.999: the 12:50 window closed at 12:55
  CHECK(at(kNoon + 600'000)->start_ms == kNoon + 600'000);
  // A schedule firing more often than the window lasts keeps it open; the
  // latest firing decides its end.
  auto every_minute = ParseCron("* * * * *");
  REQUIRE(every_minute.ok());
  auto w = WindowAt(*every_minute, Duration(90'000), kNoon + 30'000);
  REQUIRE(w);
  CHECK(w->start_ms == kNoon);
  CHECK(w->end_ms == kNoon + 90'000);
  CHECK_FALSE(WindowAt(*every10, Duration(0), kNoon));
}

TEST_CASE("pauses: a window's pause sits beside the operator's of the same scope",
          "[pauses][maintenance]") {
  PauseSet set;
  Pause op = Make(kHost, "disk", kNoon, 0);
  Pause win = Make(kHost, "weekly backup", kNoon, kNoon + 60'000);
  win.window = "backup";
  set.Set(op);
  CHECK_FALSE(set.Set(win));
  CHECK(set.all().size() == 2);
  CHECK(set.Find(kHost)->reason == "disk");
  CHECK(set.FindWindow("backup")->reason == "weekly backup");
  CHECK(DescribeBlock(win, kNoon) ==
        "paused (maintenance backup, host, until 13:01 UTC): weekly backup");
  CHECK(set.Remove(kHost)->reason == "disk");   // wardenctl unpause: the operator's only
  CHECK(set.FindWindow("backup") != nullptr);
  CHECK(set.Remove(kHost, "backup"));
  CHECK(set.empty());
}

TEST_CASE("guard: overlapping pauses block in turn until the last one has passed",
          "[pauses][guard]") {
  // The action's own pause (2 s), a check's (5 s, for what that check
  // fires) and the action's group's (8 s), all at once: as each expires
  // the next one names the block (action before check before group), and
  // the action goes through once none is left, with no command between.
  FakeTime t;
  Guard g(nullptr, t);
  g.SetGroups({{"failover", {"replication"}}});
  const std::int64_t start = t.WallMs();
  g.pauses().Set(Make({PauseScope::Kind::kAction, "failover"}, "own", start, start + 2000));
  g.pauses().Set(Make({PauseScope::Kind::kCheck, "lag"}, "check", start, start + 5000));
  g.pauses().Set(Make(kRepl, "group", start, start + 8000));
  std::vector<std::string> ended;
  g.SetOnExpired([&](std::vector<Pause> gone) {
    for (const auto& p : gone) ended.push_back(p.reason);
  });
  // What blocks `failover` fired by `check`, `at` ms after the start.
  auto blocking = [&](std::int64_t at, const std::string& check = "lag") {
    t.Advance(std::chrono::milliseconds(start + at - t.WallMs()));
    GuardDecision d = AskGuard(g, ExecAction("failover"), check);
    if (d.allowed) return std::string("allowed");
    return d.detail.substr(d.detail.rfind(": ") + 2);
  };
  CHECK(blocking(0) == "own");
  CHECK(blocking(1999) == "own");
  CHECK(blocking(2000) == "check");
  CHECK(ended == std::vector<std::string>{"own"});
  CHECK(blocking(2000, "") == "group");   // fired otherwise: the check's pause is not its
  CHECK(blocking(4999) == "check");
  CHECK(blocking(5000) == "group");
  CHECK(blocking(7999) == "group");
  CHECK(ended == std::vector<std::string>{"own", "check"});
  CHECK(blocking(8000) == "allowed");
  CHECK(ended == std::vector<std::string>{"own", "check", "group"});
  CHECK(g.pauses().empty());
}
