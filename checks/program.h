// type = program: runs `command` and measures its exit status or what it
// prints.
//
//   command = ...   split into argv as a POSIX shell splits words (quotes
//                   and backslashes, no expansion, no shell runs: see
//                   daemon/base/words.h); may continue on indented lines.
//                   Checked when the config is loaded.
//   value = exit    (default) the exit status as a number
//         = stdout  the first number the program prints on stdout (a
//                   number that starts a word: "lag: 12.5s" gives 12.5,
//                   "db-17" gives nothing); a non-zero exit is then an
//                   error carrying the end of stderr.
//
// Runs through the ProcessRunner (own process group, stdin /dev/null) with
// the check's timeout. A timeout, a spawn failure or death by a signal is
// an error.
#pragma once

#include <optional>
#include <string_view>

#include "checks/check.h"

namespace warden {

extern const CheckType kProgramCheckType;

// The first number that starts a word in `text` ("12", "-3.5"), or nullopt.
std::optional<std::string> FirstNumber(std::string_view text);

}  // namespace warden
