// A config text loaded the way wardend loads it (LoadConfig on a file in a
// temp dir), with the errors kept for the test to look for.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "tests/support/temp_dir.h"

namespace warden::testing {

// The least a config needs, 5 lines: a section appended after it starts at
// line 6, its first key at line 7.
inline constexpr const char* kMinimalConfig =
    "[daemon]\nhost_id = db-test\nstate_dir = /tmp/warden-state\n[mutex]\nmode = off\n";

struct LoadedConfig {
  std::shared_ptr<const Config> config;
  std::vector<std::string> errors;
  // Some error contains `needle`.
  bool Has(const std::string& needle) const {
    return std::any_of(errors.begin(), errors.end(),
                       [&](const std::string& e) { return e.find(needle) != std::string::npos; });
  }
  // Every error, one per line (for INFO()).
  std::string All() const {
    std::string s;
    for (const auto& e : errors) s += e + "\n";
    return s;
  }
};

// `text` written as `name` in `dir`, then loaded.
inline LoadedConfig LoadConfigText(const TempDir& dir, const std::string& text,
                                   const std::string& name = "warden.ini") {
  std::string path = dir.Write(name, text);
  Diagnostics diag;
  LoadedConfig l;
  l.config = LoadConfig(path, LoadOptions{}, diag);
  l.errors = diag.errors();
  return l;
}

// kMinimalConfig, then `[section]` (line 6) with `body` (from line 7).
inline LoadedConfig LoadSection(const std::string& section, const std::string& body) {
  TempDir dir;
  return LoadConfigText(dir, std::string(kMinimalConfig) + "[" + section + "]\n" + body);
}

}  // namespace warden::testing
