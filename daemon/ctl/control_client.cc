#include "daemon/ctl/control_client.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "daemon/base/ini.h"
#include "daemon/config/config.h"

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
  std::string buffer;   // read, not yet a whole line
  ~Connection() {
    if (fd >= 0) ::close(fd);
  }
};

// Connects and sends `request` as one line. false with the reason.
bool Open(Connection& c, const std::string& socket_path, const json& request,
          std::string& error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    error = "socket path too long: " + socket_path;
    return false;
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  c.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  timeval tv{10, 0};  // connect and send: a daemon that does not accept is unreachable
  ::setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    if (err == ENOENT) {
      error = "wardend is not running (no control socket " + socket_path + ")";
    } else if (err == ECONNREFUSED) {
      error = "wardend is not running (nobody answers on " + socket_path + ")";
    } else if (err == EACCES || err == EPERM) {
      error = "permission denied on " + socket_path +
              ": only root, wardend's user and members of its [control] group may use it";
    } else {
      error = "cannot reach wardend on " + socket_path + ": " + std::strerror(err);
    }
    return false;
  }
  std::string line = request.dump() + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::send(c.fd, p, left, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = "cannot send to wardend on " + socket_path + ": " + std::strerror(errno);
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

// The next whole line already read, if any.
std::optional<std::string> TakeLine(Connection& c) {
  size_t nl = c.buffer.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  std::string line = c.buffer.substr(0, nl);
  c.buffer.erase(0, nl + 1);
  return line;
}

// Reads what is there into the buffer. false at EOF or on an error.
bool ReadSome(Connection& c) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    c.buffer.append(buf, static_cast<size_t>(n));
    return true;
  }
}

volatile sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

}  // namespace

std::optional<std::string> FindControlSocket(const std::string& socket_path,
                                             const std::string& config_path, bool config_given,
                                             std::string& error) {
  if (!socket_path.empty()) return socket_path;
  std::string why;
  if (auto found = SocketFromConfig(config_path, why)) return found;
  if (!config_given) return ControlConfig{}.socket;  // the default config is not readable to us
  error = "cannot find the control socket: " + why + " (or use -s SOCKET)";
  return std::nullopt;
}

std::optional<json> Ask(const std::string& socket_path, const json& request, int timeout_ms,
                        std::string& error) {
  Connection c;
  if (!Open(c, socket_path, request, error)) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::optional<std::string> reply;
  while (!(reply = TakeLine(c))) {
    int wait = -1;
    if (timeout_ms > 0) {
      auto left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         deadline - std::chrono::steady_clock::now())
                         .count();
      if (left_ms <= 0) {
        error = "no answer from wardend within " + std::to_string(timeout_ms / 1000) + " s";
        return std::nullopt;
      }
      wait = static_cast<int>(left_ms);
    }
    pollfd pfd{c.fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, wait);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;  // the deadline check above reports it
    if (!ReadSome(c)) {
      error = "wardend closed the connection without an answer";
      return std::nullopt;
    }
  }
  json j = json::parse(*reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = "unreadable answer from wardend";
    return std::nullopt;
  }
  return j;
}

bool FollowLines(const std::string& socket_path, const json& request,
                 const std::function<bool(const json&)>& on_line, std::string& error) {
  // SIGINT and SIGTERM end the follow: their handler only sets a flag, and
  // they are blocked from the look at the flag until ppoll waits, so one
  // that comes in between is not missed. They are not blocked while a
  // line is printed: a stdout nobody reads cannot make Ctrl-C wait.
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  sigset_t block, outside, waiting;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  ::sigprocmask(SIG_SETMASK, nullptr, &outside);
  waiting = outside;
  sigdelset(&waiting, SIGINT);
  sigdelset(&waiting, SIGTERM);

  Connection c;
  if (!Open(c, socket_path, request, error)) return false;
  bool first = true;
  for (;;) {
    while (auto line = TakeLine(c)) {
      if (g_interrupted) return true;
      json j = json::parse(*line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        error = "unreadable line from wardend";
        return false;
      }
      if (!on_line(j)) return false;
      first = false;
    }
    ::sigprocmask(SIG_BLOCK, &block, nullptr);
    if (g_interrupted) return true;
    pollfd pfd{c.fd, POLLIN, 0};
    int r = ::ppoll(&pfd, 1, nullptr, &waiting);
    const int poll_errno = errno;
    ::sigprocmask(SIG_SETMASK, &outside, nullptr);
    if (r < 0 && poll_errno == EINTR) continue;   // the flag is looked at above
    if (r < 0) {
      error = std::string("poll: ") + std::strerror(poll_errno);
      return false;
    }
    if (!ReadSome(c)) {
      error = first ? "wardend closed the connection without an answer"
                    : "wardend closed the connection";
      return false;
    }
  }
}

}  // namespace warden::ctl
