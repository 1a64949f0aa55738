#include "daemon/ctl/local_commands.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

#include "actions/action.h"
#include "checks/check.h"
#include "daemon/base/ini.h"
#include "daemon/base/options.h"
#include "daemon/config/config.h"
#include "daemon/control/fleet_ctl.h"
#include "daemon/control/grants.h"
#include "daemon/ctl/args.h"
#include "daemon/ctl/exit_codes.h"
#include "daemon/io/mysql.h"

namespace warden::ctl {
namespace {

// `wardenctl help check|action [TYPE]`: the types with their summaries,
// or one type's keys from its option table (daemon/base/options.h), the
// keys every check or action has, and the type's example, which
// validates as it stands.
template <typename Type>
int HelpOnType(const char* kind, const std::vector<Type>& types, const Type* type,
               std::span<const OptionSpec> common, const std::string& name) {
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
    std::fprintf(stderr, "wardenctl: no %s type '%s' (known: %s)\n", kind, name.c_str(),
                 known.c_str());
    return kExitUsage;
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

int Help(const std::vector<std::string>& args) {
  if (args.empty()) {
    Usage(stdout);
    return kExitOk;
  }
  if (args.size() > 2 || (args[0] != "check" && args[0] != "action")) {
    return UsageError("usage: wardenctl help check|action [TYPE]");
  }
  const std::string name = args.size() > 1 ? args[1] : "";
  if (args[0] == "check") {
    return HelpOnType("check", CheckTypes(), FindCheckType(name),
                      CheckCommonOptions(), name);
  }
  return HelpOnType("action", ActionTypes(), FindActionType(name),
                    ActionCommonOptions(), name);
}

int Validate(const std::string& path, bool grants) {
  Diagnostics diag;
  LoadOptions options;
  auto config = LoadConfig(path, options, diag);
  if (!config) {
    for (const auto& e : diag.errors()) std::printf("%s\n", e.c_str());
    std::printf("%s: %zu problem(s)\n", path.c_str(), diag.errors().size());
    return 1;
  }
  std::string mutex = config->mutex.url;
  if (config->mutex.mode == MutexConfig::Mode::kOff) {
    mutex = "off";
  } else if (config->mutex.mode == MutexConfig::Mode::kEtcd) {
    mutex = "etcd " + config->mutex.prefix + " on";
    for (const auto& e : config->mutex.etcd.endpoints) mutex += " " + e;
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

int Fleet(const std::string& config_path, const nlohmann::json& request) {
  Diagnostics diag;
  LoadOptions options;
  options.read_secrets = false;
  auto config = LoadConfig(config_path, options, diag);
  if (!config) {
    for (const auto& e : diag.errors()) std::fprintf(stderr, "%s\n", e.c_str());
    std::fprintf(stderr, "wardenctl: %s: %zu problem(s)\n", config_path.c_str(),
                 diag.errors().size());
    return kExitNo;
  }
  std::optional<std::string> reason;
  if (request.contains("reason")) reason = request["reason"].get<std::string>();
  const bool terminate = request.value("terminate", false);
  return RunFleetCommand(*config, request["args"].get<std::vector<std::string>>(), reason,
                         terminate);
}

}  // namespace warden::ctl
