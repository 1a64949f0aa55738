// Executor: the guard's two depths (types that inform pass only its local
// part) and the resolving run after a recovery, on a private loop with an
// action whose runs the test finishes by hand.
#include "daemon/engine/executor.h"

#include <ev.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "daemon/engine/events.h"
#include "daemon/engine/guard.h"
#include "tests/support/temp_dir.h"

using namespace warden;

namespace {

class ManualAction : public Action {
 public:
  void Run(Runtime&, const ActionCommon&, const Trigger& trigger, Done done) override {
    triggers.push_back(trigger);
    pending.push_back(std::move(done));
  }
  void FinishAll() {
    auto all = std::move(pending);
    pending.clear();
    for (auto& d : all) {
      ActionOutcome ok;
      ok.ok = true;
      d(std::move(ok));
    }
  }
  std::vector<Trigger> triggers;
  std::vector<Done> pending;
};

std::unique_ptr<Action> MakeNothing(OptionReader&, const ActionCommon&) { return nullptr; }

const ActionType kInforms{"tell", "informs and resolves", /*guarded=*/true, false, {}, "",
                          &MakeNothing, /*informs=*/true, /*resolves=*/true};
const ActionType kChanges{"change", "changes something", /*guarded=*/true, false, {}, "",
                          &MakeNothing};

struct Rig {
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  warden::testing::TempDir dir;
  EventLog events;
  Runtime rt;
  Guard guard{nullptr};
  std::shared_ptr<ManualAction> tell = std::make_shared<ManualAction>();
  std::shared_ptr<ManualAction> change = std::make_shared<ManualAction>();
  std::shared_ptr<Config> config = std::make_shared<Config>();
  std::unique_ptr<Executor> executor;

  Rig() {
    REQUIRE(events.Open(dir / "events.jsonl", dir.path(), "test").ok());
    rt.loop = loop;
    rt.host = "test";
    executor = std::make_unique<Executor>(rt, guard, events);
    ActionConfig a;
    a.common.name = "tell";
    a.common.type = "tell";
    a.type = &kInforms;
    a.impl = tell;
    config->actions.push_back(a);
    a.common.name = "change";
    a.common.type = "change";
    a.type = &kChanges;
    a.impl = change;
    config->actions.push_back(a);
    CheckConfig c;
    c.common.name = "lag";
    c.on_crit = {"change", "tell"};
    config->checks.push_back(c);
    executor->SetConfig(config);
  }
  ~Rig() {
    executor.reset();
    ev_loop_destroy(loop);
  }
  void Spin() {
    for (int i = 0; i < 5; ++i) ev_run(loop, EVRUN_NOWAIT);
  }
  void State(const std::string& prev, const std::string& state, const std::string& value,
             const std::string& threshold = "") {
    events.Emit("check.state", {{"check", "lag"}, {"type", "manual"}, {"state", state},
                                {"prev_state", prev}, {"value", value},
                                {"threshold", threshold}, {"error", ""}});
  }
  std::vector<nlohmann::json> Events(const std::string& name) {
    std::vector<nlohmann::json> out;
    std::ifstream in(dir / "events.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      auto e = nlohmann::json::parse(line);
      if (e["event"] == name) out.push_back(e);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("executor: a paused host blocks what changes, not what informs", "[executor]") {
  Rig r;
  r.guard.SetPaused(true, "maintenance");
  r.State("ok", "crit", "712", "> 600");
  r.executor->FireAll(r.config, {"change", "tell"}, Trigger{"check", "lag", "crit", "712"});
  r.Spin();
  CHECK(r.change->triggers.empty());
  REQUIRE(r.tell->triggers.size() == 1);
  CHECK(r.tell->triggers[0].threshold == "> 600");   // from the check.state event
  CHECK_FALSE(r.tell->triggers[0].resolve);
  auto blocked = r.Events("action.blocked");
  REQUIRE(blocked.size() == 1);
  CHECK(blocked[0]["action"] == "change");
  CHECK(blocked[0]["reason"] == "paused");
  auto start = r.Events("action.start");
  REQUIRE(start.size() == 1);
  CHECK(start[0]["informs"] == true);
  CHECK(start[0]["note"].get<std::string>().find("paused host") != std::string::npos);

  // Its own rules still hold: in flight, a second run is blocked (running).
  r.executor->FireAll(r.config, {"tell"}, Trigger{"check", "lag", "crit", "712"});
  REQUIRE(r.Events("action.blocked").size() == 2);
  CHECK(r.Events("action.blocked")[1]["reason"] == "running");
  r.tell->FinishAll();
}

TEST_CASE("executor: cooldown and budget apply to what informs", "[executor]") {
  Rig r;
  r.config->actions[0].common.budget = Budget{1, Duration(3'600'000)};
  r.executor->SetConfig(r.config);
  r.executor->FireAll(r.config, {"tell"}, Trigger{"check", "lag", "crit", "712"});
  r.tell->FinishAll();
  r.executor->FireAll(r.config, {"tell"}, Trigger{"check", "lag", "crit", "712"});
  auto blocked = r.Events("action.blocked");
  REQUIRE(blocked.size() == 1);
  CHECK(blocked[0]["reason"] == "budget");
  CHECK(r.tell->triggers.size() == 1);
}

TEST_CASE("executor: a recovery resolves, once the report in flight has ended", "[executor]") {
  Rig r;
  r.config->actions[0].common.cooldown = Duration(3'600'000);
  r.executor->SetConfig(r.config);
  r.State("ok", "crit", "712", "> 600");
  r.executor->FireAll(r.config, {"tell"}, Trigger{"check", "lag", "crit", "712"});
  REQUIRE(r.tell->triggers.size() == 1);
  // Recovered while the report is still in flight: the resolve waits for it.
  r.State("crit", "ok", "3");
  r.Spin();
  CHECK(r.tell->triggers.size() == 1);
  r.tell->FinishAll();
  r.Spin();
  // Then runs, not held back by the cooldown, with state ok and no threshold.
  REQUIRE(r.tell->triggers.size() == 2);
  CHECK(r.tell->triggers[1].resolve);
  CHECK(r.tell->triggers[1].state == "ok");
  CHECK(r.tell->triggers[1].value == "3");
  CHECK(r.tell->triggers[1].threshold.empty());
  CHECK(r.change->triggers.empty());   // a type that does not resolve is not run again
  auto starts = r.Events("action.start");
  REQUIRE(starts.size() == 2);
  CHECK(starts[1]["resolve"] == true);
  CHECK(starts[1]["state"] == "ok");
  r.tell->FinishAll();
  r.Spin();
  // The check.state event comes before the resolve's action.start.
  CHECK(r.Events("check.state")[1]["seq"].get<int>() < starts[1]["seq"].get<int>());
  // The resolve counted for neither cooldown nor budget: the cooldown runs
  // from the report's end, and a new report is blocked by it.
  r.executor->FireAll(r.config, {"tell"}, Trigger{"check", "lag", "crit", "712"});
  REQUIRE(r.Events("action.blocked").size() == 1);
  CHECK(r.Events("action.blocked")[0]["reason"] == "cooldown");
}

TEST_CASE("executor: no resolve for on_recover's own, dry_run, or other transitions",
          "[executor]") {
  SECTION("named by on_recover: the scheduler runs it, the executor does not") {
    Rig r;
    r.config->checks[0].on_recover = {"tell"};
    r.State("crit", "ok", "3");
    r.Spin();
    CHECK(r.tell->triggers.empty());
  }
  SECTION("dry_run") {
    Rig r;
    r.config->actions[0].common.dry_run = true;
    r.State("crit", "ok", "3");
    r.Spin();
    CHECK(r.tell->triggers.empty());
  }
  SECTION("pending to ok, and a check that names nothing") {
    Rig r;
    r.State("pending", "ok", "3");
    r.events.Emit("check.state", {{"check", "other"}, {"state", "ok"}, {"prev_state", "crit"}});
    r.Spin();
    CHECK(r.tell->triggers.empty());
  }
  SECTION("warn, crit and error all recover") {
    for (const char* prev : {"warn", "error"}) {
      Rig r;
      r.State(prev, "ok", "3");
      r.Spin();
      REQUIRE(r.tell->triggers.size() == 1);
      CHECK(r.tell->triggers[0].resolve);
      r.tell->FinishAll();
    }
  }
}
