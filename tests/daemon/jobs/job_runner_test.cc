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
