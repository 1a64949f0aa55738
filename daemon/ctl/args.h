// wardenctl's argument handling: the global options (-c/--config,
// -s/--socket, -h/--help), anywhere on the line, and the rest parsed as one
// command by its row of the command table (daemon/control/command_table.h).
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "daemon/control/command_table.h"

namespace warden::ctl {

constexpr const char* kDefaultConfig = "/etc/warden/warden.ini";

struct Args {
  std::string config_path = kDefaultConfig;
  bool config_given = false;   // -c given: its socket must be found, no default
  std::string socket_path;     // -s; "" = the config's [control] socket
  ParsedCommand command;       // spec, the request to send, local options (--json)
};

// Fills `out`; returns an exit code when wardenctl is done already
// (-h printed the usage, or a usage error was printed to stderr).
std::optional<int> ParseArgs(int argc, char** argv, Args& out);

// The usage text, from the command table.
void Usage(std::FILE* out);
// "wardenctl VERSION (build ID)" and a newline on stdout: the version
// command and --version, the same version and build as wardend --version
// prints; `as_json`: version --json.
void PrintVersion(bool as_json = false);

// Prints "wardenctl: MESSAGE" and the usage to stderr; returns kExitUsage.
int UsageError(const std::string& message);

}  // namespace warden::ctl
