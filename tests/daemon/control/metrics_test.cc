// The metrics page (daemon/control/metrics.cc): the exposition format's
// escaping and numbers, a page rendered from a real scheduler and executor,
// and the exporter served by the real HTTP server (daemon/io/http_server.cc)
// on a private loop, asked by the real HTTP client.
#include <ev.h>

#include <charconv>
#include <catch2/catch.hpp>

#include <set>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "daemon/base/atomic_file.h"
#include "daemon/base/disk_writer.h"
#include "daemon/control/metrics.h"
#include "daemon/io/http_client.h"
#include "daemon/io/http_server.h"
#include "tests/support/scheduler_rig.h"
#include "tests/support/temp_dir.h"

using namespace warden;

namespace {

class ManualCheck : public Check {
 public:
  void Run(Runtime&, Done done) override { pending.push_back(std::move(done)); }
  std::vector<Done> pending;
};

class ManualAction : public Action {
 public:
  void Run(Runtime&, const ActionCommon&, const Trigger&, Done done) override {
    pending.push_back(std::move(done));
  }
  std::vector<Done> pending;
};

const ActionType kGuardedType{"manual", "test", true, false, {}, "", nullptr};
const ActionType kNotifyType{"manual_notify", "test", false, false, {}, "", nullptr};

using warden::testing::LoopRuntime;
using Rig = warden::testing::LoopRig;

std::shared_ptr<Config> MakeConfig(std::shared_ptr<ManualCheck> check,
                                   std::shared_ptr<ManualAction> action) {
  auto c = std::make_shared<Config>();
  c->daemon.jitter = 0;
  CheckConfig cc;
  cc.common.name = "lag \"main\"";   // a name that needs escaping
  cc.common.type = "manual";
  cc.common.every = Duration(3'600'000);   // one run at start, then none
  cc.impl = std::move(check);
  cc.digest = "d1";
  auto crit = ParseThreshold("> 10");
  REQUIRE(crit.ok());
  cc.rules.crit = *crit;
  c->checks.push_back(std::move(cc));
  ActionConfig a;
  a.common.name = "restart";
  a.common.type = "manual";
  a.type = &kGuardedType;
  a.impl = std::move(action);
  c->actions.push_back(std::move(a));
  ActionConfig n;
  n.common.name = "page";
  n.common.type = "manual_notify";
  n.type = &kNotifyType;
  n.impl = std::make_shared<ManualAction>();
  c->actions.push_back(std::move(n));
  return c;
}

bool Contains(const std::string& page, const std::string& line) {
  std::istringstream in(page);
  std::string l;
  while (std::getline(in, l)) {
    if (l == line) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("metrics: label values and help text are escaped per the format", "[metrics]") {
  CHECK(EscapeLabelValue("plain") == "plain");
  CHECK(EscapeLabelValue("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(EscapeHelp("x\\y\nz \"q\"") == "x\\\\y\\nz \"q\"");
  Exposition x;
  x.Family("warden_x", "gauge", "A line\nand another.");
  x.Sample("warden_x", {{"check", "a\"b"}, {"state", "ok"}}, 1);
  x.Sample("warden_x", {}, 0.5);
  CHECK(x.text() ==
        "# HELP warden_x A line\\nand another.\n# TYPE warden_x gauge\n"
        "warden_x{check=\"a\\\"b\",state=\"ok\"} 1\nwarden_x 0.5\n");
}

TEST_CASE("metrics: sample values and numeric check values", "[metrics]") {
  CHECK(FormatSampleValue(0) == "0");
  CHECK(FormatSampleValue(12.5) == "12.5");
  CHECK(FormatSampleValue(1e21) == "1e+21");
  CHECK(FormatSampleValue(1'700'000'000) == "1700000000");   // whole numbers in full
  CHECK(FormatSampleValue(1'700'000'000.25) == "1700000000.25");
  // Milliseconds (every check's last run) as the double of them is written.
  for (std::int64_t ms : {0LL, 1LL, 10LL, 100LL, 999LL, 1000LL, 1001LL, 1010LL, 1100LL, -1LL, -1500LL,
                          1'700'000'000'000LL, 1'700'000'000'250LL, 1'700'000'000'205LL,
                          1'700'000'000'999LL, 999'999'999'999'999LL, 1'000'000'000'000'000LL,
                          -1'000'000'000'000'001LL}) {
    INFO(ms);
    CHECK(FormatMillis(ms) == FormatSampleValue(static_cast<double>(ms) / 1000.0));
  }
  for (std::int64_t ms = 1'765'000'000'000; ms < 1'765'000'020'000; ms += 7) {
    if (FormatMillis(ms) != FormatSampleValue(static_cast<double>(ms) / 1000.0)) {
      FAIL("FormatMillis(" << ms << ") is " << FormatMillis(ms));
    }
  }
  CHECK(FormatSampleValue(-3) == "-3");
  // Thousandths (times to the millisecond) take a shorter path: the same text.
  CHECK(FormatSampleValue(1'733'561'234.567) == "1733561234.567");
  CHECK(FormatSampleValue(1'733'561'234.5) == "1733561234.5");
  CHECK(FormatSampleValue(0.05) == "0.05");
  CHECK(FormatSampleValue(-0.25) == "-0.25");
  CHECK(FormatSampleValue(-12.001) == "-12.001");
  CHECK(FormatSampleValue(0.0005) == "5e-04");   // not thousandths: the general form
  CHECK(FormatSampleValue(1.0 / 3) == "0.3333333333333333");
  for (long long ms : {1LL, 7LL, 10LL, 999LL, 1001LL, 123456789LL, 1'733'561'234'567LL}) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<double>(ms) / 1000);
    CHECK(FormatSampleValue(static_cast<double>(ms) / 1000) == std::string(buf, end));
  }
  CHECK(FormatSampleValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(FormatSampleValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(FormatSampleValue(std::nan("")) == "NaN");
  CHECK(NumericValue("42") == 42.0);
  CHECK(NumericValue(" -3.25 ") == -3.25);
  CHECK(NumericValue("+7") == 7.0);
  CHECK(NumericValue("1e3") == 1000.0);
  CHECK_FALSE(NumericValue(""));
  CHECK_FALSE(NumericValue("ON"));
  CHECK_FALSE(NumericValue("12 ms"));
  CHECK_FALSE(NumericValue("0x10"));
}

TEST_CASE("metrics: action durations fall in every bucket at or above them", "[metrics]") {
  ActionCounters n;
  n.Finished(true, 0.2);
  n.Finished(false, 400);
  CHECK(n.ok == 1);
  CHECK(n.fail == 1);
  CHECK(n.runs() == 2);
  CHECK(n.seconds == Approx(400.2));
  for (size_t i = 0; i < ActionCounters::kBuckets.size(); ++i) {
    INFO(ActionCounters::kBuckets[i]);
    CHECK(n.within[i] == (ActionCounters::kBuckets[i] >= 0.2 ? 1u : 0u));
  }
}

TEST_CASE("metrics: a page from the scheduler, executor and guard", "[metrics]") {
  Rig rig;
  auto check = std::make_shared<ManualCheck>();
  auto action = std::make_shared<ManualAction>();
  auto config = MakeConfig(check, action);
  rig.scheduler->Start(config);
  rig.Spin();
  REQUIRE(check->pending.size() == 1);
  {
    // Pending, its first run in flight: no run, no change to show yet.
    MetricsSources first;
    first.config = config.get();
    first.scheduler = rig.scheduler.get();
    const std::string page = RenderMetrics(first, 1'700'000'000'000);
    INFO(page);
    CHECK(Contains(page, "warden_check_state{check=\"lag \\\"main\\\"\",state=\"pending\"} 1"));
    CHECK(page.find("warden_check_last_change_timestamp_seconds{") == std::string::npos);
    CHECK(page.find("warden_check_last_run_timestamp_seconds{") == std::string::npos);
  }
  check->pending[0](Measurement::Value("50"));   // crit
  check->pending.clear();
  REQUIRE(rig.scheduler->RunNow("lag \"main\"", [](const Measurement&, const Verdict&) {}));
  REQUIRE(check->pending.size() == 1);
  check->pending[0](Measurement::Error("access denied"));
  check->pending.clear();

  // One run ok, one blocked by the pause.
  rig.executor->Fire(config, config->actions[0], Trigger{"ctl", "test", "", ""});
  REQUIRE(action->pending.size() == 1);
  ActionOutcome ok;
  ok.ok = true;
  action->pending[0](ok);
  action->pending.clear();   // its callback holds the config, which holds the action
  rig.guard.SetPaused(true, "maintenance");
  rig.executor->Fire(config, config->actions[0], Trigger{"ctl", "test", "", ""});
  CHECK(action->pending.empty());   // not run

  MetricsSources s;
  s.config = config.get();
  s.scheduler = rig.scheduler.get();
  s.executor = rig.executor.get();
  s.guard = &rig.guard;
  s.host = "db\"1";
  s.version = "9.9.9";
  s.started_ms = 1'700'000'000'000;
  const std::int64_t now_ms = 1'700'000'100'000;
  const std::string page = RenderMetrics(s, now_ms);
  INFO(page);
  CHECK(Contains(page, "warden_build_info{version=\"9.9.9\",host=\"db\\\"1\"} 1"));
  CHECK(Contains(page, "warden_start_time_seconds 1700000000"));
  const std::string lag = "check=\"lag \\\"main\\\"\"";
  CHECK(Contains(page, "warden_check_state{" + lag + ",state=\"error\"} 1"));
  CHECK(Contains(page, "warden_check_state{" + lag + ",state=\"crit\"} 0"));
  CHECK(Contains(page, "warden_check_state{" + lag + ",state=\"ok\"} 0"));
  CHECK(Contains(page, "warden_check_runs_total{" + lag + "} 2"));
  CHECK(Contains(page, "warden_check_errors_total{" + lag + "} 1"));
  // Steady times shown as Unix times, seen from now_ms (the runs were just now).
  for (const char* name : {"warden_check_last_run_timestamp_seconds",
                           "warden_check_last_change_timestamp_seconds"}) {
    const std::string head = std::string(name) + "{" + lag + "} ";
    const size_t at = page.find(head);
    REQUIRE(at != std::string::npos);
    const double t = std::stod(page.substr(at + head.size(), 30));
    CHECK(t <= 1'700'000'100.0);
    CHECK(t > 1'700'000'100.0 - 30);
  }
  CHECK(Contains(page, "warden_action_runs_total{action=\"restart\",result=\"ok\"} 1"));
  CHECK(Contains(page, "warden_action_runs_total{action=\"restart\",result=\"fail\"} 0"));
  CHECK(Contains(page, "warden_action_blocked_total{action=\"restart\",reason=\"paused\"} 1"));
  CHECK(Contains(page, "warden_action_blocked_total{action=\"restart\",reason=\"mutex\"} 0"));
  CHECK(page.find("warden_action_blocked_total{action=\"page\"") == std::string::npos);
  CHECK(Contains(page, "warden_action_runs_total{action=\"page\",result=\"ok\"} 0"));
  CHECK(Contains(page, "warden_action_duration_seconds_bucket{action=\"restart\",le=\"+Inf\"} 1"));
  CHECK(Contains(page, "warden_action_duration_seconds_count{action=\"restart\"} 1"));
  CHECK(Contains(page, "warden_paused 1"));
  CHECK(Contains(page, "warden_queue_halted 0"));
  CHECK(Contains(page, "warden_mutex_held 0"));   // mode = off by default
  CHECK(Contains(page, "warden_job_queue_length 0"));
  CHECK(page.find("warden_fluentd_") == std::string::npos);   // no [fluentd]

  // A crit value is numeric: a value series once the check has one.
  rig.guard.SetPaused(false, "");
  REQUIRE(rig.scheduler->RunNow("lag \"main\"", [](const Measurement&, const Verdict&) {}));
  check->pending[0](Measurement::Value("50.5"));
  check->pending.clear();
  const std::string again = RenderMetrics(s, now_ms);
  CHECK(Contains(again, "warden_check_value{" + lag + "} 50.5"));
  CHECK(Contains(again, "warden_check_state{" + lag + ",state=\"crit\"} 1"));
  CHECK(Contains(again, "warden_paused 0"));
}

namespace {

// The page without its timestamp lines (which a cached page renders with
// the offset of the clocks it kept, within MetricsCache::kOffsetSlackMs).
std::string WithoutTimes(const std::string& page) {
  std::istringstream in(page);
  std::string l, out;
  while (std::getline(in, l)) {
    if (l.find("_timestamp_seconds{") == std::string::npos) out += l + "\n";
  }
  return out;
}

double TimeOf(const std::string& page, const std::string& head) {
  const size_t at = page.find(head);
  REQUIRE(at != std::string::npos);
  return std::stod(page.substr(at + head.size(), 30));
}

// A scheduler started on one manual check whose first run is in flight,
// and the sources of a cached page over it.
struct CachedRig {
  Rig rig;
  std::shared_ptr<ManualCheck> check = std::make_shared<ManualCheck>();
  std::shared_ptr<Config> config = MakeConfig(check, std::make_shared<ManualAction>());
  MetricsCache cache;
  MetricsSources sources;
  CachedRig() {
    rig.scheduler->Start(config);
    rig.Spin();
    REQUIRE(check->pending.size() == 1);
    sources.config = config.get();
    sources.scheduler = rig.scheduler.get();
    sources.cache = &cache;
  }
};

}  // namespace

TEST_CASE("metrics: a cached page shows what changed since the last one", "[metrics]") {
  CachedRig c;
  Rig& rig = c.rig;
  auto& check = c.check;
  auto& config = c.config;
  MetricsCache& cache = c.cache;
  MetricsSources& s = c.sources;
  MetricsSources fresh = s;
  fresh.cache = nullptr;
  // A wall clock that moves with the steady one, as wardend's does.
  const auto t0 = std::chrono::steady_clock::now();
  auto now = [t0](std::int64_t step_ms = 0) {
    return 1'700'000'100'000 + step_ms +
           std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0)
               .count();
  };
  const std::string lag = "check=\"lag \\\"main\\\"\"";
  auto state_is = [&](const std::string& page, const char* state) {
    for (const char* st : {"pending", "ok", "warn", "crit", "error", "skipped", "disabled"}) {
      const std::string line = "warden_check_state{" + lag + ",state=\"" + st + "\"} " +
                               (std::string(st) == state ? "1" : "0");
      if (!Contains(page, line)) return false;
    }
    return true;
  };

  std::string page = RenderMetrics(s, now());
  CHECK(state_is(page, "pending"));
  CHECK(Contains(page, "warden_check_runs_total{" + lag + "} 1"));
  CHECK(page.find("warden_check_value{") == std::string::npos);
  CHECK(cache.reused() == 0);

  // ok, with a value: the next page says so, through the same cache.
  check->pending[0](Measurement::Value("5"));
  check->pending.clear();
  page = RenderMetrics(s, now());
  INFO(page);
  CHECK(state_is(page, "ok"));
  CHECK(Contains(page, "warden_check_value{" + lag + "} 5"));
  CHECK(Contains(page, "warden_check_errors_total{" + lag + "} 0"));
  const double ok_since =
      TimeOf(page, "warden_check_last_change_timestamp_seconds{" + lag + "} ");
  CHECK(WithoutTimes(page) == WithoutTimes(RenderMetrics(fresh, now())));

  // Nothing changed: every series of the check is the last page's.
  const std::uint64_t reused = cache.reused(), rendered = cache.rendered();
  CHECK(RenderMetrics(s, now()) == page);
  // (its value, and three families whole: states, last changes, errors)
  CHECK(cache.reused() == reused + 4);
  CHECK(cache.rendered() == rendered);

  // crit, then an error: state, value, runs, errors and the last change
  // move; a page rendered afresh says the same.
  REQUIRE(rig.scheduler->RunNow("lag \"main\"", [](const Measurement&, const Verdict&) {}));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));   // a later change
  check->pending[0](Measurement::Value("50.5"));
  check->pending.clear();
  page = RenderMetrics(s, now());
  CHECK(state_is(page, "crit"));
  CHECK(Contains(page, "warden_check_value{" + lag + "} 50.5"));
  CHECK(Contains(page, "warden_check_runs_total{" + lag + "} 2"));
  CHECK(TimeOf(page, "warden_check_last_change_timestamp_seconds{" + lag + "} ") > ok_since);
  CHECK(WithoutTimes(page) == WithoutTimes(RenderMetrics(fresh, now())));
  REQUIRE(rig.scheduler->RunNow("lag \"main\"", [](const Measurement&, const Verdict&) {}));
  check->pending[0](Measurement::Error("access denied"));
  check->pending.clear();
  page = RenderMetrics(s, now());
  CHECK(state_is(page, "error"));
  CHECK(Contains(page, "warden_check_errors_total{" + lag + "} 1"));
  CHECK(WithoutTimes(page) == WithoutTimes(RenderMetrics(fresh, now())));

  // The wall clock stepped (a day on): the times are rendered again.
  const double before = TimeOf(page, "warden_check_last_run_timestamp_seconds{" + lag + "} ");
  page = RenderMetrics(s, now(86'400'000));
  CHECK(TimeOf(page, "warden_check_last_run_timestamp_seconds{" + lag + "} ") ==
        Approx(before + 86'400).margin(1));

  // A reload that puts another check in its place: the page names the new
  // one only, in its own state.
  auto other = std::make_shared<Config>(*config);
  other->checks[0].common.name = "replica";
  other->checks[0].digest = "d2";
  other->IndexChecks();
  rig.scheduler->Reload(other);
  s.config = fresh.config = other.get();
  page = RenderMetrics(s, now());
  CHECK(page.find("lag") == std::string::npos);
  CHECK(Contains(page, "warden_check_state{check=\"replica\",state=\"pending\"} 1"));
  CHECK(Contains(page, "warden_check_runs_total{check=\"replica\"} 0"));
  CHECK(WithoutTimes(page) == WithoutTimes(RenderMetrics(fresh, now())));
}

TEST_CASE("metrics: a page's pieces are the cache's, and a page kept is never written over",
          "[metrics]") {
  CachedRig c;
  Rig& rig = c.rig;
  auto& check = c.check;
  MetricsSources& s = c.sources;
  check->pending[0](Measurement::Value("5"));
  check->pending.clear();
  const std::int64_t now = 1'700'000'100'000;
  const MetricsPage first = RenderMetricsPieces(s, now);
  const std::string first_text = first.Join();
  CHECK(first.size() == first_text.size());
  CHECK(first.pieces.size() > 3);
  // Nothing changed: the families kept whole are the same strings, shared
  // by both pages, not copies.
  const MetricsPage second = RenderMetricsPieces(s, now);
  size_t shared = 0;
  for (const auto& p : second.pieces) {
    for (const auto& q : first.pieces) shared += p.get() == q.get();
  }
  CHECK(shared == 3);   // states, last changes, errors
  // A run, a crit: the next page is rendered while both pages are still
  // held (an answer being sent): neither changes under it.
  REQUIRE(rig.scheduler->RunNow("lag \"main\"", [](const Measurement&, const Verdict&) {}));
  check->pending[0](Measurement::Value("50"));
  check->pending.clear();
  const std::string second_text = second.Join();
  const MetricsPage third = RenderMetricsPieces(s, now + 1000);
  CHECK(first.Join() == first_text);
  CHECK(second.Join() == second_text);
  CHECK(Contains(first_text, "warden_check_value{check=\"lag \\\"main\\\"\"} 5"));
  CHECK(Contains(third.Join(), "warden_check_value{check=\"lag \\\"main\\\"\"} 50"));
  CHECK(Contains(third.Join(), "warden_check_state{check=\"lag \\\"main\\\"\",state=\"crit\"} 1"));
  // Pages let go of: the next one is rendered into their memory, and says
  // what a page rendered afresh says.
  MetricsSources fresh = s;
  fresh.cache = nullptr;
  const std::string fourth = RenderMetrics(s, now + 2000);
  CHECK(WithoutTimes(fourth) == WithoutTimes(RenderMetrics(fresh, now + 2000)));
  std::set<const std::string*> before;
  for (const auto& p : RenderMetricsPieces(s, now + 3000).pieces) before.insert(p.get());
  size_t again = 0;
  for (const auto& p : RenderMetricsPieces(s, now + 4000).pieces) again += before.count(p.get());
  CHECK(again == before.size());
}

TEST_CASE("metrics: a scrape keeps its connection, a request with a body closes it",
          "[metrics][http]") {
  LoopRuntime lr;
  int renders = 0;
  MetricsConfig mc;
  mc.enabled = true;
  mc.listen = "127.0.0.1:0";
  mc.host = "127.0.0.1";
  mc.port = 0;
  DiskWriter writer(lr.loop);
  MetricsExporter exporter(lr.loop, mc, &writer, [&renders] {
    ++renders;
    // In two pieces: sent one after the other (one writev), not joined.
    MetricsPage page;
    page.pieces = {std::make_shared<const std::string>("warden_up"),
                   std::make_shared<const std::string>(" 1\n")};
    return page;
  });
  REQUIRE(exporter.Start().ok());
  const int port = exporter.port();
  // A client of plain sockets on a thread of its own, the loop on this one.
  struct Got {
    std::vector<std::string> answers;   // each answer's head and body
    bool closed_after_body = false;
    std::string error;
  } got;
  std::atomic<bool> done{false};
  std::thread client([&] {
    auto fail = [&](const std::string& what) {
      got.error = what + ": " + std::strerror(errno);
      done = true;
    };
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return fail("connect");
    // One answer: its head, then Content-Length bytes of body.
    // (head: a HEAD's answer, a head with a Content-Length and no body)
    auto answer = [&](const std::string& request, bool head = false) -> bool {
      if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size())) {
        fail("send");
        return false;
      }
      std::string in;
      char buf[4096];
      size_t head_end = std::string::npos;
      size_t want = 0;
      while (head_end == std::string::npos || in.size() < head_end + 4 + want) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
          fail("recv (" + std::to_string(in.size()) + " bytes so far)");
          return false;
        }
        in.append(buf, static_cast<size_t>(n));
        if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
          const size_t cl = in.find("Content-Length: ");
          if (cl != std::string::npos && !head) want = std::stoul(in.substr(cl + 16));
        }
      }
      got.answers.push_back(in);
      return true;
    };
    const std::string scrape = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    if (answer(scrape) && answer(scrape) &&
        answer("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", true) &&
        answer("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")) {
      char c;
      got.closed_after_body = ::recv(fd, &c, 1, 0) == 0;
    }
    ::close(fd);
    done = true;
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  ev_timer tick;
  ev_timer_init(&tick, [](struct ev_loop*, ev_timer*, int) {}, 0.01, 0.01);
  ev_timer_start(lr.loop, &tick);
  while (!done && std::chrono::steady_clock::now() < deadline) ev_run(lr.loop, EVRUN_ONCE);
  ev_timer_stop(lr.loop, &tick);
  client.join();
  INFO(got.error);
  REQUIRE(got.error.empty());
  REQUIRE(got.answers.size() == 4);
  // Both scrapes answered on the one connection, neither closing it.
  for (int i : {0, 1}) {
    CHECK(got.answers[i].rfind("HTTP/1.1 200", 0) == 0);
    CHECK(got.answers[i].find("\r\n\r\nwarden_up 1\n") != std::string::npos);
    CHECK(got.answers[i].find("Content-Length: 12\r\n") != std::string::npos);
    CHECK(got.answers[i].find("Connection: close") == std::string::npos);
  }
  // HEAD: GET's status and length, no body (else the next answer would
  // start with it), the connection kept.
  CHECK(got.answers[2].rfind("HTTP/1.1 200", 0) == 0);
  CHECK(got.answers[2].find("Content-Length: 12\r\n") != std::string::npos);
  CHECK(got.answers[2].size() == got.answers[2].find("\r\n\r\n") + 4);
  CHECK(got.answers[3].rfind("HTTP/1.1 405", 0) == 0);
  CHECK(got.answers[3].find("Allow: GET, HEAD\r\n") != std::string::npos);
  CHECK(got.closed_after_body);
}

TEST_CASE("metrics: the exporter serves GET /metrics and nothing else", "[metrics][http]") {
  LoopRuntime lr;
  int renders = 0;
  MetricsConfig mc;
  mc.enabled = true;
  mc.listen = "127.0.0.1:0";
  mc.host = "127.0.0.1";
  mc.port = 0;
  DiskWriter writer(lr.loop);
  MetricsExporter exporter(lr.loop, mc, &writer, [&renders] {
    ++renders;
    return std::string("# HELP warden_up x\n# TYPE warden_up gauge\nwarden_up 1\n");
  });
  REQUIRE(exporter.Start().ok());
  REQUIRE(exporter.port() > 0);
  const std::string base = "http://127.0.0.1:" + std::to_string(exporter.port());
  HttpClient client(lr.loop);
  std::map<int, HttpResponse> got;   // by the order asked (answers come in any order)
  int asked = 0;
  auto ask = [&](HttpRequest::Method m, const std::string& path) {
    HttpRequest r;
    r.method = m;
    r.url = base + path;
    r.timeout = Duration(5000);
    client.Start(r, [&got, i = asked++](HttpResponse resp) { got[i] = std::move(resp); });
  };
  auto wait = [&](size_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    ev_timer tick;
    ev_timer_init(&tick, [](struct ev_loop*, ev_timer*, int) {}, 0.02, 0.02);
    ev_timer_start(lr.loop, &tick);
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
      ev_run(lr.loop, EVRUN_ONCE);
    }
    ev_timer_stop(lr.loop, &tick);
    REQUIRE(got.size() == n);
  };
  ask(HttpRequest::Method::kGet, "/metrics");
  wait(1);
  REQUIRE(got[0].ok);
  CHECK(got[0].http_status == 200);
  CHECK(got[0].body == "# HELP warden_up x\n# TYPE warden_up gauge\nwarden_up 1\n");
  ask(HttpRequest::Method::kGet, "/metrics?x=1");   // the query is no other path
  ask(HttpRequest::Method::kGet, "/");
  ask(HttpRequest::Method::kGet, "/metrics/x");
  ask(HttpRequest::Method::kPost, "/metrics");
  wait(5);
  CHECK(got[1].http_status == 200);
  CHECK(got[2].http_status == 404);
  CHECK(got[3].http_status == 404);
  CHECK(got[4].http_status == 405);
  // Two scrapes within kReuse: one render.
  CHECK(renders == 1);
}

TEST_CASE("metrics: an address in use is an error naming it", "[metrics][http]") {
  LoopRuntime lr;
  HttpServer first(lr.loop, HttpServer::Options{}, [](std::string_view, std::string_view) {
    return HttpServer::Reply{};
  });
  REQUIRE(first.Start().ok());
  HttpServer::Options o;
  o.port = first.port();
  HttpServer second(lr.loop, o, [](std::string_view, std::string_view) {
    return HttpServer::Reply{};
  });
  Status s = second.Start();
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("127.0.0.1:" + std::to_string(first.port())) != std::string::npos);
  CHECK(s.message().find("cannot serve") != std::string::npos);
  HttpServer::Options bad;
  bad.host = "db1.example.com";
  HttpServer third(lr.loop, bad, [](std::string_view, std::string_view) {
    return HttpServer::Reply{};
  });
  CHECK(third.Start().message().find("not a numeric IP address") != std::string::npos);
}

TEST_CASE("metrics: the textfile is written atomically on the disk thread", "[metrics]") {
  LoopRuntime lr;
  warden::testing::TempDir dir;
  MetricsConfig mc;
  mc.enabled = true;
  mc.textfile = dir / "warden.prom";
  mc.interval = Duration(1000);
  DiskWriter writer(lr.loop);
  int n = 0;
  MetricsExporter exporter(lr.loop, mc, &writer, [&n] {
    return "warden_n " + std::to_string(++n) + "\n";
  });
  REQUIRE(exporter.Start().ok());
  writer.Drain();
  auto text = ReadSmallFile(mc.textfile);
  REQUIRE(text.ok());
  CHECK(*text == "warden_n 1\n");
  CHECK(exporter.textfile_error().empty());

  // A directory that is gone: the error is kept and said, not fatal.
  MetricsConfig gone = mc;
  gone.textfile = dir / "no-such-dir/warden.prom";
  MetricsExporter broken(lr.loop, gone, &writer, [] { return std::string("x 1\n"); });
  REQUIRE(broken.Start().ok());
  writer.Drain();
  CHECK(broken.textfile_error().find("no-such-dir") != std::string::npos);
}
