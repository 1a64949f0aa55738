#include "daemon/base/disk_writer.h"

#include <ev.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/engine/events.h"
#include "tests/support/temp_dir.h"

namespace {

using warden::DiskWriter;
using warden::EventLog;
using Clock = std::chrono::steady_clock;
using warden::Status;

struct Loop {
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  ~Loop() { ev_loop_destroy(loop); }
  // Runs the loop until `done` or `limit` passes.
  template <typename Pred>
  bool RunUntil(Pred done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      ev_run(loop, EVRUN_NOWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
};

}  // namespace

TEST_CASE("disk writer: work runs off the loop thread, in order, completions on the loop",
          "[disk_writer]") {
  Loop l;
  DiskWriter w(l.loop);
  REQUIRE(w.threaded());
  const auto loop_thread = std::this_thread::get_id();
  std::vector<int> ran;                // written by the writer only
  std::vector<int> completed;          // by the loop only
  std::atomic<bool> off_loop{true};
  std::atomic<bool> gate{false};
  // The first task blocks (a slow fsync): Post returns at once regardless.
  w.Post([&] {
    if (std::this_thread::get_id() == loop_thread) off_loop = false;
    while (!gate) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ran.push_back(0);
    return Status::Ok();
  });
  auto before = Clock::now();
  for (int i = 1; i <= 50; ++i) {
    w.Post([&ran, i] {
             ran.push_back(i);
             return Status::Ok();
           },
           [&completed, i, loop_thread](const Status&) {
             CHECK(std::this_thread::get_id() == loop_thread);
             completed.push_back(i);
           });
  }
  CHECK(Clock::now() - before < std::chrono::seconds(1));   // nothing waited for the disk
  CHECK(w.queued() == 51);
  CHECK(completed.empty());
  gate = true;
  REQUIRE(l.RunUntil([&] { return completed.size() == 50; }));
  CHECK(off_loop);
  std::vector<int> want;
  for (int i = 0; i <= 50; ++i) want.push_back(i);
  CHECK(ran == want);
  want.erase(want.begin());
  CHECK(completed == want);
  CHECK(w.queued() == 0);
}

TEST_CASE("disk writer: a newer task with the same key replaces a queued one, both callers "
          "hear",
          "[disk_writer]") {
  Loop l;
  DiskWriter w(l.loop);
  std::atomic<bool> gate{false};
  std::vector<std::string> written;
  int heard = 0;
  w.Post([&] {
    while (!gate) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Status::Ok();
  });
  auto write = [&](std::string what, Status result) {
    return [&written, what, result] {
      written.push_back(what);
      return result;
    };
  };
  std::vector<std::string> results;
  auto hear = [&](const Status& s) {
    ++heard;
    results.push_back(s.ok() ? "ok" : s.message());
  };
  w.Post("state", write("state v1", Status::Ok()), hear);
  w.Post(write("event", Status::Ok()));
  w.Post("state", write("state v2", Status::Error("disk full")), hear);
  w.Post("journal", write("journal", Status::Ok()));
  gate = true;
  w.Drain();
  // v1 never written: v2 took its place (and its turn: before the event).
  CHECK(written == std::vector<std::string>{"state v2", "event", "journal"});
  CHECK(heard == 2);
  // Both callers hear the result of the write that happened.
  CHECK(results == std::vector<std::string>{"disk full", "disk full"});
}

TEST_CASE("disk writer: Stop runs what is queued, then works inline; without a loop, inline",
          "[disk_writer]") {
  Loop l;
  DiskWriter w(l.loop);
  int n = 0;
  auto count = [&] {
    ++n;
    return Status::Ok();
  };
  for (int i = 0; i < 10; ++i) w.Post(count);
  w.Stop();
  CHECK(n == 10);
  CHECK_FALSE(w.threaded());
  bool done = false;
  w.Post(count, [&](const Status&) { done = true; });
  CHECK(n == 11);
  CHECK(done);

  DiskWriter inline_writer(nullptr);
  bool ran = false;
  bool heard = false;
  inline_writer.Post(
      [&] {
        ran = true;
        return Status::Ok();
      },
      [&](const Status&) { heard = true; });
  CHECK(ran);
  CHECK(heard);
}

TEST_CASE("events on a slow disk: Emit does not wait, the file gets every event in seq order",
          "[disk_writer][events]") {
  warden::testing::TempDir dir;
  const std::string path = dir / "events.jsonl";
  Loop l;
  DiskWriter w(l.loop);
  EventLog log;
  REQUIRE(log.Open(path, dir.path(), "h").ok());
  log.SetWriter(&w);
  // Each write takes 50 ms (a saturated disk).
  log.SetWriteForTest([](int fd, const void* data, std::size_t size) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return ::write(fd, data, size);
  });
  auto before = Clock::now();
  for (int i = 0; i < 20; ++i) log.Emit("test.event", {{"i", i}});
  // 20 writes take a second on the writer; Emit took a fraction of that.
  CHECK(Clock::now() - before < std::chrono::milliseconds(500));
  w.Drain();
  std::ifstream in(path);
  std::vector<std::uint64_t> seqs;
  for (std::string line; std::getline(in, line);) {
    seqs.push_back(nlohmann::json::parse(line)["seq"].get<std::uint64_t>());
  }
  REQUIRE(seqs.size() == 20);
  for (std::size_t i = 0; i < seqs.size(); ++i) CHECK(seqs[i] == i + 1);
  w.Stop();
}
