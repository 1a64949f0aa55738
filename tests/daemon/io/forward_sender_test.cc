// ForwardSender against tests/fluentd/receiver.cc: a decoder built on
// msgpack-cxx, independent of the nlohmann encoder the sender uses.
#include "daemon/io/forward_sender.h"

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <msgpack.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "daemon/base/disk_writer.h"
#include "tests/support/local_socket.h"
#include "tests/support/log_capture.h"
#include "tests/support/temp_dir.h"

using namespace warden;
using warden::testing::FreeLoopbackPort;
using warden::testing::TempDir;

namespace {

class Receiver {
 public:
  explicit Receiver(const TempDir& dir, const std::string& mode = "ack", int port = 0)
      : dir_(dir) {
    SetMode(mode);
    std::string out = dir / "receiver.stdout";
    std::string port_arg = std::to_string(port);
    pid_ = ::fork();
    if (pid_ == 0) {
      std::freopen(out.c_str(), "w", stdout);
      ::execl(FLUENTD_RECEIVER, FLUENTD_RECEIVER, "--port", port_arg.c_str(), "--out",
              (dir / "received.jsonl").c_str(), "--control", (dir / "control").c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500 && port_ == 0; ++i) {
      std::ifstream in(out);
      std::string line;
      if (std::getline(in, line) && !in.eof()) port_ = std::stoi(line);
      else std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(port_ > 0);
  }
  ~Receiver() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  void SetMode(const std::string& mode) { dir_.Write("control", mode + "\n", 0644); }
  int port() const { return port_; }
  std::vector<nlohmann::json> Received() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(dir_ / "received.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded()) out.push_back(std::move(j));   // else: a line being written
    }
    return out;
  }

 private:
  const TempDir& dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// Runs the loop until pred() or the timeout; returns pred().
bool RunUntil(struct ev_loop* loop, const std::function<bool()>& pred, double timeout) {
  struct Ctx {
    const std::function<bool()>* pred;
    double deadline;
  } ctx{&pred, ev_now(loop) + timeout};
  ev_timer t;
  ev_timer_init(&t, [](struct ev_loop* l, ev_timer* w, int) {
    auto* c = static_cast<Ctx*>(w->data);
    if ((*c->pred)() || ev_now(l) > c->deadline) ev_break(l, EVBREAK_ONE);
  }, 0.01, 0.01);
  t.data = &ctx;
  ev_timer_start(loop, &t);
  ev_run(loop, 0);
  ev_timer_stop(loop, &t);
  return pred();
}

FluentdConfig ConfigFor(int port) {
  FluentdConfig cfg;
  cfg.enabled = true;
  cfg.host = "127.0.0.1";
  cfg.port = port;
  cfg.address = "127.0.0.1:" + std::to_string(port);
  return cfg;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

using warden::testing::LogCapture;

nlohmann::json Event(std::uint64_t seq, const std::string& name) {
  return {{"host", "db-test"}, {"event", name}, {"seq", seq},
          {"time", "2026-11-25T17:02:44.854Z"}, {"version", "0.1.0"}, {"check", "c1"}};
}

}  // namespace

TEST_CASE("forward: an entry's time is msgpack ext 0 (EventTime)", "[fluentd]") {
  std::string entry = ForwardSender::EncodeEntry(Event(7, "check.state"));
  msgpack::object_handle oh = msgpack::unpack(entry.data(), entry.size());
  const msgpack::object& o = oh.get();
  REQUIRE(o.type == msgpack::type::ARRAY);
  REQUIRE(o.via.array.size == 2);
  const msgpack::object& t = o.via.array.ptr[0];
  REQUIRE(t.type == msgpack::type::EXT);
  CHECK(t.via.ext.type() == 0);
  REQUIRE(t.via.ext.size == 8);
  const auto* p = reinterpret_cast<const unsigned char*>(t.via.ext.data());
  std::uint32_t sec = (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) |
                      (std::uint32_t(p[2]) << 8) | p[3];
  std::uint32_t nsec = (std::uint32_t(p[4]) << 24) | (std::uint32_t(p[5]) << 16) |
                       (std::uint32_t(p[6]) << 8) | p[7];
  CHECK(sec == 1795626164u);   // 2026-11-25T17:02:44Z
  CHECK(nsec == 854000000u);
  CHECK(o.via.array.ptr[1].type == msgpack::type::MAP);
  CHECK(ForwardSender::Family(Event(1, "check.state")) == "check");
  CHECK(ForwardSender::Family(Event(1, "events.dropped")) == "events");
}

TEST_CASE("forward: events arrive in order, tagged, acked, and leave the buffer", "[fluentd]") {
  TempDir dir;
  Receiver rx(dir);
  struct ev_loop* loop = ev_loop_new(0);
  FluentdConfig cfg;
  cfg.enabled = true;
  cfg.host = "127.0.0.1";
  cfg.port = rx.port();
  cfg.address = "127.0.0.1:" + std::to_string(rx.port());
  {
    ForwardSender s(loop, cfg);
    REQUIRE(s.Open(dir / "buffer").ok());
    s.Start();
    const char* names[] = {"check.state", "action.start", "action.finish", "check.state",
                           "check.state", "mutex.state"};
    for (std::uint64_t i = 1; i <= 60; ++i) s.OnEvent(Event(i, names[i % 6]));
    CHECK(RunUntil(loop, [&] { return s.stats().backlog_events == 0; }, 20));
    FluentdStats st = s.stats();
    CHECK(st.connected);
    CHECK(st.events_acked == 60);
    CHECK(st.chunks_acked == st.chunks_sent);
    CHECK(st.last_ack.has_value());
    s.Stop();
  }
  ev_loop_destroy(loop);
  auto got = rx.Received();
  REQUIRE(got.size() == 60);
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& r = got[i];
    INFO(r.dump());
    CHECK(r["record"]["seq"] == i + 1);
    CHECK(r["mode"] == "packed");
    CHECK(r["time_type"] == "eventtime");
    CHECK(r["sec"] == 1795626164u);
    CHECK(r["nsec"] == 854000000u);
    CHECK(r["size_ok"] == true);
    CHECK(r["chunk"].is_string());
    std::string family = r["record"]["event"].get<std::string>();
    family = family.substr(0, family.find('.'));
    CHECK(r["tag"] == "warden." + family);
  }
}

TEST_CASE("forward: the buffer is synced off the loop, and a record goes out once synced",
          "[fluentd][disk_writer]") {
  TempDir dir;
  Receiver rx(dir);
  struct ev_loop* loop = ev_loop_new(0);
  {
    DiskWriter writer(loop);
    ForwardSender s(loop, ConfigFor(rx.port()));
    s.SetWriter(&writer);
    REQUIRE(s.Open(dir / "buffer").ok());
    s.Start();
    REQUIRE(RunUntil(loop, [&] { return s.stats().connected; }, 10));
    // The disk thread is busy with a write that takes as long as we like
    // (a saturated disk): the sync queues behind it.
    std::atomic<bool> gate{false};
    std::atomic<bool> blocked{false};
    writer.Post([&] {
      blocked = true;
      while (!gate) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return Status::Ok();
    });
    REQUIRE(RunUntil(loop, [&] { return blocked.load(); }, 5));
    for (std::uint64_t i = 1; i <= 20; ++i) s.OnEvent(Event(i, "check.state"));
    // The loop goes on (this RunUntil returns); nothing is sent unsynced.
    auto started = std::chrono::steady_clock::now();
    CHECK_FALSE(RunUntil(loop, [&] { return !rx.Received().empty(); }, 1.0));
    CHECK(Seconds(started) < 5);
    CHECK(s.stats().backlog_events == 20);
    gate = true;
    CHECK(RunUntil(loop, [&] { return s.stats().backlog_events == 0; }, 20));
    s.Stop();
    writer.Stop();
  }
  ev_loop_destroy(loop);
  auto got = rx.Received();
  REQUIRE(got.size() == 20);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i]["record"]["seq"] == i + 1);
}

TEST_CASE("forward: a fluentd that never acks gets the chunks again", "[fluentd]") {
  TempDir dir;
  Receiver rx(dir, "noack");
  struct ev_loop* loop = ev_loop_new(0);
  FluentdConfig cfg;
  cfg.enabled = true;
  cfg.host = "127.0.0.1";
  cfg.port = rx.port();
  cfg.address = "127.0.0.1:" + std::to_string(rx.port());
  cfg.ack_timeout = Duration(300);
  {
    ForwardSender s(loop, cfg);
    REQUIRE(s.Open(dir / "buffer").ok());
    s.Start();
    for (std::uint64_t i = 1; i <= 10; ++i) s.OnEvent(Event(i, "check.state"));
    RunUntil(loop, [] { return false; }, 1.0);
    CHECK(s.stats().backlog_events == 10);
    CHECK(s.stats().last_error.find("no ack") != std::string::npos);
    CHECK(rx.Received().empty());
    rx.SetMode("ack");
    CHECK(RunUntil(loop, [&] { return s.stats().backlog_events == 0; }, 40));
    s.Stop();
  }
  ev_loop_destroy(loop);
  auto got = rx.Received();
  REQUIRE(got.size() >= 10);
  std::set<std::uint64_t> seqs;
  for (const auto& r : got) seqs.insert(r["record"]["seq"].get<std::uint64_t>());
  CHECK(seqs.size() == 10);
}

TEST_CASE("forward: an HTTP answer closes the connection at once, and the chunk goes again",
          "[fluentd]") {
  TempDir dir;
  Receiver rx(dir, "answer-http");   // a wrong port: an HTTP server answers the chunk
  struct ev_loop* loop = ev_loop_new(0);
  FluentdConfig cfg = ConfigFor(rx.port());
  cfg.ack_timeout = Duration(60'000);
  {
    LogCapture log;
    ForwardSender s(loop, cfg);
    REQUIRE(s.Open(dir / "buffer").ok());
    auto t0 = std::chrono::steady_clock::now();
    s.Start();
    for (std::uint64_t i = 1; i <= 10; ++i) s.OnEvent(Event(i, "check.state"));
    REQUIRE(RunUntil(loop, [&] { return !s.stats().last_error.empty(); }, 10));
    // Given up on at the answer, not at ack_timeout (60 s) nor at 64 KB.
    CHECK(Seconds(t0) < 10);
    FluentdStats st = s.stats();
    INFO(st.ToJson().dump() << "\n" << log.out.str());
    CHECK(st.last_error == "fluentd at " + cfg.address +
                               " answered what cannot be a forward-protocol ack (not a msgpack "
                               "map: first byte 0x48): \"HTTP/1.1 400 Bad Request\\r\\n\\r\\n\"");
    CHECK(st.events_acked == 0);
    CHECK(st.backlog_events == 10);
    // One message per connection that got the answer, none per byte ('H'
    // and the rest are msgpack integers).
    CHECK(log.Count("answered what cannot be a forward-protocol ack") >= 1);
    CHECK(log.Count("answered what cannot be a forward-protocol ack") <= st.connects);
    CHECK(log.Count("ignoring an answer") == 0);
    CHECK(rx.Received().empty());
    rx.SetMode("ack");
    CHECK(RunUntil(loop, [&] { return s.stats().backlog_events == 0; }, 20));
    s.Stop();
  }
  ev_loop_destroy(loop);
  std::set<std::uint64_t> seqs;
  for (const auto& r : rx.Received()) seqs.insert(r["record"]["seq"].get<std::uint64_t>());
  CHECK(seqs.size() == 10);
}

TEST_CASE("forward: hundreds of acks in one read are all matched", "[fluentd]") {
  TempDir dir;
  // Acks held until the sender goes quiet, then written at once: with 512
  // chunks in flight (the most), one read brings up to 512 acks.
  Receiver rx(dir, "ack-burst");
  struct ev_loop* loop = ev_loop_new(0);
  {
    LogCapture log;
    ForwardSender s(loop, ConfigFor(rx.port()));
    REQUIRE(s.Open(dir / "buffer").ok());
    s.Start();
    // Families alternate: one chunk per event, 2,000 chunks.
    for (std::uint64_t i = 1; i <= 2000; ++i) {
      s.OnEvent(Event(i, i % 2 ? "check.state" : "action.start"));
    }
    CHECK(RunUntil(loop, [&] { return s.stats().backlog_events == 0; }, 60));
    FluentdStats st = s.stats();
    INFO(st.ToJson().dump() << "\n" << log.out.str());
    CHECK(st.chunks_sent == 2000);
    CHECK(st.chunks_acked == 2000);
    CHECK(st.events_acked == 2000);
    CHECK(st.connects == 1);   // no ack lost or refused on the way
    CHECK(st.last_error.empty());
    CHECK(log.Count("ignoring") == 0);
    s.Stop();
  }
  ev_loop_destroy(loop);
  // The receiver's writes: "acks N" each.
  std::ifstream out(dir / "receiver.stdout");
  std::string word;
  std::size_t n = 0, most = 0, total = 0;
  while (out >> word) {
    if (word == "acks" && out >> n) {
      most = std::max(most, n);
      total += n;
    }
  }
  CHECK(total <= 2000);
  CHECK(most >= 256);   // many acks did come in one write
  CHECK(rx.Received().size() == 2000);
}

TEST_CASE("forward: events buffered before Start are sent without a newer one",
          "[fluentd][disk_writer]") {
  // Appended while not started (no kick, so no sync yet): Start must sync
  // and send them by itself, not wait for the next event.
  TempDir dir;
  Receiver rx(dir);
  struct ev_loop* loop = ev_loop_new(0);
  {
    DiskWriter writer(loop);
    ForwardSender s(loop, ConfigFor(rx.port()));
    s.SetWriter(&writer);
    REQUIRE(s.Open(dir / "buffer").ok());
    for (std::uint64_t i = 1; i <= 30; ++i) s.OnEvent(Event(i, "check.state"));
    s.Start();
    CHECK(RunUntil(loop, [&] { return s.stats().backlog_events == 0; }, 20));
    s.Stop();
    writer.Stop();
  }
  ev_loop_destroy(loop);
  CHECK(rx.Received().size() == 30);
}

TEST_CASE("forward: nothing listening, then a receiver: the backlog is delivered", "[fluentd]") {
  TempDir dir;
  struct ev_loop* loop = ev_loop_new(0);
  FluentdConfig cfg;
  cfg.enabled = true;
  cfg.host = "127.0.0.1";
  cfg.port = 1;  // nothing listens there
  cfg.address = "127.0.0.1:1";
  {
    ForwardSender s(loop, cfg);
    REQUIRE(s.Open(dir / "buffer").ok());
    s.Start();
    for (std::uint64_t i = 1; i <= 5; ++i) s.OnEvent(Event(i, "job.start"));
    RunUntil(loop, [] { return false; }, 0.5);
    CHECK_FALSE(s.stats().connected);
    CHECK(s.stats().backlog_events == 5);
    CHECK(s.stats().last_error.find("connect") != std::string::npos);
    s.Stop();
  }
  // A new sender on the same buffer (a restarted wardend) delivers it.
  Receiver rx(dir);
  cfg.port = rx.port();
  cfg.address = "127.0.0.1:" + std::to_string(rx.port());
  {
    ForwardSender s(loop, cfg);
    REQUIRE(s.Open(dir / "buffer").ok());
    CHECK(s.stats().backlog_events == 5);
    s.Start();
    CHECK(RunUntil(loop, [&] { return s.stats().backlog_events == 0; }, 20));
    s.Stop();
  }
  ev_loop_destroy(loop);
  CHECK(rx.Received().size() == 5);
}

TEST_CASE("forward: a full buffer drops the oldest and reports how many", "[fluentd]") {
  TempDir dir;
  struct ev_loop* loop = ev_loop_new(0);
  FluentdConfig cfg;
  cfg.enabled = true;
  cfg.host = "127.0.0.1";
  cfg.port = 1;  // nothing listens: everything stays buffered
  cfg.address = "127.0.0.1:1";
  cfg.buffer_limit = 64 << 10;
  cfg.chunk_limit = 16 << 10;
  {
    ForwardSender s(loop, cfg);
    REQUIRE(s.Open(dir / "buffer").ok());
    std::uint64_t reported = 0;
    int calls = 0;
    s.SetOnDropped([&](std::uint64_t n) {
      reported += n;
      ++calls;
    });
    s.Start();
    for (std::uint64_t i = 1; i <= 2000; ++i) s.OnEvent(Event(i, "check.state"));
    RunUntil(loop, [&] { return calls > 0; }, 5);
    FluentdStats st = s.stats();
    CHECK(calls == 1);  // one report for one burst
    CHECK(reported > 0);
    CHECK(st.dropped_total == reported);
    CHECK(st.backlog_events + reported == 2000);
    CHECK(st.backlog_bytes <= (64u << 10));
    s.Stop();
  }
  ev_loop_destroy(loop);
}

TEST_CASE("forward: a chunk fluentd does not ack within ack_timeout is resent on a new connection",
          "[fluentd]") {
  TempDir dir;
  Receiver rx(dir, "store-noack");   // stores, never acks: a chunk fluentd silently lost
  struct ev_loop* loop = ev_loop_new(0);
  FluentdConfig cfg = ConfigFor(rx.port());
  cfg.ack_timeout = Duration(300);
  {
    ForwardSender s(loop, cfg);
    REQUIRE(s.Open(dir / "buffer").ok());
    auto t0 = std::chrono::steady_clock::now();
    s.Start();
    for (std::uint64_t i = 1; i <= 10; ++i) s.OnEvent(Event(i, "check.state"));
    CHECK(RunUntil(loop, [&] { return rx.Received().size() >= 20; }, 10));
    // Not before ack_timeout: the first copy came on the first connection.
    CHECK(Seconds(t0) >= 0.3);
    FluentdStats st = s.stats();
    CHECK(st.connects >= 2);
    CHECK(st.events_acked == 0);
    CHECK(st.backlog_events == 10);
    CHECK(st.last_error.find("no ack for chunk") != std::string::npos);
    CHECK(st.last_error.find("within 300ms") != std::string::npos);
    rx.SetMode("ack");
    CHECK(RunUntil(loop, [&] { return s.stats().backlog_events == 0; }, 20));
    s.Stop();
  }
  ev_loop_destroy(loop);
  // Every connection carried 1..10 in order, from the oldest unacked.
  std::map<int, std::vector<std::uint64_t>> by_conn;
  for (const auto& r : rx.Received()) {
    by_conn[r["conn"].get<int>()].push_back(r["record"]["seq"].get<std::uint64_t>());
  }
  REQUIRE(by_conn.size() >= 2);
  std::vector<std::uint64_t> all(10);
  for (std::uint64_t i = 0; i < 10; ++i) all[i] = i + 1;
  for (const auto& [conn, seqs] : by_conn) {
    INFO("conn " << conn);
    CHECK(seqs == all);
  }
}

TEST_CASE("forward: Drain waits for the ack of everything buffered", "[fluentd][stop]") {
  TempDir dir;
  Receiver rx(dir);
  struct ev_loop* loop = ev_loop_new(0);
  {
    ForwardSender s(loop, ConfigFor(rx.port()));
    REQUIRE(s.Open(dir / "buffer").ok());
    s.Start();
    for (std::uint64_t i = 1; i <= 50; ++i) s.OnEvent(Event(i, "check.state"));
    s.OnEvent(Event(51, "daemon.stop"));   // as wardend does, right before Drain
    std::optional<bool> drained;
    s.Drain(Duration(5000), [&](bool d) {
      drained = d;
      ev_break(loop, EVBREAK_ONE);
    });
    CHECK_FALSE(drained.has_value());        // asynchronous: there was a backlog
    ev_run(loop, 0);
    REQUIRE(drained.has_value());
    CHECK(*drained);
    CHECK(s.stats().backlog_events == 0);
    s.Stop();
  }
  ev_loop_destroy(loop);
  auto got = rx.Received();
  REQUIRE(got.size() == 51);
  CHECK(got.back()["record"]["event"] == "daemon.stop");
}

TEST_CASE("forward: Drain with nothing to wait for answers at once", "[fluentd][stop]") {
  TempDir dir;
  struct ev_loop* loop = ev_loop_new(0);
  {
    ForwardSender s(loop, ConfigFor(1));   // nothing listens
    REQUIRE(s.Open(dir / "buffer").ok());
    s.Start();
    std::optional<bool> drained;
    s.Drain(Duration(5000), [&](bool d) { drained = d; });
    CHECK(drained == std::optional<bool>(true));   // an empty buffer
    s.OnEvent(Event(1, "daemon.stop"));
    drained.reset();
    s.Drain(Duration(0), [&](bool d) { drained = d; });
    CHECK(drained == std::optional<bool>(false));  // stop_flush = 0: no wait
    CHECK(s.stats().backlog_events == 1);
    s.Stop();
  }
  ev_loop_destroy(loop);
}

TEST_CASE("forward: Drain in a long backoff connects at once", "[fluentd][stop]") {
  TempDir dir;
  int port = FreeLoopbackPort();
  struct ev_loop* loop = ev_loop_new(0);
  {
    ForwardSender s(loop, ConfigFor(port));
    REQUIRE(s.Open(dir / "buffer").ok());
    s.Start();
    for (std::uint64_t i = 1; i <= 5; ++i) s.OnEvent(Event(i, "check.state"));
    // The 5th failure in a row schedules the next attempt 2-4 s away.
    REQUIRE(RunUntil(loop, [&] { return s.stats().failed_attempts >= 5; }, 15));
    Receiver rx(dir, "ack", port);
    auto t0 = std::chrono::steady_clock::now();
    std::optional<bool> drained;
    s.Drain(Duration(10'000), [&](bool d) {
      drained = d;
      ev_break(loop, EVBREAK_ONE);
    });
    ev_run(loop, 0);
    INFO(s.stats().ToJson().dump());
    CHECK(drained == std::optional<bool>(true));
    CHECK(Seconds(t0) < 1.5);
    CHECK(s.stats().failed_attempts == 0);   // reset by the ack
    CHECK(rx.Received().size() == 5);
    s.Stop();
  }
  ev_loop_destroy(loop);
}

TEST_CASE("forward: Drain gives up at once when the next retry is past the deadline",
          "[fluentd][stop]") {
  TempDir dir;
  struct ev_loop* loop = ev_loop_new(0);
  {
    ForwardSender s(loop, ConfigFor(FreeLoopbackPort()));   // nothing listens
    REQUIRE(s.Open(dir / "buffer").ok());
    s.Start();
    s.OnEvent(Event(1, "check.state"));
    REQUIRE(RunUntil(loop, [&] { return s.stats().failed_attempts >= 5; }, 15));
    auto t0 = std::chrono::steady_clock::now();
    std::optional<bool> drained;
    // One immediate attempt (refused); the next would come 4-8 s later.
    s.Drain(Duration(3000), [&](bool d) {
      drained = d;
      ev_break(loop, EVBREAK_ONE);
    });
    ev_run(loop, 0);
    CHECK(drained == std::optional<bool>(false));
    CHECK(Seconds(t0) < 1.0);
    CHECK(s.stats().failed_attempts >= 6);
    CHECK(s.stats().backlog_events == 1);   // stays for the next start
    s.Stop();
  }
  ev_loop_destroy(loop);
}

TEST_CASE("forward: Drain ends at its deadline when fluentd does not ack", "[fluentd][stop]") {
  TempDir dir;
  Receiver rx(dir, "noack");
  struct ev_loop* loop = ev_loop_new(0);
  {
    ForwardSender s(loop, ConfigFor(rx.port()));   // ack_timeout 60 s: one connection
    REQUIRE(s.Open(dir / "buffer").ok());
    s.Start();
    for (std::uint64_t i = 1; i <= 5; ++i) s.OnEvent(Event(i, "check.state"));
    auto t0 = std::chrono::steady_clock::now();
    std::optional<bool> drained;
    s.Drain(Duration(600), [&](bool d) {
      drained = d;
      ev_break(loop, EVBREAK_ONE);
    });
    ev_run(loop, 0);
    double took = Seconds(t0);
    CHECK(drained == std::optional<bool>(false));
    CHECK(took >= 0.6);
    CHECK(took < 2.0);
    CHECK(s.stats().backlog_events == 5);
    s.Stop();
  }
  ev_loop_destroy(loop);
}
