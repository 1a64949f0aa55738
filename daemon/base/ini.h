// Reading INI files into located sections. This layer knows the file
// syntax (through inih), `include` globs and file ownership rules; it knows
// nothing of what the sections mean (that is daemon/config/).
#pragma once

#include <string>
#include <vector>

namespace warden {

struct Location {
  std::string file;
  int line = 0;
  std::string str() const { return file + ":" + std::to_string(line); }
};

// Collects every problem found in one pass, each as "file:line: message".
class Diagnostics {
 public:
  void Error(const Location& where, const std::string& message) {
    errors_.push_back(where.str() + ": " + message);
  }
  void Error(const std::string& message) { errors_.push_back(message); }
  bool ok() const { return errors_.empty(); }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

struct ConfigEntry {
  std::string key;
  std::string value;          // continuation lines joined with "\n"
  Location where;             // the line of the key
  int continued_at = 0;       // first continuation line, 0 if none
};

struct RawSection {
  std::string kind;           // "check" in [check replica_lag]
  std::string name;           // "replica_lag"; "" for [daemon], [mysql]
  Location where;
  std::vector<ConfigEntry> entries;

  std::string title() const { return name.empty() ? "[" + kind + "]" : "[" + kind + " " + name + "]"; }
};

struct IniOptions {
  // Refuse files writable by group/others or owned by someone other than
  // this process's user (or root). Off only in tests that cannot chown.
  bool check_ownership = true;
  // Read the files that [daemon] include names. Off only in the config
  // fuzzer (tests/fuzz/fuzz_config.cc), whose input must not make it read
  // the machine's files.
  bool follow_includes = true;
};

// Reads `path` and every file its [daemon] include globs name (relative to
// the including file, sorted, at most 8 levels deep). Problems go to diag;
// what could be read is returned regardless.
std::vector<RawSection> ReadIniFiles(const std::string& path, const IniOptions& options,
                                     Diagnostics& diag);

}  // namespace warden
