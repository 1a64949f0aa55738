#include "daemon/ctl/local_commands.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <optional>
#include <span>
#include <type_traits>

#include "actions/action.h"
#include "checks/check.h"
#include "daemon/base/ini.h"
#include "daemon/base/options.h"
#include "daemon/config/config.h"
#include "daemon/control/command_table.h"
#include "daemon/control/fleet_ctl.h"
#include "daemon/control/grants.h"
#include "daemon/ctl/args.h"
#include "daemon/ctl/exit_codes.h"
#include "daemon/ctl/render.h"
#include "daemon/io/mysql.h"

namespace warden::ctl {
namespace {

// `wardenctl help check|action [TYPE]`: the types with their summaries,
// or one type's keys from its option table (daemon/base/options.h), the
// keys every check or action has, and the type's example, which
// validates as it stands.
nlohmann::json OptionsJson(std::span<const OptionSpec> table) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : table) {
    nlohmann::json o = {{"key", s.key}, {"syntax", KindName(s)}, {"required", s.required},
                        {"default", nullptr}, {"help", s.help}};
    if (s.default_value) o["default"] = s.default_value;
    if (s.default_note) o["default_note"] = s.default_note;
    out.push_back(std::move(o));
  }
  return out;
}

template <typename Type>
int HelpOnType(const char* kind, const std::vector<Type>& types, const Type* type,
               std::span<const OptionSpec> common, const std::string& name, bool as_json) {
  if (as_json && (name.empty() || type)) {
    nlohmann::json out = {{"ok", true}, {"kind", kind}};
    if (name.empty()) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& t : types) list.push_back({{"name", t.name}, {"summary", t.summary}});
      out["types"] = std::move(list);
    } else {
      nlohmann::json also = nlohmann::json::array();
      for (const auto& s : common) {
        const std::string key = s.key;
        if (key == "connection" && !type->uses_mysql) continue;
        if constexpr (std::is_same_v<Type, ActionType>) {
          if (!type->guarded && (key == "cooldown" || key == "budget" || key == "dry_run")) {
            continue;
          }
        }
        also.push_back(key);
      }
      out["type"] = type->name;
      out["summary"] = type->summary;
      out["options"] = OptionsJson(type->options);
      out["common"] = std::move(also);
      out["example"] = type->example;
    }
    PrintJson(std::move(out));
    return kExitOk;
  }
  if (name.empty()) {
    std::printf("%s types (wardenctl help %s TYPE: its keys and an example):\n", kind, kind);
    size_t width = 0;
    for (const auto& t : types) width = std::max(width, std::strlen(t.name));
    for (const auto& t : types) {
      std::printf("  %-*s  %s\n", static_cast<int>(width), t.name, t.summary);
    }
    return kExitOk;
  }
  if (!type) {
    std::string known;
    for (const auto& t : types) known += (known.empty() ? "" : ", ") + std::string(t.name);
    return Fail(kExitUsage,
                std::string("no ") + kind + " type '" + name + "' (known: " + known + ")",
                as_json);
  }
  std::printf("%s type %s: %s\n\nits keys:\n", kind, type->name, type->summary);
  if (type->options.empty()) std::printf("  none\n");
  std::fputs(FormatOptions(type->options).c_str(), stdout);
  std::string also;
  for (const auto& s : common) {
    const std::string key = s.key;
    if (key == "connection" && !type->uses_mysql) continue;
    if constexpr (std::is_same_v<Type, ActionType>) {
      if (!type->guarded && (key == "cooldown" || key == "budget" || key == "dry_run")) continue;
    }
    also += (also.empty() ? "" : ", ") + key;
  }
  std::printf("\nand those of every %s (warden.ini(5)): %s\n\nexample:\n%s", kind, also.c_str(),
              type->example);
  return kExitOk;
}

}  // namespace

int Help(const std::vector<std::string>& args, bool as_json) {
  if (args.empty()) {
    if (!as_json) {
      Usage(stdout);
      return kExitOk;
    }
    nlohmann::json commands = nlohmann::json::array();
    for (const auto& c : CommandTable()) {
      if (!c.help[0]) continue;
      commands.push_back({{"name", c.name}, {"synopsis", Synopsis(c)}, {"help", c.help}});
    }
    PrintJson({{"ok", true}, {"commands", std::move(commands)}});
    return kExitOk;
  }
  if (args.size() > 2 || (args[0] != "check" && args[0] != "action")) {
    const char* usage = "usage: wardenctl help check|action [TYPE]";
    if (as_json) PrintJson({{"ok", false}, {"error", usage}, {"usage", true}});
    return UsageError(usage);
  }
  const std::string name = args.size() > 1 ? args[1] : "";
  if (args[0] == "check") {
    return HelpOnType("check", CheckTypes(), FindCheckType(name),
                      CheckCommonOptions(), name, as_json);
  }
  return HelpOnType("action", ActionTypes(), FindActionType(name),
                    ActionCommonOptions(), name, as_json);
}

int Validate(const std::string& path, bool grants, bool as_json) {
  Diagnostics diag;
  LoadOptions options;
  auto config = LoadConfig(path, options, diag);
  if (!config) {
    const std::string summary = path + ": " + std::to_string(diag.errors().size()) + " problem(s)";
    if (as_json) {
      PrintJson({{"ok", false}, {"config", path}, {"error", summary}, {"errors", diag.errors()}});
      return kExitNo;
    }
    for (const auto& e : diag.errors()) std::printf("%s\n", e.c_str());
    std::printf("%s\n", summary.c_str());
    return kExitNo;
  }
  std::string mutex = config->mutex.url;
  if (config->mutex.mode == MutexConfig::Mode::kOff) {
    mutex = "off";
  } else if (config->mutex.mode == MutexConfig::Mode::kEtcd) {
    mutex = "etcd " + config->mutex.prefix + " on";
    for (const auto& e : config->mutex.etcd.endpoints) mutex += " " + e;
  }
  if (as_json) {
    nlohmann::json out = {{"ok", true},
                          {"config", path},
                          {"checks", config->checks.size()},
                          {"actions", config->actions.size()},
                          {"jobs", config->jobs.size()},
                          {"mysql", config->mysql.size()},
                          {"mutex", mutex},
                          {"fleet", config->fleet.enabled}};
    nlohmann::json origins = nlohmann::json::object();
    for (const auto& [name, m] : config->mysql) {
      for (const auto& [key, where] : m.origin) origins[name][key] = where;
    }
    out["origins"] = std::move(origins);
    if (grants) {
      std::vector<std::string> lines;
      const int code = ReportGrants(*config, &lines);
      out["grants"] = {{"ok", code == 0}, {"lines", lines}};
      if (code != 0) {
        out["ok"] = false;
        out["error"] = lines.empty() ? "grants: not checked" : lines.back();
      }
      PrintJson(std::move(out));
      return code;
    }
    PrintJson(std::move(out));
    return kExitOk;
  }
  std::printf("%s: ok (%zu checks, %zu actions, %zu jobs, %zu mysql connections, mutex %s%s)\n",
              path.c_str(), config->checks.size(), config->actions.size(),
              config->jobs.size(), config->mysql.size(), mutex.c_str(),
              config->fleet.enabled ? ", fleet slots on etcd" : "");
  // Where each connection's settings came from, when an option file gave
  // some (never the password itself).
  for (const auto& [name, m] : config->mysql) {
    if (m.origin.empty()) continue;   // set only with a defaults_file
    std::printf("%s %s, ssl_mode %s:\n", m.Describe().c_str(), m.user.c_str(),
                SslModeName(m.EffectiveSslMode()));
    for (const auto& [key, where] : m.origin) {
      std::printf("  %-12s from %s\n", key.c_str(), where.c_str());
    }
  }
  return grants ? ReportGrants(*config) : 0;
}

int Fleet(const std::string& config_path, const nlohmann::json& request, bool as_json) {
  Diagnostics diag;
  LoadOptions options;
  options.read_secrets = false;
  auto config = LoadConfig(config_path, options, diag);
  if (!config && as_json) {
    PrintJson({{"ok", false},
               {"error", config_path + ": " + std::to_string(diag.errors().size()) + " problem(s)"},
               {"errors", diag.errors()}});
    return kExitNo;
  }
  if (!config) {
    for (const auto& e : diag.errors()) std::fprintf(stderr, "%s\n", e.c_str());
    std::fprintf(stderr, "wardenctl: %s: %zu problem(s)\n", config_path.c_str(),
                 diag.errors().size());
    return kExitNo;
  }
  FleetOptions o;
  if (request.contains("reason")) o.reason = request["reason"].get<std::string>();
  o.terminate = request.value("terminate", false);
  if (request.contains("group")) o.group = request["group"].get<std::string>();
  if (request.contains("parallel")) o.parallel = request["parallel"].get<std::int64_t>();
  const char* user = std::getenv("SUDO_USER");
  if (!user) user = std::getenv("USER");
  char hostname[256] = "";
  gethostname(hostname, sizeof hostname - 1);
  o.by = std::string(user ? user : "?") + "@" + hostname;
  const auto args = request["args"].get<std::vector<std::string>>();
  if (!as_json) return RunFleetCommand(*config, args, o);
  nlohmann::json out;
  const int code = RunFleetCommand(*config, args, o, &out);
  PrintJson(std::move(out));
  return code;
}

}  // namespace warden::ctl
