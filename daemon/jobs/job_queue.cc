// JobRunner: the queue (Enqueue, the pump that starts the next job, Stop
// and Resume) and the schedules that feed it.
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
using job_internal::StepLabel;

JobRunner::Queued JobRunner::Enqueue(const std::string& job, const Trigger& trigger, Done done) {
  Queued q;
  if (stopping_) {
    q.error = "wardend is stopping: no new jobs";
    return q;
  }
  if (!config_->FindJob(job)) {
    q.error = "no job named '" + job + "'";
    return q;
  }
  if (run_ && run_->job->name == job) {
    q.error = "job " + job + " is already running (" +
              StepLabel(run_->step, run_->job->steps.size(), run_->step_name()) +
              "); a job is never queued twice";
    spdlog::info("job {} not queued by {} {}: already running", job, trigger.kind, trigger.name);
    return q;
  }
  for (size_t i = 0; i < queue_.size(); ++i) {
    if (queue_[i].job == job) {
      q.error = "job " + job + " is already queued (position " +
                std::to_string(i + 1 + (run_ ? 1 : 0)) + "); a job is never queued twice";
      spdlog::info("job {} not queued by {} {}: already queued", job, trigger.kind, trigger.name);
      return q;
    }
  }
  queue_.push_back(Entry{job, trigger.kind, trigger.name, time_.WallMs()});
  q.ok = true;
  q.position = queue_.size() + (run_ ? 1 : 0);
  json f = {{"job", job}, {"trigger", trigger.kind}, {"position", q.position}};
  if (trigger.kind == "check") {
    f["check"] = trigger.name;
    f["state"] = trigger.state;
  } else {
    f["trigger_name"] = trigger.name;
  }
  if (halt_) f["halted"] = halt_->reason;
  Save();
  events_.Emit("job.queued", f);
  spdlog::info("job {} queued by {} {} (position {}){}", job, trigger.kind, trigger.name,
               q.position, halt_ ? "; the queue is halted" : "");
  if (done) waiters_[job].push_back(std::move(done));
  Pump();
  return q;
}

size_t JobRunner::DropQueued(const std::string& trigger_kind, const std::string& trigger_name,
                             const std::string& why) {
  std::vector<Entry> dropped;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->trigger == trigger_kind && it->trigger_name == trigger_name) {
      dropped.push_back(*it);
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  if (dropped.empty()) return 0;
  for (const Entry& e : dropped) {
    FailUnrun(e.job, why + "; dropped from the queue without running",
              {{"trigger", e.trigger}, {"trigger_name", e.trigger_name}});
  }
  return dropped.size();
}

void JobRunner::FailUnrun(const std::string& job, const std::string& error, json extra) {
  json f = {{"job", job}, {"result", "fail"}, {"error", error}};
  f.update(extra);
  Save();
  events_.Emit("job.fail", f);
  spdlog::warn("queued job {} dropped without running: {}", job, error);
  auto w = waiters_.find(job);
  if (w != waiters_.end()) {
    for (auto& done : w->second) done(f);
    waiters_.erase(w);
  }
}

void JobRunner::Pump() {
  while (!run_ && !halt_ && !stopping_ && !queue_.empty()) {
    Entry e = queue_.front();
    queue_.pop_front();
    const JobConfig* job = config_->FindJob(e.job);
    if (!job) {
      // Removed by a reload while queued: nothing ran, nothing to halt for.
      FailUnrun(e.job, "job " + e.job + " is no longer in the configuration; dropped from the "
                       "queue without running");
      continue;
    }
    run_ = std::make_unique<Run>();
    run_->config = config_;
    run_->job = job;
    run_->entry = e;
    run_->started = time_.Now();
    run_->started_ms = time_.WallMs();
    if (!job->slot.empty()) {
      run_->slot.group = job->slot;
      run_->slot_capacity = job->slots > 0 ? job->slots : config_->fleet.slots;
    }
    ev_timer_init(&run_->timer, &JobRunner::OnTimer, 0, 0);
    run_->timer.data = this;
    Save();
    json f = {{"job", job->name},
              {"trigger", e.trigger},
              {"trigger_name", e.trigger_name},
              {"steps", job->steps.size()},
              {"plan", job->steps},
              {"timeout", FormatDuration(job->timeout)}};
    if (!job->slot.empty()) f["slot"] = job->slot;
    events_.Emit("job.start", f);
    spdlog::info("job {} started ({} steps, by {} {})", job->name, job->steps.size(), e.trigger,
                 e.trigger_name);
    NextStep();
  }
}

json JobRunner::StepFields() const {
  return {{"job", run_->job->name},
          {"step", run_->step < run_->job->steps.size() ? run_->step_name() : std::string()},
          {"step_index", run_->step + 1},
          {"steps", run_->job->steps.size()}};
}

void JobRunner::Stop(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  DisarmSchedules();
  if (!run_) return;
  if (run_->phase == Phase::kJournal) {
    // Recorded but not started: it did not happen (the journal written
    // next says so).
    run_->steps.pop_back();
    run_->phase = Phase::kGuard;
  }
  if (run_->steps.empty() && run_->phase != Phase::kAction && run_->rollback_of.empty()) {
    Requeue();   // nothing ran: back to the queue, no halt (a rollback is no queued job)
    return;
  }
  // An action in flight reports through OnActionDone; a guard question in
  // flight through OnGuard. A wait or a pause ends now.
  if (run_->phase == Phase::kWait) {
    ev_timer_stop(loop_, &run_->timer);
    run_->steps.back().ended_ms = time_.WallMs();
    run_->steps.back().result = "fail";
    Interrupt("wardend is stopping (" + why + ") during wait " + run_->step_name());
  } else if (run_->phase == Phase::kPaused || run_->phase == Phase::kGuard ||
             run_->phase == Phase::kSlot) {
    ev_timer_stop(loop_, &run_->timer);
    ++run_->generation;   // a guard answer still on its way is ignored
    Interrupt("wardend is stopping (" + why + ") before " + run_->step_name() + " started" +
              (run_->paused_since ? " (the job was paused: " + run_->pause_reason + ")" : ""));
  }
}

void JobRunner::Resume(const std::string& by, std::function<void(json)> reply) {
  if (run_ && !run_->rollback_of.empty()) {
    reply({{"ok", false},
           {"error", "rollback job " + run_->job->name + " (after " + run_->rollback_of +
                         " failed) is running; resume once it has ended (wardenctl status)"}});
    return;
  }
  if (!halt_) {
    reply({{"ok", true}, {"was_halted", false}, {"queued", queue_.size()}});
    return;
  }
  auto clear = [this, by, reply](bool slot_released) {
    if (!halt_) {   // another resume got here first
      reply({{"ok", true}, {"was_halted", false}, {"queued", queue_.size()}});
      return;
    }
    Halt was = *halt_;
    halt_.reset();
    guard_.SetHalted(false, "");
    json f = {{"job", was.job}, {"step", was.step}, {"halt_reason", was.reason},
              {"by", by}, {"queued", queue_.size()}};
    if (!was.slot.key.empty()) {
      f["slot"] = was.slot.group;
      f["slot_released"] = slot_released;
    }
    events_.Emit("job.resume", f);
    spdlog::warn("queue resumed by {} (was halted: {})", by, was.reason);
    Pump();
    json r = {{"ok", true}, {"was_halted", true}, {"reason", was.reason},
              {"queued", queue_.size()}};
    if (!was.slot.key.empty()) r["slot_released"] = was.slot.key;
    // Answered once the journal without the halt is on disk.
    Save([reply, r](const warden::Status& s) mutable {
      r["persisted"] = s.ok();
      reply(std::move(r));
    });
  };
  if (halt_->slot.key.empty() || !fleet_) {
    clear(false);
    return;
  }
  // The halted job's slot goes first: if etcd cannot be reached the halt
  // stays, so the group's rollout is not unblocked by accident.
  std::weak_ptr<bool> alive = alive_;
  Slot slot = halt_->slot;
  fleet_->Release(slot.key, slot.value, [alive, slot, clear, reply](warden::Status st, bool deleted) {
    if (alive.expired()) return;
    if (!st.ok()) {
      reply({{"ok", false},
             {"error", "the queue stays halted: " + st.message() +
                           " (the failed job's fleet slot must be released first)"}});
      return;
    }
    if (!deleted) spdlog::warn("fleet slot {} was no longer ours: left alone", slot.key);
    clear(deleted);
  });
}

void JobRunner::ArmSchedules() {
  DisarmSchedules();
  if (stopping_) return;
  for (const auto& j : config_->jobs) {
    if (!j.schedule) continue;
    auto s = std::make_unique<Schedule>();
    s->self = this;
    s->job = j.name;
    s->cron = *j.schedule;
    ev_periodic_init(&s->w, &JobRunner::OnPeriodic, 0, 0, &JobRunner::Reschedule);
    s->w.data = s.get();
    ev_periodic_start(loop_, &s->w);
    schedules_.push_back(std::move(s));
  }
}

void JobRunner::DisarmSchedules() {
  for (auto& s : schedules_) ev_periodic_stop(loop_, &s->w);
  schedules_.clear();
}

double JobRunner::Reschedule(ev_periodic* w, double now) noexcept {
  auto* s = static_cast<Schedule*>(w->data);
  auto next = NextCronTime(s->cron, static_cast<std::int64_t>(std::floor(now)));
  return next ? static_cast<double>(*next) : now + 1e9;
}

void JobRunner::OnPeriodic(struct ev_loop*, ev_periodic* w, int) {
  auto* s = static_cast<Schedule*>(w->data);
  spdlog::info("job {} is due by its schedule ({})", s->job, s->cron.text);
  s->self->Enqueue(s->job, Trigger{"schedule", s->cron.text, "", ""});
}

void JobRunner::Reload(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  ArmSchedules();
  Pump();
}

}  // namespace warden
