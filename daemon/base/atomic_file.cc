#include "daemon/base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace warden {

bool RemakeParentDir(const std::string& path, unsigned dir_mode) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  struct stat sb {};
  if (dir.empty() || ::stat(dir.c_str(), &sb) == 0 || errno != ENOENT) return false;
  // Its parents (the state dir, for the fluentd buffer): 0750, as at start.
  Status made = MakeDirectories(dir, dir_mode, 0750);
  if (made.ok()) {
    spdlog::warn("{} was gone: made it again (mode {:04o}) to write {}", dir, dir_mode, path);
  }
  return made.ok();
}

namespace {

Status WriteThenRename(const std::string& path, const std::vector<std::string_view>& parts,
                       unsigned mode, unsigned dir_mode, bool sync) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0 && errno == ENOENT && dir_mode != 0 && RemakeParentDir(path, dir_mode)) {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  }
  if (fd < 0) return Status::Error("cannot create " + tmp + ": " + std::strerror(errno));
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::Error("cannot chmod " + tmp + ": " + err);
  }
  for (std::string_view part : parts) {
    const char* p = part.data();
    size_t left = part.size();
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::string err = std::strerror(errno);
        ::close(fd);
        ::unlink(tmp.c_str());
        return Status::Error("cannot write " + tmp + ": " + err);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if ((sync && ::fsync(fd) != 0) || ::close(fd) != 0) {
    std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::Error(std::string(sync ? "cannot sync " : "cannot close ") + tmp + ": " + err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::Error("cannot rename " + tmp + " to " + path + ": " + err);
  }
  if (!sync) return Status::Ok();
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

}  // namespace

Status WriteFileAtomically(const std::string& path, const std::string& content, unsigned mode,
                           unsigned dir_mode) {
  return WriteThenRename(path, {content}, mode, dir_mode, true);
}

Status ReplaceFile(const std::string& path, const std::vector<std::string_view>& parts,
                   unsigned mode) {
  return WriteThenRename(path, parts, mode, 0, false);
}

Status MakeDirectories(const std::string& path, unsigned mode, unsigned parent_mode) {
  std::filesystem::path target = std::filesystem::path(path).lexically_normal();
  if (!target.has_filename() && target.has_parent_path()) target = target.parent_path();  // "a/b/"
  if (target.empty()) return Status::Error("cannot create a directory with an empty name");
  std::filesystem::path partial;
  for (const auto& part : target) {
    partial /= part;
    if (partial == partial.root_path()) continue;
    bool last = partial == target;
    if (::mkdir(partial.c_str(), 0700) == 0) {
      if (::chmod(partial.c_str(), static_cast<mode_t>(last ? mode : parent_mode)) != 0) {
        return Status::Error("cannot chmod " + partial.string() + ": " + std::strerror(errno));
      }
    } else if (errno != EEXIST) {
      return Status::Error("cannot create " + partial.string() + ": " + std::strerror(errno));
    } else {
      struct stat sb {};
      if (::stat(partial.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        return Status::Error("cannot create " + partial.string() + ": exists and is not a directory");
      }
    }
  }
  return Status::Ok();
}

int OpenOrCreate(const std::string& path, int flags, unsigned mode) {
  int fd = ::open(path.c_str(), flags | O_CREAT | O_EXCL, 0600);
  if (fd >= 0) {
    if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
      int err = errno;
      ::close(fd);
      errno = err;
      return -1;
    }
    return fd;
  }
  if (errno != EEXIST) return -1;
  return ::open(path.c_str(), flags);
}

Expected<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Expected<std::string>::Error("cannot read " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string err = std::strerror(errno);
      ::close(fd);
      return Expected<std::string>::Error("cannot read " + path + ": " + err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) {
      ::close(fd);
      return Expected<std::string>::Error(path + " is larger than " + std::to_string(limit) + " bytes");
    }
  }
  ::close(fd);
  return out;
}

}  // namespace warden
