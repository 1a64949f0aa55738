#include "checks/check.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <thread>

#include "tests/support/check_harness.h"

using warden::Duration;
using warden::Measurement;
using warden::testing::CheckHarness;
using warden::testing::PumpUntil;

TEST_CASE("Measurement::Number prints integers plainly and drops trailing zeros", "[checks]") {
  CHECK(Measurement::Number(42).value == "42");
  CHECK(Measurement::Number(-7).value == "-7");
  CHECK(Measurement::Number(0).value == "0");
  CHECK(Measurement::Number(-0.0).value == "0");
  CHECK(Measurement::Number(12.5).value == "12.5");
  CHECK(Measurement::Number(1.0 / 3).value == "0.333333");
  CHECK(Measurement::Number(2.0 / 3 + 10).value == "10.666667");
  CHECK(Measurement::Number(0.000123456789).value == "0.000123457");
  CHECK(Measurement::Number(1e12).value == "1000000000000");
  CHECK(Measurement::Number(3.10).value == "3.1");
  CHECK(Measurement::Number(1.0000001).value == "1");
  CHECK(Measurement::Number(3.5).kind == Measurement::Kind::kValue);
  // A printed number parses back to (nearly) itself.
  for (double v : {0.1, 123.456, 98765.4321, -0.0042, 7e-9}) {
    auto back = warden::ParseNumber(Measurement::Number(v).value);
    REQUIRE(back);
    CHECK(*back == Approx(v).epsilon(1e-5));
  }
  CHECK(Measurement::Number(std::numeric_limits<double>::quiet_NaN()).kind ==
        Measurement::Kind::kError);
  CHECK(Measurement::Number(std::numeric_limits<double>::infinity()).kind ==
        Measurement::Kind::kError);
}

TEST_CASE("RunBlocking runs on a worker and reports back on the loop", "[checks]") {
  CheckHarness h;
  auto loop_thread = std::this_thread::get_id();
  std::thread::id work_thread;
  std::optional<Measurement> got;
  std::thread::id done_thread;
  warden::RunBlocking(
      h.rt, "test", Duration(5000),
      [&work_thread] {
        work_thread = std::this_thread::get_id();
        return Measurement::Number(7);
      },
      [&](Measurement m) {
        done_thread = std::this_thread::get_id();
        got = std::move(m);
      });
  REQUIRE(PumpUntil(h.loop, [&] { return got.has_value(); }));
  CHECK(got->value == "7");
  CHECK(work_thread != loop_thread);
  CHECK(done_thread == loop_thread);
}

TEST_CASE("RunBlocking turns an exception into an error", "[checks]") {
  CheckHarness h;
  std::optional<Measurement> got;
  warden::RunBlocking(
      h.rt, "test", Duration(5000), []() -> Measurement { throw std::runtime_error("boom"); },
      [&](Measurement m) { got = std::move(m); });
  REQUIRE(PumpUntil(h.loop, [&] { return got.has_value(); }));
  CHECK(got->kind == Measurement::Kind::kError);
  CHECK_THAT(got->error, Catch::Contains("boom"));
}

TEST_CASE("RunBlocking reports a job that could not start in time", "[checks]") {
  CheckHarness h;  // two workers; lane "slow" may use one of them
  std::optional<Measurement> first, second, third;
  auto sleeper = [] {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    return Measurement::Value("slept");
  };
  warden::RunBlocking(h.rt, "slow", Duration(5000), sleeper, [&](Measurement m) { first = m; });
  warden::RunBlocking(h.rt, "slow", Duration(100), sleeper, [&](Measurement m) { second = m; });
  // Another lane still gets the other worker.
  warden::RunBlocking(
      h.rt, "fast", Duration(100), [] { return Measurement::Value("quick"); },
      [&](Measurement m) { third = m; });
  REQUIRE(PumpUntil(h.loop, [&] { return first && second && third; }));
  CHECK(first->value == "slept");
  CHECK(third->value == "quick");
  CHECK(second->kind == Measurement::Kind::kError);
  CHECK(second->error == "not started within 100ms: all workers busy");
  CHECK(second->code == warden::StatusCode::kTransient);
  CHECK(second->peer_code == -1);
}

TEST_CASE("Measurement::Error keeps a failure's code and peer code", "[checks]") {
  Measurement plain = Measurement::Error("made by the check");
  CHECK(plain.kind == Measurement::Kind::kError);
  CHECK(plain.error == "made by the check");
  CHECK(plain.code == warden::StatusCode::kInternal);
  CHECK(plain.peer_code == -1);

  auto denied = warden::Status::Refused("ERROR 1227 (42000): Access denied").WithPeerCode(1227);
  Measurement m = Measurement::Error(denied.Prefixed("heartbeat table t: "));
  CHECK(m.kind == Measurement::Kind::kError);
  CHECK(m.error == "heartbeat table t: ERROR 1227 (42000): Access denied");
  CHECK(m.code == warden::StatusCode::kRefused);
  CHECK(m.peer_code == 1227);

  CHECK(Measurement::Value("1").code == warden::StatusCode::kOk);
  CHECK(Measurement::NotYet("first sample").peer_code == -1);
}
