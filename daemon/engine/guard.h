// The guard: before an action (or a job step) changes anything it asks, in
// this order, paused -> queue halted -> central mutex -> running ->
// cooldown -> budget -> dry-run. The first that says no blocks it with
// that reason. The mutex is fail-closed (MutexClient).
//
// Paused: any pause in force (daemon/engine/pauses.h) whose scope covers
// the action: the host, the action itself, one of its groups, or the
// check that fired it. The detail names that pause.
//
// The guard also keeps the per-action history it needs: whether an action
// is in flight, when its last run ended (cooldown counts from the end), and
// the start times inside its budget window.
//
// Threads: loop thread only. Consult() answers on the loop, possibly from
// inside the call when the mutex answer is cached or not needed.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actions/action.h"
#include "daemon/base/time_source.h"
#include "daemon/engine/pauses.h"

namespace warden {

class MutexClient;

struct GuardDecision {
  bool allowed = false;
  std::string reason;   // paused, halted, mutex, running, cooldown, budget, dry_run
  std::string detail;   // for an operator: "mutex held: upgrade window", "cooldown: 4m12s left"
};

class Guard {
 public:
  using Clock = std::chrono::steady_clock;
  // `time`: the clock cooldown and budget windows are counted on.
  explicit Guard(MutexClient* mutex, const TimeSource& time = TimeSource::Real())
      : mutex_(mutex), time_(&time) {}

  // The pauses in force (the daemon persists them: daemon/engine/state.h).
  PauseSet& pauses() { return pauses_; }
  const PauseSet& pauses() const { return pauses_; }
  // A host pause without expiry (on) or none (off): for tests and callers
  // that know only the host switch.
  void SetPaused(bool paused, std::string reason);
  // The groups (`group = ...`) of each action, and of each job as
  // "job:NAME": what a group pause matches. Replaced at start and reload.
  void SetGroups(std::map<std::string, std::vector<std::string>> groups) {
    groups_ = std::move(groups);
  }
  void SetHalted(bool halted, std::string reason) {
    halted_ = halted;
    halt_reason_ = std::move(reason);
  }
  // Hears the pauses the guard found expired when it was asked (they are
  // removed first), so that their end is said before anything they held
  // back runs. Without it an expired pause is only ignored.
  void SetOnExpired(std::function<void(std::vector<Pause>)> on_expired) {
    on_expired_ = std::move(on_expired);
  }
  // The host pause in force (not expired), or nullptr.
  const Pause* host_pause() const;
  bool halted() const { return halted_; }
  const std::string& halt_reason() const { return halt_reason_; }
  // Reload may replace the mutex client (the old one is kept alive by the
  // daemon until its pending queries have answered).
  void SetMutex(MutexClient* mutex) { mutex_ = mutex; }

  // `check`: the check whose verdict fired the action ("" otherwise), for
  // a pause of that check's actions. `past_halt`: the queue's halt does not
  // hold it back (a rollback job's steps: the halt is the failure it undoes);
  // a pause and the mutex still do.
  void Consult(const ActionCommon& action, std::function<void(GuardDecision)> done,
               const std::string& check = "", bool past_halt = false);
  // For a type that only informs (ActionType::informs): running, cooldown,
  // budget and dry_run, never the pause, the halt or the mutex. Answers at
  // once.
  GuardDecision ConsultLocal(const ActionCommon& action) { return Local(action); }

  // Bookkeeping around a run that the guard allowed.
  void RecordStart(const ActionCommon& action, Clock::time_point now);
  void RecordEnd(const std::string& action, Clock::time_point now);
  bool Running(const std::string& action) const;
  // A run that resolves an earlier one (Executor): in flight, so no other
  // run of the action overlaps it, but counted by neither cooldown nor
  // budget.
  void SetRunning(const std::string& action, bool running) { history_[action].running = running; }

  struct History {
    bool running = false;
    std::optional<Clock::time_point> last_end;
    std::deque<Clock::time_point> starts;   // within the budget window
  };
  // Persisted state (daemon/engine/state.h): what cooldown and budget count on.
  const std::map<std::string, History>& history() const { return history_; }
  void RestoreHistory(const std::string& action, std::optional<Clock::time_point> last_end,
                      std::deque<Clock::time_point> starts) {
    History& h = history_[action];
    h.last_end = last_end;
    h.starts = std::move(starts);
  }

 private:
  GuardDecision Local(const ActionCommon& action);   // running, cooldown, budget, dry_run
  // paused, then halted; nullopt when neither says no.
  std::optional<GuardDecision> Switches(const std::string& action, const std::string& check,
                                        bool past_halt = false);

  MutexClient* mutex_;   // not owned; nullptr: no mutex (tests)
  PauseSet pauses_;
  std::map<std::string, std::vector<std::string>> groups_;
  std::function<void(std::vector<Pause>)> on_expired_;
  bool halted_ = false;
  std::string halt_reason_;
  std::map<std::string, History> history_;
  const TimeSource* time_;
};

}  // namespace warden
