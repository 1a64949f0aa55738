// type = mysql_variable: one SHOW GLOBAL VARIABLES value (variable = NAME,
// any case), read from a snapshot shared with the other checks on the same
// connection (see MysqlReads).
#pragma once

#include "checks/check.h"

namespace warden {

extern const CheckType kMysqlVariableCheckType;

}  // namespace warden
