// The commands of wardenctl and of the control socket, in one table: its
// rows give each command's name, who may use it, its parameters, its help
// line and the handler that answers it in wardend. The daemon's dispatch
// (Dispatch), wardenctl's argument parsing (ParseCommandLine) and its help
// text (UsageText) all read it, so a command is added in one place: a row
// here, a method of CommandTarget, and its answer in daemon/commands.cc.
// The protocol is in docs/control.md.
//
// Threads: any (the table is constant); Dispatch on the loop thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/status.h"
#include "daemon/control/control.h"

namespace warden {

// The version of the JSON shapes wardenctl prints and /status.json serves
// (docs/control.md, "JSON output"): members may be added under the same
// number; one changed or removed raises it.
constexpr int kJsonSchema = 1;

// One request, already checked against its command's row: every member
// the row names has its type (a name or text is a string, a flag a bool, a
// count a non-negative integer), and the required ones are there.
struct CommandRequest {
  const nlohmann::json& args;
  const Peer& peer;

  std::string Text(const char* key) const;        // "" when absent
  bool Flag(const char* key) const;               // false when absent
  std::optional<std::int64_t> Count(const char* key) const;
  std::vector<std::string> List(const char* key) const;   // empty when absent
};

// The daemon's side of the commands that wardend answers (implemented by
// ControlCommands). Each replies exactly once, possibly later.
class CommandTarget {
 public:
  virtual ~CommandTarget() = default;
  virtual void Ping(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Status(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Events(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Check(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Run(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Pause(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Unpause(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Disable(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Enable(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Resume(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Abort(const CommandRequest& r, ControlServer::Reply reply) = 0;
  virtual void Reload(const CommandRequest& r, ControlServer::Reply reply) = 0;
};

struct CommandParam {
  enum class Kind {
    kName,    // a word after the command: the request's `key` (a string)
    kWords,   // every remaining word (wardenctl's own commands only)
    kFlag,    // `option` alone: true
    kText,    // `option TEXT`
    kCount,   // `option N`: a non-negative integer
    kList,    // `option TEXT`, repeatable, each a comma list: an array of
              // non-empty strings
  };
  Kind kind;
  const char* option;    // "--reason", "-n"; "" for kName and kWords
  const char* key;       // the request's member
  const char* metavar;   // "NAME", "TEXT", "N"
  bool required;
  const char* help;      // "" for none
  bool local = false;    // how wardenctl shows the answer (--json): not sent
};

struct CommandSpec {
  const char* name;
  Access access;         // what wardend asks of the peer (kRead or kAdmin)
  const char* help;      // one line, for wardenctl's usage
  std::vector<CommandParam> params;
  // wardend's handler; null for what wardenctl does itself (validate,
  // fleet, version) and for commands only wardenctl's parsing knows.
  void (CommandTarget::*handler)(const CommandRequest&, ControlServer::Reply);
  int timeout_ms;        // how long wardenctl waits for the answer (0: as long as it takes)
  const char* more;      // a second help line ("" for none)
  // wardenctl: at least one of these params' keys (space separated) must
  // be given, else a usage error ("" for no such rule).
  const char* needs_one = "";
};

const std::vector<CommandSpec>& CommandTable();
const CommandSpec* FindCommand(std::string_view name);

// wardend: checks `request` against its command's row and the peer's
// access, then calls the handler; an unknown command, a refused peer or a
// malformed member is answered {"ok": false, "error": ...} here.
void Dispatch(CommandTarget& target, const nlohmann::json& request, const Peer& peer,
              Access access, ControlServer::Reply reply);

// wardenctl: the words after the global options, command first, parsed
// by the command's row. `request` is what goes to wardend ({"cmd": name}
// and the params' members); `local` holds the params marked local, and
// kWords's words under its key.
struct ParsedCommand {
  const CommandSpec* spec = nullptr;
  nlohmann::json request;
  nlohmann::json local = nlohmann::json::object();
};
Expected<ParsedCommand> ParseCommandLine(const std::vector<std::string>& words);

// wardenctl's help: one entry per row, with its synopsis.
std::string UsageText();
std::string Synopsis(const CommandSpec& spec);

}  // namespace warden
