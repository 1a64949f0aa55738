// wardenctl: the command line. `validate`, `fleet` and `help` work without
// a daemon (local_commands.h); every other command is one request to
// wardend's control socket (control_client.h), whose reply it prints
// (render.h), but `events -f`, which follows a stream of events until
// interrupted. --json: one JSON object on stdout (render.h, PrintJson).
// Exit codes: exit_codes.h.
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/control/command_table.h"
#include "daemon/control/nagios_line.h"
#include "daemon/ctl/args.h"
#include "daemon/ctl/control_client.h"
#include "daemon/ctl/exit_codes.h"
#include "daemon/ctl/local_commands.h"
#include "daemon/ctl/render.h"
#include "daemon/ctl/top.h"
#include "daemon/io/mysql.h"

namespace {

// wardenctl check NAME --nagios (daemon/control/nagios_line.h).
int NagiosCheck(const warden::ctl::Args& args, const nlohmann::json& request) {
  using namespace warden;
  const std::string name = request.value("name", std::string());
  auto answer = [](const std::string& line, int code) {
    std::printf("%s\n", line.c_str());
    return code;
  };
  if (name.empty() || request.contains("group")) {
    return answer(NagiosUnknown(name, "wardenctl check --nagios takes one check NAME, not --group"),
                  kNagiosUnknown);
  }
  std::string why;
  auto socket = ctl::FindControlSocket(args.socket_path, args.config_path, args.config_given, why);
  if (!socket) return answer(NagiosUnknown(name, why), kNagiosUnknown);
  auto reply = ctl::Ask(*socket, request, args.command.spec->timeout_ms, why);
  if (!reply) return answer(NagiosUnknown(name, why), kNagiosUnknown);
  std::string line;
  const int code = NagiosLine(name, *reply, line);
  return answer(line, code);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace warden::ctl;
  warden::SetMysqlProgramName("wardenctl");   // its own connections (validate --grants)
  Args args;
  // check --nagios answers as a plugin whatever happens: one line on
  // stdout, and 3 (UNKNOWN), not 2 (CRITICAL to Nagios), for bad arguments.
  bool nagios = false;
  for (int i = 1; i < argc; ++i) nagios = nagios || std::string(argv[i]) == "--nagios";
  if (auto done = ParseArgs(argc, argv, args)) {
    if (!nagios || *done == kExitOk) return *done;
    std::printf("%s\n",
                warden::NagiosUnknown("", "wardenctl: bad arguments (see its stderr)").c_str());
    return warden::kNagiosUnknown;
  }
  const warden::CommandSpec& spec = *args.command.spec;
  const std::string cmd = spec.name;
  const nlohmann::json& request = args.command.request;
  const bool as_json = args.command.local.value("json", false);
  const bool dry_run = request.value("dry_run", false);

  if (cmd == "fleet") return Fleet(args.config_path, request, as_json);
  if (cmd == "validate") return Validate(args.config_path, request.value("grants", false), as_json);
  if (cmd == "help") return Help(request.value("args", std::vector<std::string>()), as_json);
  if (cmd == "version") {
    PrintVersion(as_json);
    return kExitOk;
  }
  if (cmd == "check" && args.command.local.value("nagios", false)) {
    return NagiosCheck(args, request);
  }
  int timeout_ms = spec.timeout_ms;
  if (cmd == "run" && request.value("wait", false) && !dry_run) {
    timeout_ms = 0;   // as long as the action or job takes
  }
  std::string error;
  auto socket = FindControlSocket(args.socket_path, args.config_path, args.config_given, error);
  if (!socket) return Fail(kExitUnreachable, error, as_json);
  if (cmd == "top") return Top(*socket, request);
  if (cmd == "events" && request.value("follow", false)) {
    int code = kExitOk;
    bool first = true;
    const bool interrupted = FollowLines(
        *socket, request,
        [&](const nlohmann::json& line) {
          const bool more = RenderFollowed(line, first, as_json, code);
          first = false;
          return more;
        },
        error);
    if (interrupted) return kExitOk;
    if (!error.empty()) return Fail(kExitUnreachable, error, as_json);
    return code;
  }
  auto reply = Ask(*socket, request, timeout_ms, error);
  if (!reply) return Fail(kExitUnreachable, error, as_json);
  return RenderReply(cmd, *reply, as_json, dry_run);
}
