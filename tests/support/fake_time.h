// A TimeSource the test moves by hand: a scheduler on it runs a check
// again only once the test has moved it past the check's due time (and
// the real timer has fired), so a stalled or busy machine cannot make it
// run a check more often than the test asked for.
#pragma once

#include <chrono>

#include "daemon/base/time_source.h"
#include "daemon/base/wall_time.h"

namespace warden::testing {

class FakeTime final : public TimeSource {
 public:
  time_point Now() const override { return now_; }
  // The wall clock moves with the steady one, from the real time at start.
  std::int64_t WallMs() const override {
    return wall_start_ms_ +
           std::chrono::duration_cast<std::chrono::milliseconds>(now_ - start_).count();
  }
  void Advance(std::chrono::steady_clock::duration d) { now_ += d; }

 private:
  const time_point start_ = std::chrono::steady_clock::now();
  time_point now_ = start_;
  const std::int64_t wall_start_ms_ = WallMsNow();
};

}  // namespace warden::testing
