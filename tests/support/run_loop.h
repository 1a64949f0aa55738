// Runs libev's default loop (what wardend uses) until a condition holds or a
// deadline passes, for tests of loop-driven clients. A 20 ms tick keeps the
// loop from sleeping past the deadline when nothing else is pending.
#pragma once

#include <ev.h>

#include <chrono>
#include <functional>

namespace warden::testing {

inline bool RunUntil(const std::function<bool()>& done, double seconds) {
  struct ev_loop* loop = EV_DEFAULT;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  ev_timer tick;
  ev_timer_init(
      &tick, [](struct ev_loop*, ev_timer*, int) {}, 0.02, 0.02);
  ev_timer_start(loop, &tick);
  while (!done() && std::chrono::steady_clock::now() < deadline) ev_run(loop, EVRUN_ONCE);
  ev_timer_stop(loop, &tick);
  return done();
}

// Runs libev's default loop for `seconds` (what is due in that time runs).
inline void RunFor(double seconds) {
  RunUntil([] { return false; }, seconds);
}

inline void IgnoreTimer(struct ev_loop*, ev_timer*, int) {}

// Counts 50 ms ticks of libev's default loop from its making until Stop():
// the proof that the loop kept running while a client waited on a peer.
class TickCounter {
 public:
  TickCounter() {
    ev_timer_init(
        &timer_, [](struct ev_loop*, ev_timer* w, int) { ++*static_cast<int*>(w->data); }, 0.05,
        0.05);
    timer_.data = &ticks_;
    ev_timer_start(EV_DEFAULT, &timer_);
  }
  ~TickCounter() { Stop(); }
  TickCounter(const TickCounter&) = delete;
  TickCounter& operator=(const TickCounter&) = delete;

  void Stop() { ev_timer_stop(EV_DEFAULT, &timer_); }
  int ticks() const { return ticks_; }

 private:
  int ticks_ = 0;
  ev_timer timer_;
};

// Runs `loop` until `until()` holds or `limit` passes; returns until().
inline bool PumpUntil(struct ev_loop* loop, const std::function<bool()>& until,
                      std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  // A ticking timer keeps ev_run from returning at once (the worker pool
  // does not hold a reference on the loop) and lets us see the deadline.
  ev_timer tick;
  ev_timer_init(&tick, &IgnoreTimer, 0.01, 0.01);
  ev_timer_start(loop, &tick);
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!until() && std::chrono::steady_clock::now() < deadline) ev_run(loop, EVRUN_ONCE);
  ev_timer_stop(loop, &tick);
  return until();
}

}  // namespace warden::testing
