#include "daemon/control/command_table.h"

#include <cstdlib>

namespace warden {

using nlohmann::json;
using Kind = CommandParam::Kind;

std::string CommandRequest::Text(const char* key) const {
  auto it = args.find(key);
  return it != args.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool CommandRequest::Flag(const char* key) const {
  auto it = args.find(key);
  return it != args.end() && it->is_boolean() && it->get<bool>();
}

std::optional<std::int64_t> CommandRequest::Count(const char* key) const {
  auto it = args.find(key);
  if (it == args.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<std::int64_t>();
}

std::vector<std::string> CommandRequest::List(const char* key) const {
  std::vector<std::string> out;
  auto it = args.find(key);
  if (it == args.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

namespace {
// Every command that prints something takes --json (docs/control.md,
// "JSON output"): one JSON object on stdout, with "schema".
const CommandParam kJson{Kind::kFlag, "--json", "json", "", false, "print JSON", true};
}  // namespace

const std::vector<CommandSpec>& CommandTable() {
  static const std::vector<CommandSpec> table = {
      {"validate", Access::kRead, "parse and check the config without a daemon",
       {{Kind::kFlag, "--grants", "grants", "", false,
         "connect and report missing MySQL privileges"},
        kJson},
       nullptr, 0, "(--grants: connect and report missing MySQL privileges)"},
      {"status", Access::kRead, "checks, jobs, pause, halt, mutex, events",
       {{Kind::kText, "--group", "group", "G", false, "only the checks and actions in group G"},
        kJson},
       &CommandTarget::Status, 60'000, ""},
      {"top", Access::kRead, "the status, redrawn every second until q (a terminal view)",
       {{Kind::kText, "--group", "group", "G", false, "only the checks and actions in group G"}},
       nullptr, 0, ""},
      {"check", Access::kAdmin, "run one check, or a group's, now (exit 0 ok, 1 otherwise)",
       {{Kind::kName, "", "name", "NAME", false, "the check"},
        {Kind::kText, "--group", "group", "G", false, "every check in group G"},
        {Kind::kFlag, "--nagios", "nagios", "", false,
         "one Nagios plugin line; exit 0 ok, 1 warn, 2 crit, 3 otherwise", true},
        kJson},
       &CommandTarget::Check, 10 * 60'000,
       "(--nagios: one plugin line, exit 0 ok, 1 warn, 2 crit, 3 unknown)", "name group"},
      {"run", Access::kAdmin, "run an action through the guard, or queue a job",
       {{Kind::kName, "", "name", "NAME", true, "the action or job"},
        {Kind::kFlag, "--dry-run", "dry_run", "", false, "what would run"},
        {Kind::kFlag, "--wait", "wait", "", false, "its result"},
        kJson},
       &CommandTarget::Run, 60'000, "(--dry-run: what would run; --wait: its result)"},
      {"resume", Access::kAdmin, "clear the halt a failed or interrupted job left", {kJson},
       &CommandTarget::Resume, 60'000, ""},
      {"abort", Access::kAdmin, "stop what runs now: SIGTERM, SIGKILL after kill_grace",
       {{Kind::kText, "--job", "job", "NAME", false, "only this job's running step"},
        {Kind::kText, "--action", "action", "NAME", false, "only this action"},
        kJson},
       &CommandTarget::Abort, 60'000, "(a job ends job.terminated and halts the queue)"},
      {"fleet", Access::kRead, "the fleet mutex, slots and rollouts on etcd",
       {{Kind::kWords, "", "args",
         "status [ROLLOUT] [--json] | halt --reason TEXT [--terminate] [--json] | clear [--json] | "
         "release GROUP HOST [--json] | run JOB --group G [--parallel N] [--reason TEXT] [--json] | "
         "cancel ROLLOUT [--reason TEXT] [--json]",
         true, ""},
        {Kind::kText, "--reason", "reason", "TEXT", false, ""},
        {Kind::kFlag, "--terminate", "terminate", "", false, ""},
        {Kind::kText, "--group", "group", "G", false, ""},
        {Kind::kCount, "--parallel", "parallel", "N", false, ""},
        {Kind::kFlag, "--json", "json", "", false, "", true}},   // shown in the words' metavar
       nullptr, 0, ""},
      {"pause", Access::kAdmin, "stop actions: the host's, a group's, one action or one check's",
       {{Kind::kText, "--reason", "reason", "TEXT", true, "why, for whoever finds it paused"},
        {Kind::kText, "--for", "for", "DURATION", false, "ends by itself after DURATION"},
        {Kind::kText, "--until", "until", "TIME", false, "ends by itself at TIME (UTC)"},
        {Kind::kText, "--group", "group", "G", false, "only the actions and jobs in group G"},
        {Kind::kText, "--action", "action", "NAME", false, "only this action or job"},
        {Kind::kText, "--check", "check", "NAME", false, "only the actions this check fires"},
        kJson},
       &CommandTarget::Pause, 60'000,
       "(persisted; one pause per scope, several scopes at once)"},
      {"unpause", Access::kAdmin, "end a pause (the host's unless a scope is given)",
       {{Kind::kText, "--group", "group", "G", false, "the pause of group G"},
        {Kind::kText, "--action", "action", "NAME", false, "the pause of this action"},
        {Kind::kText, "--check", "check", "NAME", false, "the pause of this check's actions"},
        {Kind::kFlag, "--all", "all", "", false, "every pause in force"},
        kJson},
       &CommandTarget::Unpause, 60'000, ""},
      {"disable", Access::kAdmin, "stop running a check (state disabled, no actions)",
       {{Kind::kName, "", "name", "CHECK", true, "the check"},
        {Kind::kText, "--reason", "reason", "TEXT", true, "why, for whoever finds it disabled"},
        {Kind::kText, "--for", "for", "DURATION", false, "enabled again after DURATION"},
        {Kind::kText, "--until", "until", "TIME", false, "enabled again at TIME (UTC)"},
        kJson},
       &CommandTarget::Disable, 60'000, "(persisted; dependents see it as not ok)"},
      {"enable", Access::kAdmin, "run a disabled check again (from pending)",
       {{Kind::kName, "", "name", "CHECK", true, "the check"}, kJson},
       &CommandTarget::Enable, 60'000, ""},
      {"reload", Access::kAdmin, "re-read the config (the running one stays on error)", {kJson},
       &CommandTarget::Reload, 60'000, ""},
      {"events", Access::kRead, "the latest N events (default 20), or follow new ones (-f)",
       {{Kind::kCount, "-n", "n", "N", false, "how many (at most 10000)"},
        {Kind::kFlag, "-f", "follow", "", false, "follow: each new event as it happens"},
        {Kind::kList, "--event", "event", "TYPE", false,
         "-f: only events of TYPE (pause.*: a prefix)"},
        {Kind::kList, "--check", "check", "NAME", false, "-f: only events of check NAME"},
        kJson},
       &CommandTarget::Events, 60'000,
       "(-f: until interrupted; --event, --check repeat or take a comma list)"},
      {"version", Access::kRead, "print the version and build", {kJson}, nullptr, 0, ""},
      {"help", Access::kRead, "the types, or one type's keys and an example",
       {{Kind::kWords, "", "args", "check|action [TYPE]", false, ""}, kJson}, nullptr, 0, ""},
      // The socket's liveness probe: no help line, so not in wardenctl's usage.
      {"ping", Access::kRead, "", {}, &CommandTarget::Ping, 10'000, ""},
  };
  return table;
}

const CommandSpec* FindCommand(std::string_view name) {
  for (const auto& c : CommandTable()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

namespace {

json Refuse(const std::string& message) { return {{"ok", false}, {"error", message}}; }

const char* KindWants(Kind k) {
  switch (k) {
    case Kind::kName:
    case Kind::kText:
      return "a string";
    case Kind::kWords:
      return "an array of strings";
    case Kind::kList:
      return "an array of non-empty strings";
    case Kind::kFlag:
      return "true or false";
    case Kind::kCount:
      return "a non-negative integer";
  }
  return "?";
}

bool HasKind(const json& v, Kind k) {
  switch (k) {
    case Kind::kName:
    case Kind::kText:
      return v.is_string();
    case Kind::kWords:
      if (!v.is_array()) return false;
      for (const auto& w : v) {
        if (!w.is_string()) return false;
      }
      return true;
    case Kind::kList:
      if (!v.is_array()) return false;
      for (const auto& w : v) {
        if (!w.is_string() || w.get<std::string>().empty()) return false;
      }
      return true;
    case Kind::kFlag:
      return v.is_boolean();
    case Kind::kCount:
      return v.is_number_integer() && v.get<std::int64_t>() >= 0;
  }
  return false;
}

std::string Needs(const CommandSpec& spec, const CommandParam& p) {
  std::string what = p.option[0] ? std::string(p.option) + " " + p.metavar : p.metavar;
  return std::string(spec.name) + " needs " + what + " (usage: " + Synopsis(spec) + ")";
}

}  // namespace

void Dispatch(CommandTarget& target, const json& request, const Peer& peer, Access access,
              ControlServer::Reply reply) {
  auto cmd_it = request.find("cmd");
  const std::string cmd =
      cmd_it != request.end() && cmd_it->is_string() ? cmd_it->get<std::string>() : "";
  const CommandSpec* spec = FindCommand(cmd);
  if (!spec || !spec->handler) {
    reply(Refuse("unknown command '" + cmd + "'"));
    return;
  }
  if (spec->access == Access::kAdmin && access != Access::kAdmin) {
    reply(Refuse("permission denied: '" + cmd + "' changes the host; only root or the daemon's "
                 "user may do that (you are " + peer.Describe() + ", allowed to read status)"));
    return;
  }
  for (const auto& p : spec->params) {
    if (p.local) continue;
    auto it = request.find(p.key);
    if (it == request.end() || it->is_null()) {
      if (p.required) {
        reply(Refuse(Needs(*spec, p)));
        return;
      }
      continue;
    }
    if (!HasKind(*it, p.kind)) {
      reply(Refuse(cmd + ": '" + p.key + "' must be " + KindWants(p.kind)));
      return;
    }
    if (p.required && (p.kind == Kind::kName || p.kind == Kind::kText) &&
        it->get<std::string>().empty()) {
      reply(Refuse(Needs(*spec, p)));
      return;
    }
  }
  (target.*(spec->handler))(CommandRequest{request, peer}, std::move(reply));
}

std::string Synopsis(const CommandSpec& spec) {
  std::string s = spec.name;
  for (const auto& p : spec.params) {
    switch (p.kind) {
      case Kind::kName:
        s += std::string(" ") + (p.required ? "" : "[") + p.metavar + (p.required ? "" : "]");
        break;
      case Kind::kWords:
        s += std::string(" ") + p.metavar;
        break;
      case Kind::kFlag:
        if (!p.help[0]) break;   // shown in the words' metavar
        s += std::string(" [") + p.option + "]";
        break;
      case Kind::kText:
      case Kind::kCount:
      case Kind::kList:
        if (!p.help[0]) break;   // shown in the words' metavar
        s += std::string(" ") + (p.required ? "" : "[") + p.option + " " + p.metavar +
             (p.required ? "" : "]");
        break;
    }
  }
  return s;
}

std::string UsageText() {
  std::string out = "usage: wardenctl [-c FILE | -s SOCKET] COMMAND [ARGS]\ncommands:\n";
  constexpr size_t kColumn = 31;
  for (const auto& c : CommandTable()) {
    if (!c.help[0]) continue;
    std::string line = "  " + Synopsis(c);
    if (line.size() + 1 > kColumn) {
      out += line + "\n" + std::string(kColumn, ' ');
    } else {
      out += line + std::string(kColumn - line.size(), ' ');
    }
    out += std::string(c.help) + "\n";
    if (c.more[0]) out += std::string(kColumn, ' ') + c.more + "\n";
  }
  out +=
      "options:\n"
      "  -c FILE      config file (default /etc/warden/warden.ini); its [control] socket\n"
      "  -s SOCKET    the daemon's control socket (instead of reading the config)\n"
      "  --version    print the version and build (as the version command does)\n"
      "exit: 0 ok, 1 refused/failed/not ok, 2 usage, 3 daemon not reachable\n";
  return out;
}

Expected<ParsedCommand> ParseCommandLine(const std::vector<std::string>& words) {
  if (words.empty()) return Status::Error("no command");
  ParsedCommand out;
  out.spec = FindCommand(words[0]);
  if (!out.spec || !out.spec->help[0]) {
    return Status::Error("unknown command '" + words[0] + "'");
  }
  const CommandSpec& spec = *out.spec;
  out.request = {{"cmd", spec.name}};
  auto put = [&](const CommandParam& p, json v) {
    (p.local ? out.local : out.request)[p.key] = std::move(v);
  };
  auto usage = [&] { return Status::Error("usage: wardenctl " + Synopsis(spec)); };
  size_t next_name = 0;   // the next positional param to fill
  json rest = json::array();
  for (size_t i = 1; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w.size() > 1 && w[0] == '-') {
      const CommandParam* p = nullptr;
      for (const auto& q : spec.params) {
        if (q.option[0] && w == q.option) p = &q;
      }
      if (!p) {
        for (const auto& c : CommandTable()) {
          for (const auto& q : c.params) {
            if (q.option[0] && w == q.option) {
              return Status::Error("an option does not apply to '" + std::string(spec.name) +
                                   "': " + w);
            }
          }
        }
        return Status::Error("unknown option '" + w + "'");
      }
      if (p->kind == Kind::kFlag) {
        put(*p, true);
        continue;
      }
      if (i + 1 >= words.size()) {
        return Status::Error(std::string(p->option) + " needs " + p->metavar);
      }
      const std::string& v = words[++i];
      if (p->kind == Kind::kList) {
        // Repeatable, and each a comma list: --event a --event b,c.
        json& list = (p->local ? out.local : out.request)[p->key];
        if (!list.is_array()) list = json::array();
        size_t start = 0;
        for (;;) {
          size_t comma = v.find(',', start);
          std::string item = v.substr(start, comma == std::string::npos ? comma : comma - start);
          while (!item.empty() && item.front() == ' ') item.erase(0, 1);
          while (!item.empty() && item.back() == ' ') item.pop_back();
          if (item.empty()) {
            return Status::Error(std::string(p->option) + " needs " + p->metavar +
                                 " (an empty name in '" + v + "')");
          }
          list.push_back(std::move(item));
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      } else if (p->kind == Kind::kCount) {
        char* end = nullptr;
        long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || n < 0) {
          return Status::Error(std::string(p->option) + " needs a number >= 0");
        }
        put(*p, n);
      } else {
        put(*p, v);
      }
      continue;
    }
    // A positional word: the next kName, or kWords's.
    const CommandParam* p = nullptr;
    size_t seen = 0;
    for (const auto& q : spec.params) {
      if (q.kind == Kind::kWords) {
        p = &q;
        break;
      }
      if (q.kind == Kind::kName && seen++ == next_name) {
        p = &q;
        break;
      }
    }
    if (!p) return usage();
    if (p->kind == Kind::kWords) {
      rest.push_back(w);
    } else {
      put(*p, w);
      ++next_name;
    }
  }
  if (spec.needs_one[0]) {
    const std::string keys = std::string(" ") + spec.needs_one + " ";
    bool any = false;
    for (const auto& p : spec.params) {
      if (keys.find(std::string(" ") + p.key + " ") == std::string::npos) continue;
      any = any || out.request.contains(p.key) || out.local.contains(p.key);
    }
    if (!any) return usage();
  }
  for (const auto& p : spec.params) {
    if (p.kind == Kind::kWords) {
      if (p.required && rest.empty()) return usage();
      put(p, rest);
      continue;
    }
    if (!p.required) continue;
    const json& where = p.local ? out.local : out.request;
    auto it = where.find(p.key);
    if (it == where.end() || (it->is_string() && it->get<std::string>().empty())) {
      if (p.kind == Kind::kName) return usage();
      return Status::Error(std::string(spec.name) + " needs " + p.option + " " + p.metavar);
    }
  }
  return out;
}

}  // namespace warden
