#include "actions/haproxy_runtime_api.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <thread>

namespace warden {

namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kAdminForcedMaint = 0x01;  // SRV_ADMF_FMAINT
constexpr unsigned kAdminForcedDrain = 0x08;  // SRV_ADMF_FDRAIN
constexpr size_t kMaxReply = 4 * 1024 * 1024;

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    start = nl + 1;
  }
  return out;
}

std::vector<std::string> Split(std::string_view line, bool on_comma) {
  std::vector<std::string> out;
  if (on_comma) {
    size_t start = 0;
    for (;;) {
      size_t comma = line.find(',', start);
      if (comma == std::string_view::npos) {
        out.emplace_back(line.substr(start));
        break;
      }
      out.emplace_back(line.substr(start, comma - start));
      start = comma + 1;
    }
    return out;
  }
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsBlank(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !IsBlank(line[i])) ++i;
    if (i > start) out.emplace_back(line.substr(start, i - start));
  }
  return out;
}

std::map<std::string, std::string> Row(const std::vector<std::string>& columns,
                                       const std::vector<std::string>& values) {
  std::map<std::string, std::string> row;
  for (size_t c = 0; c < columns.size() && c < values.size(); ++c) {
    if (!columns[c].empty()) row[columns[c]] = values[c];
  }
  return row;
}

Expected<unsigned long long> Unsigned(std::string_view text) {
  if (text.empty() || text.size() > 19) return Status::Error("not a number");
  unsigned long long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Status::Error("not a number");
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v;
}


}  // namespace

Expected<HaproxyTable> ParseServersState(std::string_view reply) {
  using Result = Expected<HaproxyTable>;
  std::vector<std::string_view> lines = Lines(reply);
  size_t i = 0;
  while (i < lines.size() && Trim(lines[i]).empty()) ++i;
  const bool versioned = i < lines.size() && Unsigned(Trim(lines[i])).ok();
  if (!versioned || i + 1 >= lines.size() || lines[i + 1].substr(0, 1) != "#") {
    std::string_view text = Trim(reply);
    if (text.empty()) return Status::Invalid("an empty answer to show servers state");
    // HAProxy's own words for a backend it does not have.
    if (text.find("Can't find backend") != std::string_view::npos) {
      return Status::NotFound(std::string(text));
    }
    return Status::Invalid(std::string(text));
  }
  if (Trim(lines[i]) != "1") {
    return Result::Error("show servers state format version " + std::string(Trim(lines[i])) +
                         " (only version 1 is understood)");
  }
  HaproxyTable table;
  table.columns = Split(lines[i + 1].substr(1), false);
  for (size_t r = i + 2; r < lines.size(); ++r) {
    if (Trim(lines[r]).empty()) continue;
    table.rows.push_back(Row(table.columns, Split(lines[r], false)));
  }
  return table;
}

Expected<HaproxyTable> ParseStatCsv(std::string_view reply) {
  using Result = Expected<HaproxyTable>;
  std::vector<std::string_view> lines = Lines(reply);
  size_t i = 0;
  while (i < lines.size() && Trim(lines[i]).empty()) ++i;
  if (i >= lines.size() || lines[i].substr(0, 2) != "# ") {
    std::string_view text = Trim(reply);
    if (text.empty()) return Result::Error("an empty answer to show stat");
    return Result::Error(std::string(text));
  }
  HaproxyTable table;
  table.columns = Split(lines[i].substr(2), true);
  for (size_t r = i + 1; r < lines.size(); ++r) {
    if (Trim(lines[r]).empty()) continue;
    table.rows.push_back(Row(table.columns, Split(lines[r], true)));
  }
  return table;
}

Status InterpretSetServerReply(std::string_view reply) {
  std::string_view text = Trim(reply);
  if (text.empty()) return Status::Ok();
  return Status::Error(std::string(text));
}

Expected<HaproxyServer> FindHaproxyServer(const HaproxyTable& servers_state,
                                          const std::string& backend, const std::string& server) {
  using Result = Expected<HaproxyServer>;
  auto field = [](const std::map<std::string, std::string>& row, const char* key) {
    auto it = row.find(key);
    return it == row.end() ? std::string() : it->second;
  };
  bool backend_seen = false;
  std::string servers;
  for (const auto& row : servers_state.rows) {
    if (field(row, "be_name") != backend) continue;
    backend_seen = true;
    std::string name = field(row, "srv_name");
    if (name != server) {
      servers += (servers.empty() ? "" : ", ") + name;
      continue;
    }
    HaproxyServer s;
    s.backend = backend;
    s.server = server;
    s.be_id = field(row, "be_id");
    s.srv_id = field(row, "srv_id");
    auto admin = Unsigned(field(row, "srv_admin_state"));
    auto op = Unsigned(field(row, "srv_op_state"));
    if (!admin || !op || s.be_id.empty() || s.srv_id.empty()) {
      return Result::Error("the row of " + backend + "/" + server +
                           " lacks be_id, srv_id, srv_op_state or srv_admin_state");
    }
    s.admin_state = static_cast<unsigned>(*admin);
    s.op_state = static_cast<int>(*op);
    return s;
  }
  if (!backend_seen) {
    // `show servers state BE` of a backend without servers is a header only.
    return Result::Error("no server '" + server + "' in backend '" + backend +
                         "' (it has no servers, or there is no such backend)");
  }
  return Result::Error("no server '" + server + "' in backend '" + backend +
                       "' (its servers: " + servers + ")");
}

Expected<long long> HaproxySessions(const HaproxyTable& stat, const std::string& server) {
  using Result = Expected<long long>;
  for (const auto& row : stat.rows) {
    auto name = row.find("svname");
    if (name == row.end() || name->second != server) continue;
    auto scur = row.find("scur");
    auto n = scur == row.end() ? Expected<unsigned long long>(Status::Error("missing"))
                               : Unsigned(scur->second);
    // 19 digits may pass LLONG_MAX: that is no count (never a negative one).
    if (!n || *n > static_cast<unsigned long long>(std::numeric_limits<long long>::max())) {
      return Result::Error("show stat gives no number of sessions (scur) for " + server);
    }
    return static_cast<long long>(*n);
  }
  return Result::Error("show stat has no row for server " + server);
}

bool HaproxyAdminStateIs(unsigned admin_state, std::string_view state) {
  const bool maint = (admin_state & kAdminForcedMaint) != 0;
  const bool drain = (admin_state & kAdminForcedDrain) != 0;
  if (state == "maint") return maint;
  if (state == "drain") return drain && !maint;
  if (state == "ready") return !drain && !maint;
  return false;
}

std::string DescribeHaproxyAdminState(unsigned admin_state) {
  static const std::pair<unsigned, const char*> kBits[] = {
      {0x01, "maint"},           {0x02, "maint inherited"}, {0x04, "disabled in config"},
      {0x08, "drain"},           {0x10, "drain inherited"}, {0x20, "maint: resolution"},
      {0x40, "maint: hostname"},
  };
  char hex[16];
  std::snprintf(hex, sizeof hex, "%#x", admin_state);
  std::string words;
  for (const auto& [bit, word] : kBits) {
    if (admin_state & bit) words += (words.empty() ? "" : ", ") + std::string(word);
  }
  if (admin_state == 0) return "0 (ready)";
  return std::string(hex) + " (" + (words.empty() ? "unknown bits" : words) + ")";
}

namespace {

// Waits until fd is ready for `events` or the deadline passes. 0, ETIMEDOUT
// or an errno.
int WaitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return ETIMEDOUT;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1'000'000)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n > 0) return 0;
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The failure of a connection to `ep` that ended with `err`: transient
// when nobody listens there (refused, no socket) or it timed out.
Failure ConnectFailure(const HaproxyEndpoint& ep, int err, Duration timeout) {
  if (err == ETIMEDOUT) {
    return Status::Transient(ep.display + " did not accept the connection within " +
                             FormatDuration(timeout));
  }
  std::string what = "cannot connect to " + ep.display + ": " + std::strerror(err);
  if (err == ENOENT || err == ECONNREFUSED) return Status::Transient(std::move(what));
  return Status::WithCode(ErrnoCode(err), std::move(what));
}

// Connects a non-blocking socket to ep. Blocking (name lookup, poll):
// worker threads only. Returns the fd, or why not (ConnectFailure).
Expected<int> ConnectUnix(const HaproxyEndpoint& ep, Clock::time_point deadline,
                          Duration timeout) {
  const std::string& path = ep.path;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ConnectFailure(ep, errno, timeout);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), std::min(path.size(), sizeof sa.sun_path - 1));
  for (;;) {
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return fd;
    if (errno == EINTR) continue;
    // A full listen backlog: no event tells when it frees; retry shortly.
    if (errno == EAGAIN && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    int err = errno == EAGAIN ? ETIMEDOUT : errno;
    ::close(fd);
    return ConnectFailure(ep, err, timeout);
  }
}

Expected<int> ConnectTcp(const HaproxyEndpoint& ep, Clock::time_point deadline,
                         Duration timeout) {
  const std::string& host = ep.host;
  const int port = ep.port;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    return Status::Transient("cannot resolve " + host + ": " +
                             (rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc)));
  }
  int err = EADDRNOTAVAIL;
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int e = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      e = errno;
      if (e == EINPROGRESS) {
        e = WaitFd(fd, POLLOUT, deadline);
        if (e == 0) {
          socklen_t len = sizeof e;
          if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) e = errno;
        }
      }
    }
    if (e == 0) {
      ::freeaddrinfo(list);
      return fd;
    }
    ::close(fd);
    err = e;
    if (e == ETIMEDOUT) break;
  }
  ::freeaddrinfo(list);
  return ConnectFailure(ep, err, timeout);
}

}  // namespace

Expected<std::string> HaproxyExchange(const HaproxyEndpoint& ep, const std::string& command,
                                      Duration timeout) {
  using Out = Expected<std::string>;
  const auto deadline = Clock::now() + timeout;
  const std::string prefix = "haproxy: ";
  auto timed_out = [&](const std::string& doing) -> Out {
    return Status::Transient(prefix + ep.display + " did not " + doing + " within " +
                             FormatDuration(timeout));
  };

  auto raw = ep.path.empty() ? ConnectTcp(ep, deadline, timeout)
                             : ConnectUnix(ep, deadline, timeout);
  if (!raw) return raw.failure().Prefixed(prefix);
  Fd fd(*raw);

  const std::string line = command + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int e = WaitFd(fd.get(), POLLOUT, deadline);
      if (e == ETIMEDOUT) return timed_out("take the command '" + command + "'");
      if (e == 0) continue;
      errno = e;
    }
    return Status::FromErrno(errno, prefix + "cannot send '" + command + "' to " + ep.display);
  }

  std::string answer;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      if (answer.size() > kMaxReply) {
        return Status::Invalid(prefix + "the answer of " + ep.display + " to '" + command +
                               "' is larger than 4MB");
      }
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int e = WaitFd(fd.get(), POLLIN, deadline);
      if (e == ETIMEDOUT) return timed_out("answer '" + command + "'");
      if (e == 0) continue;
      errno = e;
    }
    return Status::FromErrno(errno, prefix + "cannot read the answer of " + ep.display +
                                        " to '" + command + "'");
  }
  if (answer.empty()) {
    return Status::Transient(prefix + ep.display +
                             " closed the connection without answering '" + command + "'");
  }
  return answer;
}

}  // namespace warden
