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

}  // namespace warden::testing
