// ForwardSender against tests/fluentd/receiver.cc: a decoder built on
// msgpack-cxx, independent of the nlohmann encoder the sender uses.
#include "daemon/forward_sender.h"

#include <ev.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <msgpack.hpp>
#include <set>
#include <thread>

#include "support/temp_dir.h"

using namespace warden;
using warden::testing::TempDir;

namespace {

class Receiver {
 public:
  explicit Receiver(const TempDir& dir, const std::string& mode = "ack") : dir_(dir) {
    SetMode(mode);
    std::string out = dir / "receiver.stdout";
    pid_ = ::fork();
    if (pid_ == 0) {
      std::freopen(out.c_str(), "w", stdout);
      ::execl(FLUENTD_RECEIVER, FLUENTD_RECEIVER, "--port", "0", "--out",
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
    while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
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
