#include "daemon/base/wall_time.h"

#include <cstdio>
#include <ctime>

namespace warden {

std::int64_t WallMsNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t SteadyToWallMs(std::chrono::steady_clock::time_point tp) {
  auto age = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - tp);
  return WallMsNow() - age.count();
}

std::chrono::steady_clock::time_point WallMsToSteady(std::int64_t ms) {
  std::int64_t age = WallMsNow() - ms;
  return std::chrono::steady_clock::now() - std::chrono::milliseconds(age);
}

std::string Rfc3339FromMs(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  int frac = static_cast<int>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    --t;
  }
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

}  // namespace warden
