#include "daemon/jobs/job_runner.h"

#include <ev.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/io/runtime.h"
#include "tests/support/fake_time.h"
#include "tests/support/run_loop.h"
#include "tests/support/scheduler_rig.h"

using namespace warden;
using namespace std::chrono_literals;
using nlohmann::json;
using warden::testing::FakeTime;
using warden::testing::RunUntil;
using warden::testing::SchedulerRig;

namespace {

// A step that takes `took` on the fake clock (and then does `after`): a
// job's hours pass in a test's milliseconds.
class Takes final : public Action {
 public:
  Takes(FakeTime& time, std::chrono::minutes took, std::function<void()> after)
      : time_(time), took_(took), after_(std::move(after)) {}
  void Run(Runtime&, const ActionCommon&, const Trigger&, Done done) override {
    time_.Advance(took_);
    if (after_) after_();
    ActionOutcome out;
    out.ok = true;
    done(std::move(out));
  }

 private:
  FakeTime& time_;
  const std::chrono::minutes took_;
  const std::function<void()> after_;
};

const ActionType kTakesType{"takes", "a step that takes time on the fake clock", true, false,
                            {}, "", nullptr};

// A step that fails at once, with `error`.
class Fails final : public Action {
 public:
  explicit Fails(std::string error) : error_(std::move(error)) {}
  void Run(Runtime&, const ActionCommon&, const Trigger&, Done done) override {
    ActionOutcome out;
    out.error = error_;
    done(std::move(out));
  }

 private:
  const std::string error_;
};

// A step that runs until it is terminated (then it fails, as a killed
// process does); counts its runs and the kill grace it was given.
class Hangs final : public Action {
 public:
  void Run(Runtime&, const ActionCommon&, const Trigger& trigger, Done done) override {
    ++runs;
    past_halt = trigger.past_halt;
    done_ = std::move(done);
  }
  bool Terminate(Runtime&, Duration kill_grace) override {
    if (!done_) return false;
    grace = kill_grace;
    ActionOutcome out;
    out.error = "terminated: killed by signal 15 (SIGTERM)";
    out.signal = 15;
    Done d = std::move(done_);
    done_ = nullptr;
    d(std::move(out));
    return true;
  }
  int runs = 0;
  bool past_halt = false;
  Duration grace{0};

 private:
  Done done_;
};

struct JobRig {
  FakeTime time;
  Runtime rt;
  std::unique_ptr<SchedulerRig> rig;
  std::shared_ptr<Config> config = std::make_shared<Config>();
  std::unique_ptr<JobRunner> jobs;
  std::vector<json> seen;

  JobRig() {
    rt.loop = EV_DEFAULT;
    rt.time = &time;
    rig = std::make_unique<SchedulerRig>(rt);
    rig->events.Subscribe([this](const json& e) { seen.push_back(e); });
  }
  ~JobRig() {
    jobs.reset();
    rig.reset();
  }

  void Step(const std::string& name, std::chrono::minutes took,
            std::function<void()> after = nullptr) {
    ActionConfig a;
    a.common.name = name;
    a.common.type = "takes";
    a.type = &kTakesType;
    a.impl = std::make_shared<Takes>(time, took, std::move(after));
    config->actions.push_back(std::move(a));
  }

  void Fail(const std::string& name, const std::string& error) {
    Add(name, std::make_shared<Fails>(error));
  }
  std::shared_ptr<Hangs> Hang(const std::string& name) {
    auto h = std::make_shared<Hangs>();
    Add(name, h);
    return h;
  }
  void Add(const std::string& name, std::shared_ptr<Action> impl) {
    ActionConfig a;
    a.common.name = name;
    a.common.type = "takes";
    a.type = &kTakesType;
    a.impl = std::move(impl);
    config->actions.push_back(std::move(a));
  }
  JobConfig& Job(const std::string& name, std::vector<std::string> steps,
                 const std::string& on_fail = "") {
    JobConfig j;
    j.name = name;
    j.steps = std::move(steps);
    j.on_fail = on_fail;
    config->jobs.push_back(j);
    return config->jobs.back();
  }
  void Open() {
    jobs = std::make_unique<JobRunner>(rt.loop, rig->guard, *rig->executor, *rig->scheduler,
                                       rig->events, (rig->dir / "jobs.json"), time);
    REQUIRE(jobs->Start(config).ok());
  }

  void Start(std::vector<std::string> steps, std::chrono::minutes timeout) {
    JobConfig j;
    j.name = "upgrade";
    j.steps = std::move(steps);
    j.timeout = Duration(timeout);
    config->jobs.push_back(j);
    jobs = std::make_unique<JobRunner>(rt.loop, rig->guard, *rig->executor, *rig->scheduler,
                                       rig->events, (rig->dir / "jobs.json"), time);
    REQUIRE(jobs->Start(config).ok());
    REQUIRE(jobs->Enqueue("upgrade", Trigger{"ctl", "test", "", ""}).ok);
  }
  size_t Count(const std::string& event) const {
    size_t n = 0;
    for (const auto& e : seen) n += e["event"] == event ? 1 : 0;
    return n;
  }
  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    for (const auto& e : seen) {
      const std::string name = e["event"];
      if (name.rfind("job.", 0) == 0) out.push_back(name + ":" + e.value("job", ""));
    }
    return out;
  }

  const json* Last(const std::string& event) const {
    for (auto it = seen.rbegin(); it != seen.rend(); ++it) {
      if ((*it)["event"] == event) return &*it;
    }
    return nullptr;
  }
  bool Ended() const { return Last("job.finish") || Last("job.fail"); }
};

}  // namespace

TEST_CASE("jobs: the timeout is counted on the runner's clock, at step boundaries",
          "[jobs]") {
  JobRig r;
  r.Step("drain", 6min);
  r.Step("upgrade_packages", 6min);
  r.Step("undrain", 0min);
  r.Start({"drain", "upgrade_packages", "undrain"}, 10min);
  REQUIRE(RunUntil([&] { return r.Ended(); }, 10));
  const json* fail = r.Last("job.fail");
  REQUIRE(fail);
  CHECK_THAT((*fail)["error"].get<std::string>(),
             Catch::StartsWith("job timeout 10m reached before step 3/3 (undrain)"));
  CHECK((*fail)["duration_ms"] == 12 * 60'000);   // the fake clock's, not the machine's
}

TEST_CASE("jobs: time spent paused does not count against the timeout", "[jobs]") {
  JobRig r;
  // The first step ends with the host paused: the job waits before the next.
  r.Step("drain", 6min, [&] { r.rig->guard.SetPaused(true, "swapping a disk"); });
  r.Step("upgrade_packages", 3min);
  r.Start({"drain", "upgrade_packages"}, 10min);
  REQUIRE(RunUntil([&] { return r.Last("job.paused") != nullptr; }, 10));
  CHECK((*r.Last("job.paused"))["reason"] == "paused");
  r.time.Advance(1h);   // paused for an hour
  r.rig->guard.SetPaused(false, "");
  REQUIRE(RunUntil([&] { return r.Ended(); }, 10));   // the runner asks again each second
  const json* finish = r.Last("job.finish");
  REQUIRE(finish);   // 6m + 3m active of a 10m timeout; with the hour it would be 69m
  CHECK((*finish)["duration_ms"] == 69 * 60'000);
}

TEST_CASE("jobs: on_fail runs the rollback job past the halt, then the queue stays halted",
          "[jobs][rollback]") {
  JobRig r;
  r.Step("drain", 1min);
  r.Fail("upgrade_packages", "exit status 1");
  r.Step("downgrade_packages", 2min);
  r.Step("undrain", 0min);
  r.Step("other_step", 0min);
  r.Job("upgrade", {"drain", "upgrade_packages", "undrain"}, "downgrade");
  r.Job("downgrade", {"downgrade_packages", "undrain"});
  r.Job("other", {"other_step"});
  r.Open();
  REQUIRE(r.jobs->Enqueue("upgrade", Trigger{"ctl", "test", "", ""}).ok);
  REQUIRE(r.jobs->Enqueue("other", Trigger{"ctl", "test", "", ""}).ok);
  REQUIRE(RunUntil([&] { return r.Last("job.rollback.finish") != nullptr; }, 10));
  const json* fail = r.Last("job.fail");
  REQUIRE(fail);
  CHECK((*fail)["step"] == "upgrade_packages");
  const json* start = r.Last("job.rollback.start");
  REQUIRE(start);
  CHECK((*start)["job"] == "downgrade");
  CHECK((*start)["rollback_of"] == "upgrade");
  CHECK((*start)["cause"] == "fail");
  CHECK((*start)["step"] == "upgrade_packages");
  CHECK((*start)["error"] == "exit status 1");
  const json* finish = r.Last("job.rollback.finish");
  CHECK((*finish)["result"] == "ok");
  CHECK((*finish)["rollback_of"] == "upgrade");
  CHECK((*finish)["duration_ms"] == 2 * 60'000);
  // The failure, then the rollback: no job.finish of it, nothing else ran.
  CHECK(r.Count("job.finish") == 0);
  CHECK(r.Last("job.start")->value("job", "") == "upgrade");
  CHECK(r.jobs->halted());
  json status = r.jobs->Status();
  CHECK_THAT(status["halt"]["reason"].get<std::string>(),
             Catch::StartsWith("job upgrade failed at step 2/3 (upgrade_packages)"));
  CHECK(status["halt"]["rollback"] ==
        json({{"job", "downgrade"}, {"result", "ok"}, {"error", ""}}));
  CHECK(status["queue"].size() == 1);   // other waits for wardenctl resume
}

TEST_CASE("jobs: a rollback that fails is job.rollback.fail, and the halt says so",
          "[jobs][rollback]") {
  JobRig r;
  r.Fail("upgrade_packages", "exit status 1");
  r.Fail("downgrade_packages", "no such version");
  r.Job("upgrade", {"upgrade_packages"}, "downgrade");
  r.Job("downgrade", {"downgrade_packages"});
  r.Open();
  REQUIRE(r.jobs->Enqueue("upgrade", Trigger{"ctl", "test", "", ""}).ok);
  REQUIRE(RunUntil([&] { return r.Last("job.rollback.fail") != nullptr; }, 10));
  const json* f = r.Last("job.rollback.fail");
  CHECK((*f)["job"] == "downgrade");
  CHECK((*f)["rollback_of"] == "upgrade");
  CHECK((*f)["result"] == "fail");
  CHECK((*f)["step"] == "downgrade_packages");
  CHECK((*f)["error"] == "no such version");
  CHECK(r.Count("job.rollback.finish") == 0);
  CHECK(r.Count("job.fail") == 1);   // the upgrade's; the rollback's is its own event
  json status = r.jobs->Status();
  CHECK(status["halt"]["rollback"]["result"] == "fail");
  CHECK(status["halt"]["rollback"]["error"] == "no such version");
}

TEST_CASE("jobs: resume waits for a running rollback", "[jobs][rollback]") {
  JobRig r;
  r.Fail("upgrade_packages", "exit status 1");
  auto hang = r.Hang("downgrade_packages");
  r.Job("upgrade", {"upgrade_packages"}, "downgrade");
  r.Job("downgrade", {"downgrade_packages"});
  r.Open();
  REQUIRE(r.jobs->Enqueue("upgrade", Trigger{"ctl", "test", "", ""}).ok);
  REQUIRE(RunUntil([&] { return hang->runs == 1; }, 10));
  CHECK(hang->past_halt);   // the step was let through the halt the failure set
  CHECK(r.jobs->Status()["running"]["rollback_of"] == "upgrade");
  json answer;
  r.jobs->Resume("test", [&](json j) { answer = std::move(j); });
  CHECK(answer["ok"] == false);
  CHECK_THAT(answer["error"].get<std::string>(), Catch::Contains("rollback job downgrade"));
  CHECK(r.jobs->halted());
  // A terminated rollback is a failed one (and ends the hanging step).
  CHECK(r.jobs->Terminate("", Duration(1000), "end of test") == "downgrade");
  const json* f = r.Last("job.rollback.fail");
  REQUIRE(f);
  CHECK((*f)["result"] == "terminated");
  CHECK(r.jobs->Status()["halt"]["rollback"]["result"] == "terminated");
}

TEST_CASE("jobs: Terminate ends the step in flight, halts, and rolls back only when allowed",
          "[jobs][terminate]") {
  for (bool allowed : {false, true}) {
    DYNAMIC_SECTION("rollback_on_terminate = " << (allowed ? "yes" : "no")) {
      JobRig r;
      r.Step("drain", 1min);
      auto hang = r.Hang("upgrade_packages");
      r.Step("downgrade_packages", 1min);
      r.Job("upgrade", {"drain", "upgrade_packages"}, "downgrade").rollback_on_terminate =
          allowed;
      r.Job("downgrade", {"downgrade_packages"});
      r.Open();
      REQUIRE(r.jobs->Enqueue("upgrade", Trigger{"ctl", "test", "", ""}).ok);
      REQUIRE(RunUntil([&] { return hang->runs == 1; }, 10));
      CHECK(r.jobs->Terminate("other", Duration(1000), "not this one").empty());
      CHECK(r.jobs->Terminate("upgrade", Duration(1500), "fleet halt (terminate): bad rpm") ==
            "upgrade");
      CHECK(hang->grace == Duration(1500));
      REQUIRE(RunUntil([&] { return r.Last("job.terminated") != nullptr; }, 10));
      const json t = *r.Last("job.terminated");
      CHECK(t["step"] == "upgrade_packages");
      CHECK(t["step_index"] == 2);
      CHECK(t["result"] == "terminated");
      CHECK(t["error"] == "fleet halt (terminate): bad rpm");
      json step, fin;
      for (const auto& e : r.seen) {
        if (e["event"] == "job.step" && e["step"] == "upgrade_packages") step = e;
        if (e["event"] == "action.finish" && e["action"] == "upgrade_packages") fin = e;
      }
      CHECK(step["result"] == "terminated");
      CHECK(step["error"] == "terminated: killed by signal 15 (SIGTERM)");
      CHECK(fin["terminated"] == true);
      CHECK(fin["terminated_by"] == "fleet halt (terminate): bad rpm");
      CHECK(r.Count("job.fail") == 0);
      CHECK(r.jobs->halted());
      CHECK_THAT(r.jobs->Status()["halt"]["reason"].get<std::string>(),
                 Catch::StartsWith("job upgrade was terminated at step 2/2 (upgrade_packages)"));
      if (allowed) {
        REQUIRE(RunUntil([&] { return r.Last("job.rollback.finish") != nullptr; }, 10));
        CHECK((*r.Last("job.rollback.start"))["cause"] == "terminated");
      } else {
        RunUntil([] { return false; }, 0.2);
        CHECK(r.Count("job.rollback.start") == 0);
        CHECK(r.jobs->Status()["halt"]["rollback"].is_null());
      }
    }
  }
}

TEST_CASE("jobs: Terminate ends a paused job at once, at its step boundary", "[jobs][terminate]") {
  JobRig r;
  r.Step("drain", 1min, [&] { r.rig->guard.SetPaused(true, "disk swap"); });
  r.Step("upgrade_packages", 1min);
  r.Job("upgrade", {"drain", "upgrade_packages"});
  r.Open();
  REQUIRE(r.jobs->Enqueue("upgrade", Trigger{"ctl", "test", "", ""}).ok);
  REQUIRE(RunUntil([&] { return r.Last("job.paused") != nullptr; }, 10));
  CHECK(r.jobs->Terminate("", Duration(1000), "wardenctl abort") == "upgrade");
  const json* t = r.Last("job.terminated");
  REQUIRE(t);
  CHECK((*t)["step"] == "upgrade_packages");
  CHECK(r.jobs->Status()["running"].is_null());
  r.rig->guard.SetPaused(false, "");
  RunUntil([] { return false; }, 1.5);   // the paused retry must not wake a dead run
  CHECK(r.Count("job.step") == 2);        // drain's start and ok only
  CHECK(r.jobs->Terminate("", Duration(1000), "again").empty());
}
