// What the files of JobRunner (job_journal.cc, job_queue.cc,
// job_runner.cc, job_status.cc) share: the running job's state, a
// schedule's timer, and a few helpers. Not for use outside daemon/jobs.
#pragma once

#include <ev.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actions/action.h"
#include "daemon/base/cron.h"
#include "daemon/config/config.h"
#include "daemon/io/fleet.h"
#include "daemon/jobs/job_runner.h"

namespace warden {

namespace job_internal {

inline std::int64_t Ms(JobRunner::Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// The guard's view of a job step: no cooldown or budget of its own, so only
// paused, halted and the mutex can say no.
inline ActionCommon JobGuardCommon(const std::string& job) {
  ActionCommon c;
  c.name = "job:" + job;
  c.type = "job";
  return c;
}

inline std::string StepLabel(size_t index, size_t count, const std::string& step) {
  return "step " + std::to_string(index + 1) + "/" + std::to_string(count) + " (" + step + ")";
}

}  // namespace job_internal

struct JobRunner::Run {
  std::shared_ptr<const Config> config;
  const JobConfig* job = nullptr;
  Entry entry;
  std::int64_t started_ms = 0;
  Clock::time_point started;
  Clock::duration paused_total{0};
  std::optional<Clock::time_point> paused_since;
  std::string pause_reason;
  std::string pause_detail;
  size_t step = 0;
  Phase phase = Phase::kGuard;
  Clock::time_point step_started;
  std::int64_t step_started_ms = 0;
  std::vector<StepRecord> steps;   // the journal of this run, one per step started
  Clock::time_point wait_deadline;
  std::string wait_detail;         // what the wait still waits for
  Slot slot;                       // the fleet slot (group "" = none)
  int slot_capacity = 0;
  std::vector<SlotHolder> holders; // the group as last read
  std::string slot_wait;           // why the job waits for its slot ("" = not waiting)
  ev_timer timer{};
  std::uint64_t generation = 0;
  std::string rollback_of;         // a rollback run: the job whose failure it undoes
  std::string terminating;         // why Terminate was asked ("" = not asked)
  Duration kill_grace{10'000};     // Terminate's, for a step that starts meanwhile

  const std::string& step_name() const { return job->steps[step]; }
  bool needs_slot() const { return !slot.group.empty() && slot.key.empty(); }
  Clock::duration active(Clock::time_point now) const {
    Clock::duration d = now - started - paused_total;
    if (paused_since) d -= now - *paused_since;
    return d;
  }
};

struct JobRunner::Schedule {
  ev_periodic w{};
  JobRunner* self = nullptr;
  std::string job;
  CronSchedule cron;
};

}  // namespace warden
