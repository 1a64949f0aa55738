#include "checks/disk.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cmath>
#include <cstring>

namespace warden {
namespace {

double Round2(double v) { return std::round(v * 100) / 100; }

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
  if (fs.f_blocks == 0)
    return Measurement::Error("the file system of " + path + " reports no size");
  return Measurement::Number(
      Round2(100.0 * static_cast<double>(fs.f_bavail) / static_cast<double>(fs.f_blocks)));
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

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  std::string path = opts.Required("path", "a path on the file system to watch");
  std::string metric = "free_pct";
  bool bad = false;
  if (opts.Has("metric")) {
    auto m = opts.GetChoice("metric", {"free_pct", "free_bytes", "inodes_free_pct"});
    if (m)
      metric = *m;
    else
      bad = true;
  }
  if (!path.empty() && path[0] != '/') {
    opts.Error(*opts.Find("path"), "path must be absolute");
    bad = true;
  }
  if (bad || path.empty()) return nullptr;
  return std::make_unique<DiskCheck>(path, metric, common.timeout);
}

}  // namespace

const CheckType kDiskCheckType = {"disk", "free space or inodes of a file system", false, &Make};

}  // namespace warden
