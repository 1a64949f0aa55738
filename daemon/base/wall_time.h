// Wall-clock time in milliseconds since the epoch, as the state file, the
// journal and events keep it, and its conversions to the steady clock the
// loop runs on.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace warden {

std::int64_t WallMsNow();
// Conversions relative to now (a steady time point <-> wall ms).
std::int64_t SteadyToWallMs(std::chrono::steady_clock::time_point tp);
std::chrono::steady_clock::time_point WallMsToSteady(std::int64_t ms);
// "2026-11-25T17:02:44.854Z" for wall ms.
std::string Rfc3339FromMs(std::int64_t ms);

}  // namespace warden
