// A fixed pool of threads for blocking calls (MySQL C API, statvfs, /proc
// scans, connect). Jobs are submitted from the loop thread; their
// completions run back on the loop thread, woken through an ev_async.
//
// Lanes keep one slow peer from taking every worker: jobs name a lane (for
// example "mysql:default" or "tcp:10.0.0.5:3306"); a lane may occupy at most
// `threads - 1` workers (at least 1), and only one while its last job
// reported it unhealthy (a timeout, a refused connection). A job still queued
// when its deadline passes is not run; its completion is told so.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct ev_loop;
struct ev_async;

namespace warden {

class WorkerPool {
 public:
  using Clock = std::chrono::steady_clock;
  // Runs on a worker. Returns false when the lane's peer looks unhealthy.
  using Work = std::function<bool()>;
  // Runs on the loop. `ran` is false when the job expired in the queue.
  using Done = std::function<void(bool ran)>;

  WorkerPool(struct ev_loop* loop, int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(std::string lane, Clock::time_point deadline, Work work, Done done);

  int threads() const { return static_cast<int>(threads_.size()); }
  struct ev_loop* loop() const { return loop_; }
  // Jobs waiting or running; loop thread only (approximate).
  size_t pending() const;
  std::uint64_t expired() const;

 private:
  struct Job {
    std::string lane;
    Clock::time_point deadline;
    Work work;
    Done done;
    bool ran = false;
    bool healthy = true;
  };
  struct Lane {
    int running = 0;
    bool healthy = true;
  };

  void ThreadMain();
  bool Runnable(const Job& job) const;  // mu_ held
  static void OnAsync(struct ev_loop* loop, struct ev_async* w, int revents);
  void DrainCompletions();

  struct ev_loop* loop_;
  ev_async* async_;
  std::vector<std::thread> threads_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;                 // GUARDED_BY(mu_)
  std::map<std::string, Lane> lanes_;     // GUARDED_BY(mu_)
  std::vector<Job> completed_;            // GUARDED_BY(mu_)
  bool stopping_ = false;                 // GUARDED_BY(mu_)
  int in_flight_ = 0;                     // GUARDED_BY(mu_)
  std::uint64_t expired_ = 0;             // GUARDED_BY(mu_)
};

}  // namespace warden
