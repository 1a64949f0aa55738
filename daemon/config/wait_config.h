// Validation of a [wait NAME] section into WaitConfig (daemon/config/config.h):
// checks, for, timeout. Every problem goes to diag as "file:line: message";
// unknown keys are errors. The wait is appended to `out` unless one of its
// name is there already. Whether the checks exist is config.cc's cross-check.
#pragma once

#include <vector>

#include "daemon/base/ini.h"
#include "daemon/config/config.h"

namespace warden {

void LoadWaitSection(const RawSection& section, std::vector<WaitConfig>& out, Diagnostics& diag);

}  // namespace warden
