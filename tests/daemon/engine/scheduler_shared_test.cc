// The scheduler's shared reads through the generic SharedSource seam: one
// read per source and scope for the checks due together, for the union of
// their names, kept from tick to tick; and the cadence grid that makes
// such checks due together whatever `jitter` says.
#include <ev.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "daemon/engine/scheduler.h"
#include "tests/support/fake_time.h"
#include "tests/support/scheduler_rig.h"

using namespace warden;
using namespace std::chrono_literals;

namespace {

// A source whose snapshot has, for each name asked for, the value the
// test set (names it did not set are absent), and that keeps what it was
// asked: the scope and the names of every read.
class TableSource final : public SharedSource {
 public:
  struct Asked {
    std::string scope;
    std::shared_ptr<const NameSet> names;
  };
  void Read(Runtime&, const std::string& scope, std::shared_ptr<const NameSet> names,
            Done done) const override {
    asked.push_back({scope, names});
    auto map = std::make_shared<NamedValues>();
    if (names) {
      for (const auto& n : names->names) {
        auto it = values.find(n);
        if (it != values.end()) map->Add(n, it->second);
      }
    }
    done(std::shared_ptr<const NamedValues>(std::move(map)));
  }
  std::map<std::string, std::string> values;
  mutable std::vector<Asked> asked;
};

// A check that reads one name of a TableSource on a scope.
class TableCheck final : public Check {
 public:
  TableCheck(const TableSource& source, std::string scope, std::string name)
      : source_(source), scope_(std::move(scope)), name_(NameSet::Of({std::move(name)})->names[0]) {}
  void Run(Runtime& rt, Done done) override {
    source_.Read(rt, scope_, NameSet::Of({name_}), [this, done](const Snapshot& s) {
      done(MeasureSnapshot(s, [this](const NamedValues& m, Measurement& otherwise) {
        return ReadFrom(m, otherwise);
      }));
    });
  }
  SharedRead shared_read() const override {
    return {&source_, &scope_, std::span<const std::string>(&name_, 1), nullptr};
  }
  std::optional<std::string_view> ReadFrom(const NamedValues& m, Measurement& otherwise) override {
    auto v = m.get(name_);
    if (!v) otherwise = Measurement::Error("no " + name_);
    return v;
  }

 private:
  const TableSource& source_;
  const std::string scope_;
  const std::string name_;
};

struct LoopRuntime {
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  Runtime rt;
  testing::FakeTime time;
  LoopRuntime() {
    rt.loop = loop;
    rt.time = &time;
  }
  ~LoopRuntime() { ev_loop_destroy(loop); }
};

struct Rig : LoopRuntime, testing::SchedulerRig {
  Rig() : SchedulerRig(rt) {}
  // Moves the clock on by `d` and lets the wheel's timer (real) fire.
  void Advance(std::chrono::milliseconds d) {
    time.Advance(d);
    for (int i = 0; i < 200; ++i) {
      ev_run(loop, EVRUN_NOWAIT);
      bool idle = true;
      for (const auto& s : scheduler->Status()) idle = idle && !s.in_flight;
      if (idle && i > 2) return;
    }
  }
  // Runs the loop until every check has run `n` times (the real timer
  // fires within a second of the fake clock's due time).
  bool AllRan(std::uint64_t n) {
    for (int i = 0; i < 3000; ++i) {
      bool done = true;
      for (const auto& s : scheduler->Status()) done = done && s.runs >= n && !s.in_flight;
      if (done) return true;
      ev_run(loop, EVRUN_ONCE);
    }
    return false;
  }
};

CheckConfig Make(const std::string& name, const TableSource& source, const std::string& scope,
                 const std::string& var) {
  CheckConfig c;
  c.common.name = name;
  c.common.type = "table";
  c.common.every = Duration(1000);
  c.impl = std::make_shared<TableCheck>(source, scope, var);
  c.digest = name;
  return c;
}

std::vector<std::string> Names(const TableSource::Asked& a) {
  return a.names ? a.names->names : std::vector<std::string>{};
}

}  // namespace

TEST_CASE("checks due together read one snapshot per source and scope, of the names they need",
          "[scheduler][shared]") {
  Rig rig;
  TableSource source;
  source.values = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
  auto config = std::make_shared<Config>();
  config->daemon.jitter = 0;
  config->checks.push_back(Make("a1", source, "", "a"));
  config->checks.push_back(Make("b1", source, "", "B"));
  config->checks.push_back(Make("a2", source, "", "a"));
  config->checks.push_back(Make("c_other", source, "other", "c"));
  config->checks.push_back(Make("missing", source, "", "zz"));
  rig.scheduler->Start(config);
  REQUIRE(rig.AllRan(1));

  // Two reads: scope "" for a, b (lower-cased) and zz; scope "other" for c.
  REQUIRE(source.asked.size() == 2);
  std::map<std::string, std::vector<std::string>> by_scope;
  for (const auto& a : source.asked) by_scope[a.scope] = Names(a);
  CHECK(by_scope[""] == std::vector<std::string>{"a", "b", "zz"});
  CHECK(by_scope["other"] == std::vector<std::string>{"c"});
  CHECK(rig.Get("a1").value == "1");
  CHECK(rig.Get("a2").value == "1");
  CHECK(rig.Get("b1").value == "2");
  CHECK(rig.Get("c_other").value == "3");
  CHECK(rig.Get("missing").state == CheckState::kError);
  CHECK(rig.Get("missing").error == "no zz");

  // The next tick asks for the same names with the same set: made once.
  const auto first_set = source.asked[0].names;
  rig.Advance(1000ms);
  REQUIRE(rig.AllRan(2));
  REQUIRE(source.asked.size() == 4);
  for (size_t i = 2; i < 4; ++i) {
    if (source.asked[i].scope != source.asked[0].scope) continue;
    CHECK(source.asked[i].names == first_set);
  }

  // A reload makes the set anew (the checks may have changed).
  auto next = std::make_shared<Config>(*config);
  next->checks.pop_back();   // no more "zz"
  rig.scheduler->Reload(next);
  rig.Advance(1000ms);
  REQUIRE(rig.AllRan(3));
  bool saw = false;
  for (size_t i = 4; i < source.asked.size(); ++i) {
    if (!source.asked[i].scope.empty()) continue;
    saw = true;
    CHECK(Names(source.asked[i]) == std::vector<std::string>{"a", "b"});
  }
  CHECK(saw);
}

TEST_CASE("shared-read checks share one tick of their cadence whatever the jitter, unless "
          "spread_shared_reads",
          "[scheduler][shared]") {
  constexpr int kChecks = 30;
  for (bool spread : {false, true}) {
    INFO("spread_shared_reads = " << spread);
    Rig rig;
    TableSource source;
    source.values = {{"v", "1"}};
    auto config = std::make_shared<Config>();
    config->daemon.jitter = 1.0;   // 100%: spread over the whole second
    config->daemon.spread_shared_reads = spread;
    for (int i = 0; i < kChecks; ++i) {
      config->checks.push_back(Make("c" + std::to_string(i), source, "", "v"));
    }
    rig.scheduler->Start(config);
    // The fake clock follows the real one in 100 ms steps until every
    // check has run once.
    ev_timer step;
    ev_timer_init(
        &step, [](struct ev_loop*, ev_timer* w, int) {
          static_cast<testing::FakeTime*>(w->data)->Advance(100ms);
        }, 0.1, 0.1);
    step.data = &rig.time;
    ev_timer_start(rig.loop, &step);
    REQUIRE(rig.AllRan(1));
    ev_timer_stop(rig.loop, &step);
    if (!spread) {
      // One tick, one read, for all of them.
      CHECK(source.asked.size() == 1);
    } else {
      // Spread over ten 100 ms ticks: 30 checks on one tick would be a
      // chance of 10^-29.
      CHECK(source.asked.size() > 1);
    }
  }
}
