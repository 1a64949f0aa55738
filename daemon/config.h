// The validated configuration: an immutable snapshot built from the INI
// files in one pass that reports every problem as "file:line: message".
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actions/action.h"
#include "checks/check.h"
#include "daemon/cron.h"
#include "daemon/fleet.h"
#include "daemon/evaluator.h"
#include "daemon/ini.h"
#include "daemon/mysql.h"
#include "daemon/units.h"

namespace warden {

struct DaemonConfig {
  std::string host_id;                       // default: hostname
  std::string state_dir = "/var/lib/warden";
  Duration interval{30'000};                 // default `every`
  double jitter = 0.10;                      // fraction of `every`
  int workers = 4;
  std::string service_command = "systemctl"; // service action: argv prefix, or with {op} {name}
};

struct LogConfig {
  std::string level = "info";
  std::string file;    // "" = stderr
  std::string events;  // "" = <state_dir>/events.jsonl
};

struct ControlConfig {
  std::string socket = "/run/warden/wardend.sock";
  std::string group;
};

struct MutexConfig {
  enum class Mode { kHttp, kEtcd, kOff };
  Mode mode = Mode::kHttp;
  std::string url;                 // kHttp: http(s):// or file://
  Duration timeout{2000};          // kHttp (kEtcd: etcd.timeout)
  Duration cache{5000};
  Duration poll{15'000};
  std::string token;               // kHttp: from token_file; never logged
  std::string ca_file;             // kHttp (kEtcd: etcd.ca_file)
  // kEtcd (backend = etcd): held while <prefix>/mutex exists, clear only
  // while <prefix>/armed exists too (daemon/mutex_client.h). The connection
  // (endpoints, timeout, connect_timeout, ca_file, cert_file, key_file,
  // cluster_id) and prefix are [fleet]'s keys, read by the same code.
  EtcdConfig etcd;
  std::string prefix = "/warden";
};

// [fluentd]: ship every event with the forward protocol (daemon/forward_sender.h).
struct FluentdConfig {
  bool enabled = false;              // a [fluentd] section is present
  std::string address;               // as written: "host:port" or "unix:/path"
  std::string host;                  // numeric IP (localhost means 127.0.0.1); "" for unix
  int port = 0;
  std::string unix_path;             // set for unix: addresses
  std::string tag = "warden";        // tag prefix: <tag>.<family>
  bool ack = true;
  std::uint64_t buffer_limit = 256ull << 20;
  std::uint64_t chunk_limit = 1ull << 20;
  Duration ack_timeout{60'000};      // no ack this long: reconnect and resend
  Duration stop_flush{5'000};        // at stop, wait this long for the backlog; 0: no wait
};

struct CheckConfig {
  CheckCommon common;
  const CheckType* type = nullptr;
  std::shared_ptr<Check> impl;     // holds per-check run state (e.g. rate samples)
  EvalRules rules;
  std::vector<std::string> depends;
  std::vector<std::string> on_warn, on_crit, on_error, on_recover;
  Location where;
  std::string digest;              // changes when any key of the section changes
};

struct ActionConfig {
  ActionCommon common;
  const ActionType* type = nullptr;
  std::shared_ptr<Action> impl;
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
// queue (daemon/jobs.h); the first failing step stops the job and halts
// the queue.
struct JobConfig {
  std::string name;
  std::vector<std::string> steps;
  std::optional<CronSchedule> schedule;
  Duration timeout{7'200'000};      // 2h: checked at step boundaries, paused time excluded
  std::string slot;                 // fleet slot group ("" = none; needs [fleet])
  int slots = 0;                    // the group's capacity; 0 = [fleet] slots
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
  std::vector<CheckConfig> checks;                // in file order
  std::vector<ActionConfig> actions;
  std::vector<WaitConfig> waits;
  std::vector<JobConfig> jobs;
  std::string digest;                             // of all files' bytes, for events
  std::vector<std::string> secrets;               // passwords, tokens: redacted from tails

  const CheckConfig* FindCheck(const std::string& name) const;
  const ActionConfig* FindAction(const std::string& name) const;
  const WaitConfig* FindWait(const std::string& name) const;
  const JobConfig* FindJob(const std::string& name) const;
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
