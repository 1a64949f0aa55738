// A main() for the fuzz targets without libFuzzer (any compiler): runs
// LLVMFuzzerTestOneInput once on each file named, and on each regular file
// of each directory named (sorted). A missing path is an error. A target
// that finds a property broken aborts, which fails the test.
//
//   fuzz_units tests/fuzz/corpus/units tests/fuzz/regressions/units
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/base/atomic_file.h"
#include "tests/fuzz/fuzz.h"

namespace {

bool RunFile(const std::filesystem::path& path) {
  warden::Expected<std::string> bytes = warden::ReadSmallFile(path.string(), 16 << 20);
  if (!bytes) {
    std::fprintf(stderr, "cannot read %s: %s\n", path.c_str(), bytes.error().c_str());
    return false;
  }
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes->data()), bytes->size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int ran = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        if (!RunFile(f)) return 1;
        ++ran;
      }
    } else if (std::filesystem::is_regular_file(arg, ec)) {
      if (!RunFile(arg)) return 1;
      ++ran;
    } else {
      std::fprintf(stderr, "no such file or directory: %s\n", argv[i]);
      return 1;
    }
  }
  std::printf("replayed %d input(s)\n", ran);
  return ran > 0 ? 0 : 1;
}
