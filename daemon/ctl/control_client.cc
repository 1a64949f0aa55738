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

// Says what went wrong: into `why` when given, else on stderr.
void Complain(std::string* why, const std::string& message) {
  if (why) {
    *why = message;
  } else {
    std::fprintf(stderr, "wardenctl: %s\n", message.c_str());
  }
}

struct Connection {
  int fd = -1;
  ~Connection() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::optional<std::string> FindControlSocket(const std::string& socket_path,
                                             const std::string& config_path, bool config_given,
                                             std::string* why) {
  if (!socket_path.empty()) return socket_path;
  std::string error;
  if (auto found = SocketFromConfig(config_path, error)) return found;
  if (!config_given) return ControlConfig{}.socket;  // the default config is not readable to us
  Complain(why, "cannot find the control socket: " + error + " (or use -s SOCKET)");
  return std::nullopt;
}

std::optional<json> Ask(const std::string& socket_path, const json& request, int timeout_ms,
                        int& exit_code, std::string* why) {
  exit_code = kExitUnreachable;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    Complain(why, "socket path too long: " + socket_path);
    return std::nullopt;
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Connection c;
  c.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    Complain(why, "socket: " + std::string(std::strerror(errno)));
    return std::nullopt;
  }
  timeval tv{10, 0};  // connect and send: a daemon that does not accept is unreachable
  ::setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    if (err == ENOENT) {
      Complain(why, "wardend is not running (no control socket " + socket_path + ")");
    } else if (err == ECONNREFUSED) {
      Complain(why, "wardend is not running (nobody answers on " + socket_path + ")");
    } else if (err == EACCES || err == EPERM) {
      Complain(why, "permission denied on " + socket_path +
                        ": only root, wardend's user and members of its [control] group may "
                        "use it");
    } else {
      Complain(why,
               "cannot reach wardend on " + socket_path + ": " + std::string(std::strerror(err)));
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
      Complain(why, "cannot send to wardend on " + socket_path + ": " +
                        std::string(std::strerror(errno)));
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
        Complain(why, "no answer from wardend within " + std::to_string(timeout_ms / 1000) + " s");
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
      Complain(why, "wardend closed the connection without an answer");
      return std::nullopt;
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  json j = json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    Complain(why, "unreadable answer from wardend");
    return std::nullopt;
  }
  exit_code = kExitOk;
  return j;
}

}  // namespace warden::ctl
