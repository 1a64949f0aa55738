// Scheduler::Reload / RunNow / Capture+Restore with a check whose runs the
// test finishes by hand.
#include <ev.h>

#include <catch2/catch.hpp>

#include "daemon/engine/scheduler.h"
#include "daemon/engine/state.h"
#include "tests/support/scheduler_rig.h"

using namespace warden;

namespace {

class ManualCheck : public Check {
 public:
  void Run(Runtime&, Done done) override { pending.push_back(std::move(done)); }
  std::vector<Done> pending;
};

CheckConfig MakeCheck(const std::string& name, const std::string& digest,
                      std::shared_ptr<ManualCheck> impl) {
  CheckConfig c;
  c.common.name = name;
  c.common.type = "manual";
  c.common.every = Duration(3'600'000);   // one run at start (jitter 0), then none
  c.impl = std::move(impl);
  c.digest = digest;
  auto crit = ParseThreshold("> 10");
  REQUIRE(crit.ok());
  c.rules.crit = *crit;
  return c;
}

using Rig = warden::testing::LoopRig;

std::shared_ptr<Config> OneCheck(const std::string& name, const std::string& digest,
                                 std::shared_ptr<ManualCheck> impl) {
  auto c = std::make_shared<Config>();
  c->daemon.jitter = 0;
  c->checks.push_back(MakeCheck(name, digest, std::move(impl)));
  return c;
}

}  // namespace

TEST_CASE("reload keeps an unchanged check's state and delivers its run in flight",
          "[scheduler][reload]") {
  Rig rig;
  auto old_impl = std::make_shared<ManualCheck>();
  auto old_config = OneCheck("lag", "d1", old_impl);
  std::weak_ptr<const Config> old_weak = old_config;
  rig.scheduler->Start(old_config);
  rig.Spin();
  REQUIRE(old_impl->pending.size() == 1);
  old_impl->pending[0](Measurement::Value("50"));   // crit
  old_impl->pending.clear();
  REQUIRE(rig.Get("lag").state == CheckState::kCrit);

  // A second run in flight when the reload comes.
  bool waited = false;
  REQUIRE(rig.scheduler->RunNow("lag", [&](const Measurement& m, const Verdict&) {
    waited = true;
    CHECK(m.value == "3");
  }));
  REQUIRE(old_impl->pending.size() == 1);

  auto new_impl = std::make_shared<ManualCheck>();
  auto next = OneCheck("lag", "d1", new_impl);            // unchanged
  next->checks.push_back(MakeCheck("fresh", "d9", new_impl));
  rig.scheduler->Reload(next);
  old_config.reset();
  CHECK_FALSE(old_weak.expired());   // the run in flight keeps its snapshot alive
  auto lag = rig.Get("lag");
  CHECK(lag.state == CheckState::kCrit);   // state kept
  CHECK(lag.in_flight);
  CHECK(lag.runs == 2);
  CHECK(rig.Get("fresh").state == CheckState::kPending);

  // The old run's result lands in the new entry.
  old_impl->pending[0](Measurement::Value("3"));
  CHECK(waited);
  lag = rig.Get("lag");
  CHECK_FALSE(lag.in_flight);
  CHECK(lag.value == "3");
  CHECK(lag.state == CheckState::kOk);
}

TEST_CASE("reload resets a changed check", "[scheduler][reload]") {
  Rig rig;
  auto impl = std::make_shared<ManualCheck>();
  rig.scheduler->Start(OneCheck("lag", "d1", impl));
  rig.Spin();
  REQUIRE(impl->pending.size() == 1);
  impl->pending[0](Measurement::Value("50"));
  impl->pending.clear();
  REQUIRE(rig.Get("lag").state == CheckState::kCrit);
  rig.scheduler->Reload(OneCheck("lag", "d2", impl));   // definition changed
  CHECK(rig.Get("lag").state == CheckState::kPending);
  CHECK(rig.Get("lag").runs == 0);
}

TEST_CASE("check states are captured and restored by digest, bad states only",
          "[scheduler][state]") {
  PersistedState saved;
  {
    Rig rig;
    auto impl = std::make_shared<ManualCheck>();
    auto c = OneCheck("lag", "d1", impl);
    c->checks.push_back(MakeCheck("okay", "d2", impl));
    rig.scheduler->Start(c);
    rig.Spin();
    REQUIRE(impl->pending.size() == 2);
    Measurement m = Measurement::Value("50");
    m.detail = "CRITICAL: lag 50 s";   // a nagios plugin's text
    m.unit = "s";
    impl->pending[0](m);
    impl->pending[1](Measurement::Value("1"));
    rig.scheduler->Capture(saved);
  }
  REQUIRE(saved.checks.at("lag").state == "crit");
  CHECK(saved.checks.at("lag").detail == "CRITICAL: lag 50 s");
  CHECK(saved.checks.at("lag").unit == "s");
  REQUIRE(saved.checks.at("okay").state == "ok");
  CHECK(saved.checks.at("lag").runs == 1);

  Rig rig;
  auto impl = std::make_shared<ManualCheck>();
  auto c = OneCheck("lag", "d1", impl);
  c->checks.push_back(MakeCheck("okay", "d2", impl));
  c->checks.push_back(MakeCheck("changed", "new", impl));
  saved.checks["changed"] = saved.checks.at("lag");   // a crit state under another digest
  rig.scheduler->Start(c);
  rig.scheduler->Restore(saved);
  CHECK(rig.Get("lag").state == CheckState::kCrit);
  CHECK(rig.Get("lag").value == "50");
  // Its detail and unit too: status shows them before the next run.
  CHECK(rig.Get("lag").detail == "CRITICAL: lag 50 s");
  CHECK(rig.Get("lag").unit == "s");
  CHECK(rig.Get("lag").runs == 1);
  CHECK(rig.Get("okay").state == CheckState::kPending);     // ok is measured afresh
  CHECK(rig.Get("changed").state == CheckState::kPending);  // other definition
  // Still crit: no check.state event, so no hook fires again.
  rig.Spin();
  REQUIRE(impl->pending.size() == 3);
  auto before = rig.events.last_seq();
  impl->pending[0](Measurement::Value("60"));
  CHECK(rig.events.last_seq() == before);
  CHECK(rig.Get("lag").state == CheckState::kCrit);
}

namespace {

// Answers every run at once, from inside Run (the scheduler is then still
// walking the checks due in that pass).
class CountingCheck : public Check {
 public:
  void Run(Runtime&, Done done) override {
    ++runs;
    done(Measurement::Value("1"));
  }
  int runs = 0;
};

CheckConfig Every(const std::string& name, int ms, std::shared_ptr<Check> impl) {
  CheckConfig c;
  c.common.name = name;
  c.common.type = "counting";
  c.common.every = Duration(ms);
  c.impl = std::move(impl);
  c.digest = name + std::to_string(ms);
  return c;
}

// Runs the loop for `seconds` of its own time.
void RunFor(struct ev_loop* loop, double seconds) {
  ev_timer stop;
  ev_timer_init(&stop, [](struct ev_loop* l, ev_timer*, int) { ev_break(l, EVBREAK_ONE); },
                seconds, 0);
  ev_timer_start(loop, &stop);
  ev_run(loop, 0);
  ev_timer_stop(loop, &stop);
}

}  // namespace

TEST_CASE("each check keeps its cadence; checks due together run in one pass",
          "[scheduler]") {
  Rig rig;
  auto a = std::make_shared<CountingCheck>();
  auto b = std::make_shared<CountingCheck>();
  auto slow = std::make_shared<CountingCheck>();
  auto config = std::make_shared<Config>();
  config->daemon.jitter = 0;   // all due at once at the start
  config->checks.push_back(Every("a", 100, a));
  config->checks.push_back(Every("b", 100, b));
  config->checks.push_back(Every("slow", 300, slow));
  rig.scheduler->Start(config);
  RunFor(rig.loop, 1.05);
  // Runs at 0, 100, ..., 1000 ms (11) and 0, 300, 600, 900 ms (4); a
  // loaded machine may lose a few to lateness, never gain any.
  INFO("a " << a->runs << " b " << b->runs << " slow " << slow->runs);
  CHECK(a->runs >= 6);
  CHECK(a->runs <= 11);
  CHECK(b->runs == a->runs);   // due at the same instants: always run together
  CHECK(slow->runs >= 2);
  CHECK(slow->runs <= 4);
  CHECK(rig.Get("a").runs == static_cast<std::uint64_t>(a->runs));
  CHECK(rig.Get("slow").state == CheckState::kOk);

  // A reload keeps an unchanged check's cadence and starts a new one.
  auto c = std::make_shared<CountingCheck>();
  auto next = std::make_shared<Config>();
  next->daemon.jitter = 0;
  next->checks.push_back(Every("a", 100, a));
  next->checks.push_back(Every("b", 100, b));
  next->checks.push_back(Every("slow", 300, slow));
  next->checks.push_back(Every("c", 100, c));
  const int a_before = a->runs;
  rig.scheduler->Reload(next);
  CHECK(a->runs == a_before);   // not run again by the reload itself
  RunFor(rig.loop, 0.55);
  CHECK(a->runs - a_before >= 3);
  CHECK(a->runs - a_before <= 6);
  CHECK(c->runs >= 3);
  CHECK(c->runs <= 6);

  // Stopped: nothing runs any more.
  rig.scheduler->Stop();
  const int a_stopped = a->runs, c_stopped = c->runs, slow_stopped = slow->runs;
  RunFor(rig.loop, 0.35);
  CHECK(a->runs == a_stopped);
  CHECK(c->runs == c_stopped);
  CHECK(slow->runs == slow_stopped);
}

TEST_CASE("a run that ends after its scheduler is gone changes nothing", "[scheduler]") {
  Rig rig;
  auto impl = std::make_shared<ManualCheck>();
  rig.scheduler->Start(OneCheck("lag", "d1", impl));
  rig.Spin();
  REQUIRE(impl->pending.size() == 1);
  bool waited = false;
  REQUIRE(rig.scheduler->RunNow("lag", [&](const Measurement&, const Verdict&) { waited = true; }));
  rig.scheduler.reset();
  // The completion still points at the check's entry (ASan would see a use
  // after free), which no longer has a scheduler to report to.
  impl->pending[0](Measurement::Value("50"));
  CHECK_FALSE(waited);
}

TEST_CASE("Start again while a run is in flight ends that run as retired", "[scheduler]") {
  Rig rig;
  auto first = std::make_shared<ManualCheck>();
  rig.scheduler->Start(OneCheck("lag", "d1", first));
  rig.Spin();
  REQUIRE(first->pending.size() == 1);
  int waited = 0;
  REQUIRE(rig.scheduler->RunNow("lag", [&](const Measurement& m, const Verdict& v) {
    ++waited;
    CHECK(m.value == "50");
    CHECK_FALSE(v.changed);   // reported to no entry: the new one starts afresh
  }));
  auto second = std::make_shared<ManualCheck>();
  rig.scheduler->Start(OneCheck("lag", "d1", second));
  first->pending[0](Measurement::Value("50"));
  CHECK(waited == 1);
  CHECK(rig.Get("lag").state == CheckState::kPending);
  CHECK(rig.Get("lag").runs == 0);
  rig.Spin();
  REQUIRE(second->pending.size() == 1);
  second->pending[0](Measurement::Value("50"));
  CHECK(rig.Get("lag").state == CheckState::kCrit);
}

TEST_CASE("a result's own time is its run's time and its state's since", "[scheduler]") {
  Rig rig;
  auto impl = std::make_shared<ManualCheck>();
  rig.scheduler->Start(OneCheck("lag", "d1", impl));
  rig.Spin();
  REQUIRE(impl->pending.size() == 1);
  Measurement m = Measurement::Value("50");
  m.at = std::chrono::steady_clock::now() - std::chrono::seconds(3);   // a snapshot's
  impl->pending[0](m);
  auto lag = rig.Get("lag");
  CHECK(lag.state == CheckState::kCrit);
  REQUIRE(lag.last_run);
  CHECK(*lag.last_run == m.at);
  CHECK(lag.since == m.at);

  // Without one, the time it reached the scheduler.
  impl->pending.clear();
  const auto before = std::chrono::steady_clock::now();
  REQUIRE(rig.scheduler->RunNow("lag", [](const Measurement&, const Verdict&) {}));
  REQUIRE(impl->pending.size() == 1);
  impl->pending[0](Measurement::Value("3"));
  lag = rig.Get("lag");
  REQUIRE(lag.last_run);
  CHECK(*lag.last_run >= before);
}
