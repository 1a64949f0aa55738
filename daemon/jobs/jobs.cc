#include "daemon/jobs/jobs.h"

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
  Slot slot;                       // the fleet slot (group "" = none)
  int slot_capacity = 0;
  std::vector<SlotHolder> holders; // the group as last read
  std::string slot_wait;           // why the job waits for its slot ("" = not waiting)
  ev_timer timer{};
  std::uint64_t generation = 0;

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
  auto slot_json = [](const Slot& s) -> json {
    if (s.key.empty()) return nullptr;
    return {{"group", s.group}, {"key", s.key}, {"value", s.value}};
  };
  j["halt"] = halt_ ? json{{"reason", halt_->reason},
                           {"job", halt_->job},
                           {"step", halt_->step},
                           {"since_ms", halt_->since_ms},
                           {"slot", slot_json(halt_->slot)}}
                    : json(nullptr);
  json releases = json::array();
  for (const auto& r : releases_) releases.push_back(slot_json(r));
  j["releases"] = std::move(releases);
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
                    {"slot", slot_json(run_->slot)},
                    {"steps", std::move(steps)}};
  } else {
    j["running"] = nullptr;
  }
  return j;
}

void JobRunner::Save(std::function<void(const warden::Status&)> done) {
  // Strings from outside (a trigger's name, a step's error) may hold bytes
  // that are not UTF-8: replaced, never thrown on.
  std::string text = JournalJson().dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  std::weak_ptr<bool> alive = alive_;
  writer_->Post(
      "journal",
      [path = path_, text = std::move(text)] { return WriteFileAtomically(path, text, 0600, 0750); },
      [this, alive, done = std::move(done)](const warden::Status& s) {
        if (alive.expired()) return;
        Saved(s);
        if (done) done(s);
      });
}

void JobRunner::Saved(const warden::Status& s) {
  if (!s.ok()) {
    if (journal_error_.empty()) {
      journal_error_since_ms_ = time_.WallMs();
      spdlog::error("cannot write the job journal {}: {} (no job step starts until it is written)",
                    path_, s.message());
    }
    journal_error_ = s.message();
  } else if (!journal_error_.empty()) {
    spdlog::warn("the job journal {} is written again after {} s", path_,
                 (time_.WallMs() - journal_error_since_ms_) / 1000);
    journal_error_.clear();
    journal_error_since_ms_ = 0;
  }
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
        auto slot_from = [](const json& v) {
          Slot s;
          if (v.is_object()) {
            s.group = v.at("group").get<std::string>();
            s.key = v.at("key").get<std::string>();
            s.value = v.at("value").get<std::string>();
          }
          return s;
        };
        if (const json& h = j.at("halt"); !h.is_null()) {
          halt_ = Halt{h.at("reason").get<std::string>(), h.at("job").get<std::string>(),
                       h.at("step").get<std::string>(), h.at("since_ms").get<std::int64_t>(),
                       slot_from(h.value("slot", json()))};
        }
        for (const auto& r : j.value("releases", json::array())) {
          releases_.push_back(slot_from(r));
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
    std::string aside = path_ + ".corrupt-" + std::to_string(time_.WallMs());
    if (::rename(path_.c_str(), aside.c_str()) == 0) problem += "; set aside as " + aside;
    spdlog::error("job journal unusable: {}", problem);
    // What ran before is unknown: nothing starts until an operator looked.
    SetHalt(Halt{"the job journal was unusable (" + problem +
                     "); check the host, then wardenctl resume",
                 "", "", time_.WallMs(), Slot{}});
  }
  if (!running.is_null() && running.is_object() &&
      (!running["steps"].is_array() || running["steps"].empty())) {
    // Stopped before its first step (waiting for the guard or a slot):
    // nothing ran, so it simply goes back to the front of the queue. A
    // slot it took is found again by its next acquire (held by this host).
    const std::string job = running.value("job", "");
    spdlog::warn("job {} had not started its first step when wardend stopped: queued again",
                 job);
    queue_.push_front(Entry{job, running.value("trigger", "ctl"),
                            running.value("trigger_name", ""), time_.WallMs()});
  } else if (!running.is_null() && running.is_object()) {
    // Cut short by a crash or a kill: report it, halt, run nothing again.
    const std::string job = running.value("job", "");
    const json& steps = running["steps"];
    const json& last = steps.back();
    const std::string step = last.value("step", "");
    const size_t index = steps.size();
    std::string detail;
    if (last.value("ended_ms", std::int64_t{0}) == 0) {
      detail = "wardend stopped while " + step + " was in flight (started " +
               Rfc3339FromMs(last.value("started_ms", std::int64_t{0})) +
               "); it was not run again";
    } else {
      detail = "wardend stopped after " + step + " ended (" + last.value("result", "") +
               ") and before the next step started";
    }
    size_t count = running.value("step_count", size_t{0});
    json f = {{"job", job},
              {"step", step},
              {"step_index", index},
              {"steps", count},
              {"result", "interrupted"},
              {"error", detail},
              {"started", Rfc3339FromMs(running.value("started_ms", std::int64_t{0}))}};
    Slot slot;
    if (const json& sj = running.value("slot", json()); sj.is_object()) {
      slot = Slot{sj.value("group", ""), sj.value("key", ""), sj.value("value", "")};
      f["slot"] = slot.group;   // kept until wardenctl resume
    }
    events_.Emit("job.interrupted", f);
    spdlog::error("job {} was interrupted: {}", job, detail);
    SetHalt(Halt{"job " + job + " was interrupted at " + StepLabel(index - 1, count, step) +
                     ": " + detail + "; check the host, then wardenctl resume",
                 job, step, time_.WallMs(), slot});
  }
  if (halt_) guard_.SetHalted(true, halt_->reason);
  Save();
  ReleaseSlots();   // left over from before a restart
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
    executor_.Fire(
        r.config, *a, Trigger{"job", r.job->name, "", ""},
        [this, alive, run = run_.get()](Executor::Result res) {
          if (alive.expired() || run_.get() != run) return;
          OnActionDone(res.ran, res.ok, res.blocked_reason, res.blocked_detail, res.error,
                       res.stderr_tail);
        },
        [this, alive, run = run_.get(), type = a->common.type] {
          if (alive.expired() || run_.get() != run) return;
          EmitActionStepStart(type);
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
                             const std::string& stderr_tail) {
  Run& r = *run_;
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
  SetHalt(Halt{"job " + r.job->name + " failed at " +
                   StepLabel(r.step, r.job->steps.size(), r.step_name()) + ": " + error,
               r.job->name, r.step_name(), time_.WallMs(), r.slot});
  EndRun(events_.Emit("job.fail", f));
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
  SetHalt(Halt{"job " + r.job->name + " was interrupted at " +
                   StepLabel(r.step, r.job->steps.size(), r.step_name()) + ": " + why +
                   "; check the host, then wardenctl resume",
               r.job->name, r.step_name(), time_.WallMs(), r.slot});
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
  if (self->run_->phase == Phase::kPaused || self->run_->phase == Phase::kSlot) {
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
  if (run_->phase == Phase::kJournal) {
    // Recorded but not started: it did not happen (the journal written
    // next says so).
    run_->steps.pop_back();
    run_->phase = Phase::kGuard;
  }
  if (run_->steps.empty() && run_->phase != Phase::kAction) {
    Requeue();   // nothing ran: back to the queue, no halt
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
    auto now = time_.Now();
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
