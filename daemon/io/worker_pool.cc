#include "daemon/io/worker_pool.h"

#include <ev.h>

#include <algorithm>
#include <exception>

namespace warden {

WorkerPool::WorkerPool(struct ev_loop* loop, int threads) : loop_(loop), async_(new ev_async) {
  ev_async_init(async_, &WorkerPool::OnAsync);
  async_->data = this;
  ev_async_start(loop_, async_);
  ev_unref(loop_);  // an idle pool does not keep the loop alive
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ThreadMain(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  // A worker stuck in a blocking call ends at that call's own timeout.
  for (auto& t : threads_) t.join();
  ev_ref(loop_);
  ev_async_stop(loop_, async_);
  delete async_;
}

size_t WorkerPool::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + static_cast<size_t>(in_flight_);
}

std::uint64_t WorkerPool::expired() const {
  std::lock_guard<std::mutex> lock(mu_);
  return expired_;
}

void WorkerPool::Submit(std::string lane, Clock::time_point deadline, Work work, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Job{std::move(lane), deadline, std::move(work), std::move(done)});
  }
  cv_.notify_one();
}

bool WorkerPool::Runnable(const Job& job) const {
  auto it = lanes_.find(job.lane);
  if (it == lanes_.end()) return true;
  int limit = it->second.healthy ? std::max(1, static_cast<int>(threads_.size()) - 1) : 1;
  return it->second.running < limit;
}

void WorkerPool::ThreadMain() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    auto pick = queue_.end();
    // A job held back by its lane limit must still expire at its deadline.
    auto ready = [&] {
      if (stopping_) return true;
      auto now = Clock::now();
      for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if (it->deadline <= now || Runnable(*it)) {
          pick = it;
          return true;
        }
      }
      return false;
    };
    while (!ready()) {
      if (queue_.empty()) {
        cv_.wait(lock);  // idle: sleep until a job or stop arrives
      } else {
        // Jobs are held back by their lane: wake at the earliest deadline.
        auto next = queue_.front().deadline;
        for (const auto& j : queue_) next = std::min(next, j.deadline);
        cv_.wait_until(lock, next);
      }
    }
    if (stopping_) return;
    Job job = std::move(*pick);
    queue_.erase(pick);
    if (job.deadline <= Clock::now()) {
      ++expired_;
      completed_.push_back(std::move(job));
      ev_async_send(loop_, async_);
      continue;
    }
    ++lanes_[job.lane].running;
    ++in_flight_;
    lock.unlock();
    bool healthy = false;
    try {
      healthy = job.work();
    } catch (const std::exception&) {
      // Work functions report their own errors; a stray exception must not
      // kill the daemon. The completion sees ran=true and whatever the work
      // stored before throwing.
      healthy = false;
    } catch (...) {
      healthy = false;
    }
    job.ran = true;
    job.healthy = healthy;
    job.work = nullptr;  // destroy captured state off the loop
    lock.lock();
    --in_flight_;
    Lane& lane = lanes_[job.lane];
    --lane.running;
    lane.healthy = healthy;
    completed_.push_back(std::move(job));
    ev_async_send(loop_, async_);
    // A lane limit may have been lifted: let the others look again.
    cv_.notify_all();
  }
}

void WorkerPool::OnAsync(struct ev_loop*, struct ev_async* w, int) {
  static_cast<WorkerPool*>(w->data)->DrainCompletions();
}

void WorkerPool::DrainCompletions() {
  std::vector<Job> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(completed_);
  }
  for (auto& job : done) {
    if (job.done) job.done(job.ran);
  }
}

}  // namespace warden
