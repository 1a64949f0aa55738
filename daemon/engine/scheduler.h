// Runs every check on its own cadence (first run spread by `jitter` over a
// 100 ms grid, so that checks due together run together), feeds results to
// its Evaluator, emits check.state on every change and hands what to fire
// to the Executor.
//
// Timers: checks due at the same instant (to the millisecond) are one
// entry of a table ordered by time, and one ev_timer waits for the first:
// at 1,000 checks on the grid that is ~10 timer expiries a second, not
// 1,000 timers in libev's heap each expiring on its own.
//
// Shared reads: the checks of a batch whose run only reads a shared
// snapshot (Check::shared_read: mysql_status, mysql_variable) are launched
// together, one read per source and scope (SharedSource: SHOW GLOBAL
// STATUS on one connection) for the names they need, and that read's one
// completion has each of them read its result from it (Check::ReadFrom).
// Such checks are not spread by jitter (unless [daemon]
// spread_shared_reads says so): they run on one grid of their cadence,
// so that those of one `every` share one read per tick.
//
// Cadence: the timer repeats every `every` whatever the check does. Due
// times are read from Runtime::time (the real steady clock in wardend, a
// hand-moved one in tests: a check is due when that clock says so and its
// timer has fired). A check
// whose previous run is still in flight is not started again (the tick is
// counted as overrun). Checks never block the loop: blocking work goes to
// the worker pool, processes to the ProcessRunner.
//
// depends: while a dependency is pending the check waits (retrying within a
// second); while it is in any other state but ok, the check is skipped.
//
// Threads: loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/engine/evaluator.h"

struct ev_timer;

namespace warden {

class Executor;
class EventLog;
struct PersistedState;

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;
  Scheduler(Runtime& rt, Executor& executor, EventLog& events);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void Start(std::shared_ptr<const Config> config);
  // Stops the timers; runs in flight complete but fire nothing.
  void Stop();
  // Swaps in a new snapshot. A check whose definition did not change
  // (same name and CheckConfig::digest) keeps its state, counters and
  // cadence, and a run of it still in flight reports into the new entry.
  // Other runs in flight finish against the old snapshot (kept alive until
  // they do) and are then dropped.
  void Reload(std::shared_ptr<const Config> config);

  // Runs one check now (wardenctl check), whatever its depends say; its
  // result counts like any other run. If a run is in flight, `done` gets
  // that run's result. Returns false when there is no such check or the
  // scheduler is stopped.
  using RunDone = std::function<void(const Measurement&, const Verdict&)>;
  bool RunNow(const std::string& name, RunDone done);
  // wardenctl disable / enable: a disabled check does not run (a run in
  // flight counts for nothing), is in state `disabled` (check.state; no
  // hook), and its dependents are skipped; enabled, it is pending and runs
  // at its next tick. False when there is no such check. Not kept across
  // Reload for a check whose definition changed: the caller applies it again.
  bool SetDisabled(const std::string& name, bool disabled);

  // Persisted state (daemon/engine/state.h). Restore only takes states of checks
  // whose digest matches, and only bad ones (warn, crit, error): a restart
  // neither re-fires their hooks nor forgets that they must recover.
  void Capture(PersistedState& state) const;
  void Restore(const PersistedState& state);

  struct CheckStatus {
    std::string name;
    std::string type;
    CheckState state;
    std::string value;
    std::string error;
    Clock::time_point since;
    std::uint64_t runs = 0;
    std::uint64_t overruns = 0;
    bool in_flight = false;
    std::optional<Clock::time_point> last_run;
    std::uint64_t errors = 0;   // runs whose result was an error
    std::string detail;         // the last result's Measurement::detail
    std::string unit;           // the last value's unit
  };
  std::vector<CheckStatus> Status() const;
  // What the metrics page reads of each check, in config order, without
  // copying its strings (Status copies five per check): the pointers are
  // the entries' own, valid until the next Start, Reload or result.
  struct CheckView {
    const std::string* name;
    const std::string* value;
    CheckState state;
    Clock::time_point since;
    std::uint64_t runs;
    std::uint64_t errors;
    std::optional<Clock::time_point> last_run;
  };
  void Views(std::vector<CheckView>& out) const;
  // Counted up whenever a check's state, since or name may have changed
  // (a state change, Start, Reload, Restore, disable/enable), and
  // whenever a run's result is an error: equal counts, the same states
  // and error counters (the metrics page reuses their text).
  std::uint64_t state_changes() const { return state_changes_; }
  std::uint64_t error_results() const { return error_results_; }
  std::uint64_t runs() const { return runs_; }
  int in_flight() const;

 private:
  struct Entry;
  // Keeps entries whose run was in flight when their scheduler went away,
  // ownerless, until exit: the run's completion still points at its entry.
  static void KeepOrphans(std::vector<std::unique_ptr<Entry>> orphans);
  static void OnTimer(struct ev_loop* loop, ev_timer* w, int revents);   // a retry
  static void OnWheel(struct ev_loop* loop, ev_timer* w, int revents);
  // Runs the checks due now, each re-armed `every` after its due time as a
  // repeating timer would be (at the latest, now).
  void RunDue();
  void Due(Entry& e);
  // Whether e is to run now (else it is in flight, waits for or is
  // skipped because of a dependency, or the scheduler is stopped).
  bool Ready(Entry& e);
  void Finish(Entry& e, const Measurement& m);
  // Checks of one batch that read the same shared snapshot: one read, one
  // completion that has each of them read its result from it (Check::ReadFrom).
  struct SharedGroup {
    int id = -1;          // SharedId(read)
    SharedRead read;      // the first entry's
    std::unique_ptr<std::vector<Entry*>> entries;
  };
  std::vector<SharedGroup> groups_;   // RunDue's, kept with their capacity
  size_t last_group_ = 0;
  std::vector<Entry*>& GroupOf(const Entry& e);
  // A number for each shared read (source and scope) seen, so that
  // grouping compares numbers, not names in the checks' own memory; -1
  // for a check that reads none.
  std::map<std::pair<const SharedSource*, std::string>, int> shared_ids_;
  int SharedId(const SharedRead& read);
  // The names a shared read asks its source for: those of the checks due
  // with it (NamesOf), kept per shared read for the next tick.
  struct NamesKept {
    std::vector<Entry*> entries;
    std::uint64_t generation = 0;
    std::shared_ptr<const NameSet> names;
  };
  std::vector<NamesKept> names_;   // by SharedId
  std::shared_ptr<const NameSet> NamesOf(int id, const std::vector<Entry*>& entries);
  void LaunchShared(SharedGroup& group);
  static void FinishShared(const std::vector<Entry*>& entries, const Check::Snapshot& snapshot);
  void Apply(Entry& e, const Verdict& v);
  void Launch(Entry& e);
  // Arms e's cadence, its first run `first` seconds after `base_ms` (NowMs).
  void Arm(Entry& e, double first, double base_ms);
  void Disarm(Entry& e);
  void RearmWheel();
  double NowMs() const;   // rt_.time, milliseconds
  // Seconds to a check's first run: 0 without jitter; for a shared read's,
  // the next point of its cadence's grid; else a random point within
  // every x jitter, on the kRunGrid tick.
  double FirstRun(const CheckConfig& c);
  static constexpr double kRunGrid = 0.1;   // seconds
  void ReapRetired();

  Runtime& rt_;
  Executor& executor_;
  EventLog& events_;
  std::shared_ptr<const Config> config_;
  std::vector<std::unique_ptr<Entry>> entries_;
  // Entries of older snapshots whose run is still in flight, with the
  // snapshot their CheckConfig pointers point into.
  struct Retired {
    std::shared_ptr<const Config> config;
    std::vector<std::unique_ptr<Entry>> entries;
  };
  std::vector<Retired> retired_;
  // Moves `e` into `into` while its run is in flight (its completion points
  // at it); otherwise nothing refers to it any more and it is left to go.
  static void RetireIfInFlight(std::unique_ptr<Entry>& e, Retired& into);
  std::map<std::string, Entry*> by_name_;
  // Armed entries by due time (steady ms, NowMs rounded down) and the timer
  // for the first of them.
  std::map<std::int64_t, std::vector<Entry*>> due_;
  std::unique_ptr<ev_timer> wheel_;
  std::uint64_t generation_ = 0;   // bumped when entries may have been destroyed
  std::vector<Entry*> batch_;      // RunDue's, kept for its capacity
  std::vector<decltype(due_)::node_type> ready_;   // the same
  // The checks the last RunDue left in flight on their own (not in a
  // shared read). Their results come back close together, a run after
  // their state was last touched: the first one to finish prefetches the
  // others' (Warm). Cleared whenever entries may be destroyed.
  std::vector<Entry*> launched_;
  bool launched_warm_ = true;
  void Warm();
  // Asks for what the results of `entries` touch: the entries, then their
  // checks, so that the misses overlap. A shared read's entries are
  // FinishShared's.
  static void Prefetch(const std::vector<Entry*>& entries);
  std::mt19937_64 rng_{std::random_device{}()};
  bool stopped_ = false;
  std::uint64_t runs_ = 0;
  std::uint64_t state_changes_ = 0;
  std::uint64_t error_results_ = 0;
};

}  // namespace warden
