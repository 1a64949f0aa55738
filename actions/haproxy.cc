#include "actions/haproxy.h"

#include <ev.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include "daemon/io/worker_pool.h"

namespace warden {

namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kAdminForcedMaint = 0x01;  // SRV_ADMF_FMAINT
constexpr unsigned kAdminForcedDrain = 0x08;  // SRV_ADMF_FDRAIN
constexpr Duration kPollInterval{500};
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

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

}  // namespace

Expected<HaproxyTable> ParseServersState(std::string_view reply) {
  using Result = Expected<HaproxyTable>;
  std::vector<std::string_view> lines = Lines(reply);
  size_t i = 0;
  while (i < lines.size() && Trim(lines[i]).empty()) ++i;
  const bool versioned = i < lines.size() && Unsigned(Trim(lines[i])).ok();
  if (!versioned || i + 1 >= lines.size() || lines[i + 1].substr(0, 1) != "#") {
    std::string_view text = Trim(reply);
    if (text.empty()) return Result::Error("an empty answer to show servers state");
    return Result::Error(std::string(text));
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

// Where the runtime API listens: a unix socket path, or host and port.
struct Endpoint {
  std::string path;  // unix socket when not empty
  std::string host;
  int port = 0;
  std::string display;  // the path, or HOST:PORT as configured
};

struct ExchangeResult {
  Expected<std::string> reply = Status::Error("not run");
  bool peer_ok = true;  // false: refused or timed out (the worker lane's health)
};

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

// Connects a non-blocking socket to ep. Blocking (name lookup, poll):
// worker threads only. Returns the fd or errno (>0) in *err.
int ConnectUnix(const std::string& path, Clock::time_point deadline, int* err) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
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
    *err = errno == EAGAIN ? ETIMEDOUT : errno;
    ::close(fd);
    return -1;
  }
}

int ConnectTcp(const std::string& host, int port, Clock::time_point deadline, int* err,
               std::string* lookup_error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    *lookup_error = "cannot resolve " + host + ": " +
                    (rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc));
    return -1;
  }
  *err = EADDRNOTAVAIL;
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      *err = errno;
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
    *err = e;
    if (e == ETIMEDOUT) break;
  }
  ::freeaddrinfo(list);
  return -1;
}

// One runtime-API exchange: connect, send `command` and a newline, read the
// answer until HAProxy closes the connection (it does after one command on
// a non-interactive connection). Blocking: worker threads only.
ExchangeResult Exchange(const Endpoint& ep, const std::string& command, Duration timeout) {
  ExchangeResult out;
  const auto deadline = Clock::now() + timeout;
  const std::string prefix = "haproxy: ";
  auto timed_out = [&](const std::string& doing) {
    out.peer_ok = false;
    out.reply = Status::Error(prefix + ep.display + " did not " + doing + " within " +
                              FormatDuration(timeout));
    return out;
  };

  int err = 0;
  std::string lookup_error;
  int raw = ep.path.empty() ? ConnectTcp(ep.host, ep.port, deadline, &err, &lookup_error)
                            : ConnectUnix(ep.path, deadline, &err);
  if (raw < 0) {
    if (!lookup_error.empty()) {
      out.peer_ok = false;
      out.reply = Status::Error(prefix + lookup_error);
      return out;
    }
    if (err == ETIMEDOUT) return timed_out("accept the connection");
    out.peer_ok = err != ECONNREFUSED && err != ENOENT;
    out.reply =
        Status::Error(prefix + "cannot connect to " + ep.display + ": " + std::strerror(err));
    return out;
  }
  Fd fd(raw);

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
    out.reply = Status::Error(prefix + "cannot send '" + command + "' to " + ep.display + ": " +
                              std::strerror(errno));
    return out;
  }

  std::string answer;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      if (answer.size() > kMaxReply) {
        out.reply = Status::Error(prefix + "the answer of " + ep.display + " to '" + command +
                                  "' is larger than 4MB");
        return out;
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
    out.reply = Status::Error(prefix + "cannot read the answer of " + ep.display + " to '" +
                              command + "': " + std::strerror(errno));
    return out;
  }
  if (answer.empty()) {
    out.reply = Status::Error(prefix + ep.display + " closed the connection without answering '" +
                              command + "'");
    return out;
  }
  out.reply = std::move(answer);
  return out;
}

struct Settings {
  Endpoint endpoint;
  std::string backend;
  std::string server;
  std::string state;
  std::optional<Duration> drain_wait;
};

// One run of the action. Lives on the loop thread; kept alive by the
// callbacks it hands out (worker completions, and self_ while its timer is
// pending). Calls done exactly once.
class HaproxyRun : public std::enable_shared_from_this<HaproxyRun> {
 public:
  HaproxyRun(Runtime& rt, const Settings& s, Duration timeout, Action::Done done)
      : rt_(rt), s_(s), timeout_(timeout), done_(std::move(done)) {
    extra_["backend"] = s_.backend;
    extra_["server"] = s_.server;
    extra_["state"] = s_.state;
    ev_timer_init(&timer_, &HaproxyRun::OnTimer, 0., 0.);
    timer_.data = this;
  }

  void Start() {
    Ask("show servers state " + s_.backend,
        [](HaproxyRun& run, std::string reply) { run.OnStateBefore(std::move(reply)); });
  }

 private:
  using Next = void (*)(HaproxyRun&, std::string reply);

  std::string Target() const { return s_.backend + "/" + s_.server; }

  // Sends `command` on a worker; `next` gets HAProxy's answer on the loop.
  // A transport failure (or no free worker) fails the run.
  void Ask(std::string command, Next next) {
    auto result = std::make_shared<ExchangeResult>();
    rt_.workers->Submit(
        "haproxy:" + s_.endpoint.display, WorkerPool::Clock::now() + timeout_,
        [result, ep = s_.endpoint, command, timeout = timeout_] {
          *result = Exchange(ep, command, timeout);
          return result->peer_ok;
        },
        [self = shared_from_this(), result, command, next](bool ran) {
          if (!ran) {
            self->Fail("haproxy: no worker was free within " + FormatDuration(self->timeout_) +
                       " to send '" + command + "' to " + self->s_.endpoint.display);
          } else if (!result->reply.ok()) {
            self->Fail(result->reply.error());
          } else {
            next(*self, std::move(result->reply.value()));
          }
        });
  }

  // Finds our server in a `show servers state` answer, or fails the run.
  std::optional<HaproxyServer> Locate(const std::string& reply) {
    auto table = ParseServersState(reply);
    if (!table) {
      if (table.error().find("Can't find backend") != std::string::npos) {
        Fail("haproxy: no backend '" + s_.backend + "' (for server " + Target() + ") on " +
             s_.endpoint.display + ": HAProxy says " + Quoted(table.error()));
      } else {
        Fail("haproxy: 'show servers state " + s_.backend + "' on " + s_.endpoint.display +
             " failed: " + table.error());
      }
      return std::nullopt;
    }
    auto server = FindHaproxyServer(*table, s_.backend, s_.server);
    if (!server) {
      Fail("haproxy: " + server.error() + " on " + s_.endpoint.display);
      return std::nullopt;
    }
    return *server;
  }

  void OnStateBefore(std::string reply) {
    auto server = Locate(reply);
    if (!server) return;
    extra_["admin_state_before"] = server->admin_state;
    Ask("set server " + Target() + " state " + s_.state,
        [](HaproxyRun& run, std::string answer) { run.OnSet(std::move(answer)); });
  }

  void OnSet(std::string reply) {
    if (Status st = InterpretSetServerReply(reply); !st.ok()) {
      Fail("haproxy: HAProxy refused 'set server " + Target() + " state " + s_.state + "' on " +
           s_.endpoint.display + ": " + st.message());
      return;
    }
    Ask("show servers state " + s_.backend,
        [](HaproxyRun& run, std::string answer) { run.OnStateAfter(std::move(answer)); });
  }

  void OnStateAfter(std::string reply) {
    auto server = Locate(reply);
    if (!server) return;
    extra_["admin_state"] = server->admin_state;
    if (!HaproxyAdminStateIs(server->admin_state, s_.state)) {
      Fail("haproxy: " + Target() + " is not in " + s_.state +
           " after 'set server': " + s_.endpoint.display + " reports srv_admin_state " +
           DescribeHaproxyAdminState(server->admin_state));
      return;
    }
    if (!s_.drain_wait) {
      Succeed();
      return;
    }
    stat_command_ = "show stat " + server->be_id + " 4 " + server->srv_id;
    wait_start_ = Clock::now();
    Poll();
  }

  void Poll() {
    Ask(stat_command_, [](HaproxyRun& run, std::string reply) { run.OnStat(std::move(reply)); });
  }

  void OnStat(std::string reply) {
    auto table = ParseStatCsv(reply);
    if (!table) {
      Fail("haproxy: '" + stat_command_ + "' on " + s_.endpoint.display +
           " failed: " + table.error());
      return;
    }
    auto sessions = HaproxySessions(*table, s_.server);
    if (!sessions) {
      Fail("haproxy: " + sessions.error() + " (" + Target() + ") on " + s_.endpoint.display);
      return;
    }
    const auto now = Clock::now();
    const auto waited = std::chrono::duration_cast<Duration>(now - wait_start_);
    if (!extra_.contains("sessions")) extra_["sessions"] = *sessions;
    extra_["sessions_left"] = *sessions;
    extra_["waited_ms"] = waited.count();
    if (*sessions == 0) {
      Succeed();
      return;
    }
    const auto left = *s_.drain_wait - waited;
    if (left.count() <= 0) {
      Fail("haproxy: " + Target() + " still has " + std::to_string(*sessions) + " session" +
           (*sessions == 1 ? "" : "s") + " after drain_wait " + FormatDuration(*s_.drain_wait) +
           " (it stays in " + s_.state + ")");
      return;
    }
    const auto pause = std::min(kPollInterval, left);
    ev_timer_set(&timer_, static_cast<double>(pause.count()) / 1000.0, 0.);
    ev_timer_start(rt_.loop, &timer_);
    self_ = shared_from_this();
  }

  static void OnTimer(struct ev_loop*, ev_timer* w, int) {
    auto* run = static_cast<HaproxyRun*>(w->data);
    std::shared_ptr<HaproxyRun> keep = std::move(run->self_);
    run->Poll();
  }

  void Succeed() {
    ActionOutcome out;
    out.ok = true;
    Finish(std::move(out));
  }

  void Fail(std::string error) {
    ActionOutcome out;
    out.error = std::move(error);
    Finish(std::move(out));
  }

  void Finish(ActionOutcome out) {
    if (!done_) return;
    out.extra = extra_;
    Action::Done done = std::move(done_);
    done_ = nullptr;
    done(std::move(out));
  }

  Runtime& rt_;
  const Settings s_;
  const Duration timeout_;
  Action::Done done_;
  nlohmann::json extra_ = nlohmann::json::object();
  std::string stat_command_;
  Clock::time_point wait_start_;
  ev_timer timer_;
  std::shared_ptr<HaproxyRun> self_;  // set while timer_ is pending
};

class HaproxyAction final : public Action {
 public:
  explicit HaproxyAction(Settings s) : s_(std::move(s)) {}

  void Run(Runtime& rt, const ActionCommon& common, const Trigger& /*trigger*/,
           Done done) override {
    if (!rt.workers || !rt.loop) {
      ActionOutcome out;
      out.error = "internal error: no worker pool or loop in this runtime";
      done(std::move(out));
      return;
    }
    std::make_shared<HaproxyRun>(rt, s_, common.timeout, std::move(done))->Start();
  }

 private:
  const Settings s_;
};

constexpr const char* kNameRule = "letters, digits and _ - . :";

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("_-.:").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// "HOST:PORT" or "[IPv6]:PORT".
Expected<std::pair<std::string, int>> ParseAddress(std::string_view text) {
  using Result = Expected<std::pair<std::string, int>>;
  const std::string form = "'" + std::string(text) + "' is not HOST:PORT (an IPv6 address in [])";
  std::string host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Result::Error(form);
    }
    host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
      return Result::Error(form);
    }
    host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (host.empty()) return Result::Error(form);
  for (char c : host) {
    if (std::isspace(static_cast<unsigned char>(c))) return Result::Error(form);
  }
  auto p = ParseInteger(port, 1, 65535);
  if (!p) return Result::Error("'" + std::string(text) + "': port " + p.error());
  return std::make_pair(host, static_cast<int>(*p));
}

constexpr const char* kStates[] = {"ready", "drain", "maint"};
constexpr OptionSpec kOptions[] = {
    opt::Text("socket", "HAProxy's stats socket, an absolute path (socket or address)"),
    opt::Text("address", "a stats socket on HOST:PORT (socket or address)"),
    opt::Text("backend", "the HAProxy backend, e.g. mysql").Required(),
    opt::Text("server", "the server in that backend, e.g. db1").Required(),
    opt::Choice("state", kStates, "ready, drain or maint").Required(),
    opt::Duration("drain_wait",
                  "state = drain or maint: wait this long at most for the server's sessions to "
                  "end"),
};

constexpr const char* kExample = R"([action drain]
type       = haproxy
socket     = /run/haproxy/admin.sock
backend    = mysql
server     = db17
state      = drain
drain_wait = 2m
)";

std::unique_ptr<Action> MakeHaproxy(OptionReader& opts, const ActionCommon& /*common*/) {
  const size_t errors_before = opts.diag().errors().size();
  Settings s;

  const bool has_socket = opts.Has("socket");
  const bool has_address = opts.Has("address");
  if (has_socket && has_address) {
    opts.Find("socket");
    opts.Error(*opts.Find("address"), "set either socket or address, not both");
  } else if (!has_socket && !has_address) {
    opts.Find("socket");
    opts.Find("address");
    opts.Error(opts.section().title() +
               " needs 'socket' (HAProxy's stats socket, e.g. /run/haproxy/admin.sock) or "
               "'address' (a stats socket on HOST:PORT)");
  } else if (has_socket) {
    if (auto path = opts.Text("socket")) {
      const ConfigEntry& e = *opts.Find("socket");
      if (path->front() != '/') {
        opts.Error(e, "socket: '" + *path + "' is not an absolute path");
      } else if (path->size() >= sizeof(sockaddr_un::sun_path)) {
        opts.Error(e, "socket: '" + *path + "' is longer than " +
                          std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                          " bytes, the limit of a unix socket path");
      } else {
        s.endpoint.path = *path;
        s.endpoint.display = *path;
      }
    }
  } else if (auto address = opts.Text("address")) {
    if (auto hp = ParseAddress(*address)) {
      s.endpoint.host = hp->first;
      s.endpoint.port = hp->second;
      s.endpoint.display = *address;
    } else {
      opts.Error(*opts.Find("address"), "address: " + hp.error());
    }
  }

  auto name = [&](const char* key) {
    std::string v = opts.Text(key).value_or("");
    if (!v.empty() && !ValidName(v)) {
      opts.Error(*opts.Find(key),
                 std::string(key) + ": '" + v + "' is not a HAProxy name (" + kNameRule + ")");
      return std::string();
    }
    return v;
  };
  s.backend = name("backend");
  s.server = name("server");
  s.state = opts.GetChoice("state").value_or("");

  if (opts.Has("drain_wait")) {
    s.drain_wait = opts.GetDuration("drain_wait");
    const ConfigEntry& e = *opts.Find("drain_wait");
    if (s.drain_wait && s.drain_wait->count() <= 0) {
      opts.Error(e, "drain_wait: must be longer than 0");
    } else if (s.drain_wait && s.state == "ready") {
      opts.Error(e,
                 "drain_wait: only with state = drain or maint (a server made ready has no "
                 "sessions to wait for)");
    }
  }

  if (opts.diag().errors().size() != errors_before) return nullptr;
  return std::make_unique<HaproxyAction>(std::move(s));
}

}  // namespace

const ActionType kHaproxyActionType = {
    "haproxy",
    "sets an HAProxy server to ready, drain or maint over the runtime API (and can wait for "
    "its sessions to end)",
    /*guarded=*/true, /*uses_mysql=*/false, kOptions, kExample, &MakeHaproxy};

}  // namespace warden
