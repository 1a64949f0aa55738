// Validation of the [fleet] section into FleetConfig (daemon/io/fleet.h):
// the etcd keys (daemon/config/etcd_keys.h), slots, poll. With
// options.read_secrets false the TLS files are not checked. Every problem
// goes to diag as "file:line: message"; unknown keys are errors.
#pragma once

#include "daemon/base/ini.h"
#include "daemon/config/config.h"
#include "daemon/io/fleet.h"

namespace warden {

void LoadFleetSection(const RawSection& section, const LoadOptions& options, FleetConfig& out,
                      Diagnostics& diag);

}  // namespace warden
