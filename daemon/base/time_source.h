// The steady time the engine reads for cadences: the real clock in
// wardend, a clock the test moves by hand in tests (tests/support/
// fake_time.h), so that a test decides when a check is due again instead
// of racing the wall clock.
//
// Only what decides *when* something runs reads it (the scheduler's due
// times). Results keep the time their data was taken (MysqlMap::taken,
// Measurement::at), which is always the real clock.
#pragma once

#include <chrono>

namespace warden {

class TimeSource {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~TimeSource() = default;
  virtual time_point Now() const = 0;
  // std::chrono::steady_clock::now().
  static const TimeSource& Real();
};

}  // namespace warden
