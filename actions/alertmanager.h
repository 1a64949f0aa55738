// type = alertmanager: posts an alert to Alertmanager's v2 API (POST
// <url>/api/v2/alerts). Informs and changes nothing (ActionType::informs):
// a paused host, a halted queue or a held mutex does not hold it back;
// running, cooldown, budget and dry_run apply.
//
//   url = http://127.0.0.1:9093   required: Alertmanager (its base URL, or
//                                 the whole .../api/v2/alerts)
//   labels = severity=critical team=dba
//                                 NAME=VALUE words (quote a value with
//                                 blanks): the alert's identity. alertname
//                                 defaults to {check}, instance to {host}.
//                                 Only {check}, {host} and {action} here:
//                                 a label that changed between the alert and
//                                 its end would name another alert.
//   annotations = summary="{check} is {state} on {host}"
//                                 NAME=VALUE words, every placeholder:
//                                 {check} {state} {value} {threshold}
//                                 {host} {action}
//
// Fires on the state it is hooked to (on_crit, ...): the alert with
// startsAt. When that check recovers the executor runs it again
// (ActionType::resolves, trigger.resolve): the same labels with endsAt =
// now, which resolves the alert. Run by on_recover, or by a trigger in
// state ok, it sends the resolved alert too.
#pragma once

#include "actions/action.h"

namespace warden {

extern const ActionType kAlertmanagerActionType;

// Whether an Alertmanager label name is valid ([a-zA-Z_][a-zA-Z0-9_]*).
bool IsLabelName(std::string_view name);

// The URL the alerts go to: `url` itself when it names .../api/v2/alerts,
// else `url` + /api/v2/alerts.
std::string AlertsUrl(std::string_view url);

}  // namespace warden
