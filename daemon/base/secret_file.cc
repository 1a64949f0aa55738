#include "daemon/base/secret_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace warden {

Status CheckSecretFilePrivate(const std::string& path) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0) {
    return Status::FromErrno(errno, "cannot read " + path);
  }
  if ((sb.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(sb.st_mode & 07777));
    return Status::Invalid(path + " is mode " + mode +
                           ": a secret must not be readable by group or others (chmod 600 " +
                           path + ")");
  }
  return Status::Ok();
}

Expected<std::string> ReadSecretLine(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::FromErrno(errno, "cannot read " + path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ' ||
                           line.back() == '\t')) {
    line.pop_back();
  }
  return line;
}

Expected<std::string> ReadPrivateSecret(const std::string& path) {
  if (Status s = CheckSecretFilePrivate(path); !s.ok()) return s.failure();
  auto line = ReadSecretLine(path);
  if (line && line->empty()) {
    return Status::Invalid(path + " is empty: its first line is the secret");
  }
  return line;
}

}  // namespace warden
