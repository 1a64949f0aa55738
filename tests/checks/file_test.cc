#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/support/check_harness.h"
#include "tests/support/temp_dir.h"

using warden::Measurement;
using warden::testing::CheckHarness;
using warden::testing::MakeCheck;
using warden::testing::Show;
using warden::testing::TempDir;

namespace {

Measurement RunFile(CheckHarness& h, const std::string& path, const std::string& metric) {
  auto built = MakeCheck("file", {{"path", path}, {"metric", metric}});
  REQUIRE(built.errors.empty());
  return h.Run(*built.check);
}

}  // namespace

TEST_CASE("file exists, size and age of a real file", "[checks][file]") {
  CheckHarness h;
  TempDir dir;
  const std::string path = dir.path() + "/data";
  {
    std::ofstream out(path);
    out << "hello warden";  // 12 bytes
  }
  // mtime 100 s ago.
  struct timespec times[2];
  REQUIRE(clock_gettime(CLOCK_REALTIME, &times[0]) == 0);
  times[0].tv_sec -= 100;
  times[1] = times[0];
  REQUIRE(utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);

  Measurement exists = RunFile(h, path, "exists");
  CHECK(Show(exists) == "value 1");

  auto dflt = MakeCheck("file", {{"path", path}});  // exists is the default
  REQUIRE(dflt.errors.empty());
  CHECK(Show(h.Run(*dflt.check)) == "value 1");

  Measurement size = RunFile(h, path, "size");
  CHECK(Show(size) == "value 12");

  Measurement age = RunFile(h, path, "age");
  INFO(Show(age));
  REQUIRE(age.kind == Measurement::Kind::kValue);
  CHECK(*warden::ParseNumber(age.value) == Approx(100).margin(5));
}

TEST_CASE("file on a missing path: exists is 0, age and size are errors", "[checks][file]") {
  CheckHarness h;
  TempDir dir;
  const std::string path = dir.path() + "/missing";
  CHECK(Show(RunFile(h, path, "exists")) == "value 0");
  CHECK(Show(RunFile(h, path, "age")) == "error no such file: " + path);
  CHECK(Show(RunFile(h, path, "size")) == "error no such file: " + path);
  // A path through a regular file (ENOTDIR) is missing too.
  { std::ofstream out(dir.path() + "/plain"); }
  CHECK(Show(RunFile(h, dir.path() + "/plain/x", "exists")) == "value 0");
}
