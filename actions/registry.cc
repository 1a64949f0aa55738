// The one list of built-in action types. Adding a type: a file pair in
// actions/ (its factory, its option table and an example), one line here,
// its tests, its row in docs/configuration.md and a commented example in
// etc/. The registry test walks this list.
#include "actions/action.h"
#include "actions/alertmanager.h"
#include "actions/exec.h"
#include "actions/haproxy.h"
#include "actions/mysql_sql.h"
#include "actions/notify.h"
#include "actions/service.h"
#include "actions/webhook.h"

namespace warden {

const std::vector<ActionType>& ActionTypes() {
  static const std::vector<ActionType> types = {
      kExecActionType,
      kServiceActionType,
      kMysqlSqlActionType,
      kHaproxyActionType,
      kNotifyActionType,
      kAlertmanagerActionType,
      kWebhookActionType,
  };
  return types;
}

std::span<const OptionSpec> ActionCommonOptions() {
  static constexpr OptionSpec kCommon[] = {
      opt::Text("type", "the action type").Required(),
      opt::Duration("timeout", "then SIGTERM, then SIGKILL (processes); bounds each exchange")
          .Default("60s"),
      opt::Duration("cooldown", "after a run ends, block new runs this long"),
      opt::Budget("budget", "at most N runs per window, e.g. 3 per 1h"),
      opt::Bool("dry_run", "yes: the guard blocks it with reason dry_run").Default("no"),
      opt::Text("connection", "mysql types only: a [mysql NAME] section").DefaultNote("[mysql]"),
      opt::List("group", "groups this action is in: wardenctl pause --group blocks it"),
  };
  return kCommon;
}

std::unique_ptr<Action> BuildAction(const ActionType& type, OptionReader& opts,
                                    const ActionCommon& common) {
  const size_t before = opts.diag().errors().size();
  opts.Declare(type.options, "action type " + std::string(type.name));
  auto action = type.make(opts, common);   // its own errors too, even after the table's
  if (opts.diag().errors().size() != before) return nullptr;
  return action;
}

const ActionType* FindActionType(std::string_view name) {
  for (const auto& t : ActionTypes()) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

}  // namespace warden
