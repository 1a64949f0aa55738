// wardenctl's client of wardend's control socket (daemon/control/control.h):
// where the socket is, and one request with its one-line JSON reply.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace warden::ctl {

// The socket to use: `socket_path` when given (-s), else the config's
// [control] socket, else (when the config was not named with -c and
// cannot be read) the default one. nullopt, with the reason printed to
// stderr (into `why` instead, when given), when a named config cannot be
// read.
std::optional<std::string> FindControlSocket(const std::string& socket_path,
                                             const std::string& config_path, bool config_given,
                                             std::string* why = nullptr);

// Sends one request and reads one reply line, waiting at most
// `timeout_ms` for it (0: as long as it takes). On failure prints why on
// stderr (or puts it in `why`, when given) and returns nullopt with
// `exit_code` set (kExitUnreachable); else `exit_code` is kExitOk and the
// reply is a JSON object.
std::optional<nlohmann::json> Ask(const std::string& socket_path, const nlohmann::json& request,
                                  int timeout_ms, int& exit_code, std::string* why = nullptr);

}  // namespace warden::ctl
