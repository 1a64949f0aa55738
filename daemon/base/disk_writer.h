// The loop never waits on the disk: writes, fsyncs and renames of the
// state file, the job journal, the events file and the fluentd buffer's
// syncs run here, on a thread of their own, one at a time, in the order
// they were posted. On a saturated disk an fsync can take seconds; the
// checks, the control socket and the timers go on meanwhile.
//
// Ordering: one lane, first in first out. Events are written in seq order
// because they are posted in seq order; a state save posted after another
// is written after it. Post(key, ...) coalesces: a task with the same key
// that has not started yet takes the newer work instead (a newer state
// file replaces an older one that was never written), and every caller's
// completion runs once the newer one is done.
//
// Durable first where it matters: a completion runs on the loop (an
// ev_async) only after its work returned, with its result, so a job step that must be in
// the journal before it starts waits for its completion; the loop does not.
//
// Without a loop (wardenctl, unit tests) the work and its completion run
// at once, on the caller's thread: the same order, no thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/base/status.h"

struct ev_loop;
struct ev_async;

namespace warden {

class DiskWriter {
 public:
  using Work = std::function<Status()>;             // on the writer thread
  using Done = std::function<void(const Status&)>;  // on the loop, with its work's result

  explicit DiskWriter(struct ev_loop* loop);
  // Runs what is still queued (a stop must not lose the last state save or
  // event), then ends the thread. Completions still owed run here.
  ~DiskWriter();
  DiskWriter(const DiskWriter&) = delete;
  DiskWriter& operator=(const DiskWriter&) = delete;

  void Post(Work work, Done done = nullptr) { Post(std::string(), std::move(work), std::move(done)); }
  // With a key: replaces the work of a queued, not yet started task with
  // the same key (see above). An empty key never coalesces.
  void Post(const std::string& key, Work work, Done done = nullptr);

  // From the writer thread (inside a work): `done` runs on the loop soon.
  // (Without a loop, or after Stop, at once.)
  void ToLoop(std::function<void()> done);

  // Blocks until everything posted so far has run, then runs the
  // completions owed on this (the loop's) thread. Shutdown and tests.
  void Drain();
  // Drain, then end the thread: from then on Post runs its work and its
  // completion at once, on the caller's thread (the daemon's last words,
  // destructors that write what is left).
  void Stop();

  // Tasks posted and not yet finished (for wardenctl status).
  std::size_t queued() const;
  // The longest a task has taken so far, in ms (a slow disk shows here).
  std::int64_t slowest_ms() const;
  bool threaded() const { return loop_ != nullptr && !stopped_; }

 private:
  struct Task {
    std::string key;
    Work work;
    std::vector<Done> done;
  };
  void Run();
  void RunCompletions();
  static void OnAsync(struct ev_loop* loop, ev_async* w, int revents);

  struct ev_loop* loop_;
  std::unique_ptr<ev_async> async_;
  mutable std::mutex mu_;
  std::condition_variable wake_;      // the writer: work or stop
  std::condition_variable idle_;      // Drain: the queue ran dry
  std::deque<Task> queue_;
  bool busy_ = false;                 // a task is running
  bool stop_ = false;
  bool stopped_ = false;              // Stop() ran: inline from then on
  std::vector<std::function<void()>> completed_;   // for the loop
  std::int64_t slowest_ms_ = 0;
  std::thread thread_;
};

}  // namespace warden
