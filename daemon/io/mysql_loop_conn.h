// The loop connection (mysql_loop_conn.cc): SHOW GLOBAL STATUS and SHOW
// GLOBAL VARIABLES read on the loop thread through libmariadb's
// non-blocking API, on one connection per [mysql] section that a worker
// makes. Internal to daemon/io.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "daemon/base/named_values.h"
#include "daemon/base/status.h"
#include "daemon/io/mysql_internal.h"

namespace warden::mysql_internal {

using LoopDone = std::function<void(Expected<std::shared_ptr<const MysqlMap>>)>;

// SHOW GLOBAL STATUS or VARIABLES (`what`) of `names` on `connection`'s
// loop connection (made on first use): filtered where it pays and the
// server takes it. `cb` runs on the loop, later.
void ReadNamed(const std::shared_ptr<ReadsState>& impl, const std::string& connection,
               const char* what, const std::shared_ptr<const NameSet>& names, LoopDone cb);

}  // namespace warden::mysql_internal
