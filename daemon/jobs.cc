#include "daemon/jobs.h"

#include <ev.h>

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "daemon/atomic_file.h"
#include "daemon/events.h"
#include "daemon/executor.h"
#include "daemon/guard.h"
#include "daemon/scheduler.h"
#include "daemon/state.h"

namespace warden {

using nlohmann::json;

namespace {

constexpr int kJournalFormat = 1;
constexpr double kPausedRetry = 1.0;   // seconds between guard questions while paused
constexpr double kWaitPoll = 0.25;     // seconds between looks at a wait's checks

std::int64_t Ms(JobRunner::Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// The guard's view of a job step: no cooldown or budget of its own, so only
// paused, halted and the mutex can say no.
ActionCommon JobGuardCommon(const std::string& job) {
  ActionCommon c;
  c.name = "job:" + job;
  c.type = "job";
  return c;
}

std::string StepLabel(size_t index, size_t count, const std::string& step) {
  return "step " + std::to_string(index + 1) + "/" + std::to_string(count) + " (" + step + ")";
}

}  // namespace

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
  ev_timer timer{};
  std::uint64_t generation = 0;

  const std::string& step_name() const { return job->steps[step]; }
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

JobRunner::JobRunner(struct ev_loop* loop, Guard& guard, Executor& executor, Scheduler& scheduler,
                     EventLog& events, std::string journal_path)
    : loop_(loop),
      guard_(guard),
      executor_(executor),
      scheduler_(scheduler),
      events_(events),
      path_(std::move(journal_path)) {}

JobRunner::~JobRunner() {
  *alive_ = false;
  DisarmSchedules();
  if (run_) ev_timer_stop(loop_, &run_->timer);
}

// --- journal ---

json JobRunner::JournalJson() const {
  json j = {{"format", kJournalFormat}};
  json queue = json::array();
  for (const auto& e : queue_) {
    queue.push_back({{"job", e.job},
                     {"trigger", e.trigger},
                     {"trigger_name", e.trigger_name},
                     {"queued_ms", e.queued_ms}});
  }
  j["queue"] = std::move(queue);
  j["halt"] = halt_ ? json{{"reason", halt_->reason},
                           {"job", halt_->job},
                           {"step", halt_->step},
                           {"since_ms", halt_->since_ms}}
                    : json(nullptr);
  if (run_) {
    json steps = json::array();
    for (const auto& s : run_->steps) {
      steps.push_back({{"step", s.step},
                       {"started_ms", s.started_ms},
                       {"ended_ms", s.ended_ms},
                       {"result", s.result}});
    }
    j["running"] = {{"job", run_->job->name},
                    {"trigger", run_->entry.trigger},
                    {"trigger_name", run_->entry.trigger_name},
                    {"started_ms", run_->started_ms},
                    {"step_count", run_->job->steps.size()},
                    {"steps", std::move(steps)}};
  } else {
    j["running"] = nullptr;
  }
  return j;
}

void JobRunner::Save() {
  warden::Status s = WriteFileAtomically(path_, JournalJson().dump() + "\n", 0600);
  if (!s.ok() && saved_) spdlog::error("cannot write the job journal {}: {}", path_, s.message());
  saved_ = s.ok();
}

std::string JobRunner::Start(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  std::string problem;
  struct stat st {};
  const bool exists = ::stat(path_.c_str(), &st) == 0;
  Expected<std::string> text = exists ? ReadSmallFile(path_, 16 << 20) : Expected<std::string>("");
  if (!text) problem = text.error();
  json running;
  if (exists && text) {
    json j = json::parse(*text, nullptr, false);
    auto bad = [&](const std::string& why) {
      if (problem.empty()) problem = path_ + ": " + why;
    };
    if (j.is_discarded() || !j.is_object()) {
      bad("not JSON");
    } else if (j.value("format", 0) != kJournalFormat) {
      bad("unknown format " + j.value("format", json()).dump());
    } else {
      try {
        for (const auto& e : j.at("queue")) {
          queue_.push_back(Entry{e.at("job").get<std::string>(), e.at("trigger").get<std::string>(),
                                 e.at("trigger_name").get<std::string>(),
                                 e.at("queued_ms").get<std::int64_t>()});
        }
        if (const json& h = j.at("halt"); !h.is_null()) {
          halt_ = Halt{h.at("reason").get<std::string>(), h.at("job").get<std::string>(),
                       h.at("step").get<std::string>(), h.at("since_ms").get<std::int64_t>()};
        }
        running = j.at("running");
        if (!running.is_null()) {
          (void)running.at("job").get<std::string>();
          (void)running.at("steps").size();
        }
      } catch (const json::exception& e) {
        queue_.clear();
        halt_.reset();
        running = nullptr;
        bad(std::string("malformed: ") + e.what());
      }
    }
  }
  if (!problem.empty()) {
    std::string aside = path_ + ".corrupt-" + std::to_string(WallMsNow());
    if (::rename(path_.c_str(), aside.c_str()) == 0) problem += "; set aside as " + aside;
    spdlog::error("job journal unusable: {}", problem);
    // What ran before is unknown: nothing starts until an operator looked.
    SetHalt(Halt{"the job journal was unusable (" + problem +
                     "); check the host, then wardenctl resume",
                 "", "", WallMsNow()});
  }
  if (!running.is_null() && running.is_object()) {
    // Cut short by a crash or a kill: report it, halt, run nothing again.
    const std::string job = running.value("job", "");
    const json& steps = running["steps"];
    std::string step;
    size_t index = 0;
    std::string detail;
    if (steps.is_array() && !steps.empty()) {
      const json& last = steps.back();
      step = last.value("step", "");
      index = steps.size();
      if (last.value("ended_ms", std::int64_t{0}) == 0) {
        detail = "wardend stopped while " + step + " was in flight (started " +
                 Rfc3339FromMs(last.value("started_ms", std::int64_t{0})) +
                 "); it was not run again";
      } else {
        detail = "wardend stopped after " + step + " ended (" + last.value("result", "") +
                 ") and before the next step started";
      }
    } else {
      detail = "wardend stopped before the first step started";
    }
    size_t count = running.value("step_count", size_t{0});
    json f = {{"job", job},
              {"step", step},
              {"step_index", index},
              {"steps", count},
              {"result", "interrupted"},
              {"error", detail},
              {"started", Rfc3339FromMs(running.value("started_ms", std::int64_t{0}))}};
    events_.Emit("job.interrupted", f);
    spdlog::error("job {} was interrupted: {}", job, detail);
    SetHalt(Halt{"job " + job + " was interrupted at " +
                     (step.empty() ? std::string("its start") : StepLabel(index - 1, count, step)) +
                     ": " + detail + "; check the host, then wardenctl resume",
                 job, step, WallMsNow()});
  }
  if (halt_) guard_.SetHalted(true, halt_->reason);
  Save();
  ArmSchedules();
  Pump();
  return problem;
}

void JobRunner::SetHalt(Halt h) {
  halt_ = std::move(h);
  guard_.SetHalted(true, halt_->reason);
}

// --- queue ---

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
  queue_.push_back(Entry{job, trigger.kind, trigger.name, WallMsNow()});
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

void JobRunner::Pump() {
  while (!run_ && !halt_ && !stopping_ && !queue_.empty()) {
    Entry e = queue_.front();
    queue_.pop_front();
    const JobConfig* job = config_->FindJob(e.job);
    if (!job) {
      // Removed by a reload while queued: nothing ran, nothing to halt for.
      json f = {{"job", e.job}, {"result", "fail"},
                {"error", "job " + e.job + " is no longer in the configuration; dropped from "
                          "the queue without running"}};
      Save();
      events_.Emit("job.fail", f);
      spdlog::warn("queued job {} is no longer configured: dropped", e.job);
      for (auto& w : waiters_[e.job]) w(f);
      waiters_.erase(e.job);
      continue;
    }
    run_ = std::make_unique<Run>();
    run_->config = config_;
    run_->job = job;
    run_->entry = e;
    run_->started = Clock::now();
    run_->started_ms = WallMsNow();
    ev_timer_init(&run_->timer, &JobRunner::OnTimer, 0, 0);
    run_->timer.data = this;
    Save();
    json f = {{"job", job->name},
              {"trigger", e.trigger},
              {"trigger_name", e.trigger_name},
              {"steps", job->steps.size()},
              {"plan", job->steps},
              {"timeout", FormatDuration(job->timeout)}};
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

// --- steps ---

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
  auto now = Clock::now();
  if (r.active(now) >= r.job->timeout) {
    Fail("job timeout " + FormatDuration(r.job->timeout) + " reached before " +
         StepLabel(r.step, r.job->steps.size(), r.step_name()) +
         " (time spent paused does not count)");
    return;
  }
  r.phase = Phase::kGuard;
  std::uint64_t gen = ++r.generation;
  std::weak_ptr<bool> alive = alive_;
  guard_.Consult(JobGuardCommon(r.job->name),
                 [this, alive, gen, run = run_.get()](GuardDecision d) {
                   if (alive.expired() || run_.get() != run || run->generation != gen ||
                       run->phase != Phase::kGuard) {
                     return;
                   }
                   OnGuard(d.allowed, d.reason, d.detail);
                 });
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
  if (r.paused_since) {
    auto now = Clock::now();
    spdlog::info("job {} continues at {} after {} paused ({})", r.job->name, r.step_name(),
                 FormatDuration(std::chrono::duration_cast<Duration>(now - *r.paused_since)),
                 r.pause_reason);
    r.paused_total += now - *r.paused_since;
    r.paused_since.reset();
    r.pause_reason.clear();
    r.pause_detail.clear();
  }
  StartStep();
}

void JobRunner::EnterPaused(const std::string& reason, const std::string& detail) {
  Run& r = *run_;
  r.phase = Phase::kPaused;
  if (!r.paused_since || r.pause_reason != reason) {
    if (!r.paused_since) r.paused_since = Clock::now();
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
  r.step_started = Clock::now();
  r.step_started_ms = WallMsNow();
  r.steps.push_back(StepRecord{name, r.step_started_ms, 0, ""});
  Save();   // durable before the step may change anything
  json f = StepFields();
  f["result"] = "start";
  if (const ActionConfig* a = r.config->FindAction(name)) {
    f["type"] = a->common.type;
    events_.Emit("job.step", f);
    r.phase = Phase::kAction;
    std::weak_ptr<bool> alive = alive_;
    executor_.Fire(r.config, *a, Trigger{"job", r.job->name, "", ""},
                   [this, alive, run = run_.get()](Executor::Result res) {
                     if (alive.expired() || run_.get() != run) return;
                     OnActionDone(res.ran, res.ok, res.blocked_reason, res.blocked_detail,
                                  res.error, res.stderr_tail);
                   });
    return;
  }
  const WaitConfig* w = r.config->FindWait(name);
  if (!w) {  // validated at load; kept for a snapshot that changed under us
    f["type"] = "unknown";
    events_.Emit("job.step", f);
    StepDone("fail", "step " + name + " is neither an action nor a wait");
    return;
  }
  f["type"] = "wait";
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

void JobRunner::OnActionDone(bool ran, bool ok, const std::string& blocked,
                             const std::string& detail, const std::string& error,
                             const std::string& stderr_tail) {
  Run& r = *run_;
  if (!ran) {
    if (blocked == "dry_run") {
      StepDone("dry_run", "");
      return;
    }
    // Not run: the step did not happen, it is tried again or fails below.
    r.steps.pop_back();
    Save();
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
    r.steps.back().ended_ms = WallMsNow();
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
  auto now = Clock::now();
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
    r.steps.back().ended_ms = WallMsNow();
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
  auto now = Clock::now();
  StepRecord& rec = r.steps.back();
  rec.ended_ms = WallMsNow();
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
  json f = {{"job", r.job->name},
            {"steps", r.job->steps.size()},
            {"result", "ok"},
            {"duration_ms", Ms(Clock::now() - r.started)},
            {"paused_ms", Ms(r.paused_total)}};
  spdlog::info("job {} finished ok", r.job->name);
  EndRun(events_.Emit("job.finish", f));
  Pump();
}

void JobRunner::Fail(const std::string& error) {
  Run& r = *run_;
  json f = StepFields();
  f["result"] = "fail";
  f["error"] = error;
  f["duration_ms"] = Ms(Clock::now() - r.started);
  if (!failed_stderr_.empty()) f["stderr_tail"] = std::move(failed_stderr_);
  failed_stderr_.clear();
  spdlog::error("job {} failed at {}: {}; the queue is halted until wardenctl resume",
                r.job->name, StepLabel(r.step, r.job->steps.size(), r.step_name()), error);
  SetHalt(Halt{"job " + r.job->name + " failed at " +
                   StepLabel(r.step, r.job->steps.size(), r.step_name()) + ": " + error,
               r.job->name, r.step_name(), WallMsNow()});
  EndRun(events_.Emit("job.fail", f));
}

void JobRunner::Interrupt(const std::string& why) {
  Run& r = *run_;
  json f = StepFields();
  f["result"] = "interrupted";
  f["error"] = why;
  f["duration_ms"] = Ms(Clock::now() - r.started);
  spdlog::warn("job {} interrupted at {}: {}", r.job->name,
               StepLabel(r.step, r.job->steps.size(), r.step_name()), why);
  SetHalt(Halt{"job " + r.job->name + " was interrupted at " +
                   StepLabel(r.step, r.job->steps.size(), r.step_name()) + ": " + why +
                   "; check the host, then wardenctl resume",
               r.job->name, r.step_name(), WallMsNow()});
  EndRun(events_.Emit("job.interrupted", f));
}

void JobRunner::EndRun(const json& event) {
  ev_timer_stop(loop_, &run_->timer);
  const std::string job = run_->job->name;
  run_.reset();
  Save();
  auto it = waiters_.find(job);
  if (it != waiters_.end()) {
    auto waiters = std::move(it->second);
    waiters_.erase(it);
    for (auto& w : waiters) w(event);
  }
}

void JobRunner::OnTimer(struct ev_loop*, ev_timer* w, int) {
  auto* self = static_cast<JobRunner*>(w->data);
  if (!self->run_) return;
  if (self->run_->phase == Phase::kPaused) {
    self->NextStep();
  } else if (self->run_->phase == Phase::kWait) {
    self->PollWait();
  }
}

bool JobRunner::step_in_flight() const { return run_ && run_->phase == Phase::kAction; }

void JobRunner::Stop(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  DisarmSchedules();
  if (!run_) return;
  // An action in flight reports through OnActionDone; a guard question in
  // flight through OnGuard. A wait or a pause ends now.
  if (run_->phase == Phase::kWait) {
    ev_timer_stop(loop_, &run_->timer);
    run_->steps.back().ended_ms = WallMsNow();
    run_->steps.back().result = "fail";
    Interrupt("wardend is stopping (" + why + ") during wait " + run_->step_name());
  } else if (run_->phase == Phase::kPaused || run_->phase == Phase::kGuard) {
    ev_timer_stop(loop_, &run_->timer);
    ++run_->generation;   // a guard answer still on its way is ignored
    Interrupt("wardend is stopping (" + why + ") before " + run_->step_name() + " started" +
              (run_->paused_since ? " (the job was paused: " + run_->pause_reason + ")" : ""));
  }
}

json JobRunner::Resume(const std::string& by) {
  if (!halt_) {
    return {{"ok", true}, {"was_halted", false}, {"queued", queue_.size()}};
  }
  Halt was = *halt_;
  halt_.reset();
  guard_.SetHalted(false, "");
  Save();
  events_.Emit("job.resume", {{"job", was.job}, {"step", was.step}, {"halt_reason", was.reason},
                              {"by", by}, {"queued", queue_.size()}});
  spdlog::warn("queue resumed by {} (was halted: {})", by, was.reason);
  Pump();
  return {{"ok", true}, {"was_halted", true}, {"reason", was.reason}, {"queued", queue_.size()},
          {"persisted", saved_}};
}

// --- schedules ---

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

// --- status and plan ---

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
    auto now = Clock::now();
    const char* phase = run_->phase == Phase::kPaused ? "paused"
                        : run_->phase == Phase::kWait ? "waiting"
                        : run_->phase == Phase::kAction ? "running"
                                                        : "starting";
    json r = StepFields();
    r["phase"] = phase;
    r["trigger"] = run_->entry.trigger;
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
    j["running"] = std::move(r);
  } else {
    j["running"] = nullptr;
  }
  j["halt"] = halt_ ? json{{"reason", halt_->reason},
                           {"job", halt_->job},
                           {"step", halt_->step},
                           {"since", Rfc3339FromMs(halt_->since_ms)}}
                    : json(nullptr);
  json schedules = json::array();
  for (const auto& s : schedules_) {
    auto next = NextCronTime(s->cron, WallMsNow() / 1000);
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
    auto next = NextCronTime(*job->schedule, WallMsNow() / 1000);
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
