#include "daemon/io/worker_pool.h"

#include <ev.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <thread>

using namespace warden;
using namespace std::chrono_literals;

namespace {

// Runs the default loop until `done()` or a generous safety timeout.
template <typename Pred>
void RunUntil(struct ev_loop* loop, Pred done, double seconds = 20) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
    std::this_thread::sleep_for(1ms);
  }
}

}  // namespace

TEST_CASE("completions run on the loop thread", "[worker_pool]") {
  struct ev_loop* loop = EV_DEFAULT;
  WorkerPool pool(loop, 2);
  std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id work_thread;
  std::thread::id done_thread;
  bool done = false;
  pool.Submit("x", WorkerPool::Clock::now() + 10s,
              [&] {
                work_thread = std::this_thread::get_id();
                return true;
              },
              [&](bool ran) {
                CHECK(ran);
                done_thread = std::this_thread::get_id();
                done = true;
              });
  RunUntil(loop, [&] { return done; });
  REQUIRE(done);
  CHECK(work_thread != loop_thread);
  CHECK(done_thread == loop_thread);
}

TEST_CASE("a lane never takes every worker", "[worker_pool]") {
  struct ev_loop* loop = EV_DEFAULT;
  WorkerPool pool(loop, 3);
  std::atomic<int> hung_running{0};
  std::atomic<int> max_hung{0};
  std::atomic<bool> release{false};
  int hung_done = 0;
  for (int i = 0; i < 5; ++i) {
    pool.Submit("hung", WorkerPool::Clock::now() + 30s,
                [&] {
                  int now = ++hung_running;
                  int prev = max_hung.load();
                  while (now > prev && !max_hung.compare_exchange_weak(prev, now)) {
                  }
                  while (!release) std::this_thread::sleep_for(1ms);
                  --hung_running;
                  return true;
                },
                [&](bool) { ++hung_done; });
  }
  // With 3 workers a healthy lane may use 2; the third stays free.
  bool other_done = false;
  std::this_thread::sleep_for(50ms);
  pool.Submit("healthy", WorkerPool::Clock::now() + 10s, [] { return true; },
              [&](bool ran) { other_done = ran; });
  RunUntil(loop, [&] { return other_done; });
  CHECK(other_done);
  CHECK(max_hung.load() == 2);
  release = true;
  RunUntil(loop, [&] { return hung_done == 5; });
  CHECK(hung_done == 5);
}

TEST_CASE("an unhealthy lane is held to one worker", "[worker_pool]") {
  struct ev_loop* loop = EV_DEFAULT;
  WorkerPool pool(loop, 4);
  int done = 0;
  // First job reports the peer unhealthy.
  pool.Submit("peer", WorkerPool::Clock::now() + 10s, [] { return false; }, [&](bool) { ++done; });
  RunUntil(loop, [&] { return done == 1; });
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  for (int i = 0; i < 4; ++i) {
    pool.Submit("peer", WorkerPool::Clock::now() + 10s,
                [&] {
                  int now = ++running;
                  int prev = max_running.load();
                  while (now > prev && !max_running.compare_exchange_weak(prev, now)) {
                  }
                  std::this_thread::sleep_for(30ms);
                  --running;
                  return false;
                },
                [&](bool) { ++done; });
  }
  RunUntil(loop, [&] { return done == 5; });
  CHECK(done == 5);
  CHECK(max_running.load() == 1);
}

TEST_CASE("a job queued past its deadline is not run", "[worker_pool]") {
  struct ev_loop* loop = EV_DEFAULT;
  WorkerPool pool(loop, 1);
  std::atomic<bool> release{false};
  bool blocker_done = false;
  pool.Submit("a", WorkerPool::Clock::now() + 30s,
              [&] {
                while (!release) std::this_thread::sleep_for(1ms);
                return true;
              },
              [&](bool) { blocker_done = true; });
  bool expired_ran = true;
  bool expired_done = false;
  std::atomic<bool> work_called{false};
  pool.Submit("b", WorkerPool::Clock::now() + 100ms,
              [&] {
                work_called = true;
                return true;
              },
              [&](bool ran) {
                expired_ran = ran;
                expired_done = true;
              });
  std::this_thread::sleep_for(300ms);
  release = true;
  RunUntil(loop, [&] { return blocker_done && expired_done; });
  CHECK(expired_done);
  CHECK_FALSE(expired_ran);
  CHECK_FALSE(work_called);
  CHECK(pool.expired() == 1);
}

TEST_CASE("a job held back by its lane still expires while workers idle", "[worker_pool]") {
  struct ev_loop* loop = EV_DEFAULT;
  WorkerPool pool(loop, 2);  // lane limit 1
  std::atomic<bool> release{false};
  pool.Submit("lane", WorkerPool::Clock::now() + 30s,
              [&] {
                while (!release) std::this_thread::sleep_for(1ms);
                return true;
              },
              [](bool) {});
  bool done = false;
  bool ran = true;
  pool.Submit("lane", WorkerPool::Clock::now() + 200ms, [] { return true; },
              [&](bool r) {
                ran = r;
                done = true;
              });
  // The second worker is idle; the held-back job must expire on time, not
  // when the first job ends.
  RunUntil(loop, [&] { return done; }, 10);
  CHECK(done);
  CHECK_FALSE(ran);
  release = true;
  RunUntil(loop, [&] { return pool.pending() == 0; });
}

TEST_CASE("an exception in work becomes a completion, not a dead daemon", "[worker_pool]") {
  struct ev_loop* loop = EV_DEFAULT;
  WorkerPool pool(loop, 1);
  bool done = false;
  pool.Submit("x", WorkerPool::Clock::now() + 10s,
              []() -> bool { throw std::runtime_error("boom"); }, [&](bool ran) { done = ran; });
  RunUntil(loop, [&] { return done; });
  CHECK(done);
  bool again = false;
  pool.Submit("x", WorkerPool::Clock::now() + 10s, [] { return true; },
              [&](bool ran) { again = ran; });
  RunUntil(loop, [&] { return again; });
  CHECK(again);
}
