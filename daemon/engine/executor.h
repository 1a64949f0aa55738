// Runs actions: guard first (for types that change something; only its
// local part, running, cooldown, budget and dry_run, for types that only
// inform), then the action itself, with action.blocked / action.start /
// action.finish events.
//
// Types that resolve what they reported (ActionType::resolves) are run once
// more, unguarded, when a check whose on_warn, on_crit or on_error names
// them recovers (seen as its check.state event; run from the loop just
// after, so subscribers see the events in order). Such a run counts for
// neither cooldown nor budget, but no other run of the action overlaps it.
// Tails are cut to 4 KB of valid UTF-8 and stripped of every configured
// secret before they reach an event.
//
// Threads: loop thread only. Ownership: borrows everything it is given;
// the Config snapshot must outlive the runs started with it (the daemon
// keeps it alive through a shared_ptr captured by each run).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actions/action.h"
#include "daemon/config/config.h"
#include "daemon/engine/guard.h"

struct ev_timer;

namespace warden {

class EventLog;

// What an action has done since wardend started, counted by the executor
// for the metrics endpoint (daemon/control/metrics.h) to read: plain
// counters, kept across reloads under the action's name.
struct ActionCounters {
  // Upper bounds (seconds) of the duration histogram's buckets; +Inf is
  // `runs()`. From a quick SQL statement to a long restart.
  static constexpr std::array<double, 11> kBuckets = {0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                                      5,    10,  30,   60,  300};
  std::uint64_t ok = 0;
  std::uint64_t fail = 0;
  std::map<std::string, std::uint64_t> blocked;        // by the guard's reason
  std::array<std::uint64_t, kBuckets.size()> within{};  // runs that took <= kBuckets[i]
  double seconds = 0;                                   // the durations' sum
  std::uint64_t runs() const { return ok + fail; }
  void Finished(bool succeeded, double took);
};

class Executor {
 public:
  Executor(Runtime& rt, Guard& guard, EventLog& events);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // The configuration in force: where a recovered check's hooks are looked
  // up (set at start and at each reload). Without one nothing is resolved.
  void SetConfig(std::shared_ptr<const Config> config) { config_ = std::move(config); }

  // Result of one action run: ran and succeeded, or why not.
  struct Result {
    bool ran = false;
    bool ok = false;
    std::string blocked_reason;
    std::string blocked_detail;
    std::string error;          // why it failed (secrets redacted)
    std::string stderr_tail;    // as in action.finish: for a failed job step's event
    std::string terminated;     // Terminate's reason when it reached the run ("" otherwise)
  };
  using Done = std::function<void(Result)>;

  // Runs one action through the guard. `config` keeps the snapshot alive.
  // `started`, if given, is called once the guard has let the action
  // through, just before it starts (before action.start); not when it is
  // blocked.
  using Started = std::function<void()>;
  void Fire(std::shared_ptr<const Config> config, const ActionConfig& action, Trigger trigger,
            Done done = nullptr, Started started = nullptr);
  // Runs the named actions one after another (each guarded on its own; a
  // blocked or failed one does not stop the rest). A name that is a job is
  // handed to the job queue (SetJobQueue) and the rest go on at once.
  void FireAll(std::shared_ptr<const Config> config, std::vector<std::string> names,
               Trigger trigger, std::function<void()> done = nullptr);

  using JobQueue = std::function<void(const std::string& job, const Trigger& trigger)>;
  void SetJobQueue(JobQueue queue) { job_queue_ = std::move(queue); }

  // Ends the runs in flight of the types that change something (not those
  // that only inform, not resolves) through their type's Action::Terminate:
  // SIGTERM to a process group and SIGKILL `kill_grace` later, KILL QUERY
  // for a statement. `action`: only that action's run ("" for every one).
  // Each one's action.finish says terminated (with `why`), and its Done
  // gets `why` as Result::terminated. Returns the names of the runs it reached; an
  // action whose type cannot stop early (haproxy, http_post) is absent: it
  // ends by its own timeout.
  std::vector<std::string> Terminate(const std::string& action, Duration kill_grace,
                                     const std::string& why);
  // Whether `action` has a run in flight that Terminate would reach.
  bool Terminable(const std::string& action) const;

  int running() const { return running_; }
  std::uint64_t started() const { return started_; }
  // By action name; an action that never ran nor was blocked is absent.
  const std::map<std::string, ActionCounters>& counters() const { return counters_; }

 private:
  void Start(std::shared_ptr<const Config> config, const ActionConfig& action, Trigger trigger,
             Done done, Started started);
  void Decided(std::shared_ptr<const Config> config, const ActionConfig& action, Trigger trigger,
               Done done, Started started, const GuardDecision& d);
  // check.state: remembers thresholds, queues the resolves of a recovery.
  void OnEvent(const nlohmann::json& e);
  // Runs the queued resolves whose action is not in flight.
  void RunResolves();
  void ScheduleResolves();   // RunResolves from the loop, at once
  static void OnResolveTimer(struct ev_loop* loop, ev_timer* w, int revents);

  struct Resolve {
    std::shared_ptr<const Config> config;
    std::string action;
    Trigger trigger;
  };

  // A run in flight, from Start to its completion.
  struct InFlight {
    const ActionConfig* action = nullptr;   // kept alive by `config`
    std::shared_ptr<const Config> config;
    bool resolve = false;
    std::string terminated;                 // why Terminate ended it ("" if it did not)
  };

  Runtime& rt_;
  Guard& guard_;
  std::map<std::uint64_t, InFlight> in_flight_;   // by run number
  std::uint64_t next_run_ = 1;
  EventLog& events_;
  JobQueue job_queue_;
  int running_ = 0;
  std::uint64_t started_ = 0;
  std::shared_ptr<const Config> config_;
  std::map<std::string, std::string> thresholds_;   // check -> its state's threshold
  std::vector<Resolve> resolves_;                   // waiting for the loop or for a run to end
  std::unique_ptr<ev_timer> resolve_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::map<std::string, ActionCounters> counters_;
};

}  // namespace warden
