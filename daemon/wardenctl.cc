// wardenctl: the command line. This version implements `validate`; the
// commands that talk to a running daemon arrive with the control socket.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "version.h"

namespace {

constexpr int kExitUsage = 2;

void Usage(std::FILE* out) {
  std::fprintf(out,
               "usage: wardenctl [-c FILE] COMMAND\n"
               "commands:\n"
               "  validate [-c FILE]   parse and check the config without a daemon\n"
               "  version              print the version\n"
               "options:\n"
               "  -c FILE              config file (default /etc/warden/warden.ini)\n");
}

int Validate(const std::string& path) {
  warden::Diagnostics diag;
  warden::LoadOptions options;
  auto config = warden::LoadConfig(path, options, diag);
  if (!config) {
    for (const auto& e : diag.errors()) std::printf("%s\n", e.c_str());
    std::printf("%s: %zu problem(s)\n", path.c_str(), diag.errors().size());
    return 1;
  }
  std::printf("%s: ok (%zu checks, %zu actions, %zu mysql connections, mutex %s)\n", path.c_str(),
              config->checks.size(), config->actions.size(), config->mysql.size(),
              config->mutex.mode == warden::MutexConfig::Mode::kOff ? "off"
                                                                    : config->mutex.url.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = "/etc/warden/warden.ini";
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      path = argv[++i];
    } else if (a == "-h" || a == "--help") {
      Usage(stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "wardenctl: unknown option '%s'\n", a.c_str());
      Usage(stderr);
      return kExitUsage;
    } else {
      words.push_back(a);
    }
  }
  if (words.empty()) {
    Usage(stderr);
    return kExitUsage;
  }
  if (words[0] == "validate" && words.size() == 1) return Validate(path);
  if (words[0] == "version" && words.size() == 1) {
    std::printf("wardenctl %s\n", warden::kVersion);
    return 0;
  }
  std::fprintf(stderr, "wardenctl: unknown command '%s'\n", words[0].c_str());
  Usage(stderr);
  return kExitUsage;
}
