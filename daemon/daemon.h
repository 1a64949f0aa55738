// wardend's composition root: owns the loop's services (worker pool,
// process runner, MySQL reads, mutex client, guard, executor, scheduler,
// event log) for one Config, and the lifecycle around them (signals,
// daemon.start/stop events, systemd notifications).
//
// Threads: everything runs on the libev default loop's thread (ev_child
// needs the default loop); only the worker pool has threads of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/status.h"
#include "daemon/commands.h"
#include "daemon/config/config.h"
#include "daemon/control/metrics.h"
#include "daemon/control/status_page.h"
#include "daemon/engine/pauses.h"

struct ev_loop;
struct ev_signal;
struct ev_timer;
struct ev_periodic;

namespace warden {

class WorkerPool;
class ProcessRunner;
class HttpClient;
class MysqlReads;
class MutexClient;
class Guard;
class Executor;
class Scheduler;
class JobRunner;
class FleetSlots;
class RolloutAgent;
class EventLog;
class DiskWriter;
class ForwardSender;
class ControlServer;
class MetricsExporter;
class StateFile;
struct PersistedState;
class JournalSender;
class StatusNotifier;
struct MutexAnswer;

class Daemon final : private DaemonControl {
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
  // The human log goes to the journal through `journal` (main.cc decides):
  // events become journal entries too (daemon/systemd.h). Before Start.
  void SetJournal(std::shared_ptr<JournalSender> journal) { journal_ = std::move(journal); }
  // fluentd delivery (counters via stats()), null without [fluentd].
  const ForwardSender* fluentd() const { return fluentd_.get(); }

  // SIGHUP / wardenctl reload: parses the whole config again. Invalid: the
  // running config stays and the reply carries every error (file:line:
  // message). Valid: the snapshot is swapped; unchanged checks keep their
  // state. Either way a daemon.reload event. Returns the control reply.
  nlohmann::json Reload(const std::string& trigger) override;
  // Pauses (wardenctl pause/unpause), with their events, persisted at once.
  void StartPause(Pause p) override;
  std::optional<Pause> EndPause(const PauseScope& scope, const Peer& who) override;
  void SaveStateThen(std::function<void(bool saved)> saved) override { SaveState(std::move(saved)); }
  void DisableCheck(Pause d) override;
  std::optional<Pause> EnableCheck(const std::string& check, const Peer& who) override;
  const PauseSet& disabled() const override { return disabled_; }
  // Writes <state_dir>/state.json (pause, checks, guard history) on the
  // disk thread: captured now, written in order (a newer capture replaces
  // one not yet written); `saved` hears the result on the loop.
  void SaveState(std::function<void(bool saved)> saved = nullptr);
  // Saves within kStateDebounce (check states: many may change at once).
  void SaveStateSoon();
  static constexpr double kStateDebounce = 1.0;   // seconds

 private:
  // DaemonControl: what ControlCommands may use (daemon/commands.h).
  std::shared_ptr<const Config> config() const override { return config_; }
  bool stopping() const override { return stopping_; }
  Scheduler& scheduler() override { return *scheduler_; }
  Executor& executor() override { return *executor_; }
  Guard& guard() override { return *guard_; }
  JobRunner& jobs() override { return *jobs_; }
  void AddHealth(nlohmann::json& status) const override;
  nlohmann::json Terminate(const std::string& job, const std::string& action,
                           const std::string& cause, const std::string& reason) override;
  // mutex.state, and a terminating halt's Terminate (once per halt).
  void OnMutexChange(const MutexAnswer& a);
  bool terminated_by_mutex_ = false;           // the halt in force has been acted on
  // The metrics page of this daemon now (RenderMetrics over its objects).
  MetricsPage RenderMetricsPage() const;

  static void OnStateTimer(struct ev_loop* loop, ev_timer* w, int revents);
  // Every second while anything is paused or disabled or a maintenance
  // window is configured (ArmPauseTimer): pauses past their expiry end
  // (pause.end, cause expired), windows open.
  static void OnPauseTimer(struct ev_loop* loop, ev_periodic* w, int revents);
  void ArmPauseTimer();
  void ExpirePauses();
  // pause.end (cause expired) for pauses already removed, and a save.
  void PausesExpired(const std::vector<Pause>& gone);
  // [maintenance NAME] windows: one open now and not yet paused (or
  // reopened by a later firing) gets its pause (pause.start with window).
  void OpenWindows();
  // After a reload: pauses of a group, action or check the config no
  // longer has end (cause reload); the guard learns the new groups.
  void ReconcilePauses();
  void EmitPauseEnd(const Pause& p, const char* cause, const nlohmann::json& who);
  void EmitEnabled(const Pause& d, const char* cause, const nlohmann::json& who);
  void ReapRetired();
  static void OnSignal(struct ev_loop* loop, ev_signal* w, int revents);
  static void OnStopPoll(struct ev_loop* loop, ev_timer* w, int revents);
  static void OnWatchdog(struct ev_loop* loop, ev_timer* w, int revents);

  struct ev_loop* loop_;
  std::shared_ptr<const Config> config_;
  // The state file, the journal and the events file are written from its
  // thread (daemon/base/disk_writer.h); stopped first, destroyed last.
  std::unique_ptr<DiskWriter> writer_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<ForwardSender> fluentd_;   // null without [fluentd]; destroyed before events_
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<ProcessRunner> processes_;
  std::unique_ptr<HttpClient> http_;          // the actions' (alertmanager, webhook)
  std::unique_ptr<MysqlReads> mysql_;
  std::unique_ptr<MutexClient> mutex_;
  std::unique_ptr<Guard> guard_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<JobRunner> jobs_;
  std::unique_ptr<FleetSlots> fleet_;        // null without [fleet]; outlives jobs_
  std::unique_ptr<RolloutAgent> rollouts_;   // null without [fleet] groups; dies before jobs_
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<ev_signal> sigterm_, sigint_, sighup_;
  std::unique_ptr<ev_timer> stop_poll_, watchdog_;
  std::shared_ptr<JournalSender> journal_;     // null unless the log goes to the journal
  std::unique_ptr<StatusNotifier> status_;     // null without NOTIFY_SOCKET
  std::string StatusText() const;              // for status_
  bool stopping_ = false;
  std::string stop_reason_;

  // Control socket, persisted state, reload (daemon/control/control.h, state.h).
  std::unique_ptr<ControlCommands> commands_;
  std::unique_ptr<ControlServer> control_;     // destroyed before commands_
  std::string control_error_;                  // the socket could not be served
  // [metrics]: the Prometheus endpoint and textfile (daemon/control/metrics.h).
  std::unique_ptr<MetricsExporter> metrics_;   // null without [metrics]
  // The checks' series of the last page (RenderMetricsPage's, on the loop).
  mutable MetricsCache metrics_cache_;
  std::string metrics_error_;                  // the endpoint could not be served
  RecentEvents recent_events_;                 // the status page's last events
  std::unique_ptr<StateFile> state_file_;
  std::unique_ptr<PersistedState> state_;
  bool state_saved_ = true;                    // the last save worked
  std::string state_save_error_;               // why it did not ("" when it did)
  std::int64_t state_save_error_since_ms_ = 0;
  std::string state_error_;                    // the state file was corrupt at start
  std::string journal_error_;                  // the job journal was unusable at start
  std::int64_t started_ms_ = 0;
  nlohmann::json last_reload_;                 // null before the first reload
  std::unique_ptr<ev_timer> state_timer_;
  std::unique_ptr<ev_timer> state_soon_;       // SaveStateSoon's one-shot
  // OnPauseTimer, every whole second of the wall clock while armed: with
  // the events file's retry and the shared reads' ticks, one wake-up a
  // second.
  std::unique_ptr<ev_periodic> pause_timer_;
  PauseSet disabled_;                          // checks disabled (scope: the check)
  // Replaced by a reload while still answering (kept until !busy()), and
  // MySQL readers replaced by a reload (kept: calls may be in flight).
  std::vector<std::unique_ptr<MutexClient>> old_mutexes_;
  std::vector<std::unique_ptr<MysqlReads>> old_mysql_;
};

}  // namespace warden
