// State that survives a restart (kill -9 included), in one JSON file,
// <state_dir>/state.json, replaced atomically (temp file, fsync, rename,
// fsync of the directory) on every change that matters:
//
//  * the pauses in force, each with its scope, reason, who set it and its
//    expiry as wall-clock time (wardenctl pause / unpause), and the checks
//    disabled (wardenctl disable / enable), kept the same way,
//  * per check: state, value with its unit and detail (a nagios plugin's
//    text), last error, since, last run, run counters and the definition's
//    digest (a state is restored only into an unchanged definition),
//  * per guarded action: the end of its last run (cooldown) and the starts
//    still inside its budget window (budget).
//
// The event seq is kept by EventLog itself (<state_dir>/seq).
//
// Times are stored as wall-clock milliseconds since the Unix epoch and
// converted to and from the steady clock the guard and evaluator use at
// save and load (so a budget spent before a restart stays spent for the
// rest of its window).
//
// A file that cannot be parsed (truncated, corrupt, wrong format) never
// stops the daemon: Load() renames it to state.json.corrupt-<UTC time>,
// returns an empty state and says why, and the daemon reports that in its
// log and in daemon.start (state_error).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/status.h"
#include "daemon/base/wall_time.h"
#include "daemon/engine/pauses.h"

namespace warden {

class Guard;

struct CheckRecord {
  std::string state = "pending";
  std::string value;
  std::string unit;     // "" when none; absent from files of earlier versions
  std::string detail;   // Measurement::detail, redacted; absent likewise
  std::string error;
  std::int64_t since_ms = 0;      // 0: unknown
  std::int64_t last_run_ms = 0;   // 0: never
  std::uint64_t runs = 0;
  std::uint64_t overruns = 0;
  std::string digest;             // CheckConfig::digest of the definition
  bool operator==(const CheckRecord&) const = default;
};

struct ActionRecord {
  std::optional<std::int64_t> last_end_ms;
  std::vector<std::int64_t> starts_ms;   // inside the budget window
};

struct PersistedState {
  // In the file: "pauses", an object keyed by the scope ("host", "group
  // replication"), and "pause", the host pause alone as earlier versions
  // wrote it (read only when "pauses" is absent: a file of an earlier
  // version).
  std::vector<Pause> pauses;
  // In the file: "disabled", by check name (scope: that check).
  std::vector<Pause> disabled;
  std::map<std::string, CheckRecord> checks;
  std::map<std::string, ActionRecord> actions;
};

inline constexpr int kStateFormat = 1;

// A pause's key in the file's "pauses": "host", "group replication",
// "host (maintenance sunday)".
std::string PauseKey(const Pause& p);

// The state file's text, saved at `saved_ms` (wall clock): a JSON object
// laid out as nlohmann's dump(1) would lay it out, and a newline.
std::string StateText(const PersistedState& state, std::int64_t saved_ms);
// Strict: every field has the type it must have; anything else is an error
// that says which field.
Expected<PersistedState> StateFromJson(std::string_view text);

// Guard <-> state: the guard's cooldown and budget history.
void CaptureGuard(const Guard& guard, PersistedState& state);
void RestoreGuard(const PersistedState& state, Guard& guard);

class StateFile {
 public:
  explicit StateFile(std::string path) : path_(std::move(path)) {}

  struct Loaded {
    PersistedState state;
    bool existed = false;
    std::string error;       // non-empty: the file was corrupt
    std::string set_aside;   // where the corrupt file went ("" if it could not be moved)
  };
  Loaded Load();
  Status Save(const PersistedState& state);
  // Writes a state file's text (StateText) to `path` atomically, making
  // the state dir again if it was removed: Save's write, for wardend's disk
  // thread, which gets the text from the loop.
  static Status WriteText(const std::string& path, const std::string& text);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace warden
