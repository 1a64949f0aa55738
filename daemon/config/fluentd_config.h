// Validation of the [fluentd] section into FluentdConfig (daemon/config/config.h).
// Keys: address (host:port with a numeric IP or localhost, or unix:/path),
// tag, ack, buffer_limit, chunk_limit, ack_timeout. Every problem goes to
// diag as "file:line: message"; unknown keys are errors.
#pragma once

#include "daemon/base/ini.h"
#include "daemon/config/config.h"

namespace warden {

void LoadFluentdSection(const RawSection& section, FluentdConfig& out, Diagnostics& diag);

}  // namespace warden
