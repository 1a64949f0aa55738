// type = nagios: runs a Nagios/Icinga plugin (monitoring-plugins,
// check_mysql_health, ...) and takes its verdict.
//
//   command = ...    the plugin and its arguments, read and run exactly as a
//                    program check's (checks/program.h: no shell, own
//                    process group, the check's timeout).
//   perfdata = LABEL (optional) the perfdata value named LABEL is the
//                    check's value, its unit kept; warn and crit, if set,
//                    compare it.
//
// The exit status is the verdict (Measurement::level): 0 ok, 1 warn, 2
// crit; anything else (3 UNKNOWN, another status, a signal, a timeout, a
// spawn failure) is an error. The first line of output, before any `|`, is
// the result's detail (Measurement::detail). Output is read as the plugin
// guidelines write it (https://www.monitoring-plugins.org/doc/guidelines.html):
//
//   TEXT | PERFDATA
//   LONG TEXT ...
//   LONG TEXT | PERFDATA
//   PERFDATA ...
//
// with perfdata items `'label'=value[UOM];[warn];[crit];[min];[max]`,
// separated by spaces.
//
// With perfdata = LABEL: perfdata that cannot be read is an error; so is a
// LABEL the plugin did not print (or printed as U, undetermined) when it
// says OK. When it says WARNING or CRITICAL without the value (check_mysql
// cannot reach the server: it measures nothing), its verdict stands, with
// no value, and the thresholds are not applied.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checks/check.h"

namespace warden {

extern const CheckType kNagiosCheckType;

// One perfdata item, its fields as written ("" when left out).
struct PerfValue {
  std::string label;   // unquoted ('a ''b''' is a 'b')
  std::string value;   // the number as written, or "U" (undetermined)
  std::string unit;    // the UOM: "", "s", "ms", "%", "B", "KB", "c", ...
  std::string warn;
  std::string crit;
  std::string min;
  std::string max;
};

// A plugin's output, read by the guidelines.
struct PluginOutput {
  std::string text;                 // the first line before `|`, trimmed
  std::vector<PerfValue> perfdata;  // from the first line and the perfdata lines
};

// Reads `output`. An error names the item it could not read
// ("'free space'=12 GB: ...") and why.
Expected<PluginOutput> ParsePluginOutput(std::string_view output);

// The verdict of a plugin's exit status: 0 ok, 1 warn, 2 crit; nullopt for
// any other (3 UNKNOWN among them): the result is an error.
std::optional<Measurement::Level> PluginVerdict(int exit_code);

// What a nagios check measures when its plugin `program` exited by itself
// with `exit_code` and printed `output` (stdout; `stderr_tail` for an
// error's hint): `check` is the check's name and `perfdata` its LABEL ("":
// none), both for the messages.
Measurement MeasurePlugin(std::string_view check, std::string_view program, int exit_code,
                          std::string_view output, std::string_view stderr_tail,
                          const std::string& perfdata);

}  // namespace warden
