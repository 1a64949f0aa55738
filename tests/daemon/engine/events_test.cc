#include "daemon/engine/events.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/log_capture.h"
#include "tests/support/temp_dir.h"

namespace {

using warden::EventLog;
using warden::testing::TempDir;

// A disk with `room` bytes left: writes take what fits (a short write),
// then fail with ENOSPC, as write(2) does on a full file system.
struct Disk {
  std::size_t room = std::numeric_limits<std::size_t>::max();
  int failed = 0;
  EventLog::WriteFn Fn() {
    return [this](int fd, const void* data, std::size_t size) -> ssize_t {
      if (room == 0) {
        ++failed;
        errno = ENOSPC;
        return -1;
      }
      std::size_t n = std::min(size, room);
      ssize_t w = ::write(fd, data, n);
      if (w > 0) room -= static_cast<std::size_t>(w);
      return w;
    };
  }
};

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every line of the file is a whole event; their seqs, in file order.
std::vector<std::uint64_t> Seqs(const std::string& path) {
  std::string all = ReadAll(path);
  REQUIRE((all.empty() || all.back() == '\n'));
  std::vector<std::uint64_t> seqs;
  for (const auto& line : Lines(path)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    INFO(line);
    REQUIRE_FALSE(j.is_discarded());
    seqs.push_back(j["seq"].get<std::uint64_t>());
  }
  return seqs;
}

using warden::testing::LogCapture;

}  // namespace

TEST_CASE("a full disk never leaves part of an event in the file, and loses none", "[events]") {
  TempDir dir;
  const std::string path = dir / "events.jsonl";
  EventLog log;
  REQUIRE(log.Open(path, dir.path(), "h").ok());
  Disk disk;
  log.SetWriteForTest(disk.Fn());
  std::vector<std::uint64_t> handed;   // what subscribers (fluentd) got
  log.Subscribe([&](const nlohmann::json& e) { handed.push_back(e["seq"].get<std::uint64_t>()); });
  LogCapture logs;

  for (int i = 0; i < 3; ++i) log.Emit("test.event", {{"i", i}});
  const std::string before = ReadAll(path);
  // Room for half a line: the write comes up short, then fails.
  disk.room = 40;
  for (int i = 3; i < 8; ++i) log.Emit("test.event", {{"i", i}});
  CHECK(ReadAll(path) == before);   // the partial line was cut back
  CHECK(Seqs(path) == std::vector<std::uint64_t>{1, 2, 3});
  auto health = log.write_health();
  CHECK(health.error == "No space left on device");
  CHECK(health.since_ms > 0);
  CHECK(health.held == 5);
  CHECK(health.dropped == 0);
  CHECK(handed.size() == 8);   // subscribers are not held back
  // Said once, not once per event.
  CHECK(logs.Count("cannot write events to") == 1);

  // Space returns: the held ones go first, in order, then the new one.
  disk.room = std::numeric_limits<std::size_t>::max();
  log.Emit("test.event", {{"i", 8}});
  CHECK(Seqs(path) == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9});
  health = log.write_health();
  CHECK(health.error.empty());
  CHECK(health.held == 0);
  CHECK(logs.Count("is written again after") == 1);

  // Flush alone writes them too (wardend's retry timer), and a short write
  // at a line's very end is cut back as well.
  std::string complete = ReadAll(path);
  disk.room = 10;
  log.Emit("test.event", {{"i", 9}});
  CHECK(ReadAll(path) == complete);
  CHECK(log.write_health().held == 1);
  disk.room = std::numeric_limits<std::size_t>::max();
  log.Flush();
  CHECK(Seqs(path) == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(logs.Count("cannot write events to") == 2);
}

TEST_CASE("events beyond what is held are one range, said by one events.dropped", "[events]") {
  TempDir dir;
  const std::string path = dir / "events.jsonl";
  EventLog log;
  REQUIRE(log.Open(path, dir.path(), "h").ok());
  Disk disk;
  log.SetWriteForTest(disk.Fn());
  LogCapture logs;
  log.Emit("test.event", {});   // seq 1
  disk.room = 0;
  const std::uint64_t total = EventLog::kHeldEvents + 25;
  for (std::uint64_t i = 0; i < total; ++i) log.Emit("test.event", {{"i", i}});
  auto health = log.write_health();
  CHECK(health.held == EventLog::kHeldEvents);
  CHECK(health.dropped == 25);
  CHECK(logs.Count("the most kept") == 1);

  disk.room = std::numeric_limits<std::size_t>::max();
  log.Flush();
  auto seqs = Seqs(path);
  // 1, the held 2 .. kHeldEvents + 1, then events.dropped for the rest.
  REQUIRE(seqs.size() == EventLog::kHeldEvents + 2);
  for (std::size_t i = 0; i + 1 < seqs.size(); ++i) REQUIRE(seqs[i] == i + 1);
  const std::uint64_t first_dropped = EventLog::kHeldEvents + 2;
  const std::uint64_t last_dropped = first_dropped + 24;
  CHECK(seqs.back() == last_dropped + 1);
  auto dropped = nlohmann::json::parse(Lines(path).back());
  CHECK(dropped["event"] == "events.dropped");
  CHECK(dropped["count"] == 25);
  CHECK(dropped["first_seq"] == first_dropped);
  CHECK(dropped["last_seq"] == last_dropped);
  CHECK(dropped["from"] == "events_file");
  CHECK(log.write_health().dropped == 25);
  CHECK(log.write_health().error.empty());

  // And a new event after it, kept as usual.
  log.Emit("test.event", {});
  CHECK(Seqs(path).back() == last_dropped + 2);
}

TEST_CASE("a partial last line left by a crash is cut at open, and seq goes on after the "
          "last whole event",
          "[events]") {
  TempDir dir;
  const std::string path = dir / "events.jsonl";
  {
    EventLog log;
    REQUIRE(log.Open(path, dir.path(), "h").ok());
    for (int i = 0; i < 3; ++i) log.Emit("test.event", {{"i", i}});
  }
  {
    std::ofstream out(path, std::ios::app);
    out << R"({"event":"test.event","host":"h","seq":4,"ti)";   // killed mid-write
  }
  LogCapture logs;
  EventLog log;
  REQUIRE(log.Open(path, dir.path(), "h").ok());
  CHECK(logs.Count("cut 44 bytes of a partial last line") == 1);
  log.Emit("test.event", {{"i", 3}});
  CHECK(Seqs(path) == std::vector<std::uint64_t>{1, 2, 3, 4});

  // A file that is nothing but a partial line is emptied.
  const std::string only = dir / "only.jsonl";
  { std::ofstream(only) << R"({"event":"te)"; }
  EventLog other;
  REQUIRE(other.Open(only, dir.path(), "h").ok());
  other.Emit("test.event", {});
  CHECK(Lines(only).size() == 1);
  CHECK(Seqs(only).size() == 1);
}
