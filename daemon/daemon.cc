#include "daemon/daemon.h"

#include <ev.h>
#include <unistd.h>
#include <malloc.h>
#include <systemd/sd-daemon.h>

#include <spdlog/spdlog.h>

#include <filesystem>

#include "daemon/base/atomic_file.h"
#include "daemon/base/disk_writer.h"
#include "daemon/commands.h"
#include "daemon/control/command_table.h"
#include "daemon/control/control.h"
#include "daemon/control/metrics.h"
#include "daemon/engine/events.h"
#include "daemon/engine/executor.h"
#include "daemon/engine/guard.h"
#include "daemon/engine/scheduler.h"
#include "daemon/engine/state.h"
#include "daemon/io/fleet.h"
#include "daemon/jobs/rollout_agent.h"
#include "daemon/io/http_client.h"
#include "daemon/io/forward_sender.h"
#include "daemon/io/journal.h"
#include "daemon/io/mutex_client.h"
#include "daemon/io/mysql.h"
#include "daemon/io/process.h"
#include "daemon/io/worker_pool.h"
#include "daemon/jobs/job_runner.h"
#include "daemon/systemd.h"
#include "version.h"

namespace warden {

namespace {

// The etcd mutex watch coming up or ending: a log line (the state is in
// `wardenctl status --json`, mutex.watch).
void LogMutexWatch(const MutexWatchState& w) {
  if (w.up) {
    spdlog::info("mutex watch up on {} from revision {}", w.endpoint, w.revision + 1);
  } else {
    spdlog::warn("mutex watch down ({}); polling, next watch in {} ms", w.last_error,
                 w.retry_in ? w.retry_in->count() : 0);
  }
}

// Who did it, for events: the control socket peer's uid and pid.
nlohmann::json WhoJson(std::int64_t uid, std::int64_t pid, const std::string& by) {
  return {{"uid", uid >= 0 ? nlohmann::json(uid) : nlohmann::json(nullptr)},
          {"pid", pid >= 0 ? nlohmann::json(pid) : nlohmann::json(nullptr)},
          {"by", by}};
}

nlohmann::json WardendWho() {
  return WhoJson(static_cast<std::int64_t>(::getuid()), static_cast<std::int64_t>(::getpid()),
                 "wardend");
}

nlohmann::json PauseFields(const Pause& p) {
  nlohmann::json f = {{"scope", ScopeKindName(p.scope.kind)},
                      {"reason", p.reason},
                      {"expiry", p.until_ms ? nlohmann::json(Rfc3339FromMs(p.until_ms))
                                            : nlohmann::json(nullptr)},
                      {"since", Rfc3339FromMs(p.at_ms)},
                      {"who", WhoJson(p.uid, p.pid, p.by)}};
  if (p.scope.kind != PauseScope::Kind::kHost) f[ScopeKindName(p.scope.kind)] = p.scope.name;
  if (!p.window.empty()) f["window"] = p.window;
  return f;
}

// The pause scope of a [maintenance] window.
PauseScope WindowScope(const MaintenanceConfig& m) {
  if (m.scope_kind == "group") return {PauseScope::Kind::kGroup, m.scope_name};
  if (m.scope_kind == "action") return {PauseScope::Kind::kAction, m.scope_name};
  return {};
}

std::map<std::string, std::vector<std::string>> GroupsOf(const Config& c) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& a : c.actions) {
    if (!a.groups.empty()) out[a.common.name] = a.groups;
  }
  for (const auto& j : c.jobs) {
    if (!j.groups.empty()) out["job:" + j.name] = j.groups;
  }
  return out;
}

}  // namespace

Daemon::Daemon(struct ev_loop* loop, std::shared_ptr<const Config> config)
    : loop_(loop), config_(std::move(config)) {}

Daemon::~Daemon() {
  // What is still to be written is written (the last state save, the
  // daemon.stop event) while everything its completions touch is alive;
  // from here on writes are done at once.
  if (writer_) writer_->Stop();
  for (auto* s : {sigterm_.get(), sigint_.get(), sighup_.get()}) {
    if (s) ev_signal_stop(loop_, s);
  }
  if (stop_poll_) ev_timer_stop(loop_, stop_poll_.get());
  if (watchdog_) ev_timer_stop(loop_, watchdog_.get());
  status_.reset();
  if (scheduler_) scheduler_->Stop();
  if (state_timer_) ev_timer_stop(loop_, state_timer_.get());
  if (pause_timer_) ev_periodic_stop(loop_, pause_timer_.get());
  if (state_soon_) ev_timer_stop(loop_, state_soon_.get());
  control_.reset();   // no request may reach commands_ any more
  metrics_.reset();   // nor a scrape what follows
  commands_.reset();
  // Threads and children first: nothing may call back into what follows.
  workers_.reset();
  processes_.reset();
  rollouts_.reset();
  jobs_.reset();
  fleet_.reset();
  scheduler_.reset();
  executor_.reset();
  guard_.reset();
  mutex_.reset();
  old_mutexes_.clear();
  mysql_.reset();
  old_mysql_.clear();
}

Status Daemon::Start() {
  const Config& c = *config_;
  std::error_code ec;
  // Modes set explicitly, whatever the umask (docs/behaviour.md, "File modes").
  if (Status made = MakeDirectories(c.daemon.state_dir, 0750); !made.ok()) {
    return Status::Error("state_dir: " + made.message());
  }
  std::filesystem::permissions(c.daemon.state_dir, std::filesystem::perms::owner_all |
                                                       std::filesystem::perms::group_read |
                                                       std::filesystem::perms::group_exec,
                               ec);
  writer_ = std::make_unique<DiskWriter>(loop_);
  events_ = std::make_unique<EventLog>();
  Status s = events_->Open(c.EventsPath(), c.daemon.state_dir, c.daemon.host_id);
  if (!s.ok()) return s;
  events_->SetLoop(loop_);
  events_->SetWriter(writer_.get());
  if (journal_) {
    // Every event as a journal entry of its own (its fields searchable:
    // journalctl WARDEN_CHECK=connections). Sent without waiting; what
    // journald does not take is counted (status: log.journal).
    JournalSender* j = journal_.get();
    events_->Subscribe([j](const nlohmann::json& e) {
      JournalEntry entry = EventJournalEntry(e);
      (void)j->Send(entry.priority, entry.message, entry.fields);
    });
  }
  if (c.fluentd.enabled) {
    // Subscribed before the first event, so daemon.start is shipped too.
    fluentd_ = std::make_unique<ForwardSender>(loop_, c.fluentd);
    fluentd_->SetWriter(writer_.get());
    s = fluentd_->Open(c.daemon.state_dir + "/buffer");
    if (!s.ok()) return s;
    ForwardSender* f = fluentd_.get();
    EventLog* log = events_.get();
    events_->Subscribe([f](const nlohmann::json& e) { f->OnEvent(e); });
    // A SIGKILL between writing the last event to the file and buffering it
    // would lose it for fluentd: buffer it again (a duplicate at worst,
    // dropped by consumers on host+seq).
    if (const auto& last = events_->last_event_at_open()) f->OnEvent(*last);
    fluentd_->SetOnDropped(
        [log](std::uint64_t n) { log->Emit("events.dropped", {{"count", n}, {"from", "fluentd_buffer"}}); });
    fluentd_->Start();
  }

  workers_ = std::make_unique<WorkerPool>(loop_, c.daemon.workers);
  processes_ = std::make_unique<ProcessRunner>(loop_);
  http_ = std::make_unique<HttpClient>(loop_);
  mysql_ = std::make_unique<MysqlReads>(*workers_, c.mysql);
  mutex_ = std::make_unique<MutexClient>(loop_, c.mutex, c.daemon.host_id);
  guard_ = std::make_unique<Guard>(mutex_.get());
  runtime_ = std::make_unique<Runtime>();
  runtime_->loop = loop_;
  runtime_->workers = workers_.get();
  runtime_->processes = processes_.get();
  runtime_->mysql = mysql_.get();
  runtime_->http = http_.get();
  runtime_->host = events_->host();
  runtime_->service_command = c.daemon.service_command;
  executor_ = std::make_unique<Executor>(*runtime_, *guard_, *events_);
  scheduler_ = std::make_unique<Scheduler>(*runtime_, *executor_, *events_);
  jobs_ = std::make_unique<JobRunner>(loop_, *guard_, *executor_, *scheduler_, *events_,
                                      c.daemon.state_dir + "/jobs.json", *runtime_->time);
  jobs_->SetWriter(writer_.get());
  if (c.fleet.enabled) {
    fleet_ = std::make_unique<FleetSlots>(loop_, c.fleet, c.daemon.host_id);
    jobs_->SetFleet(fleet_.get());
    if (!c.fleet.groups.empty()) {
      rollouts_ = std::make_unique<RolloutAgent>(loop_, c.fleet, c.daemon.host_id, *jobs_,
                                                 *events_, c.daemon.state_dir + "/rollouts.json");
    }
  }
  JobRunner* jobs = jobs_.get();
  executor_->SetJobQueue(
      [jobs](const std::string& job, const Trigger& t) { (void)jobs->Enqueue(job, t); });
  started_ms_ = WallMsNow();

  // Persisted state: pause and guard history now, checks once they exist.
  // A corrupt file is set aside and reported, never fatal.
  state_file_ = std::make_unique<StateFile>(c.daemon.state_dir + "/state.json");
  StateFile::Loaded loaded = state_file_->Load();
  state_ = std::make_unique<PersistedState>(std::move(loaded.state));
  if (!loaded.error.empty()) {
    state_error_ = loaded.error;
    if (!loaded.set_aside.empty()) state_error_ += "; set aside as " + loaded.set_aside;
    spdlog::error("state file unusable, starting without it: {}", state_error_);
  }
  for (const Pause& p : state_->pauses) {
    guard_->pauses().Set(p);
    spdlog::warn("{} is paused ({}), by {}{}", p.scope.Describe(), p.reason, p.by,
                 p.until_ms ? ", until " + Rfc3339FromMs(p.until_ms) : ", no expiry");
  }
  guard_->SetGroups(GroupsOf(c));
  RestoreGuard(*state_, *guard_);

  // Control socket. Failing to serve it is reported, not fatal: the
  // watchdog keeps watching without its command line.
  DaemonControl& control = *this;   // what the commands may use of this daemon
  commands_ = std::make_unique<ControlCommands>(control);
  ControlServer::Options copts;
  copts.path = c.control.socket;
  copts.group = c.control.group;
  ControlCommands* cmds = commands_.get();
  control_ = std::make_unique<ControlServer>(
      loop_, copts,
      [cmds](const nlohmann::json& req, const Peer& peer, Access access, ControlServer::Reply r) {
        cmds->Handle(req, peer, access, std::move(r));
      });
  if (Status cs = control_->Start(); !cs.ok()) {
    control_error_ = cs.message();
    control_.reset();
    spdlog::error("control socket not served: {}", control_error_);
  }
  // Metrics: like the control socket, an endpoint that cannot be served
  // is reported (log, daemon.start, status), not fatal.
  if (c.metrics.enabled) {
    metrics_ = std::make_unique<MetricsExporter>(loop_, c.metrics, writer_.get(),
                                                 [this] { return RenderMetricsPage(); });
    // The status page: status --json's data and the last events.
    metrics_->ServeStatus([this] {
      nlohmann::json j = commands_->StatusJson();
      j.erase("ok");
      j["schema"] = kJsonSchema;
      j["recent_events"] = recent_events_.ToJson();
      return j;
    });
    if (Status ms = metrics_->Start(); !ms.ok()) {
      metrics_error_ = ms.message();
      spdlog::error("metrics endpoint not served: {}", metrics_error_);
    } else if (!c.metrics.listen.empty()) {
      spdlog::info("metrics served at http://{}/metrics", c.metrics.listen);
    }
  }
  events_->Subscribe([this](const nlohmann::json& e) {
    const std::string name = e.value("event", "");
    if (rollouts_) rollouts_->OnEvent(e);
    if (commands_) commands_->OnEvent(e);
    recent_events_.Add(e);
    if (metrics_) metrics_->Changed();
    // Budget and cooldown must survive kill -9: saved when they change.
    // Check states are saved within kStateDebounce of a change: with many
    // checks changing at once (the first verdicts at start) one write
    // covers them all instead of one rewrite of the whole file per check.
    if (name == "action.start" || name == "action.finish") SaveState();
    else if (name == "check.state") SaveStateSoon();
    // Check states, the mutex and the queue change only with an event.
    if (status_) status_->Poke();
  });

  // Handlers before daemon.start: a SIGTERM from then on is a clean stop
  // (it is handled once the loop runs), never a death by its default action.
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

  nlohmann::json start = {{"version", kVersion}, {"config_digest", c.digest},
                          {"config", c.path}, {"checks", c.checks.size()},
                          {"actions", c.actions.size()}};
  if (!state_error_.empty()) start["state_error"] = state_error_;
  if (!control_error_.empty()) start["control_error"] = control_error_;
  if (!metrics_error_.empty()) start["metrics_error"] = metrics_error_;
  if (const Pause* host = guard_->pauses().Find(PauseScope{})) start["paused"] = host->reason;
  events_->Emit("daemon.start", std::move(start));
  spdlog::info("wardend {} starting on {}: {} checks, {} actions, config {} ({})", kVersion,
               c.daemon.host_id, c.checks.size(), c.actions.size(), c.path, c.digest);

  mutex_->SetOnChange([this](MutexAnswer a) { OnMutexChange(a); });
  mutex_->SetOnWatch(LogMutexWatch);
  if (rollouts_) mutex_->SetOnKey([r = rollouts_.get()](const std::string& k) { r->OnKey(k); });
  mutex_->Start();
  executor_->SetConfig(config_);
  // The loop's time brought up to date (start-up took a while since it
  // was last read): the shared reads' ticks then fall on whole seconds of
  // the wall clock, with the once-a-second periodics (OnPauseTimer, the
  // events file's retry), in one wake-up of the loop.
  ev_now_update(loop_);
  scheduler_->Start(config_);
  scheduler_->Restore(*state_);
  for (const Pause& d : state_->disabled) {
    disabled_.Set(d);
    if (scheduler_->SetDisabled(d.scope.name, true)) {
      spdlog::warn("check {} is disabled ({}), by {}", d.scope.name, d.reason, d.by);
    }
  }
  // The job journal: a job cut short is reported interrupted and halts
  // the queue; nothing of it runs again by itself.
  journal_error_ = jobs_->Start(config_).message();
  if (rollouts_) rollouts_->Start(config_);
  // Pauses that expired while wardend was down end now; those of what the
  // config no longer has end as at a reload.
  ExpirePauses();
  ReconcilePauses();
  OpenWindows();
  // From now on (the checks restored): an action let through at a pause's
  // expiry comes after its pause.end.
  guard_->SetOnExpired([this](std::vector<Pause> gone) { PausesExpired(gone); });
  SaveState();
  pause_timer_ = std::make_unique<ev_periodic>();
  ev_periodic_init(pause_timer_.get(), &Daemon::OnPauseTimer, 0, 1, nullptr);
  pause_timer_->data = this;
  ArmPauseTimer();
  // Counters (runs) change too often to save on each; every minute will do.
  state_timer_ = std::make_unique<ev_timer>();
  ev_timer_init(state_timer_.get(), &Daemon::OnStateTimer, 60, 60);
  state_timer_->data = this;
  ev_timer_start(loop_, state_timer_.get());
  state_soon_ = std::make_unique<ev_timer>();
  ev_timer_init(state_soon_.get(), &Daemon::OnStateTimer, kStateDebounce, 0);
  state_soon_->data = this;

  std::uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    watchdog_ = std::make_unique<ev_timer>();
    double every = static_cast<double>(watchdog_usec) / 2e6;
    ev_timer_init(watchdog_.get(), &Daemon::OnWatchdog, every, every);
    watchdog_->data = this;
    ev_timer_start(loop_, watchdog_.get());
  }
  sd_notify(0, "READY=1");
  if (::getenv("NOTIFY_SOCKET") != nullptr) {
    status_ = std::make_unique<StatusNotifier>(
        loop_, [this] { return StatusText(); },
        [](const std::string& line) { sd_notify(0, ("STATUS=" + line).c_str()); });
    status_->Update();
  }
  return Status::Ok();
}

void Daemon::OnMutexChange(const MutexAnswer& a) {
  nlohmann::json f = {{"held", a.held}, {"reason", a.reason}};
  if (a.terminate) f["terminate"] = true;
  events_->Emit("mutex.state", std::move(f));
  if (a.held) spdlog::warn("mutex held{}: {}", a.terminate ? " (terminate)" : "", a.reason);
  else spdlog::info("mutex clear ({})", a.reason);
  if (!a.held || !a.terminate) {
    terminated_by_mutex_ = false;
    return;
  }
  if (terminated_by_mutex_ || stopping_) return;
  terminated_by_mutex_ = true;
  (void)Terminate("", "", "mutex", "fleet halt (terminate): " + a.reason);
}

nlohmann::json Daemon::Terminate(const std::string& job, const std::string& action,
                                 const std::string& cause, const std::string& reason) {
  const Duration grace = config_->daemon.kill_grace;
  nlohmann::json out = {{"job", nullptr}, {"actions", nlohmann::json::array()}};
  if (action.empty()) {
    // The job first, so that it ends job.terminated with this reason.
    std::string reached = jobs_->Terminate(job, grace, reason);
    if (!reached.empty()) out["job"] = reached;
  }
  if (job.empty()) {
    for (auto& name : executor_->Terminate(action, grace, reason)) out["actions"].push_back(name);
  }
  if (!out["job"].is_null() || !out["actions"].empty()) {
    nlohmann::json f = {{"cause", cause},
                        {"reason", reason},
                        {"job", out["job"]},
                        {"actions", out["actions"]},
                        {"kill_grace", FormatDuration(grace)}};
    events_->Emit("daemon.terminate", std::move(f));
  } else {
    spdlog::info("terminate ({}): nothing was running", reason);
  }
  return out;
}

int Daemon::Run() {
  ev_run(loop_, 0);
  return 0;
}

void Daemon::OnSignal(struct ev_loop*, ev_signal* w, int) {
  auto* d = static_cast<Daemon*>(w->data);
  if (w->signum == SIGHUP) {
    spdlog::info("SIGHUP received: reloading the configuration");
    d->Reload("SIGHUP");
    return;
  }
  d->RequestStop(w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Daemon::RequestStop(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  stop_reason_ = why;
  sd_notify(0, "STOPPING=1");
  if (status_) {
    status_->Stop();
    sd_notify(0, ("STATUS=stopping (" + why + ")").c_str());
  }
  spdlog::info("stopping ({}): waiting for {} running action(s)", why, executor_->running());
  scheduler_->Stop();
  jobs_->Stop(why);
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
  // A status read still in flight ends first (at most its query_timeout):
  // the server would count a connection closed under it as aborted.
  if (d->mysql_ && d->mysql_->Busy()) return;
  for (const auto& old : d->old_mysql_) {
    if (old->Busy()) return;
  }
  ev_timer_stop(loop, w);
  d->SaveState();
  d->events_->Emit("daemon.stop", {{"version", kVersion}, {"config_digest", d->config_->digest},
                                   {"reason", d->stop_reason_}});
  auto stopped = [loop](bool) {
    spdlog::info("stopped");
    ev_break(loop, EVBREAK_ALL);
  };
  // The loop (and the watchdog timer) runs on until fluentd has daemon.stop
  // and the rest of the backlog, or [fluentd] stop_flush has passed.
  if (d->fluentd_) d->fluentd_->Drain(d->fluentd_->config().stop_flush, stopped);
  else stopped(true);
}

void Daemon::OnWatchdog(struct ev_loop*, ev_timer*, int) { sd_notify(0, "WATCHDOG=1"); }

std::string Daemon::StatusText() const {
  StatusFacts f;
  for (const auto& c : scheduler_->Status()) f.check_states.emplace_back(StateName(c.state));
  if (config_->mutex.mode == MutexConfig::Mode::kOff) f.mutex = "off";
  else if (const auto& last = mutex_->last()) f.mutex = last->held ? "held" : "clear";
  else f.mutex = "unknown";
  f.jobs = jobs_->Status();
  f.paused = guard_->host_pause() != nullptr;
  return StatusLine(f);
}

// --- persisted state, pause, reload (daemon/engine/state.h, daemon/commands.h) ---

void Daemon::SaveState(std::function<void(bool saved)> saved) {
  if (!state_file_ || !state_) {
    if (saved) saved(false);
    return;
  }
  if (state_soon_) ev_timer_stop(loop_, state_soon_.get());   // this save covers it
  scheduler_->Capture(*state_);
  CaptureGuard(*guard_, *state_);
  state_->pauses = guard_->pauses().all();
  state_->disabled = disabled_.all();
  writer_->Post(
      "state",
      [path = state_file_->path(), text = StateText(*state_, WallMsNow())] {
        return StateFile::WriteText(path, text);
      },
      [this, saved = std::move(saved)](const Status& s) {
        // Said once when saving starts failing (a full or read-only disk:
        // the last saved file stays as it was) and once when it works again.
        if (!s.ok() && state_saved_) {
          spdlog::error("cannot save state: {} (the last saved state stays; tried again at "
                        "every change and every minute)",
                        s.message());
          state_save_error_since_ms_ = WallMsNow();
        } else if (s.ok() && !state_saved_) {
          spdlog::warn("state saved again after {} s",
                       (WallMsNow() - state_save_error_since_ms_) / 1000);
        }
        state_save_error_ = s.ok() ? "" : s.message();
        state_saved_ = s.ok();
        if (saved) saved(s.ok());
      });
}

void Daemon::StartPause(Pause p) {
  nlohmann::json f = PauseFields(p);
  std::optional<Pause> replaced = guard_->pauses().Set(p);
  ArmPauseTimer();
  f["replaced"] = replaced.has_value();
  events_->Emit("pause.start", std::move(f));
  spdlog::warn("{} paused by {} ({}): {}", p.scope.Describe(), p.by,
               p.until_ms ? "until " + Rfc3339FromMs(p.until_ms) : std::string("no expiry"),
               p.reason);
}

std::optional<Pause> Daemon::EndPause(const PauseScope& scope, const Peer& who) {
  std::optional<Pause> ended = guard_->pauses().Remove(scope);
  if (ended) {
    EmitPauseEnd(*ended, "unpause", WhoJson(who.uid, who.pid, who.Describe()));
    spdlog::warn("{} unpaused by {}", scope.Describe(), who.Describe());
  }
  return ended;
}

void Daemon::EmitPauseEnd(const Pause& p, const char* cause, const nlohmann::json& who) {
  nlohmann::json f = PauseFields(p);
  f["paused_by"] = f["who"];
  f["who"] = who;
  f["cause"] = cause;
  events_->Emit("pause.end", std::move(f));
}

void Daemon::ExpirePauses() {
  const std::int64_t now = WallMsNow();
  std::vector<Pause> gone = guard_->pauses().TakeExpired(now);
  PausesExpired(gone);
  std::vector<Pause> back = disabled_.TakeExpired(now);
  for (const Pause& d : back) {
    EmitEnabled(d, "expired", WardendWho());
    scheduler_->SetDisabled(d.scope.name, false);
    spdlog::warn("check {} enabled again: its disable expired ({})", d.scope.name, d.reason);
  }
  if (!back.empty()) SaveState();
}

void Daemon::PausesExpired(const std::vector<Pause>& gone) {
  for (const Pause& p : gone) {
    EmitPauseEnd(p, "expired", WardendWho());
    spdlog::warn("pause of {} expired ({})", p.scope.Describe(), p.reason);
  }
  if (!gone.empty()) SaveState();
}

void Daemon::DisableCheck(Pause d) {
  nlohmann::json f = PauseFields(d);
  f.erase("scope");
  std::optional<Pause> replaced = disabled_.Set(d);
  ArmPauseTimer();
  f["replaced"] = replaced.has_value();
  events_->Emit("check.disabled", std::move(f));   // then check.state (disabled)
  scheduler_->SetDisabled(d.scope.name, true);
  spdlog::warn("check {} disabled by {} ({}): {}", d.scope.name, d.by,
               d.until_ms ? "until " + Rfc3339FromMs(d.until_ms) : std::string("no expiry"),
               d.reason);
}

std::optional<Pause> Daemon::EnableCheck(const std::string& check, const Peer& who) {
  std::optional<Pause> d = disabled_.Remove({PauseScope::Kind::kCheck, check});
  if (d) {
    EmitEnabled(*d, "enable", WhoJson(who.uid, who.pid, who.Describe()));
    scheduler_->SetDisabled(check, false);   // check.state (pending)
    spdlog::warn("check {} enabled by {}", check, who.Describe());
  }
  return d;
}

void Daemon::EmitEnabled(const Pause& d, const char* cause, const nlohmann::json& who) {
  nlohmann::json f = PauseFields(d);
  f.erase("scope");
  f["disabled_by"] = f["who"];
  f["who"] = who;
  f["cause"] = cause;
  events_->Emit("check.enabled", std::move(f));
}

void Daemon::ReconcilePauses() {
  const Config& c = *config_;
  guard_->SetGroups(GroupsOf(c));
  std::vector<PauseScope> gone;
  std::vector<std::pair<PauseScope, std::string>> gone_windows;
  for (const Pause& p : guard_->pauses().all()) {
    if (p.window.empty()) continue;
    const MaintenanceConfig* m = nullptr;
    for (const auto& w : c.maintenance) {
      if (w.name == p.window) m = &w;
    }
    if (!m || WindowScope(*m) != p.scope || m->reason != p.reason) {
      gone_windows.emplace_back(p.scope, p.window);
    }
  }
  for (const auto& [scope, window] : gone_windows) {
    if (auto p = guard_->pauses().Remove(scope, window)) {
      EmitPauseEnd(*p, "reload", WardendWho());
      spdlog::warn("maintenance {} changed or removed: its pause of {} ends", window,
                   scope.Describe());
    }
  }
  for (const Pause& p : guard_->pauses().all()) {
    if (!p.window.empty()) continue;
    const std::string& n = p.scope.name;
    bool exists = true;
    switch (p.scope.kind) {
      case PauseScope::Kind::kHost: break;
      case PauseScope::Kind::kGroup: exists = c.HasGroup(n); break;
      case PauseScope::Kind::kAction: exists = c.FindAction(n) || c.FindJob(n); break;
      case PauseScope::Kind::kCheck: exists = c.FindCheck(n) != nullptr; break;
    }
    if (!exists) gone.push_back(p.scope);
  }
  for (const PauseScope& s : gone) {
    if (auto p = guard_->pauses().Remove(s)) {
      EmitPauseEnd(*p, "reload", WardendWho());
      spdlog::warn("pause of {} ended: the config no longer has it", s.Describe());
    }
  }
  // Disabled checks: applied again to checks the reload rebuilt; those
  // the config no longer has are forgotten (check.enabled, cause reload).
  std::vector<PauseScope> dropped;
  for (const Pause& d : disabled_.all()) {
    if (!scheduler_->SetDisabled(d.scope.name, true)) dropped.push_back(d.scope);
  }
  for (const PauseScope& s : dropped) {
    if (auto d = disabled_.Remove(s)) {
      EmitEnabled(*d, "reload", WardendWho());
      spdlog::warn("check {} no longer disabled: the config no longer has it", s.name);
    }
  }
  if (!gone.empty() || !dropped.empty() || !gone_windows.empty()) SaveState();
}

void Daemon::OnPauseTimer(struct ev_loop*, ev_periodic* w, int) {
  auto* d = static_cast<Daemon*>(w->data);
  d->ExpirePauses();
  d->OpenWindows();
  d->ArmPauseTimer();
}

void Daemon::ArmPauseTimer() {
  if (!pause_timer_) return;   // before Run: it arms it
  // Only while there is something to look at: usually nothing is paused,
  // disabled or scheduled, and then the loop's once-a-second pass (the
  // shared reads') does not run this too.
  const bool needed =
      !guard_->pauses().empty() || !disabled_.empty() || !config_->maintenance.empty();
  if (needed && !ev_is_active(pause_timer_.get())) {
    ev_periodic_start(loop_, pause_timer_.get());
  } else if (!needed && ev_is_active(pause_timer_.get())) {
    ev_periodic_stop(loop_, pause_timer_.get());
  }
}

void Daemon::OpenWindows() {
  const std::int64_t now = WallMsNow();
  bool changed = false;
  for (const auto& m : config_->maintenance) {
    auto span = WindowAt(m.schedule, m.hold, now);
    if (!span) continue;
    const Pause* open = guard_->pauses().FindWindow(m.name);
    if (open && open->until_ms == span->end_ms && open->scope == WindowScope(m)) continue;
    Pause p;
    p.scope = WindowScope(m);
    p.reason = m.reason;
    p.by = "maintenance " + m.name;
    p.at_ms = span->start_ms;
    p.until_ms = span->end_ms;
    p.window = m.name;
    StartPause(std::move(p));
    changed = true;
  }
  if (changed) SaveState();
}

void Daemon::SaveStateSoon() {
  if (state_soon_ && !ev_is_active(state_soon_.get())) ev_timer_start(loop_, state_soon_.get());
}

void Daemon::OnStateTimer(struct ev_loop*, ev_timer* w, int) {
  auto* d = static_cast<Daemon*>(w->data);
  d->ReapRetired();
  d->SaveState();
  // Give back the pages freed since (start-up's config parsing and first
  // verdicts, the state file's text): ~1 MB of RSS at 1,000 checks. At
  // most once per kStateDebounce, else once a minute.
  malloc_trim(0);
}

void Daemon::ReapRetired() {
  std::erase_if(old_mutexes_, [](const std::unique_ptr<MutexClient>& m) { return !m->busy(); });
}

namespace {

// A URL as status shows it (wardenctl status, the status page): a
// user:password@ in it becomes ****@.
std::string WithoutUserinfo(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t from = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t at = url.find('@', from);
  const size_t path = url.find('/', from);
  if (at == std::string::npos || (path != std::string::npos && path < at)) return url;
  return url.substr(0, from) + "****" + url.substr(at);
}

bool SameMutex(const MutexConfig& a, const MutexConfig& b) {
  return a.mode == b.mode && a.url == b.url && a.timeout == b.timeout && a.cache == b.cache &&
         a.poll == b.poll && a.token == b.token && a.ca_file == b.ca_file && a.etcd == b.etcd &&
         a.prefix == b.prefix && a.watch == b.watch;
}

bool SameMysql(const std::map<std::string, MysqlConnConfig>& a,
               const std::map<std::string, MysqlConnConfig>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, conn] : a) {
    auto it = b.find(name);
    if (it == b.end() || it->second.Key() != conn.Key()) return false;
  }
  return true;
}

}  // namespace

void Daemon::AddHealth(nlohmann::json& j) const {
  using nlohmann::json;
  const Config& c = *config_;
  j["started"] = Rfc3339FromMs(started_ms_);
  // The disk thread: writes waiting, and the slowest one so far (a
  // saturated disk shows here while the checks go on).
  j["disk_writer"] = {{"queued", writer_->queued()}, {"slowest_ms", writer_->slowest_ms()}};
  json mutex = json::object();
  if (c.mutex.mode == MutexConfig::Mode::kOff) {
    mutex = {{"state", "off"}, {"reason", "mode = off"}};
  } else if (const auto& last = mutex_->last()) {
    mutex["state"] = last->held ? "held" : "clear";
    mutex["reason"] = last->reason;
    auto age = mutex_->last_age();
    mutex["age_ms"] = age ? json(age->count()) : json(nullptr);
  } else {
    mutex = {{"state", "unknown"}, {"reason", "no answer yet"}, {"age_ms", nullptr}};
  }
  if (c.mutex.mode == MutexConfig::Mode::kEtcd) {
    mutex["backend"] = "etcd";
    json endpoints = json::array();
    for (const auto& e : c.mutex.etcd.endpoints) endpoints.push_back(WithoutUserinfo(e));
    mutex["endpoints"] = std::move(endpoints);
    mutex["prefix"] = c.mutex.prefix;
    const MutexWatchState w = mutex_->watch_state();
    mutex["watch"] = w.enabled ? json{{"up", w.up},
                                      {"endpoint", w.endpoint},
                                      {"revision", w.revision},
                                      {"started", w.started},
                                      {"events", w.events},
                                      {"last_error", w.last_error.empty() ? json(nullptr)
                                                                          : json(w.last_error)},
                                      {"retry_in_ms", w.retry_in ? json(w.retry_in->count())
                                                                 : json(nullptr)}}
                               : json(nullptr);
  } else {
    mutex["url"] = WithoutUserinfo(c.mutex.url);
  }
  j["mutex"] = std::move(mutex);
  j["events"] = {{"file", c.EventsPath()}, {"last_seq", events_->last_seq()}};
  const EventLog::WriteHealth health = events_->write_health();
  j["events"]["held"] = health.held;
  j["events"]["dropped"] = health.dropped;
  j["events"]["file_error"] = health.error.empty() ? json(nullptr) : json(health.error);
  j["events"]["file_error_since"] =
      health.error.empty() ? json(nullptr) : json(Rfc3339FromMs(health.since_ms));
  if (!state_save_error_.empty()) {
    j["state_save_error"] = state_save_error_;
    j["state_save_error_since"] = Rfc3339FromMs(state_save_error_since_ms_);
  }
  if (const ForwardSender* f = fluentd()) j["events"]["fluentd"] = f->stats().ToJson();
  if (journal_) {
    const JournalSender::Stats js = journal_->stats();
    j["log"]["journal"] = {{"socket", journal_->socket_path()},
                           {"sent", js.sent},
                           {"dropped", js.dropped},
                           {"failed", js.failed},
                           {"last_error", js.last_error.empty() ? json(nullptr) : json(js.last_error)}};
  }
  if (!state_error_.empty()) j["state_error"] = state_error_;
  if (!control_error_.empty()) j["control_error"] = control_error_;
  if (!metrics_error_.empty()) j["metrics_error"] = metrics_error_;
  if (metrics_ && !metrics_->textfile_error().empty()) {
    j["metrics_textfile_error"] = metrics_->textfile_error();
  }
  if (!last_reload_.is_null()) j["last_reload"] = last_reload_;
  if (rollouts_) j["rollout"] = rollouts_->Status();
}

MetricsPage Daemon::RenderMetricsPage() const {
  MetricsSources s;
  s.config = config_.get();
  s.scheduler = scheduler_.get();
  s.executor = executor_.get();
  s.guard = guard_.get();
  s.jobs = jobs_.get();
  s.mutex = mutex_.get();
  s.fluentd = fluentd_.get();
  s.host = events_->host();
  s.version = kVersion;
  s.started_ms = started_ms_;
  s.cache = &metrics_cache_;
  return RenderMetricsPieces(s, WallMsNow());
}

nlohmann::json Daemon::Reload(const std::string& trigger) {
  if (stopping_) return {{"ok", false}, {"error", "wardend is stopping"}};
  ReapRetired();
  const std::shared_ptr<const Config> old = config_;
  Diagnostics diag;
  auto next = LoadConfig(old->path, LoadOptions{}, diag);
  if (!next) {
    const auto& errors = diag.errors();
    std::string summary;
    for (size_t i = 0; i < errors.size() && i < 20; ++i) summary += (i ? "\n" : "") + errors[i];
    for (const auto& e : errors) spdlog::error("reload: {}", e);
    spdlog::error("reload ({}) refused: {} problem(s); the running config stays", trigger,
                  errors.size());
    events_->Emit("daemon.reload", {{"version", kVersion},
                                    {"config_digest", old->digest},
                                    {"result", "fail"},
                                    {"trigger", trigger},
                                    {"errors", errors.size()},
                                    {"error", Redact(summary, old->secrets)}});
    last_reload_ = {{"result", "fail"}, {"time", Rfc3339Now()}, {"errors", errors}};
    return {{"ok", false},
            {"error", std::to_string(errors.size()) +
                          " problem(s) in the new configuration; the running one stays"},
            {"errors", errors},
            {"config_digest", old->digest}};
  }
  // Settings that only a restart applies.
  std::vector<std::string> restart;
  const Config& n = *next;
  if (n.daemon.host_id != old->daemon.host_id) restart.push_back("[daemon] host_id");
  if (n.daemon.state_dir != old->daemon.state_dir) restart.push_back("[daemon] state_dir");
  if (n.daemon.workers != old->daemon.workers) restart.push_back("[daemon] workers");
  if (n.log.level != old->log.level || n.log.file != old->log.file ||
      n.EventsPath() != old->EventsPath() || n.log.journal != old->log.journal ||
      n.log.journal_socket != old->log.journal_socket) {
    restart.push_back("[log]");
  }
  if (n.control.socket != old->control.socket || n.control.group != old->control.group) {
    restart.push_back("[control]");
  }
  const FluentdConfig& nf = n.fluentd;
  const FluentdConfig& of = old->fluentd;
  if (nf.enabled != of.enabled || nf.address != of.address || nf.tag != of.tag ||
      nf.ack != of.ack || nf.buffer_limit != of.buffer_limit || nf.chunk_limit != of.chunk_limit ||
      nf.ack_timeout != of.ack_timeout || nf.stop_flush != of.stop_flush) {
    restart.push_back("[fluentd]");
  }
  const MetricsConfig& nm = n.metrics;
  const MetricsConfig& om = old->metrics;
  if (nm.enabled != om.enabled || nm.listen != om.listen || nm.textfile != om.textfile ||
      nm.interval != om.interval || nm.status_page != om.status_page) {
    restart.push_back("[metrics]");
  }
  if (n.fleet.enabled != old->fleet.enabled || n.fleet.prefix != old->fleet.prefix ||
      n.fleet.etcd.endpoints != old->fleet.etcd.endpoints || n.fleet.poll != old->fleet.poll ||
      n.fleet.groups != old->fleet.groups || n.fleet.order != old->fleet.order ||
      n.fleet.lease != old->fleet.lease) {
    restart.push_back("[fleet]");
  }
  size_t kept = 0;
  for (const auto& c : n.checks) {
    const CheckConfig* prev = old->FindCheck(c.common.name);
    if (prev && prev->digest == c.digest) ++kept;
  }
  if (!SameMysql(old->mysql, n.mysql)) {
    // Calls in flight keep using the old reader; it is kept alive.
    old_mysql_.push_back(std::move(mysql_));
    mysql_ = std::make_unique<MysqlReads>(*workers_, n.mysql);
    runtime_->mysql = mysql_.get();
  }
  if (!SameMutex(old->mutex, n.mutex)) {
    auto fresh = std::make_unique<MutexClient>(loop_, n.mutex, n.daemon.host_id);
    fresh->SetOnChange([this](MutexAnswer a) { OnMutexChange(a); });
    fresh->SetOnWatch(LogMutexWatch);
    if (rollouts_) fresh->SetOnKey([r = rollouts_.get()](const std::string& k) { r->OnKey(k); });
    mutex_->Stop();
    guard_->SetMutex(fresh.get());
    // The old client may still owe answers to guard queries: kept until
    // it has given them (its destructor would drop them).
    old_mutexes_.push_back(std::move(mutex_));
    mutex_ = std::move(fresh);
    mutex_->Start();
  }
  config_ = next;
  runtime_->service_command = config_->daemon.service_command;
  executor_->SetConfig(config_);
  scheduler_->Reload(config_);
  ReconcilePauses();
  OpenWindows();
  ArmPauseTimer();
  jobs_->Reload(config_);
  if (rollouts_) rollouts_->Reload(config_);
  nlohmann::json f = {{"version", kVersion},
                      {"config_digest", n.digest},
                      {"prev_config_digest", old->digest},
                      {"result", "ok"},
                      {"trigger", trigger},
                      {"checks", n.checks.size()},
                      {"checks_kept", kept},
                      {"actions", n.actions.size()}};
  if (!restart.empty()) f["restart_needed"] = restart;
  events_->Emit("daemon.reload", f);
  spdlog::info("reloaded ({}): config {} -> {}, {} checks ({} kept their state), {} actions",
               trigger, old->digest, n.digest, n.checks.size(), kept, n.actions.size());
  if (!restart.empty()) {
    std::string list;
    for (const auto& r : restart) list += (list.empty() ? "" : ", ") + r;
    spdlog::warn("reload: changes to {} take effect only after a restart", list);
  }
  last_reload_ = {{"result", "ok"}, {"time", Rfc3339Now()}, {"config_digest", n.digest}};
  SaveState();
  nlohmann::json reply = {{"ok", true},
                          {"config_digest", n.digest},
                          {"prev_config_digest", old->digest},
                          {"checks", n.checks.size()},
                          {"checks_kept", kept},
                          {"actions", n.actions.size()}};
  if (!restart.empty()) reply["restart_needed"] = restart;
  return reply;
}

}  // namespace warden
