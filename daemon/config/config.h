// The validated configuration: an immutable snapshot built from the INI
// files in one pass that reports every problem as "file:line: message".
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "actions/action.h"
#include "checks/check.h"
#include "daemon/base/cron.h"
#include "daemon/base/ini.h"
#include "daemon/base/units.h"
#include "daemon/config/metrics_config.h"
#include "daemon/io/fleet.h"
#include "daemon/io/forward_sender.h"
#include "daemon/io/mutex_client.h"
#include "daemon/io/mysql.h"

namespace warden {

struct DaemonConfig {
  std::string host_id;                       // default: hostname
  std::string state_dir = "/var/lib/warden";
  Duration interval{30'000};                 // default `every`
  double jitter = 0.10;                      // fraction of `every`
  // Whether checks that only read a shared snapshot are spread by
  // `jitter` too; by default they run on one tick per cadence, one read.
  bool spread_shared_reads = false;
  int workers = 4;
  std::string service_command = "systemctl"; // service action: argv prefix, or with {op} {name}
  std::optional<Duration> max_pause;         // caps every pause and disable; unset: no cap
  // A terminate (wardenctl abort, a terminating halt): SIGTERM to a running
  // process group, SIGKILL this much later.
  Duration kill_grace{10'000};
};

struct LogConfig {
  std::string level = "info";
  std::string file;    // "" = stderr
  std::string events;  // "" = <state_dir>/events.jsonl
  enum class Journal { kAuto, kYes, kNo } journal = Journal::kAuto;   // daemon/config/log_config.h
  std::string journal_socket = "/run/systemd/journal/socket";
};

struct ControlConfig {
  std::string socket = "/run/warden/wardend.sock";
  std::string group;
};

struct CheckConfig {
  CheckCommon common;
  const CheckType* type = nullptr;
  std::shared_ptr<Check> impl;     // holds per-check run state (e.g. rate samples)
  EvalRules rules;
  std::vector<std::string> depends;
  std::vector<std::string> on_warn, on_crit, on_error, on_recover;
  std::vector<std::string> groups;  // `group = NAME, NAME`
  Location where;
  std::string digest;              // changes when any key of the section changes
};

struct ActionConfig {
  ActionCommon common;
  const ActionType* type = nullptr;
  std::shared_ptr<Action> impl;
  std::vector<std::string> groups;  // `group = NAME, NAME`
  Location where;
};

// [wait NAME]: a job step that succeeds once every named check has been ok
// continuously for `for` (counted from the step's start at the earliest),
// and fails at `timeout`.
struct WaitConfig {
  std::string name;
  std::vector<std::string> checks;
  Duration hold{30'000};            // `for`
  Duration timeout{600'000};
  Location where;
};

// [job NAME]: steps (actions or waits) run in order on the host's job
// queue (daemon/jobs/job_runner.h); the first failing step stops the job and halts
// the queue.
struct JobConfig {
  std::string name;
  std::vector<std::string> steps;
  std::optional<CronSchedule> schedule;
  Duration timeout{7'200'000};      // 2h: checked at step boundaries, paused time excluded
  std::string slot;                 // fleet slot group ("" = none; needs [fleet])
  int slots = 0;                    // the group's capacity; 0 = [fleet] slots
  std::vector<std::string> groups;  // `group = NAME, NAME`
  // The job run on this host right after a step fails ("" = none), through
  // the guard but past the queue's halt; after an interruption found at
  // start-up only with rollback_interrupted, after a terminate only with
  // rollback_on_terminate.
  std::string on_fail;
  Location on_fail_where;           // the on_fail line, for the cross-checks
  bool rollback_interrupted = false;
  bool rollback_on_terminate = false;
  Location where;
};

// [maintenance NAME]: a scheduled window. While one is open (from each
// firing of `schedule` for `hold`) its scope is paused like a wardenctl
// pause, with `reason`.
struct MaintenanceConfig {
  std::string name;
  CronSchedule schedule;
  Duration hold{0};                 // `for`
  std::string scope_kind = "host";  // host, group, action
  std::string scope_name;           // the group or action ("" for host)
  std::string reason;
  Location where;
};

struct Config {
  std::string path;
  DaemonConfig daemon;
  LogConfig log;
  ControlConfig control;
  std::map<std::string, MysqlConnConfig> mysql;   // "" is [mysql]
  MutexConfig mutex;
  FluentdConfig fluentd;
  FleetConfig fleet;
  MetricsConfig metrics;
  std::vector<CheckConfig> checks;                // in file order
  std::vector<ActionConfig> actions;
  std::vector<WaitConfig> waits;
  std::vector<JobConfig> jobs;
  std::vector<MaintenanceConfig> maintenance;
  std::string digest;                             // of all files' bytes, for events
  std::vector<std::string> secrets;               // passwords, tokens: redacted from tails

  // By name: through check_index when it is built (IndexChecks, by
  // LoadConfig), else (a Config put together by hand) by going through
  // them all; a name the index does not have is looked for the same way.
  const CheckConfig* FindCheck(const std::string& name) const;
  void IndexChecks();
  // Each check's name to its place in `checks` (the first of a name).
  std::unordered_map<std::string, size_t> check_index;
  const ActionConfig* FindAction(const std::string& name) const;
  const WaitConfig* FindWait(const std::string& name) const;
  const JobConfig* FindJob(const std::string& name) const;
  // Whether a check, action or job names `group` in its `group` key.
  bool HasGroup(const std::string& group) const;
  std::string EventsPath() const;
};

struct LoadOptions {
  bool check_ownership = true;
  // Read password_file / token_file. `wardenctl validate` run by a user who
  // cannot read them still validates the rest, reporting the read error.
  bool read_secrets = true;
  bool follow_includes = true;  // IniOptions::follow_includes
};

// Parses and validates. On any problem returns nullptr and fills diag.
std::shared_ptr<const Config> LoadConfig(const std::string& path, const LoadOptions& options,
                                         Diagnostics& diag);

}  // namespace warden
