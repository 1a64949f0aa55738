// wardend's composition root: owns the loop's services (worker pool,
// process runner, MySQL reads, mutex client, guard, executor, scheduler,
// event log) for one Config, and the lifecycle around them (signals,
// daemon.start/stop events, systemd notifications).
//
// Threads: everything runs on the libev default loop's thread (ev_child
// needs the default loop); only the worker pool has threads of its own.
#pragma once

#include <memory>
#include <string>

#include "daemon/config.h"
#include "daemon/status.h"

struct ev_loop;
struct ev_signal;
struct ev_timer;

namespace warden {

class WorkerPool;
class ProcessRunner;
class MysqlReads;
class MutexClient;
class Guard;
class Executor;
class Scheduler;
class EventLog;

class Daemon {
 public:
  Daemon(struct ev_loop* loop, std::shared_ptr<const Config> config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Opens the event log and state, starts checks and the mutex poll, emits
  // daemon.start and tells systemd READY=1.
  Status Start();
  // Runs the loop until a stop was requested and finished. Returns the
  // process exit code.
  int Run();
  // Graceful stop (SIGTERM): no new checks or actions; running actions
  // finish or hit their timeout; then daemon.stop.
  void RequestStop(const std::string& why);

 private:
  static void OnSignal(struct ev_loop* loop, ev_signal* w, int revents);
  static void OnStopPoll(struct ev_loop* loop, ev_timer* w, int revents);
  static void OnWatchdog(struct ev_loop* loop, ev_timer* w, int revents);

  struct ev_loop* loop_;
  std::shared_ptr<const Config> config_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<ProcessRunner> processes_;
  std::unique_ptr<MysqlReads> mysql_;
  std::unique_ptr<MutexClient> mutex_;
  std::unique_ptr<Guard> guard_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<ev_signal> sigterm_, sigint_, sighup_;
  std::unique_ptr<ev_timer> stop_poll_, watchdog_;
  bool stopping_ = false;
  std::string stop_reason_;
};

}  // namespace warden
