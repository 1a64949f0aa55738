// The clock the engine reads: the real one in wardend, one the test moves
// by hand in tests (tests/support/fake_time.h), so that a test decides
// when a check is due again, when a cooldown or a budget window ends and
// how long a job step took, instead of racing the wall clock.
//
// What reads it: the scheduler's due times, the guard's cooldown and
// budget windows, the executor's action durations, the job runner's
// timeouts, pauses and journal times. Results keep the time their data
// was taken (MysqlMap::taken, Measurement::at), which is always the real
// clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace warden {

class TimeSource {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~TimeSource() = default;
  // Steady time (for intervals and deadlines).
  virtual time_point Now() const = 0;
  // Wall-clock milliseconds since the epoch (for what is kept or shown).
  virtual std::int64_t WallMs() const = 0;
  // std::chrono::steady_clock::now() and the system clock.
  static const TimeSource& Real();
};

}  // namespace warden
