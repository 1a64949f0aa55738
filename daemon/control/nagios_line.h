// wardenctl check NAME --nagios: a check's result as one line of a Nagios
// plugin's output, and the plugin's exit status, so that NRPE or Icinga
// can run warden's checks:
//
//   WARDEN NAME OK - detail | NAME=VALUE[UNIT];WARN;CRIT
//
// The result is this run's (`result` of the check command's answer, not
// the check's state: Nagios and Icinga count their own retries): ok 0 OK,
// warn 1 WARNING, crit 2 CRITICAL, anything else 3 UNKNOWN (an error, no
// value yet, a refusal, wardend not reachable).
//
// Threads: any (pure functions).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace warden {

// Nagios's exit statuses.
constexpr int kNagiosOk = 0;
constexpr int kNagiosWarning = 1;
constexpr int kNagiosCritical = 2;
constexpr int kNagiosUnknown = 3;

// The line (without a newline) for wardend's answer `reply` to `check`
// for the check `name`; returns the exit status.
int NagiosLine(const std::string& name, const nlohmann::json& reply, std::string& line);

// The line when there is no answer to render (wardend not reachable, bad
// arguments): UNKNOWN with `why`. `name` may be empty.
std::string NagiosUnknown(const std::string& name, const std::string& why);

// A threshold of the config ("> 90") as a Nagios range: the values that
// are ok ("~:90"). "" when it has none (a word: "== Yes"). Nagios ranges
// include their ends, so ">= 90" is "~:90" too: 90 itself is past warden's
// threshold but inside the range (the line a grapher draws is the same).
std::string NagiosRange(const std::string& threshold);

}  // namespace warden
