// A TimeSource the test moves by hand: a scheduler on it runs a check
// again only once the test has moved it past the check's due time (and
// the real timer has fired), so a stalled or busy machine cannot make it
// run a check more often than the test asked for.
#pragma once

#include <chrono>

#include "daemon/base/time_source.h"

namespace warden::testing {

class FakeTime final : public TimeSource {
 public:
  time_point Now() const override { return now_; }
  void Advance(std::chrono::steady_clock::duration d) { now_ += d; }

 private:
  time_point now_ = std::chrono::steady_clock::now();
};

}  // namespace warden::testing
