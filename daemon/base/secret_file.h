// Files that hold a secret (a token, a password): they must be private to
// their owner, and their first line is the secret.
//
// The rules of every secret the configuration names: a password_file, a
// token_file, a TLS key.
#pragma once

#include <string>

#include "daemon/base/status.h"

namespace warden {

// Ok when `path` is not readable by group or others; otherwise the reason,
// naming the file and its mode ("... is mode 0644: a secret must not be
// readable by group or others (chmod 600 ...)", invalid), or why it cannot
// be stat'ed (refused when this user may not look at it, not_found...).
Status CheckSecretFilePrivate(const std::string& path);

// The first line of `path` (trailing CR, LF and blanks cut), whatever
// its mode; it may be empty.
Expected<std::string> ReadSecretLine(const std::string& path);

// ReadSecretLine after CheckSecretFilePrivate. An empty line is an error too.
Expected<std::string> ReadPrivateSecret(const std::string& path);

}  // namespace warden
