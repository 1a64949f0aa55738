#include "actions/haproxy.h"

#include <ev.h>
#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "actions/haproxy_runtime_api.h"
#include "daemon/io/worker_pool.h"

namespace warden {

namespace {

using Clock = std::chrono::steady_clock;

constexpr Duration kPollInterval{500};

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

struct Settings {
  HaproxyEndpoint endpoint;
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
    auto result = std::make_shared<Expected<std::string>>(Status::Error("not run"));
    rt_.workers->Submit(
        "haproxy:" + s_.endpoint.display, WorkerPool::Clock::now() + timeout_,
        [result, ep = s_.endpoint, command, timeout = timeout_] {
          *result = HaproxyExchange(ep, command, timeout);
          return result->code() != StatusCode::kTransient;
        },
        [self = shared_from_this(), result, command, next](bool ran) {
          if (!ran) {
            self->Fail("haproxy: no worker was free within " + FormatDuration(self->timeout_) +
                       " to send '" + command + "' to " + self->s_.endpoint.display);
          } else if (!result->ok()) {
            self->Fail(result->error());
          } else {
            next(*self, std::move(result->value()));
          }
        });
  }

  // Finds our server in a `show servers state` answer, or fails the run.
  std::optional<HaproxyServer> Locate(const std::string& reply) {
    auto table = ParseServersState(reply);
    if (!table) {
      if (table.code() == StatusCode::kNotFound) {
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
