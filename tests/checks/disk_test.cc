#include <sys/statvfs.h>

#include <catch2/catch.hpp>

#include "tests/support/check_harness.h"

using warden::Measurement;
using warden::testing::CheckHarness;
using warden::testing::MakeCheck;
using warden::testing::Show;

namespace {

double MeasureNumber(CheckHarness& h, const std::vector<std::pair<std::string, std::string>>& keys) {
  auto built = MakeCheck("disk", keys);
  REQUIRE(built.errors.empty());
  Measurement m = h.Run(*built.check);
  INFO(Show(m));
  REQUIRE(m.kind == Measurement::Kind::kValue);
  auto n = warden::ParseNumber(m.value);
  REQUIRE(n);
  return *n;
}

}  // namespace

TEST_CASE("disk free_pct, free_bytes and inodes_free_pct match statvfs", "[checks][disk]") {
  CheckHarness h;
  const std::string path = WARDEN_SOURCE_DIR;
  struct statvfs fs {};
  REQUIRE(statvfs(path.c_str(), &fs) == 0);
  REQUIRE(fs.f_blocks > 0);
  double free_pct = 100.0 * static_cast<double>(fs.f_bavail) / static_cast<double>(fs.f_blocks);
  double free_bytes = static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);

  // Default metric is free_pct; other writers may change the disk a little.
  CHECK(MeasureNumber(h, {{"path", path}}) == Approx(free_pct).margin(0.5));
  CHECK(MeasureNumber(h, {{"path", path}, {"metric", "free_pct"}}) == Approx(free_pct).margin(0.5));
  CHECK(MeasureNumber(h, {{"path", path}, {"metric", "free_bytes"}}) ==
        Approx(free_bytes).margin(256.0 * 1024 * 1024));

  auto inodes = MakeCheck("disk", {{"path", path}, {"metric", "inodes_free_pct"}});
  REQUIRE(inodes.errors.empty());
  Measurement m = h.Run(*inodes.check);
  INFO(Show(m));
  if (fs.f_files == 0) {
    CHECK(m.kind == Measurement::Kind::kError);
    CHECK_THAT(m.error, Catch::Contains("no inode count"));
  } else {
    REQUIRE(m.kind == Measurement::Kind::kValue);
    double expected = 100.0 * static_cast<double>(fs.f_favail) / static_cast<double>(fs.f_files);
    CHECK(*warden::ParseNumber(m.value) == Approx(expected).margin(0.5));
  }
}

TEST_CASE("disk on a missing path is an error naming it", "[checks][disk]") {
  CheckHarness h;
  auto built = MakeCheck("disk", {{"path", "/nonexistent/warden-disk-test"}});
  REQUIRE(built.errors.empty());
  Measurement m = h.Run(*built.check);
  CHECK(m.kind == Measurement::Kind::kError);
  CHECK_THAT(m.error, Catch::Contains("/nonexistent/warden-disk-test") &&
                          Catch::Contains("No such file or directory"));
}
