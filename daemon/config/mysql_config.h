// Validation of a [mysql] or [mysql NAME] section into MysqlConnConfig
// (daemon/io/mysql.h): where to connect, the user and password_file, the
// TLS settings, and what a defaults_file (daemon/config/option_file.h)
// gives that the section does not set. Passwords read go to `secrets`
// (redacted from tails); with options.read_secrets false no secret file is
// read. Every problem goes to diag as "file:line: message"; unknown keys
// are errors. The connection is stored in `out` under its name ("" for [mysql]).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "daemon/base/ini.h"
#include "daemon/config/config.h"
#include "daemon/io/mysql.h"

namespace warden {

void LoadMysqlSection(const RawSection& section, const LoadOptions& options,
                      std::map<std::string, MysqlConnConfig>& out,
                      std::vector<std::string>& secrets, Diagnostics& diag);

}  // namespace warden
