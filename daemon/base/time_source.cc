#include "daemon/base/time_source.h"

namespace warden {

namespace {

class RealTime final : public TimeSource {
 public:
  time_point Now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace

const TimeSource& TimeSource::Real() {
  static const RealTime real;
  return real;
}

}  // namespace warden
