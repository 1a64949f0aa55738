#include "daemon/config/action_config.h"

#include <string>
#include <utility>

#include "actions/action.h"
#include "daemon/base/options.h"

namespace warden {
namespace {

std::string ActionTypeList() {
  std::string out;
  for (const auto& t : ActionTypes()) out += (out.empty() ? "" : ", ") + std::string(t.name);
  return out;
}

}  // namespace

void LoadActionSection(const RawSection& s, std::vector<ActionConfig>& out,
                       std::vector<ConnectionRef>& connections, Diagnostics& diag) {
  OptionReader r(s, diag);
  ActionConfig ac;
  ac.where = s.where;
  ac.common.name = s.name;
  CheckName(r, "action");
  std::string type = r.Required("type", "one of " + ActionTypeList());
  ac.common.type = type;
  ac.type = type.empty() ? nullptr : FindActionType(type);
  if (!type.empty() && !ac.type) {
    r.Error(*r.Find("type"), "unknown action type '" + type + "' (known: " + ActionTypeList() + ")");
  }
  ReadTimeout(r, ac.common.timeout);
  ac.groups = ReadGroups(r);
  ac.common.cooldown = r.GetDuration("cooldown");
  ac.common.budget = r.GetBudget("budget");
  if (auto v = r.GetBool("dry_run")) ac.common.dry_run = *v;
  if (ac.type && ac.type->uses_mysql) {
    if (auto v = r.Text("connection")) ac.common.connection = *v;
    connections.push_back({ac.common.connection,
                            r.Find("connection") ? r.Find("connection")->where : s.where,
                                s.title()});
  }
  if (ac.type) {
    if (!ac.type->guarded && (ac.common.cooldown || ac.common.budget || ac.common.dry_run)) {
      r.Error("action type " + type + " changes nothing and is not guarded: "
              "cooldown, budget and dry_run do not apply");
    }
    size_t before = diag.errors().size();
    ac.impl = BuildAction(*ac.type, r, ac.common);
    if (!ac.impl && diag.errors().size() == before) {
      r.Error(s.title() + ": the action could not be built from these settings");
    }
    r.Finish("action type " + type);
  }
  for (const auto& other : out) {
    if (other.common.name == s.name) return;
  }
  out.push_back(std::move(ac));
}

}  // namespace warden
