#include "daemon/ctl/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "daemon/base/ini.h"
#include "daemon/config/config.h"
#include "daemon/ctl/exit_codes.h"

namespace warden::ctl {
namespace {

using nlohmann::json;

// The [control] socket named by the config (read without the daemon's
// strictness: only that key matters here, and a group member may not be
// able to read secrets). nullopt with `error` when the file cannot be read.
std::optional<std::string> SocketFromConfig(const std::string& path, std::string& error) {
  Diagnostics diag;
  IniOptions options;
  options.check_ownership = false;
  auto sections = ReadIniFiles(path, options, diag);
  if (sections.empty() && !diag.ok()) {
    error = diag.errors().front();
    return std::nullopt;
  }
  std::string socket = ControlConfig{}.socket;
  for (const auto& s : sections) {
    if (s.kind != "control" || !s.name.empty()) continue;
    for (const auto& e : s.entries) {
      if (e.key == "socket") socket = e.value;
    }
  }
  return socket;
}

struct Connection {
  int fd = -1;
  ~Connection() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::optional<std::string> FindControlSocket(const std::string& socket_path,
                                             const std::string& config_path, bool config_given) {
  if (!socket_path.empty()) return socket_path;
  std::string error;
  if (auto found = SocketFromConfig(config_path, error)) return found;
  if (!config_given) return ControlConfig{}.socket;  // the default config is not readable to us
  std::fprintf(stderr, "wardenctl: cannot find the control socket: %s (or use -s SOCKET)\n",
               error.c_str());
  return std::nullopt;
}

std::optional<json> Ask(const std::string& socket_path, const json& request, int timeout_ms,
                        int& exit_code) {
  exit_code = kExitUnreachable;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    std::fprintf(stderr, "wardenctl: socket path too long: %s\n", socket_path.c_str());
    return std::nullopt;
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Connection c;
  c.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    std::fprintf(stderr, "wardenctl: socket: %s\n", std::strerror(errno));
    return std::nullopt;
  }
  timeval tv{10, 0};  // connect and send: a daemon that does not accept is unreachable
  ::setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    if (err == ENOENT) {
      std::fprintf(stderr, "wardenctl: wardend is not running (no control socket %s)\n",
                   socket_path.c_str());
    } else if (err == ECONNREFUSED) {
      std::fprintf(stderr, "wardenctl: wardend is not running (nobody answers on %s)\n",
                   socket_path.c_str());
    } else if (err == EACCES || err == EPERM) {
      std::fprintf(stderr,
                   "wardenctl: permission denied on %s: only root, wardend's user and members "
                   "of its [control] group may use it\n",
                   socket_path.c_str());
    } else {
      std::fprintf(stderr, "wardenctl: cannot reach wardend on %s: %s\n", socket_path.c_str(),
                   std::strerror(err));
    }
    return std::nullopt;
  }
  std::string line = request.dump() + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::send(c.fd, p, left, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "wardenctl: cannot send to wardend on %s: %s\n", socket_path.c_str(),
                   std::strerror(errno));
      return std::nullopt;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  std::string reply;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    size_t nl = reply.find('\n');
    if (nl != std::string::npos) {
      reply.resize(nl);
      break;
    }
    int wait = -1;
    if (timeout_ms > 0) {
      auto left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         deadline - std::chrono::steady_clock::now())
                         .count();
      if (left_ms <= 0) {
        std::fprintf(stderr, "wardenctl: no answer from wardend within %d s\n",
                     timeout_ms / 1000);
        return std::nullopt;
      }
      wait = static_cast<int>(left_ms);
    }
    pollfd pfd{c.fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, wait);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;  // the deadline check above reports it
    char buf[65536];
    ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "wardenctl: wardend closed the connection without an answer\n");
      return std::nullopt;
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  json j = json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::fprintf(stderr, "wardenctl: unreadable answer from wardend\n");
    return std::nullopt;
  }
  exit_code = kExitOk;
  return j;
}

}  // namespace warden::ctl
