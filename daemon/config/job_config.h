// Validation of a [job NAME] section into JobConfig (daemon/config/config.h):
// steps, schedule (cron), timeout, slot, slots. Every problem goes to diag
// as "file:line: message"; unknown keys are errors. The job is appended to
// `out` unless one of its name is there already. Whether the steps exist
// and a slot has its [fleet] is config.cc's cross-check.
#pragma once

#include <vector>

#include "daemon/base/ini.h"
#include "daemon/config/config.h"

namespace warden {

void LoadJobSection(const RawSection& section, std::vector<JobConfig>& out, Diagnostics& diag);

}  // namespace warden
