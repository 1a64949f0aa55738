// What wardend answers on the control socket: the daemon's side of the
// command table (daemon/control/command_table.h, which also says who may
// use each command and checks the requests' members before they get
// here; the protocol is in docs/control.md). One object per daemon; it
// always uses the current config snapshot.
//
// Threads: loop thread only.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/status.h"
#include "daemon/control/command_table.h"
#include "daemon/control/control.h"
#include "daemon/engine/pauses.h"

namespace warden {

struct Config;
class Executor;
class Guard;
class JobRunner;
class Scheduler;

// What the commands may use of the daemon, and all they may: the current
// config snapshot, the engine's parts, the daemon's own two operations,
// and the status members only the daemon holds. Daemon implements it
// (privately: nothing else of Daemon shows here); a test can too.
class DaemonControl {
 public:
  virtual ~DaemonControl() = default;
  virtual std::shared_ptr<const Config> config() const = 0;
  virtual bool stopping() const = 0;
  virtual Scheduler& scheduler() = 0;
  virtual Executor& executor() = 0;
  virtual Guard& guard() = 0;
  virtual JobRunner& jobs() = 0;
  // Pauses (wardenctl pause/unpause; daemon/engine/pauses.h): put in
  // force or ended with their event (pause.start, pause.end with cause
  // unpause). EndPause returns the pause ended (nullopt: none had `scope`).
  // The caller saves the state (SaveStateThen).
  virtual void StartPause(Pause p) = 0;
  virtual std::optional<Pause> EndPause(const PauseScope& scope, const Peer& who) = 0;
  // Checks disabled (wardenctl disable/enable), kept like pauses (scope:
  // the check): check.disabled, check.enabled (cause enable). The caller
  // saves the state (SaveStateThen).
  virtual void DisableCheck(Pause d) = 0;
  virtual std::optional<Pause> EnableCheck(const std::string& check, const Peer& who) = 0;
  virtual const PauseSet& disabled() const = 0;
  // Saves the state file now; `saved` hears whether it took it.
  virtual void SaveStateThen(std::function<void(bool saved)> saved) = 0;
  // Re-reads the config; the reply to send (Daemon::Reload).
  virtual nlohmann::json Reload(const std::string& trigger) = 0;
  // Ends what runs now (wardenctl abort, a terminating halt; Daemon's
  // Terminate): the running job (`job`: only that one), the changing
  // actions in flight (`action`: only that one). Both "" with `all`:
  // everything. Returns {"job": reached or null, "actions": [...]} and emits
  // daemon.terminate when anything was reached.
  virtual nlohmann::json Terminate(const std::string& job, const std::string& action,
                                   const std::string& cause, const std::string& reason) = 0;
  // Adds to `status` what only the daemon holds: started, pause (by,
  // since), mutex, events and fluentd, the disk writer, and the state,
  // control and reload problems.
  virtual void AddHealth(nlohmann::json& status) const = 0;
};

// What `events -f` follows: events whose name is one of `types` (a type
// ending in '*' is a prefix: "pause.*"), and whose `check` is one of
// `checks`; an empty list lets everything through.
struct EventFilter {
  std::vector<std::string> types;
  std::vector<std::string> checks;
  bool Matches(const nlohmann::json& event) const;
};
// Checks the types' spelling and that each check is in `config`.
Expected<EventFilter> ParseEventFilter(std::vector<std::string> types,
                                       std::vector<std::string> checks, const Config& config);

class ControlCommands final : public CommandTarget {
 public:
  explicit ControlCommands(DaemonControl& daemon);
  ~ControlCommands() override;
  ControlCommands(const ControlCommands&) = delete;
  ControlCommands& operator=(const ControlCommands&) = delete;

  // The ControlServer handler: Dispatch through the command table.
  void Handle(const nlohmann::json& request, const Peer& peer, Access access,
              ControlServer::Reply reply);
  // Fed every event (EventLog subscriber), as it is emitted: pushes it to
  // the followers (events -f) it matches, resolves pending `run` requests.
  void OnEvent(const nlohmann::json& event);

  // `status`'s answer.
  nlohmann::json StatusJson() const;

  // CommandTarget.
  void Ping(const CommandRequest& r, ControlServer::Reply reply) override;
  void Status(const CommandRequest& r, ControlServer::Reply reply) override;
  void Events(const CommandRequest& r, ControlServer::Reply reply) override;
  void Check(const CommandRequest& r, ControlServer::Reply reply) override;
  void Run(const CommandRequest& r, ControlServer::Reply reply) override;
  void Pause(const CommandRequest& r, ControlServer::Reply reply) override;
  void Unpause(const CommandRequest& r, ControlServer::Reply reply) override;
  void Disable(const CommandRequest& r, ControlServer::Reply reply) override;
  void Enable(const CommandRequest& r, ControlServer::Reply reply) override;
  void Resume(const CommandRequest& r, ControlServer::Reply reply) override;
  void Abort(const CommandRequest& r, ControlServer::Reply reply) override;
  void Reload(const CommandRequest& r, ControlServer::Reply reply) override;

 private:
  // check --group: every check of the group now, one reply.
  void CheckGroup(const std::string& group, ControlServer::Reply reply);
  void RunAction(const std::string& name, bool dry_run, bool wait, ControlServer::Reply reply);
  void RunJob(const std::string& name, bool dry_run, bool wait, ControlServer::Reply reply);
  // events -f: the reply opens a stream; OnEvent pushes to it.
  void Follow(const CommandRequest& r, ControlServer::Reply reply);

  struct PendingRun {
    bool wait = false;
    bool started = false;
    ControlServer::Reply reply;
  };
  DaemonControl& d_;
  std::map<std::string, std::deque<PendingRun>> runs_;   // by action name, FIFO
  struct Follower {
    EventFilter filter;
    std::shared_ptr<ControlServer::Stream> stream;
  };
  std::vector<Follower> followers_;
};

// The last `n` complete lines of a file (at most `max_bytes` read from its
// end). For `wardenctl events`.
std::vector<std::string> LastLines(const std::string& path, size_t n, size_t max_bytes = 8u << 20);

}  // namespace warden
