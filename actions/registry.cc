// The one list of built-in action types. Adding a type: a file pair in
// actions/, one line here, its tests and a commented example in etc/.
#include "actions/action.h"
#include "actions/exec.h"
#include "actions/haproxy.h"
#include "actions/mysql_sql.h"
#include "actions/notify.h"
#include "actions/service.h"

namespace warden {

const std::vector<ActionType>& ActionTypes() {
  static const std::vector<ActionType> types = {
      kExecActionType,
      kServiceActionType,
      kMysqlSqlActionType,
      kHaproxyActionType,
      kNotifyActionType,
  };
  return types;
}

const ActionType* FindActionType(std::string_view name) {
  for (const auto& t : ActionTypes()) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

}  // namespace warden
