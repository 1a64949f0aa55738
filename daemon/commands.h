// What wardend answers on the control socket: the daemon's side of the
// command table (daemon/control/command_table.h, which also says who may
// use each command and checks the requests' members before they get
// here; the protocol is in docs/control.md). One object per daemon; it
// always uses the current config snapshot.
//
// Threads: loop thread only.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/control/command_table.h"
#include "daemon/control/control.h"

namespace warden {

class Daemon;

class ControlCommands final : public CommandTarget {
 public:
  explicit ControlCommands(Daemon& daemon);
  ~ControlCommands() override;
  ControlCommands(const ControlCommands&) = delete;
  ControlCommands& operator=(const ControlCommands&) = delete;

  // The ControlServer handler: Dispatch through the command table.
  void Handle(const nlohmann::json& request, const Peer& peer, Access access,
              ControlServer::Reply reply);
  // Fed every event (EventLog subscriber): resolves pending `run` requests.
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
  void Resume(const CommandRequest& r, ControlServer::Reply reply) override;
  void Reload(const CommandRequest& r, ControlServer::Reply reply) override;

 private:
  void RunAction(const std::string& name, bool dry_run, bool wait, ControlServer::Reply reply);
  void RunJob(const std::string& name, bool dry_run, bool wait, ControlServer::Reply reply);

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
