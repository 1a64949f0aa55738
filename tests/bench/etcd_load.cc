// etcd load: N simulated hosts polling the fleet mutex with wardend's own
// MutexClient (backend = etcd: one linearizable txn reading <prefix>/armed
// and <prefix>/mutex per poll, and with --watch 1, wardend's default, one
// watch on <prefix>/ each: its own connection, the same code path as the
// daemon) on one libev loop, against a running etcd.
// Driven by tests/bench/etcd_load.py, which starts etcd (harness.Etcd) and
// arms the mutex (<prefix>/armed must exist).
//
//   build-dir/etcd_load --endpoint http://127.0.0.1:P --etcd-pid PID
//                       [--pollers 1000] [--poll-ms 15000] [--prefix /warden]
//                       [--baseline-ms 5000] [--seed N] [--watch 1]
//
// 1. Baseline: etcd's CPU for --baseline-ms with no client at all.
// 2. Start: each poller's MutexClient::Start() at a uniformly random moment
//    of the first poll interval (hosts whose daemons started at random
//    times; the mutex poll itself is a fixed period from Start()).
// 3. Steady state: once every poller has had a clear answer (and with
//    --watch 1 has its watch up), one poll
//    interval is measured: requests etcd handled (its /metrics,
//    grpc_server_handled_total of etcdserverpb.KV, all methods), raft
//    proposals committed, etcd's CPU (/proc/PID/stat utime + stime) and this
//    process's CPU (getrusage: the pollers' client side).
// 4. Halt: <prefix>/mutex is put ("bench halt"); for each poller, the time
//    from just before the put was sent to its first held answer. Waits at
//    most 2 poll intervals + 10 s; the halt is deleted at the end.
//
// Prints one line of key=value (times in ms, CPU in % of one core and µs):
//   pollers= poll_ms= steady_ms= requests= (etcd's count) sent= (the pollers')
//   requests_per_poller_poll=
//   proposals= etcd_cpu_pct= etcd_baseline_cpu_pct= etcd_cpu_us_per_req=
//   client_cpu_us_per_req= put_ms= saw= halt_min_ms= halt_median_ms=
//   halt_p99_ms= halt_max_ms= watch= watches_up= requests_per_poller_minute=
//   etcd_rss_base_mb= etcd_rss_mb= etcd_fds_base= etcd_fds= watch_streams=
// Exit status 1 when a poller never saw clear, or missed the halt.
#include <ev.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
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

double SelfCpuMs() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1000.0 + static_cast<double>(tv.tv_usec) / 1000.0;
  };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
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

struct Poller {
  std::unique_ptr<MutexClient> client;
  ev_timer start{};
  std::optional<Clock::time_point> clear_at;  // first clear answer
  std::optional<Clock::time_point> held_at;   // first held answer after the halt
  std::string last_reason;
};

struct Bench {
  struct ev_loop* loop = nullptr;
  std::string endpoint;
  long etcd_pid = 0;
  std::string prefix;
  double poll_s = 15;
  double baseline_s = 5;
  std::vector<std::unique_ptr<Poller>> pollers;
  HttpClient* http = nullptr;
  EtcdClient* etcd = nullptr;
  ev_timer step{};
  std::function<void()> next;  // what the step timer does next
  std::string error;

  // Measurements.
  double base_cpu0 = 0, base_cpu1 = 0;
  bool watch = true;
  double rss_base = 0, rss = 0;
  long fds_base = 0, fds = 0;
  std::size_t watches_up = 0;
  Clock::time_point base_t0, base_t1;
  Counters m0, m1;
  double cpu0 = 0, cpu1 = 0, self0 = 0, self1 = 0;
  std::uint64_t sent0 = 0, sent1 = 0;
  Clock::time_point t0, t1;
  std::optional<Clock::time_point> halt_sent, halt_acked;
  std::size_t saw = 0;
  Clock::time_point start_deadline;

  void After(double seconds, std::function<void()> fn) {
    next = std::move(fn);
    ev_timer_set(&step, std::max(0.0, seconds), 0.);
    ev_timer_start(loop, &step);
  }
  void Fail(std::string message) {
    error = std::move(message);
    ev_break(loop, EVBREAK_ALL);
  }
  std::uint64_t Sent() const {
    std::uint64_t n = 0;
    for (const auto& p : pollers) n += p->client->requests();
    return n;
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

void OnPollerStart(struct ev_loop*, ev_timer* w, int) {
  static_cast<Poller*>(w->data)->client->Start();
}

void Halt(Bench& b);

void Steady(Bench& b) {
  std::size_t clear = 0;
  for (const auto& p : b.pollers) {
    clear += p->clear_at && (!b.watch || p->client->watch_state().up) ? 1 : 0;
  }
  if (clear < b.pollers.size()) {
    if (Clock::now() < b.start_deadline) {
      b.After(0.5, [&b] { Steady(b); });
      return;
    }
    for (std::size_t i = 0; i < b.pollers.size(); ++i)
      if (!b.pollers[i]->clear_at || (b.watch && !b.pollers[i]->client->watch_state().up)) {
        b.Fail("poller " + std::to_string(i) + " never saw clear with its watch up: " +
               b.pollers[i]->last_reason + " / " +
               b.pollers[i]->client->watch_state().last_error);
        return;
      }
  }
  b.Scrape([&b](Counters c) {
    b.m0 = c;
    b.t0 = Clock::now();
    b.cpu0 = b.EtcdCpu();
    b.self0 = SelfCpuMs();
    b.sent0 = b.Sent();
    b.After(b.poll_s, [&b] {
      b.t1 = Clock::now();
      b.cpu1 = b.EtcdCpu();
      b.self1 = SelfCpuMs();
      b.sent1 = b.Sent();
      b.rss = ProcessRssMb(b.etcd_pid);
      b.fds = ProcessFds(b.etcd_pid);
      for (const auto& p : b.pollers) b.watches_up += p->client->watch_state().up ? 1 : 0;
      b.Scrape([&b](Counters c1) {
        b.m1 = c1;
        Halt(b);
      });
    });
  });
}

void Halt(Bench& b) {
  b.halt_sent = Clock::now();
  b.etcd->Put(b.prefix + "/mutex", "bench halt", [&b](EtcdResult<EtcdPutResult> r) {
    if (!r) {
      b.Fail("putting the halt: " + r.error().message);
      return;
    }
    b.halt_acked = Clock::now();
    if (b.saw == b.pollers.size()) ev_break(b.loop, EVBREAK_ALL);
  });
  // A poll interval (the last poller's next poll) plus the time a request
  // takes, with a generous margin for a loaded machine.
  b.After(2 * b.poll_s + 10, [&b] { ev_break(b.loop, EVBREAK_ALL); });
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
  if (!endpoint || etcd_pid <= 0 || n <= 0 || poll_ms < 100 || baseline_ms < 0) {
    std::fprintf(stderr,
                 "usage: etcd_load --endpoint URL --etcd-pid PID [--pollers N] [--poll-ms MS >= 100]"
                 " [--baseline-ms MS] [--prefix P] [--seed N] [--watch 0|1]\n");
    return 2;
  }
  if (!ProcessCpuMs(etcd_pid)) {
    std::fprintf(stderr, "etcd_load: cannot read /proc/%ld/stat (--etcd-pid)\n", etcd_pid);
    return 2;
  }
  spdlog::set_level(spdlog::level::err);

  struct ev_loop* loop = EV_DEFAULT;
  HttpClient http(loop);
  EtcdConfig ec;
  ec.endpoints = {endpoint};
  ec.timeout = Duration(10'000);
  EtcdClient etcd(loop, ec);

  Bench b;
  b.loop = loop;
  b.endpoint = endpoint;
  b.etcd_pid = etcd_pid;
  b.prefix = prefix;
  b.poll_s = static_cast<double>(poll_ms) / 1000.0;
  b.baseline_s = static_cast<double>(baseline_ms) / 1000.0;
  b.http = &http;
  b.etcd = &etcd;
  b.watch = watch;
  ev_timer_init(&b.step, OnStep, 0., 0.);
  b.step.data = &b;

  MutexConfig mc;
  mc.mode = MutexConfig::Mode::kEtcd;
  mc.etcd.endpoints = {endpoint};
  mc.prefix = prefix;
  mc.poll = Duration(poll_ms);  // cache and timeout: the daemon's defaults
  mc.watch = watch;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> offset(0.0, b.poll_s);
  for (long i = 0; i < n; ++i) {
    auto p = std::make_unique<Poller>();
    p->client = std::make_unique<MutexClient>(loop, mc, "bench-" + std::to_string(i));
    Poller* raw = p.get();
    p->client->SetOnChange([raw, &b](const MutexAnswer& a) {
      raw->last_reason = a.reason;
      if (!a.held && !raw->clear_at) raw->clear_at = a.at;
      if (a.held && b.halt_sent && !raw->held_at) {
        raw->held_at = a.at;
        if (++b.saw == b.pollers.size() && b.halt_acked) ev_break(b.loop, EVBREAK_ALL);
      }
    });
    ev_timer_init(&p->start, OnPollerStart, offset(rng), 0.);
    p->start.data = raw;
    b.pollers.push_back(std::move(p));
  }

  b.base_cpu0 = b.EtcdCpu();
  b.base_t0 = Clock::now();
  b.rss_base = ProcessRssMb(etcd_pid);
  b.fds_base = ProcessFds(etcd_pid);
  b.After(b.baseline_s, [&b] {
    b.base_cpu1 = b.EtcdCpu();
    b.base_t1 = Clock::now();
    for (auto& p : b.pollers) ev_timer_start(b.loop, &p->start);
    // Every poller has started and answered after one interval; allow one
    // more for a loaded machine before giving up.
    b.start_deadline = Clock::now() + std::chrono::milliseconds(static_cast<long>(
                                          2000 * b.poll_s + 10'000));
    b.After(b.poll_s + 1, [&b] { Steady(b); });
  });
  ev_run(loop, 0);
  ev_timer_stop(loop, &b.step);
  for (auto& p : b.pollers) {
    ev_timer_stop(loop, &p->start);
    p->client->Stop();
  }

  std::vector<double> lat;
  for (const auto& p : b.pollers)
    if (p->held_at) lat.push_back(Ms(*p->held_at - *b.halt_sent));
  b.pollers.clear();  // no more polls: the delete below is the last request

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
      "pollers=%ld poll_ms=%ld steady_ms=%.0f requests=%.0f sent=%llu "
      "requests_per_poller_poll=%.3f proposals=%.0f etcd_cpu_pct=%.2f etcd_baseline_cpu_pct=%.2f "
      "etcd_cpu_us_per_req=%.1f client_cpu_us_per_req=%.1f put_ms=%.1f saw=%zu "
      "halt_min_ms=%.0f halt_median_ms=%.0f halt_p99_ms=%.0f halt_max_ms=%.0f "
      "watch=%d watches_up=%zu requests_per_poller_minute=%.3f etcd_rss_base_mb=%.1f "
      "etcd_rss_mb=%.1f etcd_fds_base=%ld etcd_fds=%ld watch_streams=%.0f\n",
      n, poll_ms, steady_ms, requests, static_cast<unsigned long long>(b.sent1 - b.sent0),
      requests / static_cast<double>(n) / (steady_ms / static_cast<double>(poll_ms)),
      b.m1.proposals - b.m0.proposals, 100.0 * etcd_cpu / steady_ms,
      base_ms > 0 ? 100.0 * (b.base_cpu1 - b.base_cpu0) / base_ms : 0.0,
      requests > 0 ? 1000.0 * etcd_cpu / requests : 0.0,
      requests > 0 ? 1000.0 * (b.self1 - b.self0) / requests : 0.0,
      b.halt_acked ? Ms(*b.halt_acked - *b.halt_sent) : -1.0, lat.size(), lat.front(), pct(0.5),
      pct(0.99), lat.back(), b.watch ? 1 : 0, b.watches_up,
      requests / static_cast<double>(n) / (steady_ms / 60000.0), b.rss_base, b.rss, b.fds_base,
      b.fds, b.m1.watch_streams);
  return 0;
}
