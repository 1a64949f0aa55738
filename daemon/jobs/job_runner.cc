// JobRunner: the running job's steps: the guard's answer, pauses, the
// fleet slot, actions and waits, and how a job ends.
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
using job_internal::StepLabel;

namespace {

constexpr double kPausedRetry = 1.0;   // seconds between guard questions while paused
constexpr double kWaitPoll = 0.25;     // seconds between looks at a wait's checks

}  // namespace

JobRunner::JobRunner(struct ev_loop* loop, Guard& guard, Executor& executor, Scheduler& scheduler,
                     EventLog& events, std::string journal_path, const TimeSource& time)
    : loop_(loop),
      guard_(guard),
      executor_(executor),
      scheduler_(scheduler),
      events_(events),
      path_(std::move(journal_path)),
      time_(time) {}

JobRunner::~JobRunner() {
  *alive_ = false;
  DisarmSchedules();
  if (run_) ev_timer_stop(loop_, &run_->timer);
}

void JobRunner::NextStep() {
  Run& r = *run_;
  if (r.step >= r.job->steps.size()) {
    Finish();
    return;
  }
  if (stopping_) {
    Interrupt("wardend is stopping");
    return;
  }
  auto now = time_.Now();
  if (r.active(now) >= r.job->timeout) {
    Fail("job timeout " + FormatDuration(r.job->timeout) + " reached before " +
         StepLabel(r.step, r.job->steps.size(), r.step_name()) +
         " (time spent paused does not count)");
    return;
  }
  r.phase = Phase::kGuard;
  std::uint64_t gen = ++r.generation;
  std::weak_ptr<bool> alive = alive_;
  guard_.Consult(
      JobGuardCommon(r.job->name),
      [this, alive, gen, run = run_.get()](GuardDecision d) {
        if (alive.expired() || run_.get() != run || run->generation != gen ||
            run->phase != Phase::kGuard) {
          return;
        }
        OnGuard(d.allowed, d.reason, d.detail);
      },
      "", /*past_halt=*/!r.rollback_of.empty());
}

void JobRunner::OnGuard(bool allowed, const std::string& reason, const std::string& detail) {
  Run& r = *run_;
  if (stopping_) {
    Interrupt("wardend is stopping");
    return;
  }
  if (!allowed) {
    EnterPaused(reason, detail);
    return;
  }
  if (r.step == 0 && r.needs_slot()) {
    EndPause();
    AcquireSlot();
    return;
  }
  StartStep();
}

void JobRunner::EndPause() {
  Run& r = *run_;
  if (!r.paused_since) return;
  auto now = time_.Now();
  if (!r.pause_reason.empty()) {   // a pause by the guard (not a wait for a slot)
    spdlog::info("job {} continues at {} after {} paused ({})", r.job->name, r.step_name(),
                 FormatDuration(std::chrono::duration_cast<Duration>(now - *r.paused_since)),
                 r.pause_reason);
  }
  r.paused_total += now - *r.paused_since;
  r.paused_since.reset();
  r.pause_reason.clear();
  r.pause_detail.clear();
}

void JobRunner::AcquireSlot() {
  Run& r = *run_;
  r.phase = Phase::kSlot;
  if (!fleet_) {   // validated: slot needs [fleet]
    Fail("slot = " + r.slot.group + " but no [fleet] is configured");
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  std::uint64_t gen = ++r.generation;
  fleet_->Acquire(r.slot.group, r.slot_capacity, r.job->name,
                  [this, alive, gen, run = run_.get()](SlotOutcome out) {
    if (alive.expired() || run_.get() != run || run->generation != gen) return;
    OnSlot(std::move(out));
  });
}

void JobRunner::OnSlot(SlotOutcome out) {
  Run& r = *run_;
  auto now = time_.Now();
  r.holders = out.holders;
  if (out.kind == SlotOutcome::Kind::kAcquired) {
    r.slot.key = out.key;
    r.slot.value = out.value;
    Save();   // ours now: kept in the journal before any step runs
    if (r.paused_since) {   // the wait for a slot does not count against the timeout
      r.paused_total += now - *r.paused_since;
      r.paused_since.reset();
    }
    r.slot_wait.clear();
    spdlog::info("job {} holds fleet slot {}{}", r.job->name, out.key,
                 out.resumed ? " (already ours)" : "");
    if (stopping_) {
      Requeue();
      return;
    }
    StartStep();
    return;
  }
  std::string why;
  std::string detail;
  if (out.kind == SlotOutcome::Kind::kFull) {
    why = "full";
    for (const auto& h : out.holders) {
      detail += (detail.empty() ? "" : ", ") + h.host + " (" + h.job + " since " + h.since + ")";
    }
    detail = "all " + std::to_string(r.slot_capacity) + " slot(s) of " + r.slot.group +
             " are taken: " + detail;
  } else if (out.kind == SlotOutcome::Kind::kHalted) {
    why = "halted";
    detail = out.error;
  } else {
    why = "etcd";
    detail = out.error;
  }
  if (r.slot_wait != why + ":" + detail) {
    r.slot_wait = why + ":" + detail;
    json f = StepFields();
    f["slot"] = r.slot.group;
    f["capacity"] = r.slot_capacity;
    f["result"] = "waiting";
    f["reason"] = why;
    f["detail"] = detail;
    json holders = json::array();
    for (const auto& h : out.holders) holders.push_back(h.ToJson());
    f["holders"] = std::move(holders);
    events_.Emit("job.waiting", f);
    spdlog::info("job {} waits for a slot of {} ({}): {}", r.job->name, r.slot.group, why,
                 detail);
  }
  if (!r.paused_since) r.paused_since = now;
  // Poll with jitter (±20%) so that a fleet does not ask in lockstep.
  const double base = std::chrono::duration<double>(fleet_->config().poll).count();
  const double jitter = std::uniform_real_distribution<double>(0.8, 1.2)(rng_);
  ev_timer_set(&r.timer, base * jitter, 0);
  ev_timer_start(loop_, &r.timer);
}

void JobRunner::EnterPaused(const std::string& reason, const std::string& detail) {
  Run& r = *run_;
  r.phase = Phase::kPaused;
  if (!r.paused_since || r.pause_reason != reason) {
    if (!r.paused_since) r.paused_since = time_.Now();
    r.pause_reason = reason;
    r.pause_detail = detail;
    json f = StepFields();
    f["result"] = "paused";
    f["reason"] = reason;
    f["detail"] = detail;
    events_.Emit("job.paused", f);
    spdlog::warn("job {} paused before {} ({}): {}", r.job->name, r.step_name(), reason, detail);
  }
  r.pause_detail = detail;
  ev_timer_set(&r.timer, kPausedRetry, 0);
  ev_timer_start(loop_, &r.timer);
}

void JobRunner::StartStep() {
  Run& r = *run_;
  const std::string& name = r.step_name();
  r.step_started = time_.Now();
  r.step_started_ms = time_.WallMs();
  r.steps.push_back(StepRecord{name, r.step_started_ms, 0, ""});
  // Durable before the step may change anything: a step the journal does
  // not record could run twice after a crash, so it waits for the write
  // (the loop does not), and when the journal cannot be written it pauses
  // (tried again every second, one job.paused).
  r.phase = Phase::kJournal;
  const std::uint64_t gen = ++r.generation;
  std::weak_ptr<bool> alive = alive_;
  Save([this, alive, gen, run = run_.get()](const warden::Status& s) {
    if (alive.expired() || run_.get() != run || run->generation != gen ||
        run->phase != Phase::kJournal) {
      return;
    }
    if (!s.ok()) {
      run->steps.pop_back();
      EnterPaused("journal", "the job journal cannot be written: " + s.message());
      return;
    }
    EndPause();
    BeginStep();
  });
}

void JobRunner::BeginStep() {
  Run& r = *run_;
  const std::string& name = r.step_name();
  if (const ActionConfig* a = r.config->FindAction(name)) {
    r.phase = Phase::kAction;
    std::weak_ptr<bool> alive = alive_;
    // job.step start once the guard has let the step's action through: a
    // step parked there (running, or a pause, halt or held mutex that came
    // after the job's own check) or blocked (cooldown, budget) has not
    // started, and says `start` once, when it does.
    Trigger trigger{"job", r.job->name, "", ""};
    trigger.past_halt = !r.rollback_of.empty();
    executor_.Fire(
        r.config, *a, std::move(trigger),
        [this, alive, run = run_.get()](Executor::Result res) {
          if (alive.expired() || run_.get() != run) return;
          OnActionDone(res.ran, res.ok, res.blocked_reason, res.blocked_detail, res.error,
                       res.stderr_tail, res.terminated);
        },
        [this, alive, run = run_.get(), type = a->common.type] {
          if (alive.expired() || run_.get() != run) return;
          EmitActionStepStart(type);
          if (!run->terminating.empty()) {
            // Terminate came while the guard was asked: the run is
            // registered once this returns; ended from the loop, at once.
            ev_timer_set(&run->timer, 0, 0);
            ev_timer_start(loop_, &run->timer);
          }
        });
    return;
  }
  const WaitConfig* w = r.config->FindWait(name);
  if (!w) {  // validated at load; kept for a snapshot that changed under us
    events_.Emit("job.step", StepStartFields("unknown"));
    StepDone("fail", "step " + name + " is neither an action nor a wait");
    return;
  }
  json f = StepStartFields("wait");
  f["checks"] = w->checks;
  f["for"] = FormatDuration(w->hold);
  events_.Emit("job.step", f);
  r.phase = Phase::kWait;
  auto remaining = r.job->timeout - std::chrono::duration_cast<Duration>(r.active(r.step_started));
  r.wait_deadline = r.step_started + std::min<Duration>(w->timeout, remaining);
  // Fresh results now rather than at each check's next tick.
  for (const auto& c : w->checks) {
    scheduler_.RunNow(c, [](const Measurement&, const Verdict&) {});
  }
  ev_timer_set(&r.timer, kWaitPoll, 0);
  ev_timer_start(loop_, &r.timer);
}

json JobRunner::StepStartFields(const std::string& type) const {
  json f = StepFields();
  f["result"] = "start";
  f["type"] = type;
  return f;
}

void JobRunner::EmitActionStepStart(const std::string& type) {
  events_.Emit("job.step", StepStartFields(type));
}

void JobRunner::OnActionDone(bool ran, bool ok, const std::string& blocked,
                             const std::string& detail, const std::string& error,
                             const std::string& stderr_tail, const std::string& terminated) {
  Run& r = *run_;
  if (ran && (!terminated.empty() || !r.terminating.empty())) {
    const std::string why = !r.terminating.empty() ? r.terminating : terminated;
    auto now = time_.Now();
    r.steps.back().ended_ms = time_.WallMs();
    r.steps.back().result = "terminated";
    Save();
    json f = StepFields();
    f["result"] = "terminated";
    f["duration_ms"] = Ms(now - r.step_started);
    f["error"] = error.empty() ? (ok ? "ended ok as it was terminated" : "terminated") : error;
    events_.Emit("job.step", f);
    Terminated(why);
    return;
  }
  if (!ran) {
    if (blocked == "dry_run") {
      // A rehearsed step reads as a run one: start, then its result.
      const ActionConfig* a = r.config->FindAction(r.step_name());
      EmitActionStepStart(a ? a->common.type : "unknown");
      StepDone("dry_run", "");
      return;
    }
    // Not run: the step did not happen, it is tried again or fails below.
    r.steps.pop_back();
    Save();
    if (!r.terminating.empty()) {
      Terminated(r.terminating);
      return;
    }
    if (stopping_) {
      Interrupt("wardend is stopping");
      return;
    }
    if (blocked == "paused" || blocked == "halted" || blocked == "mutex" || blocked == "running") {
      EnterPaused(blocked, detail);
      return;
    }
    Fail("the guard blocked " + r.step_name() + " (" + blocked + "): " + detail);
    return;
  }
  if (stopping_ && !ok) {
    r.steps.back().ended_ms = time_.WallMs();
    r.steps.back().result = "fail";
    Interrupt("wardend is stopping; " + r.step_name() + " ended: " + error);
    return;
  }
  if (!ok) failed_stderr_ = stderr_tail;
  StepDone(ok ? "ok" : "fail", ok ? "" : (error.empty() ? "failed" : error));
}

void JobRunner::PollWait() {
  Run& r = *run_;
  const WaitConfig* w = r.config->FindWait(r.step_name());
  auto now = time_.Now();
  std::map<std::string, const Scheduler::CheckStatus*> by;
  auto status = scheduler_.Status();
  for (const auto& s : status) by[s.name] = &s;
  bool all = true;
  std::string missing;
  for (const auto& c : w->checks) {
    auto it = by.find(c);
    std::string why;
    if (it == by.end()) {
      why = c + " is not configured any more";
    } else {
      const Scheduler::CheckStatus& s = *it->second;
      if (s.state != CheckState::kOk) {
        why = c + " is " + StateName(s.state) + (s.value.empty() ? "" : " (value " + s.value + ")") +
              (s.error.empty() ? "" : ": " + s.error);
      } else if (!s.last_run || *s.last_run < r.step_started) {
        why = c + " has no result since the wait began";
      } else {
        auto ok_since = std::max(s.since, r.step_started);
        if (now - ok_since < w->hold) {
          why = c + " ok for only " +
                FormatDuration(Duration(Ms(now - ok_since) / 1000 * 1000)) + " of " +
                FormatDuration(w->hold);
        }
      }
    }
    if (!why.empty()) {
      all = false;
      missing += (missing.empty() ? "" : "; ") + why;
    }
  }
  r.wait_detail = missing;
  if (all) {
    StepDone("ok", "");
    return;
  }
  if (stopping_) {
    r.steps.back().ended_ms = time_.WallMs();
    r.steps.back().result = "fail";
    Interrupt("wardend is stopping during wait " + w->name);
    return;
  }
  if (now >= r.wait_deadline) {
    const bool job_limit = r.wait_deadline < r.step_started + w->timeout;
    StepDone("fail", "wait " + w->name + " timed out after " +
                         FormatDuration(Duration(Ms(now - r.step_started) / 1000 * 1000)) +
                         (job_limit ? " (the job's timeout " + FormatDuration(r.job->timeout) +
                                          " came first)"
                                    : "") +
                         ": " + missing);
    return;
  }
  ev_timer_set(&r.timer, kWaitPoll, 0);
  ev_timer_start(loop_, &r.timer);
}

void JobRunner::StepDone(const std::string& result, const std::string& error) {
  Run& r = *run_;
  auto now = time_.Now();
  StepRecord& rec = r.steps.back();
  rec.ended_ms = time_.WallMs();
  rec.result = result;
  Save();
  json f = StepFields();
  f["result"] = result;
  f["duration_ms"] = Ms(now - r.step_started);
  if (!error.empty()) f["error"] = error;
  events_.Emit("job.step", f);
  if (result == "fail") {
    Fail(error);
    return;
  }
  spdlog::info("job {} {} {}", r.job->name, StepLabel(r.step, r.job->steps.size(), r.step_name()),
               result);
  ++r.step;
  NextStep();
}

void JobRunner::Finish() {
  Run& r = *run_;
  if (!r.rollback_of.empty()) {
    json f = {{"job", r.job->name}, {"steps", r.job->steps.size()}};
    RollbackEnded("ok", "", std::move(f));
    return;
  }
  json f = {{"job", r.job->name},
            {"steps", r.job->steps.size()},
            {"result", "ok"},
            {"duration_ms", Ms(time_.Now() - r.started)},
            {"paused_ms", Ms(r.paused_total)}};
  if (!r.slot.key.empty() && fleet_) {
    // Released only if still ours; until etcd confirms, the journal keeps it
    // as a release to retry, so a crash now cannot leak the slot.
    f["slot"] = r.slot.group;
    releases_.push_back(r.slot);
    Save();
    ReleaseSlots();
  }
  spdlog::info("job {} finished ok", r.job->name);
  EndRun(events_.Emit("job.finish", f));
  Pump();
}

void JobRunner::ReleaseSlots() {
  if (!fleet_ || releases_.empty()) return;
  Slot s = releases_.front();
  std::weak_ptr<bool> alive = alive_;
  fleet_->Release(s.key, s.value, [this, alive, s](warden::Status st, bool deleted) {
    if (alive.expired()) return;
    if (!st.ok()) {
      spdlog::error("fleet slot {} not released yet: {}; retrying", s.key, st.message());
      if (!retry_release_) {
        retry_release_ = std::make_unique<ev_timer>();
        ev_timer_init(retry_release_.get(), &JobRunner::OnRetryRelease, 0, 0);
        retry_release_->data = this;
      }
      const double every = std::chrono::duration<double>(fleet_->config().poll).count();
      ev_timer_set(retry_release_.get(), every, 0);
      ev_timer_start(loop_, retry_release_.get());
      return;
    }
    std::erase_if(releases_, [&](const Slot& x) { return x.key == s.key && x.value == s.value; });
    Save();
    if (deleted) {
      spdlog::info("fleet slot {} released", s.key);
    } else {
      spdlog::warn("fleet slot {} was no longer ours (released by an operator?): left alone",
                   s.key);
    }
    events_.Emit("job.release", {{"slot", s.group}, {"key", s.key}, {"released", deleted}});
    ReleaseSlots();
  });
}

void JobRunner::OnRetryRelease(struct ev_loop*, ev_timer* w, int) {
  static_cast<JobRunner*>(w->data)->ReleaseSlots();
}

void JobRunner::Requeue() {
  Run& r = *run_;
  spdlog::info("job {} goes back to the front of the queue (it had not started a step)",
               r.job->name);
  ev_timer_stop(loop_, &r.timer);
  ++r.generation;
  queue_.push_front(r.entry);
  run_.reset();
  Save();
}

void JobRunner::Fail(const std::string& error) {
  Run& r = *run_;
  json f = StepFields();
  f["result"] = "fail";
  f["error"] = error;
  f["duration_ms"] = Ms(time_.Now() - r.started);
  if (!failed_stderr_.empty()) f["stderr_tail"] = std::move(failed_stderr_);
  failed_stderr_.clear();
  spdlog::error("job {} failed at {}: {}; the queue is halted until wardenctl resume",
                r.job->name, StepLabel(r.step, r.job->steps.size(), r.step_name()), error);
  if (!r.slot.key.empty()) f["slot"] = r.slot.group;   // kept until wardenctl resume
  if (!r.rollback_of.empty()) {
    RollbackEnded("fail", error, std::move(f));
    return;
  }
  SetHalt(Halt{"job " + r.job->name + " failed at " +
                   StepLabel(r.step, r.job->steps.size(), r.step_name()) + ": " + error,
               r.job->name, r.step_name(), time_.WallMs(), r.slot, "", "", ""});
  const std::string job = r.job->name;
  const std::string step = r.step_name();
  EndRun(events_.Emit("job.fail", f));
  StartRollback(job, step, error, "fail");
}

void JobRunner::Terminated(const std::string& why) {
  Run& r = *run_;
  ev_timer_stop(loop_, &r.timer);
  ++r.generation;   // a guard or slot answer still on its way is ignored
  json f = StepFields();
  f["result"] = "terminated";
  f["error"] = why;
  f["duration_ms"] = Ms(time_.Now() - r.started);
  if (!r.slot.key.empty()) f["slot"] = r.slot.group;   // kept until wardenctl resume
  if (!r.rollback_of.empty()) {
    RollbackEnded("terminated", why, std::move(f));
    return;
  }
  spdlog::error("job {} terminated at {}: {}; the queue is halted until wardenctl resume",
                r.job->name, StepLabel(r.step, r.job->steps.size(), r.step_name()), why);
  SetHalt(Halt{"job " + r.job->name + " was terminated at " +
                   StepLabel(r.step, r.job->steps.size(), r.step_name()) + ": " + why +
                   "; check the host, then wardenctl resume",
               r.job->name, r.step_name(), time_.WallMs(), r.slot, "", "", ""});
  const std::string job = r.job->name;
  const std::string step = r.step_name();
  EndRun(events_.Emit("job.terminated", f));
  StartRollback(job, step, why, "terminated");
}

std::string JobRunner::Terminate(const std::string& job, Duration kill_grace,
                                 const std::string& why) {
  if (!run_ || (!job.empty() && run_->job->name != job)) return "";
  Run& r = *run_;
  const std::string name = r.job->name;
  if (!r.terminating.empty()) return name;   // on its way down
  r.terminating = why;
  r.kill_grace = kill_grace;
  switch (r.phase) {
    case Phase::kAction:
      // Ends through OnActionDone. A step still before the guard's answer
      // is ended as it starts (Fire's `started`).
      // A type that cannot stop early ends by its timeout (the executor
      // says so); the job ends terminated then.
      (void)executor_.Terminate(r.step_name(), kill_grace, why);
      return name;
    case Phase::kWait:
      r.steps.back().ended_ms = time_.WallMs();
      r.steps.back().result = "terminated";
      break;
    case Phase::kJournal:
      r.steps.pop_back();   // recorded, never started
      break;
    case Phase::kGuard:
    case Phase::kPaused:
    case Phase::kSlot:
      break;
  }
  Terminated(why);
  return name;
}

void JobRunner::RollbackEnded(const std::string& result, const std::string& error, json f) {
  Run& r = *run_;
  f["rollback_of"] = r.rollback_of;
  f["result"] = result;
  if (!error.empty()) f["error"] = error;
  f["duration_ms"] = Ms(time_.Now() - r.started);
  const std::string job = r.job->name;
  const std::string step = r.step < r.job->steps.size() ? r.step_name() : std::string();
  if (halt_) {   // set by the failure undone (Resume waits for the rollback)
    halt_->rollback = job;
    halt_->rollback_result = result;
    halt_->rollback_error = error;
  }
  if (result == "ok") {
    spdlog::warn("rollback job {} (after {} failed) finished ok; the queue stays halted until "
                 "wardenctl resume", job, r.rollback_of);
    EndRun(events_.Emit("job.rollback.finish", f));
    return;
  }
  spdlog::error("ROLLBACK job {} (after {} failed) {} at {}: {}; the host is neither as before "
                "nor as intended; the queue stays halted", job, r.rollback_of,
                result == "fail" ? "FAILED" : result, step, error);
  EndRun(events_.Emit("job.rollback.fail", f));
  StartRollback(job, step, error, result == "fail" ? "fail" : result);
}

void JobRunner::StartRollback(const std::string& failed, const std::string& step,
                              const std::string& error, const std::string& cause) {
  const JobConfig* job = config_ ? config_->FindJob(failed) : nullptr;
  if (!job || job->on_fail.empty() || run_ || stopping_) return;
  if (cause == "terminated" && !job->rollback_on_terminate) {
    spdlog::warn("job {} was terminated: its rollback {} does not run (rollback_on_terminate "
                 "= no)", failed, job->on_fail);
    return;
  }
  if (cause == "interrupted" && !job->rollback_interrupted) return;
  const JobConfig* rb = config_->FindJob(job->on_fail);
  if (!rb) {   // validated at load
    spdlog::error("job {}: on_fail names {}, which is not a job", failed, job->on_fail);
    return;
  }
  run_ = std::make_unique<Run>();
  run_->config = config_;
  run_->job = rb;
  run_->entry = Entry{rb->name, "rollback", failed, time_.WallMs()};
  run_->started = time_.Now();
  run_->started_ms = time_.WallMs();
  run_->rollback_of = failed;
  ev_timer_init(&run_->timer, &JobRunner::OnTimer, 0, 0);
  run_->timer.data = this;
  if (halt_) {
    halt_->rollback = rb->name;
    halt_->rollback_result = "running";
    halt_->rollback_error.clear();
  }
  Save();
  json f = {{"job", rb->name},
            {"rollback_of", failed},
            {"cause", cause},
            {"step", step},
            {"error", error},
            {"steps", rb->steps.size()},
            {"plan", rb->steps},
            {"timeout", FormatDuration(rb->timeout)}};
  events_.Emit("job.rollback.start", f);
  spdlog::warn("job {} {} at {}: rolling back with job {} ({} steps)", failed,
               cause == "fail" ? "failed" : cause, step, rb->name, rb->steps.size());
  NextStep();
}

void JobRunner::Interrupt(const std::string& why) {
  Run& r = *run_;
  json f = StepFields();
  f["result"] = "interrupted";
  f["error"] = why;
  f["duration_ms"] = Ms(time_.Now() - r.started);
  spdlog::warn("job {} interrupted at {}: {}", r.job->name,
               StepLabel(r.step, r.job->steps.size(), r.step_name()), why);
  if (!r.slot.key.empty()) f["slot"] = r.slot.group;   // kept until wardenctl resume
  if (!r.rollback_of.empty()) {
    RollbackEnded("interrupted", why, std::move(f));
    return;
  }
  SetHalt(Halt{"job " + r.job->name + " was interrupted at " +
                   StepLabel(r.step, r.job->steps.size(), r.step_name()) + ": " + why +
                   "; check the host, then wardenctl resume",
               r.job->name, r.step_name(), time_.WallMs(), r.slot, "", "", ""});
  EndRun(events_.Emit("job.interrupted", f));
}

void JobRunner::EndRun(const json& event) {
  ev_timer_stop(loop_, &run_->timer);
  const std::string job = run_->job->name;
  run_.reset();
  auto it = waiters_.find(job);
  if (it == waiters_.end()) {
    Save();
    return;
  }
  // wardenctl run --wait answers once the outcome is in the journal (or
  // the write failed, which status then shows): a script that reads the
  // journal, or kills wardend, after the answer finds what it was told.
  auto waiters = std::move(it->second);
  waiters_.erase(it);
  Save([waiters = std::move(waiters), event](const warden::Status&) {
    for (auto& w : waiters) w(event);
  });
}

void JobRunner::OnTimer(struct ev_loop*, ev_timer* w, int) {
  auto* self = static_cast<JobRunner*>(w->data);
  if (!self->run_) return;
  Run& r = *self->run_;
  if (r.phase == Phase::kAction && !r.terminating.empty()) {
    (void)self->executor_.Terminate(r.step_name(), r.kill_grace, r.terminating);
    return;
  }
  if (self->run_->phase == Phase::kPaused || self->run_->phase == Phase::kSlot) {
    self->NextStep();
  } else if (self->run_->phase == Phase::kWait) {
    self->PollWait();
  }
}

bool JobRunner::step_in_flight() const { return run_ && run_->phase == Phase::kAction; }

}  // namespace warden
