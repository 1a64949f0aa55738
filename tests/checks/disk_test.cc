#include <sys/statvfs.h>

#include <cstdio>
#include <string>

#include <catch2/catch.hpp>

#include "checks/disk.h"
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
  double free_pct = 100.0 * static_cast<double>(fs.f_bavail) /
                    static_cast<double>(fs.f_blocks - fs.f_bfree + fs.f_bavail);
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

TEST_CASE("disk free_pct leaves the root reserve out of the whole, as df and check_disk do",
          "[checks][disk]") {
  // 1000 blocks: 400 used, 600 free of which 500 are reserved for root.
  // mysqld (not root) sees 400 used and 100 it may still write: 20 % free,
  // as `df` (Use% 80 %) and check_disk say; not 100 / 1000.
  struct statvfs fs {};
  fs.f_blocks = 1000;
  fs.f_bfree = 600;
  fs.f_bavail = 100;
  CHECK(warden::DiskFreePct(fs) == Approx(20.0));
  fs.f_bavail = 0;   // full for mysqld, whatever root may still write
  CHECK(warden::DiskFreePct(fs) == Approx(0.0));
  fs.f_bfree = fs.f_bavail = 1000;   // empty, no reserve
  CHECK(warden::DiskFreePct(fs) == Approx(100.0));
  fs.f_bfree = 1000;   // empty, all of it reserved
  fs.f_bavail = 0;
  CHECK(warden::DiskFreePct(fs) == Approx(0.0));
  fs.f_bfree = fs.f_bavail = 1;   // 2 decimals, as the other metrics
  fs.f_blocks = 3;
  CHECK(warden::DiskFreePct(fs) == Approx(33.33));
  fs = {};
  CHECK_FALSE(warden::DiskFreePct(fs).has_value());
}

TEST_CASE("disk free_pct is what df says is free, to its rounding", "[checks][disk]") {
  // df prints Use% rounded up: free_pct lies in (100 - Use%, 101 - Use%],
  // give or take what other writers change meanwhile.
  const std::string path = WARDEN_SOURCE_DIR;
  CheckHarness h;
  double free_pct = MeasureNumber(h, {{"path", path}});
  std::string cmd = "df --output=pcent '" + path + "' | tail -n 1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[64] = {};
  bool read = std::fgets(buf, sizeof buf, p) != nullptr;
  REQUIRE(pclose(p) == 0);
  REQUIRE(read);
  INFO("df: " << buf << " free_pct: " << free_pct);
  double used = std::stod(buf);   // " 38%" reads as 38
  CHECK(free_pct > 100 - used - 0.5);
  CHECK(free_pct <= 101 - used + 0.5);
}
