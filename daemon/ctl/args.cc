#include "daemon/ctl/args.h"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "daemon/ctl/exit_codes.h"
#include "daemon/ctl/render.h"
#include "version.h"

namespace warden::ctl {

void Usage(std::FILE* out) { std::fputs(UsageText().c_str(), out); }

int UsageError(const std::string& message) {
  std::fprintf(stderr, "wardenctl: %s\n", message.c_str());
  Usage(stderr);
  return kExitUsage;
}

void PrintVersion(bool as_json) {
  if (as_json) {
    PrintJson({{"ok", true}, {"program", "wardenctl"}, {"version", warden::kVersion},
               {"build", std::string(warden::kBuildId)}});
  } else {
    std::printf("wardenctl %s (build %s)\n", warden::kVersion, warden::kBuildId);
  }
}

std::optional<int> ParseArgs(int argc, char** argv, Args& out) {
  // The global options, anywhere; the rest is the command's, parsed by its
  // row of the command table.
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-c" || a == "--config" || a == "-s" || a == "--socket") {
      const bool config = a == "-c" || a == "--config";
      if (i + 1 >= argc) return UsageError(a + (config ? " needs a FILE" : " needs a SOCKET"));
      (config ? out.config_path : out.socket_path) = argv[++i];
      out.config_given = out.config_given || config;
    } else if (a == "-h" || a == "--help") {
      Usage(stdout);
      return kExitOk;
    } else if (a == "--version") {
      PrintVersion();
      return kExitOk;
    } else {
      words.push_back(std::move(a));
    }
  }
  auto parsed = ParseCommandLine(words);
  if (!parsed) {
    // Asked for JSON: the usage error is JSON too (and the usage on stderr).
    if (std::find(words.begin(), words.end(), "--json") != words.end()) {
      PrintJson({{"ok", false}, {"error", parsed.error()}, {"usage", true}});
    }
    return UsageError(parsed.error());
  }
  out.command = std::move(*parsed);
  return std::nullopt;
}

}  // namespace warden::ctl
