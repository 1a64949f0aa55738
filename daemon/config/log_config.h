// Validation of the [log] section into LogConfig (daemon/config/config.h):
// level, file, events. Every problem goes to diag as "file:line: message";
// unknown keys are errors.
#pragma once

#include "daemon/base/ini.h"
#include "daemon/config/config.h"

namespace warden {

void LoadLogSection(const RawSection& section, LogConfig& out, Diagnostics& diag);

}  // namespace warden
