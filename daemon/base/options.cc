#include "daemon/base/options.h"

namespace warden {

namespace {

const char* KindWord(OptionSpec::Kind kind) {
  using Kind = OptionSpec::Kind;
  switch (kind) {
    case Kind::kText: return "text";
    case Kind::kMultiLine: return "text, may span lines";
    case Kind::kDuration: return "duration";
    case Kind::kSize: return "size";
    case Kind::kPercent: return "percentage";
    case Kind::kBool: return "boolean";
    case Kind::kInteger: return "integer";
    case Kind::kChoice: return "choice";
    case Kind::kList: return "list";
    case Kind::kThreshold: return "threshold";
    case Kind::kTrip: return "trip";
    case Kind::kBudget: return "budget";
  }
  return "?";
}

}  // namespace

std::string KindName(const OptionSpec& spec) {
  if (spec.kind == OptionSpec::Kind::kInteger) {
    return "integer " + std::to_string(spec.min) + "-" + std::to_string(spec.max);
  }
  if (spec.kind == OptionSpec::Kind::kChoice) {
    std::string out;
    for (const char* c : spec.choices) out += (out.empty() ? "" : " | ") + std::string(c);
    return out;
  }
  return KindWord(spec.kind);
}

std::string DefaultText(const OptionSpec& spec) {
  if (spec.default_value) return spec.default_value;
  if (spec.default_note) return spec.default_note;
  return "";
}

Status CheckValue(const OptionSpec& spec, std::string_view value) {
  RawSection s;
  s.kind = "value";
  s.where = Location{"value", 1};
  s.entries.push_back(ConfigEntry{spec.key, std::string(value), Location{"value", 2}, 0});
  Diagnostics diag;
  OptionReader r(s, diag);
  r.Declare(std::span<const OptionSpec>(&spec, 1), "the value");
  r.Finish("the value");
  if (diag.ok()) return Status::Ok();
  std::string all;
  for (const auto& e : diag.errors()) all += (all.empty() ? "" : "; ") + e;
  return Status::Invalid(all);
}

std::string FormatOptions(std::span<const OptionSpec> table) {
  std::string out;
  for (const auto& s : table) {
    out += "  " + std::string(s.key) + " = " + KindName(s);
    if (s.required) {
      out += " (required)";
    } else if (s.default_value) {
      out += " (default " + std::string(s.default_value) + ")";
    } else if (s.default_note) {
      out += " (default: " + std::string(s.default_note) + ")";
    }
    out += "\n      " + std::string(s.help) + "\n";
  }
  return out;
}

void OptionReader::Declare(std::span<const OptionSpec> table, const std::string& owner) {
  known_before_ = known_;
  table_ = table;
  owner_ = owner;
  declared_ = true;
  declaring_ = true;
  for (const auto& s : table) {
    const std::string key = s.key;
    known_.insert(key);
    if (!Has(key)) {
      if (s.required) {
        diag_.Error(section_.where, section_.title() + " needs '" + key + "' (" + s.help + ")");
      }
      continue;
    }
    const size_t before = diag_.errors().size();
    switch (s.kind) {
      case Kind::kText: Text(key); break;
      case Kind::kMultiLine: MultiLineText(key); break;
      case Kind::kDuration: GetDuration(key); break;
      case Kind::kSize: GetSize(key); break;
      case Kind::kPercent: GetPercent(key); break;
      case Kind::kBool: GetBool(key); break;
      case Kind::kInteger: GetInteger(key); break;
      case Kind::kChoice: GetChoice(key); break;
      case Kind::kList: GetList(key); break;
      case Kind::kThreshold: GetThreshold(key); break;
      case Kind::kTrip: GetTrip(key); break;
      case Kind::kBudget: GetBudget(key); break;
    }
    if (diag_.errors().size() != before) bad_.insert(key);
  }
  declaring_ = false;
}

const OptionSpec* OptionReader::Spec(const std::string& key) const {
  for (const auto& s : table_) {
    if (key == s.key) return &s;
  }
  return nullptr;
}

bool OptionReader::Expect(const std::string& key, std::optional<Kind> kind) const {
  if (!declared_ || known_before_.count(key)) return true;
  if (!declaring_) asked_.insert(key);
  const OptionSpec* s = Spec(key);
  std::string problem;
  if (!s) {
    problem = "reads '" + key + "', which its option table does not declare";
  } else if (kind && *kind != s->kind) {
    problem = "reads '" + key + "' as " + KindWord(*kind) + ", but its option table declares " +
              KindWord(s->kind);
  } else {
    return true;
  }
  if (drift_.insert(key).second) {
    diag_.Error(section_.where, "internal error: " + owner_ + " " + problem);
  }
  return false;
}

const char* OptionReader::DefaultOf(const std::string& key) const {
  const OptionSpec* s = declared_ ? Spec(key) : nullptr;
  return s && !Has(key) ? s->default_value : nullptr;
}

const ConfigEntry* OptionReader::Find(const std::string& key) {
  Expect(key, std::nullopt);
  known_.insert(key);
  for (const auto& e : section_.entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

bool OptionReader::Has(const std::string& key) const {
  Expect(key, std::nullopt);
  for (const auto& e : section_.entries) {
    if (e.key == key) return true;
  }
  return false;
}

const ConfigEntry* OptionReader::Single(const std::string& key) {
  const ConfigEntry* e = Find(key);
  if (e && Reported(key)) return nullptr;
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
  if (!Expect(key, Kind::kText)) return std::nullopt;
  const ConfigEntry* e = Single(key);
  if (!e) {
    if (const char* d = DefaultOf(key)) return std::string(d);
    return std::nullopt;
  }
  return std::string(Trim(e->value));
}

std::string OptionReader::Text(const std::string& key, const std::string& fallback) {
  auto v = Text(key);
  return v ? *v : fallback;
}

std::optional<std::string> OptionReader::MultiLineText(const std::string& key) {
  if (!Expect(key, Kind::kMultiLine)) return std::nullopt;
  const ConfigEntry* e = Find(key);
  if (!e) {
    if (const char* d = DefaultOf(key)) return std::string(d);
    return std::nullopt;
  }
  if (Reported(key)) return std::nullopt;
  if (Trim(e->value).empty()) {
    diag_.Error(e->where, "'" + key + "' is empty");
    return std::nullopt;
  }
  return std::string(Trim(e->value));
}

std::string OptionReader::Required(const std::string& key, const std::string& what) {
  if (!Has(key)) {
    known_.insert(key);
    const OptionSpec* s = declared_ ? Spec(key) : nullptr;
    if (!(s && s->required)) {   // else Declare said so
      diag_.Error(section_.where, section_.title() + " needs '" + key + "' (" + what + ")");
    }
    return {};
  }
  return Text(key).value_or("");
}

#define WARDEN_TYPED_GETTER(Name, Type, Parse, KindOf)                  \
  std::optional<Type> OptionReader::Name(const std::string& key) {      \
    if (!Expect(key, Kind::KindOf)) return std::nullopt;                \
    const ConfigEntry* e = Single(key);                                 \
    if (!e) {                                                           \
      const char* d = DefaultOf(key);                                   \
      if (!d) return std::nullopt;                                      \
      auto v = Parse(d);                                                \
      if (!v) return std::nullopt;                                      \
      return *v;                                                        \
    }                                                                   \
    auto v = Parse(e->value);                                           \
    if (!v) {                                                           \
      diag_.Error(e->where, key + ": " + v.error());                    \
      return std::nullopt;                                              \
    }                                                                   \
    return *v;                                                          \
  }

WARDEN_TYPED_GETTER(GetDuration, Duration, ParseDuration, kDuration)
WARDEN_TYPED_GETTER(GetSize, std::uint64_t, ParseSize, kSize)
WARDEN_TYPED_GETTER(GetPercent, double, ParsePercent, kPercent)
WARDEN_TYPED_GETTER(GetBool, bool, ParseBool, kBool)
WARDEN_TYPED_GETTER(GetThreshold, Threshold, ParseThreshold, kThreshold)
WARDEN_TYPED_GETTER(GetTrip, TripRule, ParseTrip, kTrip)
WARDEN_TYPED_GETTER(GetBudget, Budget, ParseBudget, kBudget)
#undef WARDEN_TYPED_GETTER

std::optional<long long> OptionReader::GetInteger(const std::string& key, long long min,
                                                  long long max) {
  if (!Expect(key, Kind::kInteger)) return std::nullopt;
  const ConfigEntry* e = Single(key);
  if (!e) {
    const char* d = DefaultOf(key);
    if (!d) return std::nullopt;
    auto v = ParseInteger(d, min, max);
    return v ? std::optional<long long>(*v) : std::nullopt;
  }
  auto v = ParseInteger(e->value, min, max);
  if (!v) {
    diag_.Error(e->where, key + ": " + v.error());
    return std::nullopt;
  }
  return *v;
}

std::optional<long long> OptionReader::GetInteger(const std::string& key) {
  const OptionSpec* s = declared_ ? Spec(key) : nullptr;
  if (!s) {
    Expect(key, Kind::kInteger);
    return std::nullopt;
  }
  return GetInteger(key, s->min, s->max);
}

std::optional<std::string> OptionReader::GetChoice(const std::string& key,
                                                   const std::vector<std::string>& choices) {
  if (!Expect(key, Kind::kChoice)) return std::nullopt;
  const ConfigEntry* e = Single(key);
  if (!e) {
    if (const char* d = DefaultOf(key)) return std::string(d);
    return std::nullopt;
  }
  std::string v(Trim(e->value));
  for (const auto& c : choices) {
    if (v == c) return v;
  }
  std::string allowed;
  for (const auto& c : choices) allowed += (allowed.empty() ? "" : ", ") + c;
  diag_.Error(e->where, key + ": '" + v + "' is not one of " + allowed);
  return std::nullopt;
}

std::optional<std::string> OptionReader::GetChoice(const std::string& key) {
  const OptionSpec* s = declared_ ? Spec(key) : nullptr;
  if (!s) {
    Expect(key, Kind::kChoice);
    return std::nullopt;
  }
  return GetChoice(key, std::vector<std::string>(s->choices.begin(), s->choices.end()));
}

std::vector<std::string> OptionReader::GetList(const std::string& key) {
  std::vector<std::string> out;
  if (!Expect(key, Kind::kList)) return out;
  const ConfigEntry* e = Single(key);
  std::string v;
  if (e) {
    v = std::string(Trim(e->value));
  } else if (const char* d = DefaultOf(key)) {
    v = d;
  } else {
    return out;
  }
  size_t start = 0;
  while (start <= v.size()) {
    size_t comma = v.find(',', start);
    if (comma == std::string::npos) comma = v.size();
    std::string item(Trim(std::string_view(v).substr(start, comma - start)));
    if (item.empty()) {
      if (e) diag_.Error(e->where, key + ": empty name in list '" + v + "'");
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
