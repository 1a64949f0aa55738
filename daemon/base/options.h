// Typed, located access to one section's keys. Every getter marks its key as
// known; Finish() reports the keys nobody asked for, so a typo is an error
// that names file:line, never a silently ignored setting.
//
// A section whose keys are declared as data (an OptionSpec table: a check
// or action type's options, next to its code) is read the same way after
// Declare(table): the table's keys are known, a missing required key, a
// value of the wrong kind and a word that is not one of a choice's are
// reported from the table, at file:line, once; a key the table gives a
// literal default reads as that default when it is absent; and a getter
// that asks for a key the table does not declare (or as another kind) is
// reported as an internal error, so the table and the code that reads it
// cannot drift apart. The same table is what `wardenctl help` prints.
#pragma once

#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/ini.h"
#include "daemon/base/status.h"
#include "daemon/base/units.h"

namespace warden {

// One key of a section, as data.
struct OptionSpec {
  enum class Kind {
    kText,        // one line of text
    kMultiLine,   // text that may continue on indented lines (SQL, commands)
    kDuration,
    kSize,
    kPercent,
    kBool,
    kInteger,     // within [min, max]
    kChoice,      // one of `choices`
    kList,        // comma-separated names
    kThreshold,
    kTrip,
    kBudget,
  };
  const char* key;
  Kind kind;
  bool required;
  const char* help;            // one line; also the "(...)" of a missing key's error
  const char* default_value;   // a literal in the key's syntax, read when the key is absent; or null
  const char* default_note;    // a default no literal can say ("the source's server_id"); or null
  std::span<const char* const> choices;   // kChoice
  long long min;               // kInteger
  long long max;

  constexpr OptionSpec Required() const {
    OptionSpec s = *this;
    s.required = true;
    return s;
  }
  constexpr OptionSpec Default(const char* literal) const {
    OptionSpec s = *this;
    s.default_value = literal;
    return s;
  }
  constexpr OptionSpec DefaultNote(const char* note) const {
    OptionSpec s = *this;
    s.default_note = note;
    return s;
  }
};

// The kind's name for help and docs ("duration", "integer 1-65535",
// "free_pct|free_bytes|inodes_free_pct").
std::string KindName(const OptionSpec& spec);
// What help prints as the default: the literal, the note, or "".
std::string DefaultText(const OptionSpec& spec);
// Whether `value` is a valid value of `spec` (invalid, with the error,
// otherwise), as a section's value would be read. Used to test the tables'
// defaults.
Status CheckValue(const OptionSpec& spec, std::string_view value);
// A table as text, one key per line: key, kind, default or "required",
// help. For `wardenctl help`.
std::string FormatOptions(std::span<const OptionSpec> table);

// Builders for tables: `opt::Choice("metric", kMetrics, "what to measure").Default("free_pct")`.
namespace opt {
constexpr OptionSpec Make(const char* key, OptionSpec::Kind kind, const char* help) {
  return OptionSpec{key, kind, false, help, nullptr, nullptr, {}, 0, 0};
}
constexpr OptionSpec Text(const char* key, const char* help) {
  return Make(key, OptionSpec::Kind::kText, help);
}
constexpr OptionSpec MultiLine(const char* key, const char* help) {
  return Make(key, OptionSpec::Kind::kMultiLine, help);
}
constexpr OptionSpec Duration(const char* key, const char* help) {
  return Make(key, OptionSpec::Kind::kDuration, help);
}
constexpr OptionSpec Size(const char* key, const char* help) {
  return Make(key, OptionSpec::Kind::kSize, help);
}
constexpr OptionSpec Percent(const char* key, const char* help) {
  return Make(key, OptionSpec::Kind::kPercent, help);
}
constexpr OptionSpec Bool(const char* key, const char* help) {
  return Make(key, OptionSpec::Kind::kBool, help);
}
constexpr OptionSpec Integer(const char* key, long long min, long long max, const char* help) {
  OptionSpec s = Make(key, OptionSpec::Kind::kInteger, help);
  s.min = min;
  s.max = max;
  return s;
}
constexpr OptionSpec Choice(const char* key, std::span<const char* const> choices,
                            const char* help) {
  OptionSpec s = Make(key, OptionSpec::Kind::kChoice, help);
  s.choices = choices;
  return s;
}
constexpr OptionSpec List(const char* key, const char* help) {
  return Make(key, OptionSpec::Kind::kList, help);
}
constexpr OptionSpec Threshold(const char* key, const char* help) {
  return Make(key, OptionSpec::Kind::kThreshold, help);
}
constexpr OptionSpec Trip(const char* key, const char* help) {
  return Make(key, OptionSpec::Kind::kTrip, help);
}
constexpr OptionSpec Budget(const char* key, const char* help) {
  return Make(key, OptionSpec::Kind::kBudget, help);
}
}  // namespace opt

class OptionReader {
 public:
  OptionReader(const RawSection& section, Diagnostics& diag) : section_(section), diag_(diag) {}

  const RawSection& section() const { return section_; }
  Diagnostics& diag() { return diag_; }

  // Declares the section's remaining keys as `table` (see the top of this
  // file) and reports, in the table's order, each required key that is
  // missing and each value that is not of its kind. `owner` names the
  // table in internal errors ("check type disk"). Keys read before are
  // still known.
  void Declare(std::span<const OptionSpec> table, const std::string& owner);
  // The declared spec of `key`, or null.
  const OptionSpec* Spec(const std::string& key) const;
  // Whether anything asked for `key` (a getter, Find or Has) after
  // Declare: the test that a table declares nothing its factory ignores.
  bool Asked(const std::string& key) const { return asked_.count(key) != 0; }

  // Single-line text. Missing -> nullopt (or the declared default).
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
  // A declared integer: within the table's range.
  std::optional<long long> GetInteger(const std::string& key);
  std::optional<Threshold> GetThreshold(const std::string& key);
  std::optional<TripRule> GetTrip(const std::string& key);
  std::optional<Budget> GetBudget(const std::string& key);
  // One of `choices`; reports the allowed words otherwise.
  std::optional<std::string> GetChoice(const std::string& key, const std::vector<std::string>& choices);
  // A declared choice: one of the table's words.
  std::optional<std::string> GetChoice(const std::string& key);
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
  using Kind = OptionSpec::Kind;
  const ConfigEntry* Single(const std::string& key);
  // After Declare: reports (as an internal error) a key the table does not
  // declare, or declares as another kind than `kind` (nullopt: any kind),
  // and returns false for it.
  bool Expect(const std::string& key, std::optional<Kind> kind) const;
  // The declared literal default of an absent `key`, or null.
  const char* DefaultOf(const std::string& key) const;
  // Declare found the value bad and said so: getters return nullopt quietly.
  bool Reported(const std::string& key) const { return bad_.count(key) != 0; }

  const RawSection& section_;
  Diagnostics& diag_;
  std::set<std::string> known_;
  std::span<const OptionSpec> table_;
  bool declared_ = false;
  std::string owner_;
  std::set<std::string> known_before_;   // read before Declare (the common keys)
  std::set<std::string> bad_;
  bool declaring_ = false;
  mutable std::set<std::string> drift_;   // internal errors already reported
  mutable std::set<std::string> asked_;   // after Declare, outside it
};

}  // namespace warden
