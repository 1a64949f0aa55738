#include "checks/program.h"

#include <catch2/catch.hpp>
#include <chrono>

#include "daemon/io/process.h"
#include "tests/support/check_harness.h"

using warden::Measurement;
using warden::testing::CheckHarness;
using warden::testing::MakeCheck;
using warden::testing::Show;

namespace {

struct ProgramHarness : CheckHarness {
  warden::ProcessRunner processes{loop};
  ProgramHarness() { rt.processes = &processes; }

  Measurement RunProgram(const std::string& command, const std::string& value = "",
                         const std::string& timeout = "10s") {
    warden::CheckCommon common;
    common.timeout = *warden::ParseDuration(timeout);
    std::vector<std::pair<std::string, std::string>> keys = {{"command", command}};
    if (!value.empty()) keys.emplace_back("value", value);
    auto built = MakeCheck("program", keys, common);
    REQUIRE(built.errors.empty());
    return Run(*built.check);
  }
};

}  // namespace

TEST_CASE("FirstNumber finds the first number that starts a word", "[checks][program]") {
  CHECK(warden::FirstNumber("42") == "42");
  CHECK(warden::FirstNumber("lag: 12.5s behind") == "12.5");
  CHECK(warden::FirstNumber("db-17 has 3 rows") == "3");
  CHECK(warden::FirstNumber("value=-4.25\n") == "-4.25");
  CHECK(warden::FirstNumber("v1.2 then +7") == "7");
  CHECK(warden::FirstNumber("version 1.2.3") == "1.2");
  CHECK_FALSE(warden::FirstNumber("no numbers here").has_value());
  CHECK_FALSE(warden::FirstNumber("").has_value());
  CHECK_FALSE(warden::FirstNumber("x2 y_3 - .").has_value());
}

TEST_CASE("program value = exit gives the exit status", "[checks][program]") {
  ProgramHarness h;
  CHECK(Show(h.RunProgram("true")) == "value 0");
  CHECK(Show(h.RunProgram("sh -c 'exit 3'")) == "value 3");
  CHECK(Show(h.RunProgram("sh -c 'exit 3'", "exit")) == "value 3");
  // Quoting as a shell does it: one argument with a space.
  CHECK(Show(h.RunProgram("sh -c \"test 'a b' = 'a b'\"")) == "value 0");
}

TEST_CASE("program value = stdout gives the first number printed", "[checks][program]") {
  ProgramHarness h;
  CHECK(Show(h.RunProgram("echo 'lag: 12.5s'", "stdout")) == "value 12.5");
  CHECK(Show(h.RunProgram("printf 'host db-17\\nrows 42\\n'", "stdout")) == "value 42");
  Measurement none = h.RunProgram("echo hello", "stdout");
  CHECK(Show(none) == "error echo printed no number: 'hello'");
  Measurement failed = h.RunProgram("sh -c 'echo 5; echo replica broken >&2; exit 2'", "stdout");
  CHECK(failed.kind == Measurement::Kind::kError);
  CHECK_THAT(failed.error, Catch::Contains("exit status 2") && Catch::Contains("replica broken"));
}

TEST_CASE("program timeouts and spawn failures are errors", "[checks][program]") {
  ProgramHarness h;
  auto start = std::chrono::steady_clock::now();
  Measurement slow = h.RunProgram("sleep 30", "", "300ms");
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(slow.kind == Measurement::Kind::kError);
  CHECK_THAT(slow.error, Catch::Contains("timed out"));
  CHECK(took < 5.0);

  Measurement missing = h.RunProgram("/nonexistent/warden-probe --x");
  CHECK(missing.kind == Measurement::Kind::kError);
  CHECK_THAT(missing.error, Catch::Contains("/nonexistent/warden-probe"));

  Measurement killed = h.RunProgram("sh -c 'kill -9 $$'");
  CHECK(killed.kind == Measurement::Kind::kError);
  CHECK_THAT(killed.error, Catch::Contains("signal 9"));
}
