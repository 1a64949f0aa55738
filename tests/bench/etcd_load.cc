// etcd load: N simulated hosts polling the fleet mutex with wardend's own
// MutexClient (backend = etcd: one linearizable txn reading <prefix>/armed
// and <prefix>/mutex per poll, and with --watch 1, wardend's default, one
// watch on <prefix>/ each: its own connection, the same code path as the
// daemon), against a running etcd.
// Driven by tests/bench/etcd_load.py, which starts etcd (harness.Etcd) and
// arms the mutex (<prefix>/armed must exist).
//
//   build-dir/etcd_load --endpoint http://127.0.0.1:P --etcd-pid PID
//                       [--pollers 1000] [--poll-ms 15000] [--prefix /warden]
//                       [--baseline-ms 5000] [--seed N] [--watch 1]
//                       [--per-process N]
//
// Descriptors: a MutexClient holds 8 (its poll and watch connections, and
// the wake-up socketpair of each of its three curl multi handles: its own,
// its EtcdClient's and its EtcdWatch's). One process holds at most
// (RLIMIT_NOFILE hard limit - 256) / 8 of them, or --per-process; the
// pollers are split over that many child processes (each one libev loop,
// the daemon's code), driven by this one over pipes, which also puts the
// halt and reads etcd's figures. Every process raises its soft limit to
// the hard one. (With a hard limit of 20,000, 2,500 clients in one process
// ran out of descriptors: socket() failed with EMFILE, which curl reports
// as "Couldn't connect to server".)
//
// 1. Baseline: etcd's CPU for --baseline-ms with no client at all.
// 2. Start: each poller's MutexClient::Start() at a uniformly random moment
//    of the first poll interval (hosts whose daemons started at random
//    times; the mutex poll itself is a fixed period from Start()).
// 3. Steady state: once every poller has had a clear answer (and with
//    --watch 1 has its watch up), one poll
//    interval is measured: requests etcd handled (its /metrics,
//    grpc_server_handled_total of etcdserverpb.KV, all methods), raft
//    proposals committed, etcd's CPU (/proc/PID/stat utime + stime), the
//    child processes' CPU (the pollers' client side), etcd's RSS,
//    descriptors and established client connections (/proc/net/tcp*).
// 4. Halt: <prefix>/mutex is put ("bench halt"); for each poller, the time
//    from just before the put was sent to its first held answer carrying
//    that reason (CLOCK_MONOTONIC, the same in every process). Waits at
//    most 2 poll intervals + 10 s; the halt is deleted at the end.
//
// Prints one line of key=value (times in ms, CPU in % of one core and µs):
//   pollers= procs= poll_ms= steady_ms= requests= (etcd's count) sent= (the
//   pollers') requests_per_poller_poll=
//   proposals= etcd_cpu_pct= etcd_baseline_cpu_pct= etcd_cpu_us_per_req=
//   client_cpu_us_per_req= put_ms= saw= halt_min_ms= halt_median_ms=
//   halt_p99_ms= halt_max_ms= watch= watches_up= requests_per_poller_minute=
//   etcd_rss_base_mb= etcd_rss_mb= etcd_fds_base= etcd_fds= etcd_conns_base=
//   etcd_conns= watch_streams=
// Exit status 1 when a poller never saw clear, or missed the halt.
#include <ev.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "daemon/config/config.h"
#include "daemon/io/etcd_client.h"
#include "daemon/io/http_client.h"
#include "daemon/io/mutex_client.h"

using namespace warden;

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

const char* Arg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return def;
}

// utime + stime of a process, in ms; nullopt when it cannot be read.
std::optional<double> ProcessCpuMs(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(paren + 1));
  std::vector<std::string> f;
  for (std::string s; fields >> s;) f.push_back(s);
  // After the command: state(3) ... utime(14) stime(15).
  if (f.size() < 13) return std::nullopt;
  double ticks = std::atof(f[11].c_str()) + std::atof(f[12].c_str());
  return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// VmRSS of a process in MB; 0 when it cannot be read.
double ProcessRssMb(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

// Open descriptors of a process (sockets included).
long ProcessFds(long pid) {
  std::error_code ec;
  long n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// From etcd's /metrics: KV requests handled (every method and code) and raft
// proposals committed.
struct Counters {
  double kv = 0;
  double proposals = 0;
  double watch_streams = 0;  // Watch streams started
};

std::optional<Counters> ParseMetrics(const std::string& text) {
  Counters c;
  bool seen = false;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    double value = std::atof(line.c_str() + space + 1);
    if (line.rfind("grpc_server_handled_total{", 0) == 0 &&
        line.find("grpc_service=\"etcdserverpb.KV\"") != std::string::npos) {
      c.kv += value;
      seen = true;
    } else if (line.rfind("grpc_server_started_total{", 0) == 0 &&
               line.find("grpc_service=\"etcdserverpb.Watch\"") != std::string::npos) {
      c.watch_streams += value;
    } else if (line.rfind("etcd_server_proposals_committed_total ", 0) == 0) {
      c.proposals = value;
    }
  }
  if (!seen) return std::nullopt;
  return c;
}

// Established connections whose local port is `port` (etcd's side of its
// client connections), from /proc/net/tcp and tcp6.
long EstablishedTo(int port) {
  long n = 0;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, state;
      if (!(f >> sl >> local >> remote >> state)) continue;
      auto colon = local.rfind(':');
      if (colon == std::string::npos || state != "01") continue;
      if (std::strtol(local.c_str() + colon + 1, nullptr, 16) == port) ++n;
    }
  }
  return n;
}

// The soft RLIMIT_NOFILE raised to the hard one; returns the limit.
rlim_t RaiseFdLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur;
}

constexpr long kFdsPerPoller = 8;
constexpr long kFdsSpare = 256;

std::int64_t NowNs(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

bool WriteAll(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// One line at a time from a pipe. Poll(): what is there now, without
// blocking; Line(ms): waits up to ms for a whole line.
struct LineReader {
  int fd = -1;
  std::string buf;
  bool eof = false;

  bool Fill(int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r <= 0) return false;
    char chunk[65536];
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) return true;
      eof = true;
      return false;
    }
    buf.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  std::optional<std::string> Take() {
    auto nl = buf.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string line = buf.substr(0, nl);
    buf.erase(0, nl + 1);
    return line;
  }
  std::optional<std::string> Poll() {
    while (!eof && Fill(0)) {
    }
    return Take();
  }
  std::optional<std::string> Line(int timeout_ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      if (auto l = Take()) return l;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (eof || left.count() <= 0) return std::nullopt;
      Fill(static_cast<int>(left.count()));
    }
  }
};

// ---------------------------------------------------------------------------
// A child: its share of the pollers on its own loop, driven by commands on
// stdin-like `cmd` (one word a line) and answering on `rep`:
//   start   -> starts every poller at its offset; later "ready" once each
//              has had a clear answer (with its watch up), or "fail TEXT"
//   mark    -> "mark SENT WATCHES_UP"
//   (after the halt) "saw" once every poller has had a held answer for it
//   report  -> "report T1 T2 ..." (ns, CLOCK_MONOTONIC, of each first held
//              answer for the halt) and exits
// EOF on cmd ends it too.

struct Poller {
  std::unique_ptr<MutexClient> client;
  ev_timer start{};
  std::optional<Clock::time_point> clear_at;  // first clear answer
  std::optional<Clock::time_point> held_at;   // first held answer for the halt
  std::string last_reason;
  std::string name;  // bench-<index>, its host_id
};

const char kHaltReason[] = "bench halt";

struct Child {
  struct ev_loop* loop = nullptr;
  int rep = -1;
  bool watch = true;
  double poll_s = 15;
  std::vector<std::unique_ptr<Poller>> pollers;
  std::size_t saw = 0;
  bool ready_sent = false;
  Clock::time_point start_deadline;
  ev_io cmd_io{};
  ev_timer check{};
  std::string cmd_buf;

  void Send(const std::string& line) {
    if (!WriteAll(rep, line + "\n")) ev_break(loop, EVBREAK_ALL);
  }
  bool Up(const Poller& p) const { return p.clear_at && (!watch || p.client->watch_state().up); }
  void Check() {
    if (ready_sent) return;
    std::size_t up = 0;
    for (const auto& p : pollers) up += Up(*p) ? 1 : 0;
    if (up == pollers.size()) {
      ready_sent = true;
      Send("ready");
      return;
    }
    if (Clock::now() < start_deadline) return;
    for (const auto& p : pollers) {
      if (Up(*p)) continue;
      std::string why = p->last_reason + " / " + p->client->watch_state().last_error;
      std::replace(why.begin(), why.end(), '\n', ' ');
      Send("fail " + p->name + " never saw clear with its watch up: " + why);
      ready_sent = true;
      return;
    }
  }
  void Command(const std::string& cmd) {
    if (cmd == "start") {
      for (auto& p : pollers) ev_timer_start(loop, &p->start);
      start_deadline = Clock::now() + std::chrono::milliseconds(
                                          static_cast<long>(2000 * poll_s + 10'000));
      ev_timer_again(loop, &check);
    } else if (cmd == "mark") {
      std::uint64_t sent = 0;
      std::size_t up = 0;
      for (const auto& p : pollers) {
        sent += p->client->requests();
        up += p->client->watch_state().up ? 1 : 0;
      }
      Send("mark " + std::to_string(sent) + " " + std::to_string(up));
    } else if (cmd == "report") {
      std::string line = "report";
      for (const auto& p : pollers)
        if (p->held_at) line += " " + std::to_string(NowNs(*p->held_at));
      Send(line);
      ev_break(loop, EVBREAK_ALL);
    }
  }
};

void OnChildCheck(struct ev_loop*, ev_timer* w, int) { static_cast<Child*>(w->data)->Check(); }

void OnChildCmd(struct ev_loop* loop, ev_io* w, int) {
  auto* c = static_cast<Child*>(w->data);
  char chunk[4096];
  ssize_t n = ::read(w->fd, chunk, sizeof chunk);
  if (n < 0 && errno == EINTR) return;
  if (n <= 0) {
    ev_break(loop, EVBREAK_ALL);
    return;
  }
  c->cmd_buf.append(chunk, static_cast<std::size_t>(n));
  for (auto nl = c->cmd_buf.find('\n'); nl != std::string::npos; nl = c->cmd_buf.find('\n')) {
    std::string cmd = c->cmd_buf.substr(0, nl);
    c->cmd_buf.erase(0, nl + 1);
    c->Command(cmd);
  }
}

void OnPollerStart(struct ev_loop*, ev_timer* w, int) {
  static_cast<Poller*>(w->data)->client->Start();
}

int RunChild(const MutexConfig& mc, long first, const std::vector<double>& offsets, double poll_s,
             int cmd, int rep) {
  RaiseFdLimit();
  spdlog::set_level(spdlog::level::err);
  Child c;
  c.loop = EV_DEFAULT;
  c.rep = rep;
  c.watch = mc.watch;
  c.poll_s = poll_s;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    auto p = std::make_unique<Poller>();
    p->name = "bench-" + std::to_string(first + static_cast<long>(i));
    p->client = std::make_unique<MutexClient>(c.loop, mc, p->name);
    Poller* raw = p.get();
    p->client->SetOnChange([raw, &c](const MutexAnswer& a) {
      raw->last_reason = a.reason;
      if (!a.held && !raw->clear_at) raw->clear_at = a.at;
      if (a.held && !raw->held_at && a.reason.find(kHaltReason) != std::string::npos) {
        raw->held_at = a.at;
        if (++c.saw == c.pollers.size()) c.Send("saw");
      }
    });
    ev_timer_init(&p->start, OnPollerStart, offsets[i], 0.);
    p->start.data = raw;
    c.pollers.push_back(std::move(p));
  }
  ev_io_init(&c.cmd_io, OnChildCmd, cmd, EV_READ);
  c.cmd_io.data = &c;
  ev_io_start(c.loop, &c.cmd_io);
  ev_init(&c.check, OnChildCheck);
  c.check.repeat = 0.5;
  c.check.data = &c;
  ev_run(c.loop, 0);
  ev_timer_stop(c.loop, &c.check);
  ev_io_stop(c.loop, &c.cmd_io);
  for (auto& p : c.pollers) {
    ev_timer_stop(c.loop, &p->start);
    p->client->Stop();
  }
  return 0;
}

// ---------------------------------------------------------------------------
// The driver: etcd's figures, the halt, and the children's answers.

struct Proc {
  pid_t pid = -1;
  int cmd = -1;
  LineReader rep;
  bool ready = false, saw = false;
};

struct Bench {
  struct ev_loop* loop = nullptr;
  std::string endpoint;
  int port = 0;
  long etcd_pid = 0;
  std::string prefix;
  double poll_s = 15;
  double baseline_s = 5;
  std::size_t n = 0;
  std::vector<Proc> procs;
  HttpClient* http = nullptr;
  EtcdClient* etcd = nullptr;
  ev_timer step{};
  std::function<void()> next;  // what the step timer does next
  std::string error;

  // Measurements.
  double base_cpu0 = 0, base_cpu1 = 0;
  bool watch = true;
  double rss_base = 0, rss = 0;
  long fds_base = 0, fds = 0, conns_base = 0, conns = 0;
  std::size_t watches_up = 0;
  Clock::time_point base_t0, base_t1;
  Counters m0, m1;
  double cpu0 = 0, cpu1 = 0, self0 = 0, self1 = 0;
  std::uint64_t sent0 = 0, sent1 = 0;
  Clock::time_point t0, t1;
  std::optional<Clock::time_point> halt_sent, halt_acked;
  Clock::time_point start_deadline, halt_deadline;
  std::vector<std::int64_t> held_ns;

  void After(double seconds, std::function<void()> fn) {
    next = std::move(fn);
    ev_timer_set(&step, std::max(0.0, seconds), 0.);
    ev_timer_start(loop, &step);
  }
  void Fail(std::string message) {
    if (error.empty()) error = std::move(message);
    ev_break(loop, EVBREAK_ALL);
  }
  void SendAll(const std::string& cmd) {
    for (auto& p : procs)
      if (!WriteAll(p.cmd, cmd + "\n")) Fail("child " + std::to_string(p.pid) + " is gone");
  }
  // The pollers' requests so far and watches up, from every child.
  bool Mark(std::uint64_t& sent, std::size_t& up) {
    sent = 0;
    up = 0;
    SendAll("mark");
    for (auto& p : procs) {
      auto line = p.rep.Line(10'000);
      unsigned long long s = 0;
      unsigned long u = 0;
      if (!line || std::sscanf(line->c_str(), "mark %llu %lu", &s, &u) != 2) {
        Fail("child " + std::to_string(p.pid) + ": no answer to mark" +
             (line ? ": " + *line : std::string()));
        return false;
      }
      sent += s;
      up += u;
    }
    return true;
  }
  double ChildrenCpu() {
    double ms = 0;
    for (const auto& p : procs) ms += ProcessCpuMs(p.pid).value_or(0);
    return ms;
  }
  void Scrape(std::function<void(Counters)> done) {
    HttpRequest req;
    req.url = endpoint + "/metrics";
    req.timeout = Duration(10'000);
    req.max_body = 16 * 1024 * 1024;
    http->Start(req, [this, done = std::move(done)](HttpResponse r) {
      if (!r.ok || r.http_status != 200) {
        Fail("etcd /metrics: " + (r.ok ? "HTTP " + std::to_string(r.http_status) : r.error));
        return;
      }
      auto c = ParseMetrics(r.body);
      if (!c) {
        Fail("etcd /metrics: no grpc_server_handled_total for etcdserverpb.KV");
        return;
      }
      done(*c);
    });
  }
  double EtcdCpu() {
    auto v = ProcessCpuMs(etcd_pid);
    if (!v) Fail("cannot read /proc/" + std::to_string(etcd_pid) + "/stat");
    return v.value_or(0);
  }
};

void OnStep(struct ev_loop*, ev_timer* w, int) {
  auto* b = static_cast<Bench*>(w->data);
  auto fn = std::move(b->next);
  b->next = nullptr;
  if (fn) fn();
}

void Halt(Bench& b);

void Steady(Bench& b) {
  for (auto& p : b.procs) {
    while (auto line = p.rep.Poll()) {
      if (*line == "ready") {
        p.ready = true;
      } else if (line->rfind("fail ", 0) == 0) {
        b.Fail(line->substr(5));
        return;
      }
    }
    if (p.rep.eof && !p.ready) {
      b.Fail("child " + std::to_string(p.pid) + " ended before its pollers were up");
      return;
    }
  }
  bool all = std::all_of(b.procs.begin(), b.procs.end(), [](const Proc& p) { return p.ready; });
  if (!all) {
    if (Clock::now() < b.start_deadline) {
      b.After(0.5, [&b] { Steady(b); });
    } else {
      b.Fail("a child did not say whether its pollers are up");
    }
    return;
  }
  b.Scrape([&b](Counters c) {
    b.m0 = c;
    b.t0 = Clock::now();
    b.cpu0 = b.EtcdCpu();
    b.self0 = b.ChildrenCpu();
    std::size_t up0 = 0;
    if (!b.Mark(b.sent0, up0)) return;
    b.After(b.poll_s, [&b] {
      b.t1 = Clock::now();
      b.cpu1 = b.EtcdCpu();
      b.self1 = b.ChildrenCpu();
      if (!b.Mark(b.sent1, b.watches_up)) return;
      b.rss = ProcessRssMb(b.etcd_pid);
      b.fds = ProcessFds(b.etcd_pid);
      b.conns = EstablishedTo(b.port);
      b.Scrape([&b](Counters c1) {
        b.m1 = c1;
        Halt(b);
      });
    });
  });
}

// Every child has seen the halt at each poller (or the time is up): their
// reports, then the end of the loop.
void Collect(Bench& b) {
  b.SendAll("report");
  for (auto& p : b.procs) {
    std::optional<std::string> line;
    while ((line = p.rep.Line(30'000)) && line->rfind("report", 0) != 0) {
    }
    if (!line) {
      b.Fail("child " + std::to_string(p.pid) + ": no report");
      return;
    }
    std::istringstream in(line->substr(6));
    for (long long ns; in >> ns;) b.held_ns.push_back(ns);
  }
  ev_break(b.loop, EVBREAK_ALL);
}

void WaitHalt(Bench& b) {
  for (auto& p : b.procs)
    while (auto line = p.rep.Poll())
      if (*line == "saw") p.saw = true;
  bool all = std::all_of(b.procs.begin(), b.procs.end(), [](const Proc& p) { return p.saw; });
  if ((all && b.halt_acked) || Clock::now() >= b.halt_deadline) {
    Collect(b);
    return;
  }
  b.After(0.05, [&b] { WaitHalt(b); });
}

void Halt(Bench& b) {
  b.halt_sent = Clock::now();
  b.etcd->Put(b.prefix + "/mutex", kHaltReason, [&b](EtcdResult<EtcdPutResult> r) {
    if (!r) {
      b.Fail("putting the halt: " + r.error().message);
      return;
    }
    b.halt_acked = Clock::now();
  });
  // A poll interval (the last poller's next poll) plus the time a request
  // takes, with a generous margin for a loaded machine.
  b.halt_deadline = *b.halt_sent + std::chrono::milliseconds(
                                       static_cast<long>(2000 * b.poll_s + 10'000));
  b.After(0.05, [&b] { WaitHalt(b); });
}

}  // namespace

int main(int argc, char** argv) {
  const char* endpoint = Arg(argc, argv, "--endpoint", nullptr);
  long etcd_pid = std::atol(Arg(argc, argv, "--etcd-pid", "0"));
  long n = std::atol(Arg(argc, argv, "--pollers", "1000"));
  long poll_ms = std::atol(Arg(argc, argv, "--poll-ms", "15000"));
  long baseline_ms = std::atol(Arg(argc, argv, "--baseline-ms", "5000"));
  std::string prefix = Arg(argc, argv, "--prefix", "/warden");
  unsigned seed = static_cast<unsigned>(std::atol(Arg(argc, argv, "--seed", "1")));
  bool watch = std::atol(Arg(argc, argv, "--watch", "1")) != 0;
  long per_process = std::atol(Arg(argc, argv, "--per-process", "0"));
  std::string ep = endpoint ? endpoint : "";
  auto colon = ep.rfind(':');
  int port = colon == std::string::npos ? 0 : std::atoi(ep.c_str() + colon + 1);
  if (!endpoint || etcd_pid <= 0 || n <= 0 || poll_ms < 100 || baseline_ms < 0 ||
      per_process < 0 || port <= 0) {
    std::fprintf(stderr,
                 "usage: etcd_load --endpoint http://HOST:PORT --etcd-pid PID [--pollers N]"
                 " [--poll-ms MS >= 100] [--baseline-ms MS] [--prefix P] [--seed N]"
                 " [--watch 0|1] [--per-process N]\n");
    return 2;
  }
  if (!ProcessCpuMs(etcd_pid)) {
    std::fprintf(stderr, "etcd_load: cannot read /proc/%ld/stat (--etcd-pid)\n", etcd_pid);
    return 2;
  }
  rlim_t limit = RaiseFdLimit();
  long fit = (static_cast<long>(limit) - kFdsSpare) / kFdsPerPoller;
  if (per_process == 0) per_process = fit;
  if (per_process < 1 || per_process > fit) {
    std::fprintf(stderr,
                 "etcd_load: %ld pollers in one process need %ld descriptors (%ld each),"
                 " RLIMIT_NOFILE allows %llu: lower --per-process or raise the hard limit\n",
                 std::max(per_process, 1L), std::max(per_process, 1L) * kFdsPerPoller + kFdsSpare,
                 kFdsPerPoller, static_cast<unsigned long long>(limit));
    return 2;
  }
  spdlog::set_level(spdlog::level::err);

  MutexConfig mc;
  mc.mode = MutexConfig::Mode::kEtcd;
  mc.etcd.endpoints = {endpoint};
  mc.prefix = prefix;
  mc.poll = Duration(poll_ms);  // cache and timeout: the daemon's defaults
  mc.watch = watch;
  double poll_s = static_cast<double>(poll_ms) / 1000.0;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> offset(0.0, poll_s);
  std::vector<double> offsets(static_cast<std::size_t>(n));
  for (auto& o : offsets) o = offset(rng);

  // The children, before this process has a loop or a curl handle.
  long nprocs = (n + per_process - 1) / per_process;
  std::vector<Proc> procs;
  for (long k = 0; k < nprocs; ++k) {
    long first = n * k / nprocs, last = n * (k + 1) / nprocs;
    int down[2], up[2];
    if (::pipe(down) != 0 || ::pipe(up) != 0) {
      std::perror("etcd_load: pipe");
      return 1;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      std::perror("etcd_load: fork");
      return 1;
    }
    if (pid == 0) {
      ::close(down[1]);
      ::close(up[0]);
      for (auto& p : procs) {
        ::close(p.cmd);
        ::close(p.rep.fd);
      }
      std::vector<double> mine(offsets.begin() + first, offsets.begin() + last);
      std::_Exit(RunChild(mc, first, mine, poll_s, down[0], up[1]));
    }
    ::close(down[0]);
    ::close(up[1]);
    Proc p;
    p.pid = pid;
    p.cmd = down[1];
    p.rep.fd = up[0];
    procs.push_back(std::move(p));
  }
  ::signal(SIGPIPE, SIG_IGN);

  struct ev_loop* loop = EV_DEFAULT;
  HttpClient http(loop);
  EtcdConfig ec;
  ec.endpoints = {endpoint};
  ec.timeout = Duration(10'000);
  EtcdClient etcd(loop, ec);

  Bench b;
  b.loop = loop;
  b.endpoint = endpoint;
  b.port = port;
  b.etcd_pid = etcd_pid;
  b.prefix = prefix;
  b.poll_s = poll_s;
  b.baseline_s = static_cast<double>(baseline_ms) / 1000.0;
  b.n = static_cast<std::size_t>(n);
  b.procs = std::move(procs);
  b.http = &http;
  b.etcd = &etcd;
  b.watch = watch;
  ev_timer_init(&b.step, OnStep, 0., 0.);
  b.step.data = &b;

  b.base_cpu0 = b.EtcdCpu();
  b.base_t0 = Clock::now();
  b.rss_base = ProcessRssMb(etcd_pid);
  b.fds_base = ProcessFds(etcd_pid);
  b.conns_base = EstablishedTo(port);
  b.After(b.baseline_s, [&b] {
    b.base_cpu1 = b.EtcdCpu();
    b.base_t1 = Clock::now();
    b.SendAll("start");
    // Every poller has started and answered after one interval; allow one
    // more for a loaded machine before giving up (the children give up at
    // the same moment and say which poller is not up).
    b.start_deadline = Clock::now() + std::chrono::milliseconds(static_cast<long>(
                                          2000 * b.poll_s + 15'000));
    b.After(b.poll_s + 1, [&b] { Steady(b); });
  });
  ev_run(loop, 0);
  ev_timer_stop(loop, &b.step);

  // The children stop polling: the delete below is the last request.
  for (auto& p : b.procs) ::close(p.cmd);
  for (auto& p : b.procs) {
    int status = 0;
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (::waitpid(p.pid, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        ::kill(p.pid, SIGKILL);
        ::waitpid(p.pid, &status, 0);
        break;
      }
      ::usleep(20'000);
    }
    ::close(p.rep.fd);
  }

  // Delete the halt (the next round starts clear) before judging.
  if (b.halt_sent) {
    std::string del_error = "no answer";
    etcd.Delete(prefix + "/mutex", "", [&](EtcdResult<EtcdDeleteResult> r) {
      del_error = r ? "" : r.error().message;
      ev_break(loop, EVBREAK_ALL);
    });
    ev_run(loop, 0);
    if (!del_error.empty()) {
      std::fprintf(stderr, "etcd_load: deleting the halt: %s\n", del_error.c_str());
      return 1;
    }
  }
  if (!b.error.empty()) {
    std::fprintf(stderr, "etcd_load: %s\n", b.error.c_str());
    return 1;
  }
  std::vector<double> lat;
  std::int64_t sent_ns = NowNs(*b.halt_sent);
  for (auto ns : b.held_ns) lat.push_back(static_cast<double>(ns - sent_ns) / 1e6);
  if (lat.size() < static_cast<std::size_t>(n)) {
    std::fprintf(stderr, "etcd_load: %zu of %ld pollers saw the halt within %.0f s\n", lat.size(),
                 n, 2 * b.poll_s + 10);
    return 1;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) {
    return lat[std::min(lat.size() - 1, static_cast<std::size_t>(q * static_cast<double>(lat.size())))];
  };
  double steady_ms = Ms(b.t1 - b.t0);
  double base_ms = Ms(b.base_t1 - b.base_t0);
  double requests = b.m1.kv - b.m0.kv;
  double etcd_cpu = b.cpu1 - b.cpu0;
  std::printf(
      "pollers=%ld procs=%zu poll_ms=%ld steady_ms=%.0f requests=%.0f sent=%llu "
      "requests_per_poller_poll=%.3f proposals=%.0f etcd_cpu_pct=%.2f etcd_baseline_cpu_pct=%.2f "
      "etcd_cpu_us_per_req=%.1f client_cpu_us_per_req=%.1f put_ms=%.1f saw=%zu "
      "halt_min_ms=%.0f halt_median_ms=%.0f halt_p99_ms=%.0f halt_max_ms=%.0f "
      "watch=%d watches_up=%zu requests_per_poller_minute=%.3f etcd_rss_base_mb=%.1f "
      "etcd_rss_mb=%.1f etcd_fds_base=%ld etcd_fds=%ld etcd_conns_base=%ld etcd_conns=%ld "
      "watch_streams=%.0f\n",
      n, b.procs.size(), poll_ms, steady_ms, requests,
      static_cast<unsigned long long>(b.sent1 - b.sent0),
      requests / static_cast<double>(n) / (steady_ms / static_cast<double>(poll_ms)),
      b.m1.proposals - b.m0.proposals, 100.0 * etcd_cpu / steady_ms,
      base_ms > 0 ? 100.0 * (b.base_cpu1 - b.base_cpu0) / base_ms : 0.0,
      requests > 0 ? 1000.0 * etcd_cpu / requests : 0.0,
      requests > 0 ? 1000.0 * (b.self1 - b.self0) / requests : 0.0,
      b.halt_acked ? Ms(*b.halt_acked - *b.halt_sent) : -1.0, lat.size(), lat.front(), pct(0.5),
      pct(0.99), lat.back(), b.watch ? 1 : 0, b.watches_up,
      requests / static_cast<double>(n) / (steady_ms / 60000.0), b.rss_base, b.rss, b.fds_base,
      b.fds, b.conns_base, b.conns, b.m1.watch_streams);
  return 0;
}
