// wardend: the per-host daemon. Usage: wardend [-c FILE] [--version]
#include <ev.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "daemon/base/atomic_file.h"
#include "daemon/config/config.h"
#include "daemon/daemon.h"
#include "daemon/io/journal.h"
#include "version.h"

namespace {

void Usage(std::FILE* out) {
  std::fprintf(out, "usage: wardend [-c FILE] [--version]\n"
                    "  -c FILE    config file (default /etc/warden/warden.ini)\n"
                    "  --version  print the version and the build (the git commit)\n");
}

// Where the human log goes: the journal when `[log] journal = yes`, or
// with `auto` (the default) when there is no `[log] file` and stderr is
// the journal (systemd's JOURNAL_STREAM names it); else the file or
// stderr. `journal` is set when it is the journal.
bool SetupLogging(const warden::Config& c, std::shared_ptr<warden::JournalSender>& journal) {
  using Journal = warden::LogConfig::Journal;
  const bool to_journal =
      c.log.journal == Journal::kYes ||
      (c.log.journal == Journal::kAuto && c.log.file.empty() &&
       warden::FdIsJournalStream(std::getenv("JOURNAL_STREAM"), STDERR_FILENO));
  try {
    std::shared_ptr<spdlog::logger> logger;
    if (to_journal) {
      journal = std::make_shared<warden::JournalSender>(c.log.journal_socket, "wardend");
      auto sink = std::make_shared<warden::JournalSink>(journal);
      logger = std::make_shared<spdlog::logger>("wardend", std::move(sink));
    } else if (c.log.file.empty()) {
      logger = spdlog::stderr_logger_mt("wardend");
    } else {
      // Created here with mode 0640 whatever the umask (spdlog would
      // create it 0666 & ~umask); an existing file keeps its mode.
      std::string dir = std::filesystem::path(c.log.file).parent_path().string();
      if (!dir.empty()) {
        if (warden::Status made = warden::MakeDirectories(dir, 0750); !made.ok()) {
          std::fprintf(stderr, "wardend: cannot open log %s: %s\n", c.log.file.c_str(),
                       made.message().c_str());
          return false;
        }
      }
      int fd = warden::OpenOrCreate(c.log.file, O_WRONLY | O_APPEND | O_CLOEXEC, 0640);
      if (fd < 0) {
        std::fprintf(stderr, "wardend: cannot open log %s: %s\n", c.log.file.c_str(),
                     std::strerror(errno));
        return false;
      }
      ::close(fd);
      logger = spdlog::basic_logger_mt("wardend", c.log.file);
    }
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    logger->set_level(spdlog::level::from_str(c.log.level));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
  } catch (const spdlog::spdlog_ex& e) {
    std::fprintf(stderr, "wardend: cannot open log %s: %s\n", c.log.file.c_str(), e.what());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = "/etc/warden/warden.ini";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      path = argv[++i];
    } else if (a == "--version") {
      std::printf("wardend %s (build %s)\n", warden::kVersion, warden::kBuildId);
      return 0;
    } else if (a == "-h" || a == "--help") {
      Usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "wardend: unknown argument '%s'\n", a.c_str());
      Usage(stderr);
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  // One malloc arena for all threads instead of one more per worker: the
  // workers allocate little (a snapshot per share window), and each arena
  // of their own kept ~150 KB of freed memory resident.
  ::mallopt(M_ARENA_MAX, 1);

  warden::Diagnostics diag;
  auto config = warden::LoadConfig(path, warden::LoadOptions{}, diag);
  if (!config) {
    for (const auto& e : diag.errors()) std::fprintf(stderr, "%s\n", e.c_str());
    std::fprintf(stderr, "wardend: %zu problem(s) in the configuration; not starting\n",
                 diag.errors().size());
    return 1;
  }
  std::shared_ptr<warden::JournalSender> journal;
  if (!SetupLogging(*config, journal)) return 1;

  struct ev_loop* loop = EV_DEFAULT;
  warden::Daemon daemon(loop, config);
  daemon.SetJournal(journal);
  warden::Status s = daemon.Start();
  if (!s.ok()) {
    spdlog::critical("cannot start: {}", s.message());
    return 1;
  }
  return daemon.Run();
}
