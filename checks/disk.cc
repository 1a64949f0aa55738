#include "checks/disk.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cmath>
#include <cstring>

namespace warden {
namespace {

double Round2(double v) { return std::round(v * 100) / 100; }

}  // namespace

std::optional<double> DiskFreePct(const struct statvfs& fs) {
  // Blocks in use, and the space the file system offers to whom is not
  // root: df's and check_disk's whole, which leaves out the reserve.
  const double used = static_cast<double>(fs.f_blocks) - static_cast<double>(fs.f_bfree);
  const double offered = used + static_cast<double>(fs.f_bavail);
  if (fs.f_blocks == 0) return std::nullopt;
  if (offered <= 0) return 0.0;   // all of it reserved: nothing for mysqld
  return Round2(100.0 * static_cast<double>(fs.f_bavail) / offered);
}

namespace {

Measurement MeasureDisk(const std::string& path, const std::string& metric) {
  struct statvfs fs {};
  if (statvfs(path.c_str(), &fs) != 0) {
    return Measurement::Error("statvfs " + path + ": " + std::strerror(errno));
  }
  if (metric == "free_bytes") {
    return Measurement::Number(static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize));
  }
  if (metric == "inodes_free_pct") {
    if (fs.f_files == 0) {
      return Measurement::Error("the file system of " + path + " reports no inode count");
    }
    return Measurement::Number(
        Round2(100.0 * static_cast<double>(fs.f_favail) / static_cast<double>(fs.f_files)));
  }
  auto pct = DiskFreePct(fs);
  if (!pct) return Measurement::Error("the file system of " + path + " reports no size");
  return Measurement::Number(*pct);
}

class DiskCheck final : public Check {
 public:
  DiskCheck(std::string path, std::string metric, Duration timeout)
      : path_(std::move(path)), metric_(std::move(metric)), timeout_(timeout) {}

  void Run(Runtime& rt, Done done) override {
    RunBlocking(
        rt, "disk", timeout_,
        [path = path_, metric = metric_] { return MeasureDisk(path, metric); }, std::move(done));
  }

 private:
  const std::string path_;
  const std::string metric_;
  const Duration timeout_;
};

constexpr const char* kMetrics[] = {"free_pct", "free_bytes", "inodes_free_pct"};
constexpr OptionSpec kOptions[] = {
    opt::Text("path", "a path on the file system to watch").Required(),
    opt::Choice("metric", kMetrics,
                "free space in percent, free bytes (for the unprivileged), or free inodes in "
                "percent")
        .Default("free_pct"),
};

constexpr const char* kExample = R"([check datadir_space]
type   = disk
path   = /var/lib/mysql
metric = free_pct
warn   = < 15
crit   = < 5
)";

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  auto path = opts.Text("path");
  auto metric = opts.GetChoice("metric");
  if (path && (*path)[0] != '/') {
    opts.Error(*opts.Find("path"), "path must be absolute");
    return nullptr;
  }
  if (!path || !metric) return nullptr;
  return std::make_unique<DiskCheck>(*path, *metric, common.timeout);
}

}  // namespace

const CheckType kDiskCheckType = {
    "disk", "free space or inodes of a file system", false, kOptions, kExample, &Make};

}  // namespace warden
