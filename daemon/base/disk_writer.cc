#include "daemon/base/disk_writer.h"

#include <ev.h>
#include <pthread.h>

#include <chrono>
#include <utility>

namespace warden {

DiskWriter::DiskWriter(struct ev_loop* loop) : loop_(loop) {
  if (!loop_) return;
  async_ = std::make_unique<ev_async>();
  ev_async_init(async_.get(), &DiskWriter::OnAsync);
  async_->data = this;
  ev_async_start(loop_, async_.get());
  ev_unref(loop_);   // pending writes alone do not keep the loop running
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "wardend-disk");
    Run();
  });
}

DiskWriter::~DiskWriter() { Stop(); }

void DiskWriter::Stop() {
  if (!loop_ || stopped_) return;
  Drain();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
  stopped_ = true;
  RunCompletions();
  ev_ref(loop_);
  ev_async_stop(loop_, async_.get());
}

void DiskWriter::ToLoop(std::function<void()> done) {
  if (!threaded() || std::this_thread::get_id() != thread_.get_id()) {
    done();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    completed_.push_back(std::move(done));
  }
  ev_async_send(loop_, async_.get());
}

void DiskWriter::Post(const std::string& key, Work work, Done done) {
  if (!threaded()) {
    Status result = work();
    if (done) done(result);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!key.empty()) {
      for (auto& t : queue_) {
        if (t.key == key) {   // queued, not started: the newer work wins
          t.work = std::move(work);
          if (done) t.done.push_back(std::move(done));
          return;
        }
      }
    }
    Task t{key, std::move(work), {}};
    if (done) t.done.push_back(std::move(done));
    queue_.push_back(std::move(t));
  }
  wake_.notify_one();
}

void DiskWriter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;   // stop_, and nothing left
    Task t = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    auto started = std::chrono::steady_clock::now();
    Status result = t.work();
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - started)
                    .count();
    lock.lock();
    busy_ = false;
    if (took > slowest_ms_) slowest_ms_ = took;
    bool signal = !t.done.empty();
    for (auto& d : t.done) {
      completed_.push_back([d = std::move(d), result] { d(result); });
    }
    if (queue_.empty()) idle_.notify_all();
    if (signal) {
      lock.unlock();
      ev_async_send(loop_, async_.get());
      lock.lock();
    }
  }
}

void DiskWriter::RunCompletions() {
  std::vector<std::function<void()>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(completed_);
  }
  for (auto& d : done) d();
}

void DiskWriter::OnAsync(struct ev_loop*, ev_async* w, int) {
  static_cast<DiskWriter*>(w->data)->RunCompletions();
}

void DiskWriter::Drain() {
  if (!threaded()) return;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      idle_.wait(lock, [this] { return queue_.empty() && !busy_; });
    }
    RunCompletions();   // they may post more (a journal save after a step)
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.empty() && !busy_ && completed_.empty()) return;
  }
}

std::size_t DiskWriter::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + (busy_ ? 1 : 0);
}

std::int64_t DiskWriter::slowest_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slowest_ms_;
}

}  // namespace warden
