// Parsers for the value syntaxes of the config: durations, sizes,
// percentages, thresholds and trip rules. Pure functions, no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace warden {

using Duration = std::chrono::milliseconds;

// "250ms", "10s", "5m", "2h", "1d". A unit is required; 0 alone is allowed.
Expected<Duration> ParseDuration(std::string_view text);
// "64KB", "256MB", "1GB", "512B" (powers of 1024). A unit is required.
Expected<std::uint64_t> ParseSize(std::string_view text);
// "10%" -> 0.10; a number in [0, 100] followed by %. "0" alone is 0%.
Expected<double> ParsePercent(std::string_view text);
// "yes"/"no"/"true"/"false"/"on"/"off"/"1"/"0".
Expected<bool> ParseBool(std::string_view text);
// A whole number within [min, max].
Expected<long long> ParseInteger(std::string_view text, long long min, long long max);
// A finite decimal number ("12", "-3.5", "1e3"); nothing else around it.
std::optional<double> ParseNumber(std::string_view text);

std::string FormatDuration(Duration d);

// "> 60", ">= 0.5", "== Yes", "!= No". Numbers compare numerically; a word
// only with == and !=.
struct Threshold {
  enum class Op { kGt, kGe, kLt, kLe, kEq, kNe };
  Op op = Op::kGt;
  std::string operand;                 // as written
  std::optional<double> number;        // set when operand is a number

  // True when the value meets the condition. A numeric threshold against a
  // value that is not a number is an error, never false.
  Expected<bool> Matches(std::string_view value) const;
  std::string ToString() const;        // "> 60"
};
Expected<Threshold> ParseThreshold(std::string_view text);

// "3" (3 in a row) or "3 of 5" (3 of the last 5 results).
struct TripRule {
  int need = 1;
  int window = 1;
};
Expected<TripRule> ParseTrip(std::string_view text);

// "3 per 1h".
struct Budget {
  int count = 0;
  Duration window{0};
};
Expected<Budget> ParseBudget(std::string_view text);

std::string_view Trim(std::string_view s);

}  // namespace warden
