#include "daemon/base/time_source.h"

#include "daemon/base/wall_time.h"

namespace warden {

namespace {

class RealTime final : public TimeSource {
 public:
  time_point Now() const override { return std::chrono::steady_clock::now(); }
  std::int64_t WallMs() const override { return WallMsNow(); }
};

}  // namespace

const TimeSource& TimeSource::Real() {
  static const RealTime real;
  return real;
}

}  // namespace warden
