// wardend as a systemd service, beyond READY/STOPPING/WATCHDOG (daemon.cc):
// its events as journal entries of their own, and the one-line STATUS= that
// `systemctl status wardend` shows (docs/operations.md, "journald").
//
// Threads: the loop's only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/io/journal.h"

struct ev_loop;
struct ev_timer;

namespace warden {

struct JournalEntry {
  JournalPriority priority = JournalPriority::kInfo;
  std::string message;
  std::vector<JournalField> fields;
};

// One event as a journal entry: MESSAGE "check.state #12: check=connections
// prev_state=ok state=crit value=21 ..." (the event's own fields, those that
// say most first, empty ones left out), WARDEN_EVENT, WARDEN_SEQ, and
// WARDEN_CHECK / WARDEN_ACTION / WARDEN_JOB when the event names one.
// PRIORITY: err for events.dropped, job.fail, job.interrupted and a refused
// reload; warning for a check entering crit or error, a failed action and a
// blocked one; notice for a check entering warn, a held mutex and the
// daemon's start, stop and reloads; info for the rest.
JournalEntry EventJournalEntry(const nlohmann::json& event);

// What the STATUS= line says.
struct StatusFacts {
  std::vector<std::string> check_states;   // one per check (StateName)
  std::string mutex;                       // clear, held, off or unknown
  nlohmann::json jobs;                     // JobRunner::Status()
  bool paused = false;
};
// "12 ok, 1 crit; mutex clear; queue idle". Check states are counted in the
// order ok, warn, crit, error, pending, skipped (those with none left out;
// "no checks" without any). The queue: "queue idle", "2 queued", "job
// upgrade at 2/5 (stop)" (and ", 1 queued"), or "queue halted (job upgrade at
// stop)".
// "; paused" at the end while the host is paused.
std::string StatusLine(const StatusFacts& facts);

// Keeps systemd's STATUS= current: Poke() when something it says may have
// changed; the line is computed and sent (when it differs from the last one
// sent) at once, or kMinInterval after the previous send at the latest, so
// a burst of changes costs one update.
class StatusNotifier {
 public:
  static constexpr double kMinInterval = 1.0;   // seconds
  using Compute = std::function<std::string()>;
  using Send = std::function<void(const std::string& line)>;

  StatusNotifier(struct ev_loop* loop, Compute compute, Send send);
  ~StatusNotifier();
  StatusNotifier(const StatusNotifier&) = delete;
  StatusNotifier& operator=(const StatusNotifier&) = delete;

  void Poke();
  // Computes and sends now (start-up), whatever the interval.
  void Update();
  // No more updates (stopping: the last STATUS= is the caller's).
  void Stop();
  const std::string& last() const { return last_; }

 private:
  static void OnTimer(struct ev_loop* loop, ev_timer* w, int revents);

  struct ev_loop* loop_;
  Compute compute_;
  Send send_;
  std::unique_ptr<ev_timer> timer_;
  double last_sent_ = -1e9;   // ev_now of the last update
  std::string last_;
  bool stopped_ = false;
};

}  // namespace warden
