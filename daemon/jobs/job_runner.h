// The host's job queue: one job at a time, FIFO, the same job never queued
// twice, each step guarded, the first failure stopping everything.
//
// A job ([job NAME]) is a list of steps, each an action or a wait
// ([wait NAME]). Before every step the guard is asked (paused, halted,
// mutex): a "no" parks the job at that step boundary as `paused`, and it
// goes on by itself once the guard says yes. A step that fails (non-zero
// exit, signal, timeout, SQL error, a wait that times out, an action the
// guard blocks for cooldown or budget) ends the job with job.fail, leaves
// the host as it is and halts the queue (Guard::SetHalted: actions are
// blocked too) until Resume().
//
// Crash safety: the journal, <state_dir>/jobs.json, holds the queue, the
// halt and the running job with the start and end of each of its steps.
// It is replaced atomically (write, fsync, rename, fsync of the directory)
// before a step starts and after it ends. At Start() a job still in the
// journal was cut short: it is reported job.interrupted with the step that
// was in flight, the queue is halted, and nothing is run again.
//
// Terminate (wardenctl abort, a terminating halt): the step in flight is
// ended through Executor::Terminate (SIGTERM to its process group, SIGKILL
// after [daemon] kill_grace; KILL QUERY for a statement), a wait or a pause
// at once; the job ends with job.terminated at its step and the queue halts.
//
// Rollback: `on_fail = JOB` runs JOB right after a step of this job failed
// (job.rollback.start), through the guard but past the queue's halt that
// the failure set; after a terminate only with rollback_on_terminate, after
// an interruption found at Start() only with rollback_interrupted. Its end
// is job.rollback.finish (ok) or job.rollback.fail (failed, terminated or
// interrupted; its own on_fail runs next); the queue stays halted either
// way and Status shows both results. Resume is refused while it runs.
//
// Triggers: Enqueue() (wardenctl run, a check's on_crit/on_warn/on_error
// through Executor::SetJobQueue) and each job's `schedule` (cron, local
// time, an ev_periodic so that wall-clock jumps are followed).
//
// Threads: loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/action.h"
#include "daemon/base/disk_writer.h"
#include "daemon/base/time_source.h"
#include "daemon/config/config.h"

struct ev_loop;
struct ev_timer;
struct ev_periodic;

namespace warden {

class Guard;
class Executor;
class FleetSlots;
class Scheduler;
class EventLog;

class JobRunner {
 public:
  using Clock = std::chrono::steady_clock;
  JobRunner(struct ev_loop* loop, Guard& guard, Executor& executor, Scheduler& scheduler,
            EventLog& events, std::string journal_path,
            const TimeSource& time = TimeSource::Real());
  ~JobRunner();
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Reads the journal (a job cut short becomes job.interrupted and halts the
  // queue), arms the schedules and starts the queue. Fails (invalid) with a
  // description of a journal that could not be used; such a file is set
  // aside and the queue starts halted, because what ran is unknown.
  warden::Status Start(std::shared_ptr<const Config> config);   // qualified: Status() below
  // Fleet slots (null without [fleet]): a job with `slot = GROUP` takes one
  // before its first step, waiting as job.waiting while none is free; keeps
  // it on failure or interruption until Resume, releases it on success.
  void SetFleet(FleetSlots* fleet) { fleet_ = fleet; }
  // The journal is written from here (wardend's disk thread): it must
  // outlive this runner or be stopped first. Default: at once, in Save.
  void SetWriter(DiskWriter* writer) { writer_ = writer; }
  // New snapshot: schedules are re-armed; queued jobs are looked up by name
  // when they start; a running job finishes with the snapshot it began on.
  void Reload(std::shared_ptr<const Config> config);
  // Graceful stop: no new step starts. A wait or a paused job is
  // interrupted now; an action step in flight reports interrupted when it
  // ends (the daemon waits for it). The queue is halted and kept.
  void Stop(const std::string& why);

  // Called when a job has ended: its last event (job.finish, job.fail or
  // job.interrupted).
  using Done = std::function<void(const nlohmann::json& event)>;
  struct Queued {
    bool ok = false;
    std::string error;   // why not: unknown job, already queued or running, stopping
    size_t position = 0; // 1: next to run (or running now)
  };
  // trigger.kind: "ctl", "check", "schedule" or "rollout".
  Queued Enqueue(const std::string& job, const Trigger& trigger, Done done = nullptr);
  // Removes from the queue, without running them, the jobs queued by
  // `trigger_kind` `trigger_name` (a rollout an earlier wardend queued and
  // that is now reported failed): each gets a job.fail saying `why`; the
  // queue is not halted for it (nothing ran). Returns how many. A running
  // job is not touched.
  size_t DropQueued(const std::string& trigger_kind, const std::string& trigger_name,
                    const std::string& why);

  // wardenctl resume: releases the slot the halted job kept, clears the halt
  // and starts the queue again. A slot that cannot be released (etcd
  // unreachable) leaves the halt in place and says why.
  void Resume(const std::string& by, std::function<void(nlohmann::json)> reply);
  // wardenctl run JOB --dry-run: the plan, the guard's answer now, nothing run.
  void Plan(const std::string& job, std::function<void(nlohmann::json)> reply);

  // Ends the running job now (see above). `job`: only when that job runs
  // ("" for whichever runs). Returns the job reached ("" none). `why` goes
  // into job.terminated and the halt's reason.
  std::string Terminate(const std::string& job, Duration kill_grace, const std::string& why);

  nlohmann::json Status() const;
  bool halted() const { return halt_.has_value(); }
  bool step_in_flight() const;

 private:
  struct Slot {
    std::string group;
    std::string key;      // "" while not held
    std::string value;    // exactly as stored in etcd
  };
  struct Halt {
    std::string reason;
    std::string job;
    std::string step;
    std::int64_t since_ms = 0;
    Slot slot;            // kept by the failed job until Resume
    // The rollback run after the failure ("" none): its job, and its result
    // (running, ok, fail, terminated, interrupted) and error.
    std::string rollback;
    std::string rollback_result;
    std::string rollback_error;
  };
  struct Entry {
    std::string job;
    std::string trigger;        // ctl, check, schedule
    std::string trigger_name;   // the check, "wardenctl", the schedule text
    std::int64_t queued_ms = 0;
  };
  struct StepRecord {
    std::string step;
    std::int64_t started_ms = 0;
    std::int64_t ended_ms = 0;  // 0: in flight
    std::string result;         // ok, fail, dry_run; "" while in flight
  };
  // kJournal: the step is recorded, the journal's write is on its way;
  // the step starts when it is on disk.
  enum class Phase { kGuard, kPaused, kSlot, kJournal, kAction, kWait };
  std::string failed_stderr_;   // the failing step's stderr tail, for job.fail
  struct Run;

  void Pump();
  // A queued job that will never run: job.fail with `error` (and `extra`
  // fields), its waiters answered; the queue is not halted (nothing ran).
  void FailUnrun(const std::string& job, const std::string& error,
                 nlohmann::json extra = nlohmann::json::object());
  void NextStep();
  void OnGuard(bool allowed, const std::string& reason, const std::string& detail);
  void EnterPaused(const std::string& reason, const std::string& detail);
  void StartStep();
  // job.step `start` for the current step, an action of `type`.
  void EmitActionStepStart(const std::string& type);
  void OnActionDone(bool ran, bool ok, const std::string& blocked, const std::string& detail,
                    const std::string& error, const std::string& stderr_tail,
                    const std::string& terminated);
  void PollWait();
  void AcquireSlot();
  void OnSlot(struct SlotOutcome out);
  void ReleaseSlots();
  void Requeue();
  void StepDone(const std::string& result, const std::string& error);
  void Finish();
  void Fail(const std::string& error);
  void Interrupt(const std::string& why);
  // The job ends job.terminated (Terminate, or a step the executor ended).
  void Terminated(const std::string& why);
  // A rollback run ended: job.rollback.finish or job.rollback.fail with
  // `f` (the step fields), the halt's rollback result, and the next
  // rollback of a failed one.
  void RollbackEnded(const std::string& result, const std::string& error, nlohmann::json f);
  // Runs the on_fail job of `failed` (as now configured) when `cause`
  // (fail, terminated, interrupted) allows it.
  void StartRollback(const std::string& failed, const std::string& step,
                     const std::string& error, const std::string& cause);
  void EndRun(const nlohmann::json& event);
  void SetHalt(Halt h);
  nlohmann::json StepFields() const;
  // StepFields with `result` = start and the step's `type`.
  nlohmann::json StepStartFields(const std::string& type) const;

  void ArmSchedules();
  void DisarmSchedules();
  static void OnTimer(struct ev_loop* loop, ev_timer* w, int revents);
  static void OnRetryRelease(struct ev_loop* loop, ev_timer* w, int revents);
  static void OnPeriodic(struct ev_loop* loop, ev_periodic* w, int revents);
  static double Reschedule(ev_periodic* w, double now) noexcept;

  nlohmann::json JournalJson() const;
  // Writes the journal through the DiskWriter (in order, the newest
  // content wins); `done` hears the result on the loop. A failure is logged
  // once and shown by Status.
  void Save(std::function<void(const warden::Status&)> done = nullptr);
  void Saved(const warden::Status& s);
  // The step recorded in the journal is on disk: it starts now.
  void BeginStep();
  // The job goes on after a pause: the time paused is counted, not charged.
  void EndPause();

  struct ev_loop* loop_;
  Guard& guard_;
  Executor& executor_;
  Scheduler& scheduler_;
  EventLog& events_;
  const std::string path_;
  const TimeSource& time_;   // timeouts, pauses, the journal's times
  std::shared_ptr<const Config> config_;
  std::deque<Entry> queue_;
  std::optional<Halt> halt_;
  std::unique_ptr<Run> run_;
  std::map<std::string, std::vector<Done>> waiters_;   // by job name
  FleetSlots* fleet_ = nullptr;
  std::vector<Slot> releases_;   // finished jobs' slots whose release failed: retried
  std::unique_ptr<ev_timer> retry_release_;
  std::mt19937_64 rng_{std::random_device{}()};   // slot poll jitter: hosts never in lockstep
  struct Schedule;
  std::vector<std::unique_ptr<Schedule>> schedules_;
  bool stopping_ = false;
  DiskWriter own_writer_{nullptr};
  DiskWriter* writer_ = &own_writer_;
  std::string journal_error_;   // "" while the journal is written
  std::int64_t journal_error_since_ms_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace warden
