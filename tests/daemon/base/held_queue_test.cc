#include "daemon/base/held_queue.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using Queue = warden::HeldQueue<std::uint64_t>;

}  // namespace

TEST_CASE("held queue: items come back in order, up to where the file refuses", "[held_queue]") {
  Queue q(10, 1000);
  REQUIRE(q.clear());
  for (std::uint64_t seq = 1; seq <= 5; ++seq) REQUIRE(q.Hold(seq, 10, seq));
  REQUIRE_FALSE(q.clear());
  CHECK(q.size() == 5);
  CHECK(q.bytes() == 50);

  std::vector<std::uint64_t> written;
  // The file takes two, then refuses: the rest stay, oldest first.
  REQUIRE_FALSE(q.Drain([&](std::uint64_t s) {
    if (written.size() == 2) return false;
    written.push_back(s);
    return true;
  }));
  CHECK(written == std::vector<std::uint64_t>{1, 2});
  CHECK(q.size() == 3);
  CHECK(q.bytes() == 30);
  CHECK(q.front() == 3);
  CHECK(q.back() == 5);

  REQUIRE(q.Drain([&](std::uint64_t s) {
    written.push_back(s);
    return true;
  }));
  CHECK(written == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
  CHECK(q.clear());
  CHECK(q.bytes() == 0);
  CHECK_FALSE(q.TakeDropped());
}

TEST_CASE("held queue: beyond either bound what is refused is one range, said once drained",
          "[held_queue]") {
  SECTION("the item bound") {
    Queue q(3, 1000);
    for (std::uint64_t seq = 1; seq <= 3; ++seq) REQUIRE(q.Hold(seq, 1, seq));
    CHECK_FALSE(q.Hold(4, 1, 4));
    CHECK(q.dropping());
    // Room again after one is written, but nothing is kept until all are:
    // otherwise the loss would be several ranges.
    REQUIRE_FALSE(q.Drain([](std::uint64_t s) { return s == 1; }));
    CHECK_FALSE(q.Hold(5, 1, 5));
    CHECK_FALSE(q.TakeDropped());   // held ones not written yet
    REQUIRE(q.Drain([](std::uint64_t) { return true; }));
    CHECK_FALSE(q.clear());          // the range is still to be said
    auto d = q.TakeDropped();
    REQUIRE(d);
    CHECK(d->count == 2);
    CHECK(d->first_seq == 4);
    CHECK(d->last_seq == 5);
    CHECK(q.clear());
    CHECK_FALSE(q.TakeDropped());
    CHECK(q.Hold(6, 1, 6));
    CHECK(q.dropped_total() == 2);
  }
  SECTION("the byte bound") {
    Queue q(100, 25);
    REQUIRE(q.Hold(1, 10, 1));
    REQUIRE(q.Hold(2, 10, 2));
    CHECK_FALSE(q.Hold(3, 10, 3));   // 30 bytes > 25
    CHECK(q.size() == 2);
    REQUIRE(q.Drain([](std::uint64_t) { return true; }));
    auto d = q.TakeDropped();
    REQUIRE(d);
    CHECK(d->count == 1);
    CHECK(d->first_seq == 3);
  }
}

TEST_CASE("held queue: the trouble is said once when it starts and once when it ends",
          "[held_queue]") {
  Queue q(10, 100);
  CHECK_FALSE(q.Recovered(0));
  CHECK(q.Fail("No space left on device", 1000));
  CHECK_FALSE(q.Fail("No space left on device", 2000));
  CHECK_FALSE(q.Fail("Read-only file system", 3000));   // the latest reason is kept
  CHECK(q.error() == "Read-only file system");
  CHECK(q.since_ms() == 1000);
  REQUIRE(q.Hold(1, 1, 1));
  REQUIRE(q.Hold(2, 1, 2));
  REQUIRE(q.Drain([](std::uint64_t) { return true; }));
  auto r = q.Recovered(6000);
  REQUIRE(r);
  CHECK(r->failing_ms == 5000);
  CHECK(r->written_late == 2);
  CHECK(q.error().empty());
  CHECK_FALSE(q.Recovered(7000));
  CHECK(q.Fail("", 8000));   // an empty reason still reads as trouble
  CHECK_FALSE(q.error().empty());
}
