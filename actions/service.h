// type = service: starts, stops, restarts or reloads a system service.
//
//   name = mariadb      the service (letters, digits and : _ . @ \ -; not
//                       starting with '-', so it cannot pass as an option)
//   op = restart        start, stop, restart or reload
//
// The command comes from `[daemon] service_command` (default "systemctl"),
// split into words like an exec command. If a word contains {op} or {name}
// those placeholders are replaced in every word
// ("service {name} {op}" -> service mariadb restart); otherwise op and name
// are appended ("systemctl" -> systemctl restart mariadb). The command runs
// through the ProcessRunner with the action's timeout; ok iff exit status 0.
#pragma once

#include <string>
#include <vector>

#include "actions/action.h"

namespace warden {

extern const ActionType kServiceActionType;

// The argv for `op` on service `name` from a service_command. An error when
// service_command cannot be split (the config loader should call this with
// a dummy op and name to validate [daemon] service_command).
Expected<std::vector<std::string>> ServiceArgv(const std::string& service_command,
                                               const std::string& op, const std::string& name);

}  // namespace warden
