// Durable small-file writes: temp file in the same directory, fsync, rename,
// fsync of the directory. A reader sees the old or the new content, never a
// mix, even after a crash.
#pragma once

#include <string>

#include "daemon/status.h"

namespace warden {

Status WriteFileAtomically(const std::string& path, const std::string& content, unsigned mode);
Expected<std::string> ReadSmallFile(const std::string& path, size_t limit = 1 << 20);

}  // namespace warden
