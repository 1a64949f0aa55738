// The pauses in force on this host (wardenctl pause / unpause): each has a
// scope (the host, a group, one action, or one check's actions), a reason,
// who set it, and an expiry kept as wall-clock milliseconds, so that the
// state file (daemon/engine/state.h) carries it across a restart or a
// kill -9 and it ends by itself on time.
//
// One pause per scope: a second `pause` of the same scope replaces the
// first (a longer or shorter expiry, a new reason). Pauses of different
// scopes are all in force at once; the guard asks Blocking() which one
// stops a given action. A scheduled window ([maintenance NAME]) has its
// own pause beside the operator's of the same scope (`window` set).
//
// Expiry is decided on the wall clock the caller passes: a pause whose
// `until_ms` has passed blocks nothing even before TakeExpired() has
// removed it (and its pause.end been sent).
//
// Threads: loop thread only (owned by the Guard).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/cron.h"
#include "daemon/base/status.h"
#include "daemon/base/units.h"

namespace warden {

struct PauseScope {
  enum class Kind { kHost, kGroup, kAction, kCheck };
  Kind kind = Kind::kHost;
  std::string name;   // "" for the host

  // "host", "group replication", "action fix", "check flag".
  std::string Describe() const;
  bool operator==(const PauseScope&) const = default;
};

// "host", "group", "action", "check"; and back (nullopt: none of those).
const char* ScopeKindName(PauseScope::Kind kind);
std::optional<PauseScope::Kind> ScopeKindFromName(std::string_view name);

struct Pause {
  PauseScope scope;
  std::string reason;
  std::string by;             // "uid 0 (root) pid 42"
  std::int64_t uid = -1;      // the control socket peer's; -1 when not from a peer
  std::int64_t pid = -1;
  std::int64_t at_ms = 0;     // wall clock, when it was set
  std::int64_t until_ms = 0;  // wall clock, when it ends by itself; 0: never
  std::string window;         // the [maintenance NAME] that set it; "" for wardenctl's
  bool operator==(const Pause&) const = default;
};

class PauseSet {
 public:
  // Puts `p` in force, replacing the pause of the same scope and window
  // (returned).
  std::optional<Pause> Set(Pause p);
  // Ends the pause of `scope` and `window` ("": wardenctl's) (returned;
  // nullopt when there was none).
  std::optional<Pause> Remove(const PauseScope& scope, const std::string& window = "");
  // Ends and returns every pause whose expiry is at or before `now_ms`.
  std::vector<Pause> TakeExpired(std::int64_t now_ms);
  // The pause that stops `action` (in `groups`, fired by check `check`,
  // "" when not by a check) at `now_ms`; nullptr when none does. With
  // several, the host's first, then the action's, the check's, a group's;
  // within a kind the one that lasts longest.
  const Pause* Blocking(const std::string& action, const std::vector<std::string>& groups,
                        const std::string& check, std::int64_t now_ms) const;
  const Pause* Find(const PauseScope& scope, const std::string& window = "") const;
  // The pause window `name` set, whatever its scope (nullptr: none).
  const Pause* FindWindow(const std::string& name) const;
  // The earliest expiry in force (nullopt: none expires).
  std::optional<std::int64_t> NextExpiry() const;
  const std::vector<Pause>& all() const { return pauses_; }
  bool empty() const { return pauses_.empty(); }

 private:
  std::vector<Pause> pauses_;   // at most one per scope, in the order set
};

// What the guard says of a pause that blocks:
// "paused (group replication, until 14:00 UTC): swapping disk",
// "paused (host, no expiry): swapping disk".
std::string DescribeBlock(const Pause& p, std::int64_t now_ms);
// "14:00 UTC" within the next 24 hours of `now_ms`, else
// "2026-12-08 14:00 UTC"; seconds shown when not zero.
std::string ShortUtc(std::int64_t ms, std::int64_t now_ms);

// A [maintenance] window in force at `now_ms`: the latest firing of
// `schedule` at or before now whose `hold` has not passed, as [start, end)
// in wall-clock ms; nullopt when none is.
struct WindowSpan {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
};
std::optional<WindowSpan> WindowAt(const CronSchedule& schedule, Duration hold,
                                   std::int64_t now_ms);

// `--until`: "HH:MM" (the next such time, UTC), "YYYY-MM-DD HH:MM",
// "YYYY-MM-DDTHH:MM[:SS][Z]" (UTC). Wall-clock ms; an error that says what
// is accepted, or that the time has passed.
Expected<std::int64_t> ParseUntil(std::string_view text, std::int64_t now_ms);

}  // namespace warden
