#include "daemon/io/event_buffer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

using namespace warden;
using warden::testing::TempDir;

namespace {

std::string Entry(int i) { return "entry-" + std::to_string(i) + std::string(100, 'x'); }

// Reads everything from start(), acking nothing; returns the entries.
std::vector<std::string> ReadAll(EventBuffer& b, size_t max_bytes = 1 << 20) {
  std::vector<std::string> out;
  BufferPos p = b.start();
  std::vector<BufferedRecord> recs;
  for (;;) {
    REQUIRE(b.Read(p, max_bytes, &recs).ok());
    if (recs.empty()) break;
    for (const auto& r : recs) out.push_back(r.family + ":" + r.entry);
    p = recs.back().end;
  }
  return out;
}

void AckAll(EventBuffer& b) {
  std::vector<BufferedRecord> recs;
  for (;;) {
    BufferPos begin = b.start();
    REQUIRE(b.Read(begin, 1 << 20, &recs).ok());
    if (recs.empty()) break;
    b.Ack(begin, recs.back().end, recs.size());
  }
}

}  // namespace

TEST_CASE("event buffer: append, read in family runs, ack", "[fluentd][buffer]") {
  TempDir dir;
  EventBuffer b;
  REQUIRE(b.Open(dir / "buffer", 1 << 20).ok());
  REQUIRE(b.Append("check", Entry(1)).ok());
  REQUIRE(b.Append("check", Entry(2)).ok());
  REQUIRE(b.Append("action", Entry(3)).ok());
  REQUIRE(b.Sync().ok());
  CHECK(b.backlog_events() == 3);

  std::vector<BufferedRecord> recs;
  BufferPos begin = b.start();
  REQUIRE(b.Read(begin, 1 << 20, &recs).ok());
  REQUIRE(recs.size() == 2);  // stops where the family changes
  CHECK(recs[0].family == "check");
  CHECK(recs[1].entry == Entry(2));
  b.Ack(begin, recs.back().end, recs.size());
  CHECK(b.backlog_events() == 1);
  CHECK(ReadAll(b) == std::vector<std::string>{"action:" + Entry(3)});

  // max_bytes bounds a read (but one record always comes).
  REQUIRE(b.Append("action", Entry(4)).ok());
  REQUIRE(b.Read(b.start(), 10, &recs).ok());
  CHECK(recs.size() == 1);
}

TEST_CASE("event buffer: unacked events survive a reopen; acked ones do not", "[fluentd][buffer]") {
  TempDir dir;
  {
    EventBuffer b;
    REQUIRE(b.Open(dir / "buffer", 1 << 20).ok());
    for (int i = 0; i < 10; ++i) REQUIRE(b.Append("check", Entry(i)).ok());
    std::vector<BufferedRecord> recs;
    BufferPos begin = b.start();
    REQUIRE(b.Read(begin, 4 * 120, &recs).ok());
    REQUIRE(recs.size() == 4);
    b.Ack(begin, recs.back().end, recs.size());
    REQUIRE(b.SaveAck().ok());
    CHECK(b.backlog_events() == 6);
  }
  EventBuffer b;
  REQUIRE(b.Open(dir / "buffer", 1 << 20).ok());
  CHECK(b.backlog_events() == 6);
  auto all = ReadAll(b);
  REQUIRE(all.size() == 6);
  CHECK(all.front() == "check:" + Entry(4));
  CHECK(all.back() == "check:" + Entry(9));
}

TEST_CASE("event buffer: a torn last record is cut at open", "[fluentd][buffer]") {
  TempDir dir;
  {
    EventBuffer b;
    REQUIRE(b.Open(dir / "buffer", 1 << 20).ok());
    for (int i = 0; i < 3; ++i) REQUIRE(b.Append("job", Entry(i)).ok());
  }
  std::string seg;
  for (const auto& e : std::filesystem::directory_iterator(dir / "buffer")) {
    if (e.path().extension() == ".seg") seg = e.path();
  }
  REQUIRE(!seg.empty());
  auto size = std::filesystem::file_size(seg);
  REQUIRE(::truncate(seg.c_str(), static_cast<off_t>(size - 7)) == 0);  // crash mid-write
  EventBuffer b;
  REQUIRE(b.Open(dir / "buffer", 1 << 20).ok());
  CHECK(b.backlog_events() == 2);
  REQUIRE(b.Append("job", Entry(9)).ok());
  auto all = ReadAll(b);
  REQUIRE(all.size() == 3);
  CHECK(all.back() == "job:" + Entry(9));
}

TEST_CASE("event buffer: over the limit the oldest segments are dropped and counted",
          "[fluentd][buffer]") {
  TempDir dir;
  EventBuffer b;
  // 64 KB limit, 8 KB segments: ~120-byte records.
  REQUIRE(b.Open(dir / "buffer", 64 << 10, 8 << 10).ok());
  const int n = 2000;
  for (int i = 0; i < n; ++i) REQUIRE(b.Append("check", Entry(i)).ok());
  CHECK(b.backlog_bytes() <= (64u << 10));
  std::uint64_t dropped = b.TakeDropped();
  CHECK(dropped > 0);
  CHECK(b.TakeDropped() == 0);
  CHECK(b.dropped_total() == dropped);
  auto all = ReadAll(b);
  CHECK(all.size() + dropped == static_cast<size_t>(n));
  CHECK(all.size() == b.backlog_events());
  // The newest survive, in order.
  CHECK(all.back() == "check:" + Entry(n - 1));
  CHECK(all.front() == "check:" + Entry(static_cast<int>(dropped)));
  // Files on disk are bounded too.
  std::uint64_t on_disk = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "buffer")) {
    if (e.path().extension() == ".seg") on_disk += std::filesystem::file_size(e.path());
  }
  CHECK(on_disk <= (64u << 10));
}

TEST_CASE("event buffer: acked segments are deleted", "[fluentd][buffer]") {
  TempDir dir;
  EventBuffer b;
  REQUIRE(b.Open(dir / "buffer", 1 << 20, 4096).ok());
  for (int i = 0; i < 500; ++i) REQUIRE(b.Append(i % 3 ? "check" : "action", Entry(i)).ok());
  CHECK(b.segments() > 5);
  AckAll(b);
  CHECK(b.backlog_events() == 0);
  CHECK(b.backlog_bytes() == 0);
  CHECK(b.segments() == 1);
  REQUIRE(b.SaveAck().ok());
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "buffer")) {
    if (e.path().extension() == ".seg") ++files;
  }
  CHECK(files == 1);
  EventBuffer again;
  REQUIRE(again.Open(dir / "buffer", 1 << 20, 4096).ok());
  CHECK(again.backlog_events() == 0);
}

TEST_CASE("event buffer: a corrupt record fails the read as invalid, naming the file",
          "[fluentd][buffer]") {
  TempDir dir;
  EventBuffer b;
  REQUIRE(b.Open(dir / "buffer", 1 << 20).ok());
  REQUIRE(b.Append("check", Entry(1)).ok());
  REQUIRE(b.Sync().ok());
  std::filesystem::path seg;
  for (const auto& e : std::filesystem::directory_iterator(dir / "buffer")) {
    if (e.path().extension() == ".seg") seg = e.path();
  }
  REQUIRE(!seg.empty());
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.write("\xff\xff\xff\xff", 4);   // a length far past the end of the file
  }
  std::vector<BufferedRecord> recs;
  Status s = b.Read(b.start(), 1 << 20, &recs);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kInvalid);
  CHECK(s.message().find("corrupt record in " + seg.string()) != std::string::npos);
}
