// wardenctl's client of wardend's control socket (daemon/control/control.h):
// where the socket is, one request with its one-line JSON reply, and the
// stream of `events -f`. Nothing here prints: failures come back as a
// message, for the caller to print as text or as JSON.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace warden::ctl {

// The socket to use: `socket_path` when given (-s), else the config's
// [control] socket, else (when the config was not named with -c and
// cannot be read) the default one. nullopt, with the reason in `error`,
// when a named config cannot be read.
std::optional<std::string> FindControlSocket(const std::string& socket_path,
                                             const std::string& config_path, bool config_given,
                                             std::string& error);

// Sends one request and reads one reply line, waiting at most
// `timeout_ms` for it (0: as long as it takes). nullopt with the reason in
// `error` when wardend cannot be reached or does not answer (wardenctl's
// exit code 3); else the reply, a JSON object.
std::optional<nlohmann::json> Ask(const std::string& socket_path, const nlohmann::json& request,
                                  int timeout_ms, std::string& error);

// `events -f`: sends `request` (with "follow"), then calls `on_line` with
// each line wardend sends (the first is the reply to the request; then
// one event per line, or a last {"ok": false, "end": ...}) until wardend
// closes the connection or SIGINT/SIGTERM arrives. Returns true when
// interrupted by a signal; false when the connection ended or failed (the
// reason in `error`, "" when wardend closed it after a line) or `on_line`
// returned false.
bool FollowLines(const std::string& socket_path, const nlohmann::json& request,
                 const std::function<bool(const nlohmann::json&)>& on_line, std::string& error);

}  // namespace warden::ctl
