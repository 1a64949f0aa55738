// Validation of the [log] section into LogConfig (daemon/config/config.h).
// Keys: level, file, events, journal (auto, yes, no), journal_socket (an
// absolute path that fits a unix socket address). Every problem goes to
// diag as "file:line: message"; unknown keys are errors.
#pragma once

#include "daemon/base/ini.h"
#include "daemon/config/config.h"

namespace warden {

void LoadLogSection(const RawSection& section, LogConfig& out, Diagnostics& diag);

}  // namespace warden
