// type = notify: an event only; changes nothing, so it does not pass the
// guard (cooldown, budget and dry_run do not apply to it).
//
//   severity = warning   info, warning (default) or critical
//   message = ...        required; may continue on indented lines. These
//                        placeholders are replaced when it runs:
//                          {check}  the check (or job) that triggered it
//                          {state}  the state entered (crit, ok, ...)
//                          {value}  the value that tripped it
//                          {host}   this host's host_id
//                          {action} this action's name
//                        Any other {word} is a config error; other braces
//                        are kept as written.
//
// The outcome is always ok, with extra = {"severity": ..., "message": the
// expanded text}, which action.finish carries.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "actions/action.h"

namespace warden {

extern const ActionType kNotifyActionType;

// Replaces {name} for every name in `values`; an error names the first
// {word} that is not in `values`. Pure.
Expected<std::string> ExpandPlaceholders(std::string_view text,
                                         const std::map<std::string, std::string>& values);

// The values of the notify placeholders for one run.
std::map<std::string, std::string> NotifyValues(const Trigger& trigger, const std::string& action,
                                                const std::string& host);

}  // namespace warden
