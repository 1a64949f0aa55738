#include "daemon/daemon.h"

#include <ev.h>
#include <systemd/sd-daemon.h>

#include <spdlog/spdlog.h>

#include <filesystem>

#include "daemon/events.h"
#include "daemon/executor.h"
#include "daemon/guard.h"
#include "daemon/mutex_client.h"
#include "daemon/mysql.h"
#include "daemon/process.h"
#include "daemon/scheduler.h"
#include "daemon/worker_pool.h"
#include "version.h"

namespace warden {

Daemon::Daemon(struct ev_loop* loop, std::shared_ptr<const Config> config)
    : loop_(loop), config_(std::move(config)) {}

Daemon::~Daemon() {
  for (auto* s : {sigterm_.get(), sigint_.get(), sighup_.get()}) {
    if (s) ev_signal_stop(loop_, s);
  }
  if (stop_poll_) ev_timer_stop(loop_, stop_poll_.get());
  if (watchdog_) ev_timer_stop(loop_, watchdog_.get());
  if (scheduler_) scheduler_->Stop();
  // Threads and children first: nothing may call back into what follows.
  workers_.reset();
  processes_.reset();
  scheduler_.reset();
  executor_.reset();
  guard_.reset();
  mutex_.reset();
  mysql_.reset();
}

Status Daemon::Start() {
  const Config& c = *config_;
  std::error_code ec;
  std::filesystem::create_directories(c.daemon.state_dir, ec);
  if (ec) {
    return Status::Error("cannot create state_dir " + c.daemon.state_dir + ": " + ec.message());
  }
  std::filesystem::permissions(c.daemon.state_dir, std::filesystem::perms::owner_all |
                                                       std::filesystem::perms::group_read |
                                                       std::filesystem::perms::group_exec,
                               ec);
  events_ = std::make_unique<EventLog>();
  Status s = events_->Open(c.EventsPath(), c.daemon.state_dir, c.daemon.host_id);
  if (!s.ok()) return s;

  workers_ = std::make_unique<WorkerPool>(loop_, c.daemon.workers);
  processes_ = std::make_unique<ProcessRunner>(loop_);
  mysql_ = std::make_unique<MysqlReads>(*workers_, c.mysql);
  mutex_ = std::make_unique<MutexClient>(loop_, c.mutex, c.daemon.host_id);
  guard_ = std::make_unique<Guard>(mutex_.get());
  runtime_ = std::make_unique<Runtime>();
  runtime_->loop = loop_;
  runtime_->workers = workers_.get();
  runtime_->processes = processes_.get();
  runtime_->mysql = mysql_.get();
  runtime_->events = events_.get();
  runtime_->config = config_.get();
  executor_ = std::make_unique<Executor>(*runtime_, *guard_, *events_);
  scheduler_ = std::make_unique<Scheduler>(*runtime_, *executor_, *events_);

  nlohmann::json start = {{"version", kVersion}, {"config_digest", c.digest},
                          {"config", c.path}, {"checks", c.checks.size()},
                          {"actions", c.actions.size()}};
  events_->Emit("daemon.start", std::move(start));
  spdlog::info("wardend {} starting on {}: {} checks, {} actions, config {} ({})", kVersion,
               c.daemon.host_id, c.checks.size(), c.actions.size(), c.path, c.digest);

  EventLog* ev = events_.get();
  mutex_->SetOnChange([ev](MutexAnswer a) {
    ev->Emit("mutex.state", {{"held", a.held}, {"reason", a.reason}});
    if (a.held) spdlog::warn("mutex held: {}", a.reason);
    else spdlog::info("mutex clear ({})", a.reason);
  });
  mutex_->Start();
  scheduler_->Start(config_);

  auto signal = [this](int signum) {
    auto w = std::make_unique<ev_signal>();
    ev_signal_init(w.get(), &Daemon::OnSignal, signum);
    w->data = this;
    ev_signal_start(loop_, w.get());
    ev_unref(loop_);  // signal watchers alone do not keep the loop running
    return w;
  };
  sigterm_ = signal(SIGTERM);
  sigint_ = signal(SIGINT);
  sighup_ = signal(SIGHUP);

  std::uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    watchdog_ = std::make_unique<ev_timer>();
    double every = static_cast<double>(watchdog_usec) / 2e6;
    ev_timer_init(watchdog_.get(), &Daemon::OnWatchdog, every, every);
    watchdog_->data = this;
    ev_timer_start(loop_, watchdog_.get());
  }
  sd_notify(0, "READY=1");
  return Status::Ok();
}

int Daemon::Run() {
  ev_run(loop_, 0);
  return 0;
}

void Daemon::OnSignal(struct ev_loop*, ev_signal* w, int) {
  auto* d = static_cast<Daemon*>(w->data);
  if (w->signum == SIGHUP) {
    // Reload comes with the control socket (wardenctl reload); until then
    // a SIGHUP must not kill a daemon that hosts rely on.
    spdlog::warn("SIGHUP received: reload is not supported by this version; restart wardend "
                 "to apply a new config");
    return;
  }
  d->RequestStop(w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Daemon::RequestStop(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  stop_reason_ = why;
  sd_notify(0, "STOPPING=1");
  spdlog::info("stopping ({}): waiting for {} running action(s)", why, executor_->running());
  scheduler_->Stop();
  mutex_->Stop();
  // Running actions finish or are killed at their own timeout.
  processes_->TerminateAll();
  stop_poll_ = std::make_unique<ev_timer>();
  ev_timer_init(stop_poll_.get(), &Daemon::OnStopPoll, 0, 0.05);
  stop_poll_->data = this;
  ev_timer_start(loop_, stop_poll_.get());
}

void Daemon::OnStopPoll(struct ev_loop* loop, ev_timer* w, int) {
  auto* d = static_cast<Daemon*>(w->data);
  if (d->executor_->running() > 0) return;
  ev_timer_stop(loop, w);
  d->events_->Emit("daemon.stop", {{"version", kVersion}, {"config_digest", d->config_->digest},
                                   {"reason", d->stop_reason_}});
  spdlog::info("stopped");
  ev_break(loop, EVBREAK_ALL);
}

void Daemon::OnWatchdog(struct ev_loop*, ev_timer*, int) { sd_notify(0, "WATCHDOG=1"); }

}  // namespace warden
