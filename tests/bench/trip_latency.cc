// Trip latency: from a check result that trips a threshold to the start of
// the action's process, through wardend's own Scheduler, Evaluator, Guard
// (with the real MutexClient) and Executor, in-process on libev's default
// loop, as in wardend.
//
//   build-dir/trip_latency --stamp PATH-TO-stamp [--trips 1000] [--every-ms 5]
//                          [--mutex off|file]
//
// A check (`flip`) alternates 50 and 0 against `crit = > 10` with
// `on_crit = stamp`: every other result trips it. Right before a tripping
// result is handed to the scheduler the check records CLOCK_MONOTONIC; the
// exec action runs tests/bench/stamp.c, which records CLOCK_MONOTONIC first
// thing in main(). The difference is the latency: evaluation, check.state
// event (written to the events file), guard, spawn and exec.
//
// --mutex off: [mutex] mode = off. --mutex file: a file:// mutex that says
// clear, cache = 5s: the answer is cached, as in the issue's "mutex cached
// clear" (one read of the file every 5 s).
//
// Prints: trips=N median_us=… p99_us=… max_us=… blocked=B (actions the
// guard blocked, e.g. a previous run still in flight; not counted).
#include <ev.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "daemon/base/ini.h"
#include "daemon/config/config.h"
#include "daemon/engine/events.h"
#include "daemon/engine/executor.h"
#include "daemon/engine/guard.h"
#include "daemon/engine/scheduler.h"
#include "daemon/io/mutex_client.h"
#include "daemon/io/process.h"

using namespace warden;

namespace {

std::int64_t MonoNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class FlipCheck final : public Check {
 public:
  void Run(Runtime&, Done done) override {
    bool trip = (runs_++ % 2) == 0;
    if (trip) trips.push_back(MonoNs());
    done(Measurement::Value(trip ? "50" : "0"));
  }
  std::vector<std::int64_t> trips;

 private:
  std::uint64_t runs_ = 0;
};

const char* Arg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return def;
}

struct Stopper {
  ev_timer timer;
  FlipCheck* check;
  Executor* executor;
  Scheduler* scheduler;
  size_t want;
};

void OnStopTimer(struct ev_loop* loop, ev_timer* w, int) {
  auto* s = static_cast<Stopper*>(w->data);
  if (s->check->trips.size() >= s->want) {
    s->scheduler->Stop();
    if (s->executor->running() == 0) ev_break(loop, EVBREAK_ALL);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* stamp = Arg(argc, argv, "--stamp", nullptr);
  size_t trips = static_cast<size_t>(std::atol(Arg(argc, argv, "--trips", "1000")));
  long every_ms = std::atol(Arg(argc, argv, "--every-ms", "5"));
  std::string mutex = Arg(argc, argv, "--mutex", "off");
  if (!stamp || trips == 0 || every_ms <= 0) {
    std::fprintf(stderr, "usage: trip_latency --stamp PATH [--trips N] [--every-ms MS] [--mutex off|file]\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  char tmpl[] = "/tmp/warden-trip-XXXXXX";
  if (!::mkdtemp(tmpl)) return 1;
  std::string dir = tmpl;
  std::string out = dir + "/stamps";
  {
    std::ofstream(dir + "/mutex.json") << "{\"held\": false}\n";
    std::ofstream ini(dir + "/warden.ini");
    ini << "[daemon]\nhost_id = bench\nstate_dir = " << dir << "\njitter = 0%\n"
        << "[log]\nlevel = warn\n";
    if (mutex == "file") {
      ini << "[mutex]\nurl = file://" << dir << "/mutex.json\ncache = 5s\npoll = 1h\n";
    } else {
      ini << "[mutex]\nmode = off\n";
    }
    ini << "[check flip]\ntype = file\npath = " << dir << "\nmetric = exists\nevery = 1s\n"
        << "crit = > 10\nrecover = 1\non_crit = stamp\n"
        << "[action stamp]\ntype = exec\ncommand = " << stamp << " " << out << "\ntimeout = 10s\n";
  }
  Diagnostics diag;
  LoadOptions lo;
  lo.check_ownership = false;
  auto loaded = LoadConfig(dir + "/warden.ini", lo, diag);
  if (!loaded) {
    for (const auto& e : diag.errors()) std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  auto config = std::make_shared<Config>(*loaded);
  auto flip = std::make_shared<FlipCheck>();
  config->checks[0].impl = flip;
  config->checks[0].common.every = Duration(every_ms);  // below the config's 100 ms minimum

  struct ev_loop* loop = EV_DEFAULT;
  EventLog events;
  if (auto st = events.Open(config->EventsPath(), dir, "bench"); !st.ok()) {
    std::fprintf(stderr, "events: %s\n", st.message().c_str());
    return 1;
  }
  ProcessRunner processes(loop);
  MutexClient mutex_client(loop, config->mutex, "bench");
  mutex_client.Start();
  Guard guard(&mutex_client);
  Runtime rt;
  rt.loop = loop;
  rt.processes = &processes;
  rt.host = "bench";
  Executor executor(rt, guard, events);
  Scheduler scheduler(rt, executor, events);
  scheduler.Start(config);

  Stopper stopper{{}, flip.get(), &executor, &scheduler, trips};
  ev_timer_init(&stopper.timer, OnStopTimer, 0.01, 0.01);
  stopper.timer.data = &stopper;
  ev_timer_start(loop, &stopper.timer);
  ev_run(loop, 0);
  ev_timer_stop(loop, &stopper.timer);
  mutex_client.Stop();

  std::vector<std::int64_t> starts;
  {
    std::ifstream in(out);
    std::int64_t t;
    while (in >> t) starts.push_back(t);
  }
  // Each start belongs to the latest trip before it; a trip without a start
  // (blocked: the previous run still in flight) is counted, not measured.
  std::vector<double> lat;
  size_t j = 0;
  const auto& tr = flip->trips;
  for (size_t i = 0; i < tr.size(); ++i) {
    std::int64_t next = i + 1 < tr.size() ? tr[i + 1] : INT64_MAX;
    while (j < starts.size() && starts[j] < tr[i]) ++j;
    if (j < starts.size() && starts[j] < next) {
      lat.push_back(static_cast<double>(starts[j] - tr[i]) / 1000.0);
      ++j;
    }
  }
  std::filesystem::remove_all(dir);
  if (lat.empty()) {
    std::fprintf(stderr, "no action started\n");
    return 1;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat[std::min(lat.size() - 1, static_cast<size_t>(p * static_cast<double>(lat.size())))]; };
  std::printf("trips=%zu median_us=%.1f p99_us=%.1f max_us=%.1f blocked=%zu\n", lat.size(),
              pct(0.5), pct(0.99), lat.back(), tr.size() - lat.size());
  return 0;
}
