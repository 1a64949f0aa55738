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
//
// The reading of `command` and the run are shared with the nagios check
// (checks/nagios.h), which runs its plugin the same way.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checks/check.h"

namespace warden {

struct ProcessResult;

extern const CheckType kProgramCheckType;

// The first number that starts a word in `text` ("12", "-3.5"), or nullopt.
std::optional<std::string> FirstNumber(std::string_view text);

// The multi-line `command` key split into argv (as a shell splits words; no
// shell runs). nullopt once the problem is reported at the key (or the
// key is missing: the table reports that).
std::optional<std::vector<std::string>> ReadCommand(OptionReader& opts);

// One run of a check's program: through rt's ProcessRunner, in its own
// process group with stdin from /dev/null, killed at `timeout`, keeping
// the first `capture` bytes of stdout (ProcessResult::stdout_head). When
// the program exits by itself (whatever its status), `done` gets what
// `exited` makes of the result; when it cannot be started, times out or
// dies by a signal, `done` gets an error naming the program. Loop thread.
using ProgramExited = std::function<Measurement(const ProcessResult&)>;
void RunCheckProgram(Runtime& rt, const std::vector<std::string>& argv, Duration timeout,
                     size_t capture, ProgramExited exited, Check::Done done);

}  // namespace warden
