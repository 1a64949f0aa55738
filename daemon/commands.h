// What the control socket's requests do (daemon/control/control.h carries them).
// One object per daemon; it reads the daemon's services directly (friend
// of Daemon) and always uses the current config snapshot.
//
// Commands ("cmd") and who may use them:
//   status                      read   checks, pause, halt, mutex, events, jobs
//   events {"n": N}             read   the latest N (default 20, at most 10000) events
//   check {"name"}              admin  runs a check now (its result counts like any run)
//   run {"name","dry_run","wait"} admin an action through the guard, trigger "ctl", or
//                                      a job onto the queue (dry_run: its plan)
//   resume                      admin  clears the queue's halt (daemon/jobs/jobs.h)
//   pause {"reason"} / unpause  admin  host-local kill switch, persisted at once
//   reload                      admin  re-reads the config (Daemon::Reload)
//
// Threads: loop thread only.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/control/control.h"

namespace warden {

class Daemon;

class ControlCommands {
 public:
  explicit ControlCommands(Daemon& daemon);
  ~ControlCommands();
  ControlCommands(const ControlCommands&) = delete;
  ControlCommands& operator=(const ControlCommands&) = delete;

  // The ControlServer handler.
  void Handle(const nlohmann::json& request, const Peer& peer, Access access,
              ControlServer::Reply reply);
  // Fed every event (EventLog subscriber): resolves pending `run` requests.
  void OnEvent(const nlohmann::json& event);

  // Building blocks, public for tests.
  nlohmann::json Status() const;

 private:
  void Check(const std::string& name, ControlServer::Reply reply);
  void Run(const std::string& name, bool dry_run, bool wait, ControlServer::Reply reply);
  void RunJob(const std::string& name, bool dry_run, bool wait, ControlServer::Reply reply);
  void Events(std::int64_t n, ControlServer::Reply reply);

  struct PendingRun {
    bool wait = false;
    bool started = false;
    ControlServer::Reply reply;
  };
  Daemon& d_;
  std::map<std::string, std::deque<PendingRun>> runs_;   // by action name, FIFO
};

// The last `n` complete lines of a file (at most `max_bytes` read from its
// end). For `wardenctl events`.
std::vector<std::string> LastLines(const std::string& path, size_t n, size_t max_bytes = 8u << 20);

}  // namespace warden
