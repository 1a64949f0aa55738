// JobRunner: what wardenctl status shows of the jobs, and the plan of
// wardenctl run --dry-run.
#include "daemon/jobs/job_runner.h"

#include <ev.h>

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "daemon/base/atomic_file.h"
#include "daemon/engine/events.h"
#include "daemon/engine/executor.h"
#include "daemon/engine/guard.h"
#include "daemon/engine/scheduler.h"
#include "daemon/engine/state.h"
#include "daemon/io/fleet.h"
#include "daemon/jobs/job_runner_internal.h"

namespace warden {

using nlohmann::json;
using job_internal::JobGuardCommon;
using job_internal::Ms;

json JobRunner::Status() const {
  json j = json::object();
  json queue = json::array();
  for (const auto& e : queue_) {
    queue.push_back({{"job", e.job},
                     {"trigger", e.trigger},
                     {"trigger_name", e.trigger_name},
                     {"queued", Rfc3339FromMs(e.queued_ms)}});
  }
  j["queue"] = std::move(queue);
  if (run_) {
    auto now = time_.Now();
    const char* phase = run_->phase == Phase::kPaused ? "paused"
                        : run_->phase == Phase::kWait ? "waiting"
                        : run_->phase == Phase::kAction ? "running"
                                                        : "starting";
    json r = StepFields();
    r["phase"] = phase;
    r["trigger"] = run_->entry.trigger;
    if (!run_->rollback_of.empty()) r["rollback_of"] = run_->rollback_of;
    if (!run_->terminating.empty()) r["terminating"] = run_->terminating;
    r["started"] = Rfc3339FromMs(run_->started_ms);
    r["elapsed_ms"] = Ms(now - run_->started);
    r["timeout"] = FormatDuration(run_->job->timeout);
    if (run_->step_started_ms > 0 && run_->phase != Phase::kPaused) {
      r["step_started"] = Rfc3339FromMs(run_->step_started_ms);
      r["step_elapsed_ms"] = Ms(now - run_->step_started);
    }
    if (run_->paused_since) {
      r["paused"] = {{"reason", run_->pause_reason}, {"detail", run_->pause_detail},
                     {"for_ms", Ms(now - *run_->paused_since)}};
    }
    if (run_->phase == Phase::kWait) r["waiting_for"] = run_->wait_detail;
    if (run_->phase == Phase::kSlot) r["phase"] = "waiting for a slot";
    if (!run_->slot.group.empty()) {
      json holders = json::array();
      for (const auto& h : run_->holders) holders.push_back(h.ToJson());
      r["slot"] = {{"group", run_->slot.group},
                   {"capacity", run_->slot_capacity},
                   {"state", run_->slot.key.empty() ? "waiting" : "held"},
                   {"key", run_->slot.key},
                   {"waiting_for", run_->slot_wait},
                   {"holders", std::move(holders)}};
    }
    j["running"] = std::move(r);
  } else {
    j["running"] = nullptr;
  }
  if (!journal_error_.empty()) {
    j["journal_error"] = journal_error_;
    j["journal_error_since"] = Rfc3339FromMs(journal_error_since_ms_);
  }
  j["halt"] = halt_ ? json{{"reason", halt_->reason},
                           {"job", halt_->job},
                           {"step", halt_->step},
                           {"since", Rfc3339FromMs(halt_->since_ms)},
                           {"slot_kept", halt_->slot.key.empty() ? json(nullptr)
                                                                 : json(halt_->slot.key)}}
                    : json(nullptr);
  if (halt_ && !halt_->rollback.empty()) {
    j["halt"]["rollback"] = {{"job", halt_->rollback},
                             {"result", halt_->rollback_result},
                             {"error", halt_->rollback_error}};
  }
  json schedules = json::array();
  for (const auto& s : schedules_) {
    auto next = NextCronTime(s->cron, time_.WallMs() / 1000);
    schedules.push_back({{"job", s->job},
                         {"schedule", s->cron.text},
                         {"next", next ? json(Rfc3339FromMs(*next * 1000)) : json(nullptr)}});
  }
  j["schedules"] = std::move(schedules);
  return j;
}

void JobRunner::Plan(const std::string& name, std::function<void(json)> reply) {
  const JobConfig* job = config_->FindJob(name);
  if (!job) {
    reply({{"ok", false}, {"error", "no job named '" + name + "'"}});
    return;
  }
  json steps = json::array();
  for (size_t i = 0; i < job->steps.size(); ++i) {
    const std::string& s = job->steps[i];
    json one = {{"index", i + 1}, {"step", s}};
    if (const ActionConfig* a = config_->FindAction(s)) {
      one["kind"] = "action";
      one["type"] = a->common.type;
      one["timeout"] = FormatDuration(a->common.timeout);
      one["summary"] = a->type ? a->type->summary : "";
      one["defined_at"] = a->where.str();
      if (a->common.dry_run) one["dry_run"] = true;
    } else if (const WaitConfig* w = config_->FindWait(s)) {
      one["kind"] = "wait";
      one["type"] = "wait";
      one["checks"] = w->checks;
      one["for"] = FormatDuration(w->hold);
      one["timeout"] = FormatDuration(w->timeout);
      one["defined_at"] = w->where.str();
    }
    steps.push_back(std::move(one));
  }
  json plan = {{"ok", true},
               {"dry_run", true},
               {"job", name},
               {"defined_at", job->where.str()},
               {"timeout", FormatDuration(job->timeout)},
               {"steps", std::move(steps)}};
  if (job->schedule) {
    plan["schedule"] = job->schedule->text;
    auto next = NextCronTime(*job->schedule, time_.WallMs() / 1000);
    plan["next"] = next ? json(Rfc3339FromMs(*next * 1000)) : json(nullptr);
  }
  if (run_ && run_->job->name == name) plan["running"] = true;
  for (const auto& e : queue_) {
    if (e.job == name) plan["queued"] = true;
  }
  std::weak_ptr<bool> alive = alive_;
  guard_.Consult(JobGuardCommon(name), [plan, reply, alive](GuardDecision d) mutable {
    plan["guard"] = {{"allowed", d.allowed}, {"reason", d.reason}, {"detail", d.detail}};
    reply(std::move(plan));
  });
}

}  // namespace warden
