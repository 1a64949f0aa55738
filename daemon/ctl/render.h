// How wardenctl prints wardend's answers: the status page, a check's
// result, an action's or job's run, the short confirmations of pause,
// resume, reload; and the exit code each answer means
// (daemon/ctl/exit_codes.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "daemon/control/command_table.h"

namespace warden::ctl {

// The version of wardenctl's JSON output (daemon/control/command_table.h).
using warden::kJsonSchema;

// Prints `out`, with "schema" added, as one JSON object on stdout:
// indented (`pretty`), or on one line.
void PrintJson(nlohmann::json out, bool pretty = true);
// A failure: as JSON ({"schema", "ok": false, "error": message}) on
// stdout, else "wardenctl: message" on stderr. Returns `code`.
int Fail(int code, const std::string& message, bool as_json);

// Prints the reply to the command `cmd` (a refusal goes to stderr) and
// returns the exit code. `as_json`: the reply as it came, with "schema"
// (PrintJson), and the same exit code; `dry_run`: the request was
// `run --dry-run`.
int RenderReply(const std::string& cmd, const nlohmann::json& reply, bool as_json, bool dry_run);

// `events -f`: one line from wardend (the first is the reply to the
// request). Returns false when it ends the stream, with `exit_code` set.
bool RenderFollowed(const nlohmann::json& line, bool first, bool as_json, int& exit_code);

// What `status` prints for wardend's status reply, on stdout (wardenctl
// top redraws it).
void PrintStatusText(const nlohmann::json& status);

}  // namespace warden::ctl
