// fluentd delivery benchmark: wardend's ForwardSender and EventBuffer
// against tests/fluentd/receiver.cc (acking, on 127.0.0.1).
//
//   build-dir/fluentd_bench [--backlog 100000] [--live 200000]
//
// 1. backlog drain: --backlog events (check.state-like, ~330 bytes, mixed
//    families) are buffered while fluentd is down; then the sender starts
//    and the time until every one is acked is measured.
// 2. live: --live events are emitted as fast as the loop allows (1,000 per
//    iteration) while shipping with ack; events/s until all are acked.
// Prints the figures; exits 1 if the receiver did not get every event.
#include <ev.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "daemon/io/forward_sender.h"

using namespace warden;
using Clock = std::chrono::steady_clock;

namespace {

struct Receiver {
  pid_t pid = -1;
  int port = 0;
  std::string out;
  explicit Receiver(const std::string& dir) {
    out = dir + "/received.jsonl";
    std::string stdout_path = dir + "/receiver.stdout";
    pid = ::fork();
    if (pid == 0) {
      if (!std::freopen(stdout_path.c_str(), "w", stdout)) ::_exit(126);
      ::execl(FLUENTD_RECEIVER, FLUENTD_RECEIVER, "--port", "0", "--out", out.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500 && port == 0; ++i) {
      std::ifstream in(stdout_path);
      std::string line;
      if (std::getline(in, line) && !in.eof()) port = std::stoi(line);
      else std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~Receiver() {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  std::set<std::uint64_t> Seqs(std::uint64_t* lines) const {
    std::set<std::uint64_t> seqs;
    std::ifstream in(out);
    std::string line;
    *lines = 0;
    while (std::getline(in, line)) {
      ++*lines;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded()) seqs.insert(j["record"]["seq"].get<std::uint64_t>());
    }
    return seqs;
  }
};

nlohmann::json Event(std::uint64_t seq) {
  static const char* names[] = {"check.state", "check.state", "action.start", "action.finish",
                                "check.state", "mutex.state"};
  return {{"host", "bench-db-17"}, {"event", names[seq % 6]}, {"seq", seq},
          {"time", "2026-11-25T17:02:44.854Z"}, {"version", "0.1.0"},
          {"check", "replica_lag"}, {"type", "mysql_replica"}, {"state", "crit"},
          {"prev_state", "ok"}, {"value", "727"}, {"threshold", "> 600"},
          {"error", ""}, {"detail", std::string(80, 'd')}};
}

void RunUntil(struct ev_loop* loop, const std::function<bool()>& pred, double timeout) {
  struct Ctx {
    const std::function<bool()>* pred;
    double deadline;
  } ctx{&pred, ev_now(loop) + timeout};
  ev_timer t;
  ev_timer_init(&t, [](struct ev_loop* l, ev_timer* w, int) {
    auto* c = static_cast<Ctx*>(w->data);
    if ((*c->pred)() || ev_now(l) > c->deadline) ev_break(l, EVBREAK_ONE);
  }, 0.005, 0.005);
  t.data = &ctx;
  ev_timer_start(loop, &t);
  ev_run(loop, 0);
  ev_timer_stop(loop, &t);
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t backlog = 100000, live = 200000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--backlog") backlog = std::stoull(argv[i + 1]);
    else if (a == "--live") live = std::stoull(argv[i + 1]);
  }
  spdlog::set_level(spdlog::level::warn);
  char tmpl[] = "/tmp/warden-fluentd-bench-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  int rc = 0;
  {
    Receiver rx(dir);
    if (rx.port == 0) {
      std::fprintf(stderr, "receiver did not start\n");
      return 1;
    }
    struct ev_loop* loop = ev_loop_new(0);
    FluentdConfig cfg;
    cfg.enabled = true;
    cfg.host = "127.0.0.1";
    cfg.port = rx.port;
    cfg.address = "127.0.0.1:" + std::to_string(rx.port);

    // 1. Backlog drain.
    std::uint64_t seq = 1;
    {
      ForwardSender s(loop, cfg);
      if (!s.Open(dir + "/buffer").ok()) return 1;
      auto t0 = Clock::now();
      for (std::uint64_t i = 0; i < backlog; ++i) s.OnEvent(Event(seq++));
      auto t1 = Clock::now();
      std::uint64_t bytes = s.stats().backlog_bytes;
      s.Start();
      RunUntil(loop, [&] { return s.stats().backlog_events == 0; }, 600);
      auto t2 = Clock::now();
      double buffer_s = std::chrono::duration<double>(t1 - t0).count();
      double drain_s = std::chrono::duration<double>(t2 - t1).count();
      FluentdStats st = s.stats();
      std::printf("backlog: %llu events (%.1f MB buffered) appended in %.2f s (%.1f us/event)\n",
                  static_cast<unsigned long long>(backlog), static_cast<double>(bytes) / 1e6,
                  buffer_s, buffer_s * 1e6 / static_cast<double>(backlog));
      std::printf("backlog: drained with ack in %.2f s = %.0f events/s (%llu chunks)%s\n", drain_s,
                  static_cast<double>(backlog) / drain_s,
                  static_cast<unsigned long long>(st.chunks_acked),
                  st.backlog_events ? "  NOT COMPLETE" : "");
      s.Stop();
    }
    // 2. Live: emit while shipping.
    {
      ForwardSender s(loop, cfg);
      if (!s.Open(dir + "/buffer").ok()) return 1;
      s.Start();
      std::uint64_t emitted = 0;
      struct Ctx {
        ForwardSender* s;
        std::uint64_t* seq;
        std::uint64_t* emitted;
        std::uint64_t total;
      } ctx{&s, &seq, &emitted, live};
      ev_idle idle;
      ev_idle_init(&idle, [](struct ev_loop* l, ev_idle* w, int) {
        auto* c = static_cast<Ctx*>(w->data);
        for (int k = 0; k < 1000 && *c->emitted < c->total; ++k, ++*c->emitted) {
          c->s->OnEvent(Event((*c->seq)++));
        }
        if (*c->emitted >= c->total) ev_idle_stop(l, w);
      });
      idle.data = &ctx;
      auto t0 = Clock::now();
      ev_idle_start(loop, &idle);
      RunUntil(loop, [&] { return emitted >= live && s.stats().backlog_events == 0; }, 600);
      ev_idle_stop(loop, &idle);
      double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      std::printf("live: %llu events emitted and acked in %.2f s = %.0f events/s\n",
                  static_cast<unsigned long long>(live), secs, static_cast<double>(live) / secs);
      s.Stop();
    }
    ev_loop_destroy(loop);
    std::uint64_t lines = 0;
    auto seqs = rx.Seqs(&lines);
    bool complete = seqs.size() == seq - 1 && *seqs.begin() == 1 && *seqs.rbegin() == seq - 1;
    std::printf("receiver: %llu records, %zu distinct seq, complete: %s\n",
                static_cast<unsigned long long>(lines), seqs.size(), complete ? "yes" : "NO");
    if (!complete) rc = 1;
  }
  std::filesystem::remove_all(dir);
  return rc;
}
