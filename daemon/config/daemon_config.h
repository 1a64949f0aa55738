// Validation of the [daemon] section into DaemonConfig (daemon/config/config.h):
// host_id, state_dir, interval (the default `every` of checks, so it is
// read before every other section), jitter, workers, service_command.
// Every problem goes to diag as "file:line: message"; unknown keys are errors.
#pragma once

#include "daemon/base/ini.h"
#include "daemon/config/config.h"

namespace warden {

void LoadDaemonSection(const RawSection& section, DaemonConfig& out, Diagnostics& diag);

}  // namespace warden
