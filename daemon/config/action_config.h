// Validation of an [action NAME] section into ActionConfig (daemon/config/config.h):
// the keys every action has (type, timeout, cooldown, budget, dry_run,
// connection), then its type's own through the type's factory
// (actions/action.h). A mysql action's connection goes to `connections`,
// resolved when every section is read. Every problem goes to diag as
// "file:line: message"; unknown keys are errors. The action is appended to
// `out` unless one of its name is there already.
#pragma once

#include <vector>

#include "daemon/base/ini.h"
#include "daemon/config/config.h"
#include "daemon/config/section_common.h"

namespace warden {

void LoadActionSection(const RawSection& section, std::vector<ActionConfig>& out,
                       std::vector<ConnectionRef>& connections, Diagnostics& diag);

}  // namespace warden
