// wardenctl: the command line. `validate`, `fleet` and `help` work without
// a daemon (local_commands.h); every other command is one request to
// wardend's control socket (control_client.h), whose reply it prints
// (render.h). Exit codes: exit_codes.h.
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/control/command_table.h"
#include "daemon/ctl/args.h"
#include "daemon/ctl/control_client.h"
#include "daemon/ctl/exit_codes.h"
#include "daemon/ctl/local_commands.h"
#include "daemon/ctl/render.h"
#include "daemon/ctl/top.h"
#include "daemon/io/mysql.h"

int main(int argc, char** argv) {
  using namespace warden::ctl;
  warden::SetMysqlProgramName("wardenctl");   // its own connections (validate --grants)
  Args args;
  if (auto done = ParseArgs(argc, argv, args)) return *done;
  const warden::CommandSpec& spec = *args.command.spec;
  const std::string cmd = spec.name;
  const nlohmann::json& request = args.command.request;
  const bool as_json = args.command.local.value("json", false);
  const bool dry_run = request.value("dry_run", false);

  if (cmd == "fleet") return Fleet(args.config_path, request);
  if (cmd == "validate") return Validate(args.config_path, request.value("grants", false));
  if (cmd == "help") return Help(request.value("args", std::vector<std::string>()));
  if (cmd == "version") {
    PrintVersion();
    return kExitOk;
  }
  int timeout_ms = spec.timeout_ms;
  if (cmd == "run" && request.value("wait", false) && !dry_run) {
    timeout_ms = 0;   // as long as the action or job takes
  }
  auto socket = FindControlSocket(args.socket_path, args.config_path, args.config_given);
  if (!socket) return kExitUnreachable;
  if (cmd == "top") return Top(*socket, request);
  int code = kExitOk;
  auto reply = Ask(*socket, request, timeout_ms, code);
  if (!reply) return code;
  return RenderReply(cmd, *reply, as_json, dry_run);
}
