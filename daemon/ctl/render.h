// How wardenctl prints wardend's answers: the status page, a check's
// result, an action's or job's run, the short confirmations of pause,
// resume, reload; and the exit code each answer means
// (daemon/ctl/exit_codes.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace warden::ctl {

// Prints the reply to the command `cmd` (a refusal goes to stderr) and
// returns the exit code. `as_json`: `status --json`, the reply as it came;
// `dry_run`: the request was `run --dry-run`.
int RenderReply(const std::string& cmd, const nlohmann::json& reply, bool as_json, bool dry_run);

// What `status` prints for wardend's status reply, on stdout (wardenctl
// top redraws it).
void PrintStatusText(const nlohmann::json& status);

}  // namespace warden::ctl
