// The interface every action type implements. An action only acts and
// reports what happened; the guard (pause, mutex, cooldown, budget,
// dry-run) and the bookkeeping around it live in daemon/guard and
// daemon/executor.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/options.h"
#include "daemon/base/units.h"
#include "daemon/io/runtime.h"

namespace warden {

// Why an action runs.
struct Trigger {
  std::string kind;    // "check", "job" or "ctl"
  std::string name;    // the check, job or "wardenctl"
  std::string state;   // for checks: the state entered ("crit", "ok" on recover)
  std::string value;   // for checks: the value that tripped it
  // For checks: the threshold of the state ("> 600"), when it has one (the
  // executor fills it from the check's last check.state event).
  std::string threshold = {};
  // Set on the run that resolves what an earlier run reported (ActionType
  // resolves): the check it reported on has recovered.
  bool resolve = false;
  // A step of a rollback job (daemon/jobs): the queue's halt, set by the
  // failure it undoes, does not hold it back.
  bool past_halt = false;
};

struct ActionOutcome {
  bool ok = false;
  std::string error;          // why it failed, for an operator
  int exit_code = -1;         // processes: exit status, -1 if none
  int signal = 0;             // processes: the signal that ended it
  std::string stdout_tail;    // at most 4 KB, valid UTF-8, secrets redacted
  std::string stderr_tail;
  nlohmann::json extra = nlohmann::json::object();  // type-specific fields for action.finish
};

struct ActionCommon {
  std::string name;
  std::string type;
  Duration timeout{60'000};
  std::optional<Duration> cooldown;
  std::optional<Budget> budget;
  bool dry_run = false;
  std::string connection;     // uses_mysql types: "" means [mysql]
};

class Action {
 public:
  Action() = default;
  virtual ~Action() = default;
  Action(const Action&) = delete;
  Action& operator=(const Action&) = delete;

  using Done = std::function<void(ActionOutcome)>;
  // Loop thread only; must not block. Calls `done` exactly once on the loop
  // thread (possibly from inside Run). `common` holds the timeout.
  virtual void Run(Runtime& rt, const ActionCommon& common, const Trigger& trigger, Done done) = 0;

  // Ends the run in flight early (wardenctl abort, a terminating halt): a
  // process gets SIGTERM to its group and SIGKILL `kill_grace` later
  // (exec, service), a statement KILL QUERY from a second connection
  // (mysql_sql). The run's `done` still comes, with what it came to.
  // Returns false when there is nothing it can stop (no run in flight, or
  // a type that ends only by its own timeout: the default). The guard runs
  // one run of an action at a time, so "the run" is unambiguous. Loop
  // thread only.
  virtual bool Terminate(Runtime& /*rt*/, Duration /*kill_grace*/) { return false; }
};

struct ActionType {
  const char* name;
  const char* summary;
  bool guarded;      // passes the guard first (notify: false)
  bool uses_mysql;   // accepts `connection = NAME`
  // The type's own keys, as data (daemon/base/options.h): what the loader
  // checks before `make` runs, the defaults `make` reads, and what
  // `wardenctl help action TYPE` prints.
  std::span<const OptionSpec> options;
  // An [action NAME] section of this type that validates as it stands.
  const char* example;
  // Validates what the table cannot (values against each other) and builds
  // the action, reading its keys through `opts`; no I/O.
  std::unique_ptr<Action> (*make)(OptionReader& opts, const ActionCommon& common);
  // Informs and changes nothing (alertmanager, webhook): a guarded type the
  // guard does not hold back for a paused host, a halted queue or a held
  // mutex; running, cooldown, budget and dry_run still apply.
  bool informs = false;
  // Reports a state that ends (alertmanager): when a check whose on_warn,
  // on_crit or on_error names the action recovers, the executor runs it
  // once more with trigger state "ok" and resolve set (unless on_recover
  // names it too, or dry_run is set).
  bool resolves = false;
};

// Declares the type's table on `opts`, then calls its factory (the config
// loader's way; the caller calls opts.Finish() after).
std::unique_ptr<Action> BuildAction(const ActionType& type, OptionReader& opts,
                                    const ActionCommon& common);

// The keys every action has besides its type's own (type, timeout,
// cooldown, ...), as data for `wardenctl help` and the tests; the config
// loader reads them. `connection` is for mysql types only.
std::span<const OptionSpec> ActionCommonOptions();

const std::vector<ActionType>& ActionTypes();   // actions/registry.cc
const ActionType* FindActionType(std::string_view name);

}  // namespace warden
