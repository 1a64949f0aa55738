// Durable small-file writes: temp file in the same directory, fsync, rename,
// fsync of the directory. A reader sees the old or the new content, never a
// mix, even after a crash. ReplaceFile is the same without the two fsyncs:
// atomic for readers, not durable (after a power loss the file may be the
// old one, or empty), for a file rewritten at a short interval anyway.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace warden {

// The file ends up with exactly `mode`, whatever the process umask.
// `dir_mode` non-zero: a directory that is gone (an operator removed the
// state dir under a running wardend) is made again with that mode, said
// in the log, and the write goes on.
Status WriteFileAtomically(const std::string& path, const std::string& content, unsigned mode,
                           unsigned dir_mode = 0);
// `parts` written one after the other (a page in pieces, not joined first).
Status ReplaceFile(const std::string& path, const std::vector<std::string_view>& parts,
                   unsigned mode);
// The parent directory of `path` made again (exactly `dir_mode`) when it is
// gone; true when it had to be (and it was), logged.
bool RemakeParentDir(const std::string& path, unsigned dir_mode);
Expected<std::string> ReadSmallFile(const std::string& path, size_t limit = 1 << 20);

// Creates the directory `path` with exactly `mode` and its missing parents
// with exactly `parent_mode` (mkdir, then chmod: the umask neither narrows
// nor widens them). Directories that exist already are left as they are.
Status MakeDirectories(const std::string& path, unsigned mode, unsigned parent_mode = 0755);

// open(2) of `path` with `flags` (without O_CREAT), creating it first with
// exactly `mode` when it does not exist (fchmod after the create); an
// existing file keeps its mode (an operator's or logrotate's choice).
// -1 with errno on failure.
int OpenOrCreate(const std::string& path, int flags, unsigned mode);

}  // namespace warden
