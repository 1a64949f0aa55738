// Validation of the [mutex] section into MutexConfig (daemon/io/mutex_client.h):
// mode = off, url = … (HTTP, with token_file, timeout, ca_file) or
// backend = etcd (the keys of daemon/config/etcd_keys.h); cache, poll. A
// token read goes to `secrets`; with options.read_secrets false no secret
// file is read. Every problem goes to diag as "file:line: message";
// unknown keys are errors.
#pragma once

#include <string>
#include <vector>

#include "daemon/base/ini.h"
#include "daemon/config/config.h"
#include "daemon/io/mutex_client.h"

namespace warden {

void LoadMutexSection(const RawSection& section, const LoadOptions& options, MutexConfig& out,
                      std::vector<std::string>& secrets, Diagnostics& diag);

}  // namespace warden
