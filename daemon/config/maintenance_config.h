// Validation of a [maintenance NAME] section into MaintenanceConfig
// (daemon/config/config.h): schedule (5-field cron, local time, the parser
// of [job] schedule), for, scope (host, group G, action A) and reason.
// Every problem goes to diag as "file:line: message"; unknown keys are
// errors. Whether the scope's group or action exists is config.cc's
// cross-check.
#pragma once

#include <vector>

#include "daemon/base/ini.h"
#include "daemon/config/config.h"

namespace warden {

void LoadMaintenanceSection(const RawSection& section, std::vector<MaintenanceConfig>& out,
                            Diagnostics& diag);

}  // namespace warden
