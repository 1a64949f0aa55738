// Typed, located access to one section's keys. Every getter marks its key as
// known; Finish() reports the keys nobody asked for, so a typo is an error
// that names file:line, never a silently ignored setting.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/base/ini.h"
#include "daemon/base/units.h"

namespace warden {

class OptionReader {
 public:
  OptionReader(const RawSection& section, Diagnostics& diag) : section_(section), diag_(diag) {}

  const RawSection& section() const { return section_; }
  Diagnostics& diag() { return diag_; }

  // Single-line text. Missing -> nullopt.
  std::optional<std::string> Text(const std::string& key);
  std::string Text(const std::string& key, const std::string& fallback);
  // Text that may span indented continuation lines (SQL, commands, messages).
  std::optional<std::string> MultiLineText(const std::string& key);
  // Required text; reports "missing key" when absent.
  std::string Required(const std::string& key, const std::string& what);

  std::optional<Duration> GetDuration(const std::string& key);
  std::optional<std::uint64_t> GetSize(const std::string& key);
  std::optional<double> GetPercent(const std::string& key);
  std::optional<bool> GetBool(const std::string& key);
  std::optional<long long> GetInteger(const std::string& key, long long min, long long max);
  std::optional<Threshold> GetThreshold(const std::string& key);
  std::optional<TripRule> GetTrip(const std::string& key);
  std::optional<Budget> GetBudget(const std::string& key);
  // One of `choices`; reports the allowed words otherwise.
  std::optional<std::string> GetChoice(const std::string& key, const std::vector<std::string>& choices);
  // Comma-separated names ("a, b, c"); empty items are errors.
  std::vector<std::string> GetList(const std::string& key);

  const ConfigEntry* Find(const std::string& key);  // marks known
  bool Has(const std::string& key) const;

  void Error(const ConfigEntry& e, const std::string& message) { diag_.Error(e.where, message); }
  void Error(const std::string& message) { diag_.Error(section_.where, message); }

  // Reports keys that no getter asked for. `what` names the section's
  // meaning for the message ("check type mysql_status").
  void Finish(const std::string& what);

 private:
  const ConfigEntry* Single(const std::string& key);
  const RawSection& section_;
  Diagnostics& diag_;
  std::set<std::string> known_;
};

}  // namespace warden
