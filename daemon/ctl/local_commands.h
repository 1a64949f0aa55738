// The wardenctl commands that work without a daemon: `help`, `validate`
// and `fleet` (which talks to etcd, not to wardend). Each prints its
// result and returns wardenctl's exit code (daemon/ctl/exit_codes.h).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace warden::ctl {

// `wardenctl help [check|action [TYPE]]`: the usage, the check or action
// types, or one type's keys and example.
// `as_json`: the same as one JSON object (docs/control.md).
int Help(const std::vector<std::string>& args, bool as_json);

// `wardenctl validate [--grants]`: loads the config as wardend would and
// prints every problem, or a summary; with `grants`, then connects and
// reports missing MySQL privileges (daemon/control/grants.h), exiting 1
// when something is missing. `as_json`: one JSON object (docs/control.md).
int Validate(const std::string& path, bool grants, bool as_json);

// `wardenctl fleet ...`: the config names the etcd endpoints; `request` is
// the command line parsed by the command table (its args and reason).
int Fleet(const std::string& config_path, const nlohmann::json& request, bool as_json);

}  // namespace warden::ctl
