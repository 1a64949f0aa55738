// The one list of built-in check types. Adding a type: a file pair in
// checks/, one line here, its tests and a commented example in etc/.
#include "checks/check.h"
#include "checks/disk.h"
#include "checks/file.h"
#include "checks/mysql_ping.h"
#include "checks/mysql_query.h"
#include "checks/mysql_replica.h"
#include "checks/mysql_status.h"
#include "checks/mysql_variable.h"
#include "checks/process.h"
#include "checks/program.h"
#include "checks/tcp.h"

namespace warden {

const std::vector<CheckType>& CheckTypes() {
  // One line per type, in the order of docs/configuration.md's table.
  // clang-format off
  static const std::vector<CheckType> types = {
      kMysqlPingCheckType,
      kMysqlStatusCheckType,
      kMysqlVariableCheckType,
      kMysqlQueryCheckType,
      kMysqlReplicaCheckType,
      kProcessCheckType,
      kTcpCheckType,
      kDiskCheckType,
      kProgramCheckType,
      kFileCheckType,
  };
  // clang-format on
  return types;
}

const CheckType* FindCheckType(std::string_view name) {
  for (const auto& t : CheckTypes()) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

}  // namespace warden
