#include "daemon/base/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace warden {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<double> ParseNumber(std::string_view text) {
  text = Trim(text);
  if (text.empty()) return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

namespace {

// Splits "10s" into 10 and "s"; the number part is a non-negative decimal.
bool SplitNumberUnit(std::string_view text, double* number, std::string_view* unit) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  if (i == 0) return false;
  auto n = ParseNumber(text.substr(0, i));
  if (!n) return false;
  *number = *n;
  *unit = Trim(text.substr(i));
  return true;
}

}  // namespace

Expected<Duration> ParseDuration(std::string_view text) {
  text = Trim(text);
  if (text == "0") return Duration(0);
  double n = 0;
  std::string_view unit;
  if (!SplitNumberUnit(text, &n, &unit)) {
    return Expected<Duration>::Error("'" + std::string(text) +
                                     "' is not a duration (e.g. 250ms, 10s, 5m, 2h, 1d)");
  }
  double ms = 0;
  if (unit == "ms") ms = n;
  else if (unit == "s") ms = n * 1000;
  else if (unit == "m") ms = n * 60'000;
  else if (unit == "h") ms = n * 3'600'000;
  else if (unit == "d") ms = n * 86'400'000;
  else if (unit.empty())
    return Expected<Duration>::Error("duration '" + std::string(text) +
                                     "' needs a unit (ms, s, m, h, d)");
  else
    return Expected<Duration>::Error("duration '" + std::string(text) + "' has unknown unit '" +
                                     std::string(unit) + "' (ms, s, m, h, d)");
  if (ms > 1e13) return Expected<Duration>::Error("duration '" + std::string(text) + "' is too large");
  return Duration(static_cast<long long>(std::llround(ms)));
}

Expected<std::uint64_t> ParseSize(std::string_view text) {
  text = Trim(text);
  double n = 0;
  std::string_view unit;
  if (!SplitNumberUnit(text, &n, &unit)) {
    return Expected<std::uint64_t>::Error("'" + std::string(text) +
                                          "' is not a size (e.g. 64KB, 256MB)");
  }
  double mult = 0;
  if (unit == "B") mult = 1;
  else if (unit == "KB" || unit == "K" || unit == "KiB") mult = 1024.0;
  else if (unit == "MB" || unit == "M" || unit == "MiB") mult = 1024.0 * 1024;
  else if (unit == "GB" || unit == "G" || unit == "GiB") mult = 1024.0 * 1024 * 1024;
  else if (unit.empty())
    return Expected<std::uint64_t>::Error("size '" + std::string(text) +
                                          "' needs a unit (B, KB, MB, GB)");
  else
    return Expected<std::uint64_t>::Error("size '" + std::string(text) + "' has unknown unit '" +
                                          std::string(unit) + "' (B, KB, MB, GB)");
  double bytes = n * mult;
  if (bytes > 1e18) return Expected<std::uint64_t>::Error("size '" + std::string(text) + "' is too large");
  return static_cast<std::uint64_t>(bytes);
}

Expected<double> ParsePercent(std::string_view text) {
  text = Trim(text);
  if (text == "0") return 0.0;  // like a duration's bare 0: "none" needs no unit
  if (text.empty() || text.back() != '%') {
    return Expected<double>::Error("'" + std::string(text) + "' is not a percentage (e.g. 10%)");
  }
  auto n = ParseNumber(text.substr(0, text.size() - 1));
  if (!n || *n < 0 || *n > 100) {
    return Expected<double>::Error("'" + std::string(text) + "' is not a percentage between 0% and 100%");
  }
  return *n / 100.0;
}

Expected<bool> ParseBool(std::string_view text) {
  std::string t(Trim(text));
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "yes" || t == "true" || t == "on" || t == "1") return true;
  if (t == "no" || t == "false" || t == "off" || t == "0") return false;
  return Expected<bool>::Error("'" + std::string(text) + "' is not yes or no");
}

Expected<long long> ParseInteger(std::string_view text, long long min, long long max) {
  text = Trim(text);
  long long v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return Expected<long long>::Error("'" + std::string(text) + "' is not a whole number");
  }
  if (v < min || v > max) {
    return Expected<long long>::Error("'" + std::string(text) + "' is out of range (" +
                                      std::to_string(min) + " to " + std::to_string(max) + ")");
  }
  return v;
}

std::string FormatDuration(Duration d) {
  auto ms = d.count();
  if (ms != 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Expected<Threshold> ParseThreshold(std::string_view text) {
  std::string_view t = Trim(text);
  Threshold th;
  struct OpName { std::string_view s; Threshold::Op op; };
  static constexpr OpName kOps[] = {{">=", Threshold::Op::kGe}, {"<=", Threshold::Op::kLe},
                                    {"==", Threshold::Op::kEq}, {"!=", Threshold::Op::kNe},
                                    {">", Threshold::Op::kGt},  {"<", Threshold::Op::kLt}};
  bool found = false;
  for (const auto& o : kOps) {
    if (t.substr(0, o.s.size()) == o.s) {
      th.op = o.op;
      t.remove_prefix(o.s.size());
      found = true;
      break;
    }
  }
  if (!found) {
    return Expected<Threshold>::Error("'" + std::string(text) +
                                      "' is not a comparison (>, >=, <, <=, ==, != and a value)");
  }
  t = Trim(t);
  if (t.empty()) return Expected<Threshold>::Error("'" + std::string(text) + "' has no value to compare with");
  th.operand = std::string(t);
  th.number = ParseNumber(t);
  if (!th.number && th.op != Threshold::Op::kEq && th.op != Threshold::Op::kNe) {
    return Expected<Threshold>::Error("'" + std::string(text) +
                                      "': a word can only be compared with == or !=");
  }
  return th;
}

std::string Threshold::ToString() const {
  static constexpr const char* kNames[] = {">", ">=", "<", "<=", "==", "!="};
  return std::string(kNames[static_cast<int>(op)]) + " " + operand;
}

Expected<bool> Threshold::Matches(std::string_view value) const {
  if (number) {
    auto v = ParseNumber(value);
    if (!v) {
      if (op == Op::kEq || op == Op::kNe) {
        // "== 1" against a word: compare as text, a word is never the number.
        bool eq = Trim(value) == operand;
        return op == Op::kEq ? eq : !eq;
      }
      return Expected<bool>::Error("value '" + std::string(value) + "' is not a number (threshold " +
                                   ToString() + ")");
    }
    switch (op) {
      case Op::kGt: return *v > *number;
      case Op::kGe: return *v >= *number;
      case Op::kLt: return *v < *number;
      case Op::kLe: return *v <= *number;
      case Op::kEq: return *v == *number;
      case Op::kNe: return *v != *number;
    }
  }
  bool eq = Trim(value) == operand;
  return op == Op::kEq ? eq : !eq;
}

Expected<TripRule> ParseTrip(std::string_view text) {
  std::string_view t = Trim(text);
  TripRule r;
  auto of = t.find(" of ");
  if (of == std::string_view::npos) {
    auto n = ParseInteger(t, 1, 1000);
    if (!n) return Expected<TripRule>::Error("trip '" + std::string(text) + "' is not N or 'N of M'");
    r.need = r.window = static_cast<int>(*n);
    return r;
  }
  auto n = ParseInteger(t.substr(0, of), 1, 1000);
  auto m = ParseInteger(t.substr(of + 4), 1, 1000);
  if (!n || !m) return Expected<TripRule>::Error("trip '" + std::string(text) + "' is not N or 'N of M'");
  if (*n > *m) {
    return Expected<TripRule>::Error("trip '" + std::string(text) + "': N cannot exceed M");
  }
  r.need = static_cast<int>(*n);
  r.window = static_cast<int>(*m);
  return r;
}

Expected<Budget> ParseBudget(std::string_view text) {
  std::string_view t = Trim(text);
  auto per = t.find(" per ");
  if (per == std::string_view::npos) {
    return Expected<Budget>::Error("budget '" + std::string(text) + "' is not 'N per DURATION' (e.g. 3 per 1h)");
  }
  auto n = ParseInteger(t.substr(0, per), 1, 1'000'000);
  if (!n) return Expected<Budget>::Error("budget '" + std::string(text) + "': " + n.error());
  auto d = ParseDuration(t.substr(per + 5));
  if (!d) return Expected<Budget>::Error("budget '" + std::string(text) + "': " + d.error());
  if (d->count() <= 0) return Expected<Budget>::Error("budget '" + std::string(text) + "': the window must be longer than 0");
  return Budget{static_cast<int>(*n), *d};
}

}  // namespace warden
