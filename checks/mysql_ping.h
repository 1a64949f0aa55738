// type = mysql_ping: the round trip of mysql_ping in ms on the check's
// connection (connecting first if the worker has no connection yet); an
// error when the server cannot be reached.
#pragma once

#include "checks/check.h"

namespace warden {

extern const CheckType kMysqlPingCheckType;

}  // namespace warden
