#include "daemon/base/named_values.h"

#include <algorithm>
#include <cstring>

namespace warden {

bool NamedValues::NameIs(const char* name, std::string_view key) {
  // ASCII case only (server variable names are), without std::tolower's
  // locale lookup per character; a NUL in `name` ends it.
  for (size_t i = 0; i < key.size(); ++i) {
    char ch = name[i];
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    if (ch != key[i]) return false;   // also where `name` ends first
  }
  return name[key.size()] == '\0';
}

std::string_view NamedValues::Value(size_t i) const {
  const char* v = rows_[i].value;
  return v ? std::string_view(v) : std::string_view();
}

std::optional<std::string_view> NamedValues::get(std::string_view key) const {
  // From the end: of several rows with the same name, the last one.
  for (size_t i = rows_.size(); i-- > 0;) {
    if (NameIs(rows_[i].name, key)) return Value(i);
  }
  return std::nullopt;
}

std::optional<std::string_view> NamedValues::get(const std::string& key, Hint* hint) const {
  // The row the hint names, if it still has that name as the server
  // spelt it (a plain strcmp, a fraction of NameIs's per-byte lowering).
  // A later row of the same name is not looked for: the hint comes from
  // the search below, which found the last one.
  const size_t at = hint->index;
  if (at < rows_.size() && (hint->name[0] != '\0' ? std::strcmp(rows_[at].name, hint->name) == 0
                                                   : NameIs(rows_[at].name, key))) {
    return Value(at);
  }
  for (size_t i = rows_.size(); i-- > 0;) {
    if (NameIs(rows_[i].name, key)) {
      hint->index = static_cast<std::uint32_t>(i);
      // key.size() is the name's length (NameIs).
      const bool keep = key.size() <= Hint::kMaxName;
      std::memcpy(hint->name, rows_[i].name, keep ? key.size() : 0);
      hint->name[keep ? key.size() : 0] = '\0';
      return Value(i);
    }
  }
  return std::nullopt;
}

NamedValues::value_type NamedValues::row(size_t i) const {
  return {std::string_view(rows_[i].name), Value(i)};
}

void NamedValues::Add(std::string_view name, std::string_view value) {
  // One copy holds both, each NUL-terminated, kept with the map.
  auto text = std::make_shared<std::string>();
  text->reserve(name.size() + value.size() + 2);
  text->append(name).push_back('\0');
  text->append(value).push_back('\0');
  rows_.push_back({text->data(), text->data() + name.size() + 1});
  keep_.push_back(std::move(text));
}

std::shared_ptr<const NameSet> NameSet::Of(std::vector<std::string> names) {
  for (auto& n : names) {
    for (auto& ch : n) {
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  auto set = std::make_shared<NameSet>();
  set->names = std::move(names);
  return set;
}

bool NameSet::Covers(const NameSet* have, const NameSet* want) {
  if (!have || have == want) return true;
  if (!want) return false;
  return std::includes(have->names.begin(), have->names.end(), want->names.begin(),
                       want->names.end());
}

}  // namespace warden
