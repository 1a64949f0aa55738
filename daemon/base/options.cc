#include "daemon/base/options.h"

namespace warden {

const ConfigEntry* OptionReader::Find(const std::string& key) {
  known_.insert(key);
  for (const auto& e : section_.entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

bool OptionReader::Has(const std::string& key) const {
  for (const auto& e : section_.entries) {
    if (e.key == key) return true;
  }
  return false;
}

const ConfigEntry* OptionReader::Single(const std::string& key) {
  const ConfigEntry* e = Find(key);
  if (e && e->continued_at != 0) {
    diag_.Error(Location{e->where.file, e->continued_at},
                "this indented line continues the value of '" + key +
                    "', which must fit on one line (do not indent keys)");
    return nullptr;
  }
  if (e && Trim(e->value).empty()) {
    diag_.Error(e->where, "'" + key + "' is empty");
    return nullptr;
  }
  return e;
}

std::optional<std::string> OptionReader::Text(const std::string& key) {
  const ConfigEntry* e = Single(key);
  if (!e) return std::nullopt;
  return std::string(Trim(e->value));
}

std::string OptionReader::Text(const std::string& key, const std::string& fallback) {
  auto v = Text(key);
  return v ? *v : fallback;
}

std::optional<std::string> OptionReader::MultiLineText(const std::string& key) {
  const ConfigEntry* e = Find(key);
  if (!e) return std::nullopt;
  if (Trim(e->value).empty()) {
    diag_.Error(e->where, "'" + key + "' is empty");
    return std::nullopt;
  }
  return std::string(Trim(e->value));
}

std::string OptionReader::Required(const std::string& key, const std::string& what) {
  if (!Has(key)) {
    known_.insert(key);
    diag_.Error(section_.where, section_.title() + " needs '" + key + "' (" + what + ")");
    return {};
  }
  return Text(key).value_or("");
}

#define WARDEN_TYPED_GETTER(Name, Type, Parse)                          \
  std::optional<Type> OptionReader::Name(const std::string& key) {      \
    const ConfigEntry* e = Single(key);                                 \
    if (!e) return std::nullopt;                                        \
    auto v = Parse(e->value);                                           \
    if (!v) {                                                           \
      diag_.Error(e->where, key + ": " + v.error());                    \
      return std::nullopt;                                              \
    }                                                                   \
    return *v;                                                          \
  }

WARDEN_TYPED_GETTER(GetDuration, Duration, ParseDuration)
WARDEN_TYPED_GETTER(GetSize, std::uint64_t, ParseSize)
WARDEN_TYPED_GETTER(GetPercent, double, ParsePercent)
WARDEN_TYPED_GETTER(GetBool, bool, ParseBool)
WARDEN_TYPED_GETTER(GetThreshold, Threshold, ParseThreshold)
WARDEN_TYPED_GETTER(GetTrip, TripRule, ParseTrip)
WARDEN_TYPED_GETTER(GetBudget, Budget, ParseBudget)
#undef WARDEN_TYPED_GETTER

std::optional<long long> OptionReader::GetInteger(const std::string& key, long long min,
                                                  long long max) {
  const ConfigEntry* e = Single(key);
  if (!e) return std::nullopt;
  auto v = ParseInteger(e->value, min, max);
  if (!v) {
    diag_.Error(e->where, key + ": " + v.error());
    return std::nullopt;
  }
  return *v;
}

std::optional<std::string> OptionReader::GetChoice(const std::string& key,
                                                   const std::vector<std::string>& choices) {
  auto v = Text(key);
  if (!v) return std::nullopt;
  for (const auto& c : choices) {
    if (*v == c) return v;
  }
  std::string allowed;
  for (const auto& c : choices) allowed += (allowed.empty() ? "" : ", ") + c;
  diag_.Error(Find(key)->where, key + ": '" + *v + "' is not one of " + allowed);
  return std::nullopt;
}

std::vector<std::string> OptionReader::GetList(const std::string& key) {
  std::vector<std::string> out;
  auto v = Text(key);
  if (!v) return out;
  size_t start = 0;
  while (start <= v->size()) {
    size_t comma = v->find(',', start);
    if (comma == std::string::npos) comma = v->size();
    std::string item(Trim(std::string_view(*v).substr(start, comma - start)));
    if (item.empty()) {
      diag_.Error(Find(key)->where, key + ": empty name in list '" + *v + "'");
    } else {
      out.push_back(item);
    }
    start = comma + 1;
  }
  return out;
}

void OptionReader::Finish(const std::string& what) {
  for (const auto& e : section_.entries) {
    if (!known_.count(e.key)) {
      diag_.Error(e.where, "unknown key '" + e.key + "' for " + what);
    }
  }
}

}  // namespace warden
