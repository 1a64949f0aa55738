// Validation of the [control] section into ControlConfig (daemon/config/config.h):
// socket, group. Every problem goes to diag as "file:line: message";
// unknown keys are errors.
#pragma once

#include "daemon/base/ini.h"
#include "daemon/config/config.h"

namespace warden {

void LoadControlSection(const RawSection& section, ControlConfig& out, Diagnostics& diag);

}  // namespace warden
