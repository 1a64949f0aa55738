#include "checks/file.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

namespace warden {
namespace {

Measurement MeasureFile(const std::string& path, const std::string& metric) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    int err = errno;
    bool missing = err == ENOENT || err == ENOTDIR;
    if (missing && metric == "exists") return Measurement::Value("0");
    if (missing) return Measurement::Error("no such file: " + path);
    return Measurement::Error("stat " + path + ": " + std::strerror(err));
  }
  if (metric == "exists") return Measurement::Value("1");
  if (metric == "size") return Measurement::Number(static_cast<double>(st.st_size));
  auto mtime = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
  double age = std::chrono::duration<double>(std::chrono::system_clock::now() - mtime).count();
  return Measurement::Number(std::round(age * 1000) / 1000);
}

class FileCheck final : public Check {
 public:
  FileCheck(std::string path, std::string metric, Duration timeout)
      : path_(std::move(path)), metric_(std::move(metric)), timeout_(timeout) {}

  void Run(Runtime& rt, Done done) override {
    RunBlocking(
        rt, "file", timeout_,
        [path = path_, metric = metric_] { return MeasureFile(path, metric); }, std::move(done));
  }

 private:
  const std::string path_;
  const std::string metric_;
  const Duration timeout_;
};

constexpr const char* kMetrics[] = {"exists", "age", "size"};
constexpr OptionSpec kOptions[] = {
    opt::Text("path", "the file to look at").Required(),
    opt::Choice("metric", kMetrics,
                "1 when it exists (0 when not), seconds since it was modified, or its size in "
                "bytes")
        .Default("exists"),
};

constexpr const char* kExample = R"([check backup_fresh]
type   = file
path   = /var/backups/mysql/latest.xbstream
metric = age
warn   = > 93600
)";

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  auto path = opts.Text("path");
  auto metric = opts.GetChoice("metric");
  if (path && (*path)[0] != '/') {
    opts.Error(*opts.Find("path"), "path must be absolute");
    return nullptr;
  }
  if (!path || !metric) return nullptr;
  return std::make_unique<FileCheck>(*path, *metric, common.timeout);
}

}  // namespace

const CheckType kFileCheckType = {"file", "whether a file exists, its age or its size", false,
                                  kOptions, kExample, &Make};

}  // namespace warden
