#include "daemon/engine/guard.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>

#include "tests/support/fake_time.h"
#include "tests/support/guard_ask.h"

using namespace warden;
using namespace std::chrono_literals;
using warden::testing::AskGuard;
using warden::testing::ExecAction;
using warden::testing::FakeTime;

namespace {

// A run the guard allowed, from start to end on the fake clock.
void RunFor(Guard& g, FakeTime& t, const ActionCommon& a, std::chrono::seconds took) {
  REQUIRE(AskGuard(g, a).allowed);
  g.RecordStart(a, t.Now());
  CHECK(AskGuard(g, a).reason == "running");
  t.Advance(took);
  g.RecordEnd(a.name, t.Now());
}

}  // namespace

TEST_CASE("guard: the cooldown counts from the end of the last run", "[guard]") {
  FakeTime t;
  Guard g(nullptr, t);
  ActionCommon a = ExecAction("restart");
  a.cooldown = Duration(10min);
  RunFor(g, t, a, 5min);   // a long run: the cooldown starts when it ends
  GuardDecision d = AskGuard(g, a);
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == "cooldown");
  CHECK(d.detail == "cooldown 10m: 10m left");
  t.Advance(9min + 59s);
  CHECK(AskGuard(g, a).detail == "cooldown 10m: 1s left");
  t.Advance(1s);
  CHECK(AskGuard(g, a).allowed);
}

TEST_CASE("guard: a budget is a sliding window of starts", "[guard]") {
  FakeTime t;
  Guard g(nullptr, t);
  ActionCommon a = ExecAction("kill_sleepers");
  a.budget = Budget{3, Duration(1h)};
  RunFor(g, t, a, 1s);            // at 0
  t.Advance(20min);
  RunFor(g, t, a, 1s);            // at 20m
  t.Advance(20min);
  RunFor(g, t, a, 1s);            // at 40m
  GuardDecision d = AskGuard(g, a);  // at 40m03s: three in the last hour
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == "budget");
  CHECK(d.detail == "budget 3 per 1h spent: next place in 19m57s left");
  t.Advance(19min + 56s);
  CHECK(AskGuard(g, a).reason == "budget");
  t.Advance(1s);                  // the first start is an hour old: out of the window
  CHECK(AskGuard(g, a).allowed);
  RunFor(g, t, a, 1s);
  CHECK(AskGuard(g, a).reason == "budget");  // 20m, 40m and 60m in the window now
}

TEST_CASE("guard: host switches come before the action's own limits", "[guard]") {
  FakeTime t;
  Guard g(nullptr, t);
  ActionCommon a = ExecAction("restart");
  a.cooldown = Duration(1h);
  RunFor(g, t, a, 1s);
  g.SetHalted(true, "job upgrade failed");
  CHECK(AskGuard(g, a).reason == "halted");
  g.SetPaused(true, "disk swap");
  GuardDecision d = AskGuard(g, a);
  CHECK(d.reason == "paused");
  CHECK(d.detail == "paused (host, no expiry): disk swap");
  g.SetPaused(false, "");
  g.SetHalted(false, "");
  CHECK(AskGuard(g, a).reason == "cooldown");
  a.dry_run = true;
  t.Advance(1h);
  CHECK(AskGuard(g, a).reason == "dry_run");
}
