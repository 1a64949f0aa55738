// Validation of a [check NAME] section into CheckConfig (daemon/config/config.h):
// the keys every check has (type, every, timeout, warn, crit, trip,
// recover, repeat, depends, on_*, connection), then its type's own through
// the type's factory (checks/check.h). `default_every` is [daemon]
// interval. A mysql check's connection goes to `connections`, resolved when
// every section is read. Every problem goes to diag as "file:line: message";
// unknown keys are errors. The check is appended to `out` unless one of its
// name is there already (ReadIniFiles reports the duplicate).
#pragma once

#include <vector>

#include "daemon/base/ini.h"
#include "daemon/base/units.h"
#include "daemon/config/config.h"
#include "daemon/config/section_common.h"

namespace warden {

void LoadCheckSection(const RawSection& section, Duration default_every,
                      std::vector<CheckConfig>& out, std::vector<ConnectionRef>& connections,
                      Diagnostics& diag);

}  // namespace warden
