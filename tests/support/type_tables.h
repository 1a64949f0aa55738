// Helpers for the registry tests, which walk the check and action types'
// option tables (daemon/base/options.h): a sample value of each kind, an
// example section split into keys, a table's own consistency, and the
// words docs/configuration.md gives a type or a section.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "daemon/base/options.h"

namespace warden::testing {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

// A value of the spec's kind (not necessarily one its factory likes: a
// text that should be a path is "x").
inline std::string SampleValue(const OptionSpec& s) {
  using Kind = OptionSpec::Kind;
  switch (s.kind) {
    case Kind::kText:
    case Kind::kMultiLine: return "x";
    case Kind::kDuration: return "1s";
    case Kind::kSize: return "1MB";
    case Kind::kPercent: return "10%";
    case Kind::kBool: return "yes";
    case Kind::kInteger: return std::to_string(s.min);
    case Kind::kChoice: return s.choices.empty() ? "" : s.choices[0];
    case Kind::kList: return "a, b";
    case Kind::kThreshold: return "> 1";
    case Kind::kTrip: return "2";
    case Kind::kBudget: return "1 per 1h";
  }
  return "";
}

// The keys of an example section ("[check x]\ntype = ...\n"), in order;
// indented lines continue the value before them.
inline KeyValues ExampleKeys(const std::string& example) {
  KeyValues out;
  std::istringstream in(example);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '[' || line[0] == ';' || line[0] == '#') continue;
    if (line[0] == ' ' && !out.empty()) {
      out.back().second += "\n" + line.substr(line.find_first_not_of(' '));
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    auto trim = [](std::string t) {
      t.erase(0, t.find_first_not_of(" \t"));
      t.erase(t.find_last_not_of(" \t") + 1);
      return t;
    };
    out.emplace_back(trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
  }
  return out;
}

// The example's keys that `table` declares (the type's own).
inline KeyValues OwnKeys(const std::string& example, std::span<const OptionSpec> table) {
  KeyValues out;
  for (const auto& [k, v] : ExampleKeys(example)) {
    for (const auto& s : table) {
      if (k == s.key) out.emplace_back(k, v);
    }
  }
  return out;
}

// What is wrong with a table on its own: keys twice, no help, a required
// key with a default, a default that its kind does not read, a choice
// without words, an empty range, a key of `common`.
inline std::vector<std::string> TableProblems(std::span<const OptionSpec> table,
                                              std::span<const OptionSpec> common) {
  std::vector<std::string> problems;
  std::set<std::string> seen;
  for (const auto& s : table) {
    const std::string key = s.key;
    if (!seen.insert(key).second) problems.push_back(key + ": declared twice");
    if (std::string(s.help).size() < 5) problems.push_back(key + ": no help");
    if (s.required && (s.default_value || s.default_note)) {
      problems.push_back(key + ": required, yet has a default");
    }
    if (s.default_value) {
      if (Status e = CheckValue(s, s.default_value); !e.ok()) {
        problems.push_back(key + ": its default does not read: " + e.message());
      }
    }
    if (s.kind == OptionSpec::Kind::kChoice && s.choices.size() < 2) {
      problems.push_back(key + ": a choice of fewer than two words");
    }
    if (s.kind == OptionSpec::Kind::kInteger && s.min > s.max) {
      problems.push_back(key + ": an empty range");
    }
    for (const auto& c : common) {
      if (key == c.key) problems.push_back(key + ": a key every section already has");
    }
  }
  return problems;
}

inline std::string ReadSourceFile(const std::string& rel) {
  std::ifstream in(std::string(WARDEN_SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The `lower_case` words in backquotes of a table cell.
inline std::set<std::string> QuotedWords(const std::string& cell) {
  std::set<std::string> out;
  static const std::regex word("`([a-z_]+)`");
  for (std::sregex_iterator it(cell.begin(), cell.end(), word), end; it != end; ++it) {
    out.insert((*it)[1]);
  }
  return out;
}

inline std::vector<std::string> Cells(const std::string& row) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(row);
  while (std::getline(in, cell, '|')) cells.push_back(cell);
  return cells;
}

// docs/configuration.md's `| type | keys | ... |` rows under the `## `
// heading `section`: {type: the backquoted words of its keys column}.
inline std::map<std::string, std::set<std::string>> ReferenceTypeRows(const std::string& section) {
  std::map<std::string, std::set<std::string>> out;
  std::istringstream in(ReadSourceFile("docs/configuration.md"));
  std::string line, heading;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) heading = line.substr(3);
    if (line.rfind("| type | keys |", 0) == 0) {
      in_table = true;
      continue;
    }
    if (line.empty() || line[0] != '|') in_table = false;
    if (!in_table || heading != section || line.rfind("|---", 0) == 0) continue;
    auto cells = Cells(line);
    if (cells.size() < 3) continue;
    auto names = QuotedWords(cells[1]);
    if (names.size() == 1) out[*names.begin()] = QuotedWords(cells[2]);
  }
  return out;
}

// The keys of docs/configuration.md's `| key | default | meaning |` tables
// under the `## ` heading `section`.
inline std::set<std::string> ReferenceKeys(const std::string& section) {
  std::set<std::string> out;
  std::istringstream in(ReadSourceFile("docs/configuration.md"));
  std::string line, heading;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) heading = line.substr(3);
    if (line.rfind("| key |", 0) == 0) {
      in_table = true;
      continue;
    }
    if (line.empty() || line[0] != '|') in_table = false;
    if (!in_table || heading != section || line.rfind("|---", 0) == 0) continue;
    auto cells = Cells(line);
    if (cells.size() >= 2) {
      auto words = QuotedWords(cells[1]);
      out.insert(words.begin(), words.end());
    }
  }
  return out;
}

// What a type's row in the reference must name: its keys, its choices'
// words, and its defaults that are words (`no`, `free_pct`).
inline std::set<std::string> WordsOfTable(std::span<const OptionSpec> table) {
  std::set<std::string> out;
  static const std::regex word("[a-z_]+");
  for (const auto& s : table) {
    out.insert(s.key);
    for (const char* c : s.choices) out.insert(c);
    if (s.default_value && std::regex_match(s.default_value, word)) out.insert(s.default_value);
  }
  return out;
}

// The shipped samples (etc/warden.ini, etc/conf.d/*.ini) that show a
// section of type `name`, commented out or not.
inline std::vector<std::string> SamplesOfType(const std::string& name) {
  std::vector<std::string> files = {"etc/warden.ini"};
  for (const auto& e : std::filesystem::directory_iterator(std::string(WARDEN_SOURCE_DIR) +
                                                           "/etc/conf.d")) {
    if (e.path().extension() == ".ini") files.push_back("etc/conf.d/" + e.path().filename().string());
  }
  const std::regex line("^\\s*[;#]?\\s*type\\s*=\\s*" + name + "(\\s.*)?$");
  std::vector<std::string> out;
  for (const auto& f : files) {
    std::istringstream in(ReadSourceFile(f));
    std::string l;
    while (std::getline(in, l)) {
      if (std::regex_match(l, line)) {
        out.push_back(f);
        break;
      }
    }
  }
  return out;
}

inline std::set<std::string> KeysOfTable(std::span<const OptionSpec> table) {
  std::set<std::string> out;
  for (const auto& s : table) out.insert(s.key);
  return out;
}

}  // namespace warden::testing
