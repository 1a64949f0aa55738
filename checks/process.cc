#include "checks/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace warden {
namespace {

std::string Basename(std::string_view path) {
  auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// Reads a small /proc file; false if it cannot be opened (gone, no access).
bool ReadSmallFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || out->size() > 65536) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

std::string ProcPath(pid_t pid, const char* what) {
  return "/proc/" + std::to_string(pid) + "/" + what;
}

std::string Argv0Basename(pid_t pid) {
  std::string cmdline;
  if (!ReadSmallFile(ProcPath(pid, "cmdline"), &cmdline)) return {};
  std::string argv0 = cmdline.substr(0, cmdline.find('\0'));
  return Basename(argv0);
}

std::string Comm(pid_t pid) {
  std::string comm;
  if (!ReadSmallFile(ProcPath(pid, "comm"), &comm)) return {};
  while (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

std::string ExeBasename(pid_t pid) {
  char buf[PATH_MAX];
  ssize_t n = readlink(ProcPath(pid, "exe").c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string exe(buf, static_cast<size_t>(n));
  const std::string deleted = " (deleted)";  // the binary was replaced (upgrade)
  if (exe.size() > deleted.size() &&
      exe.compare(exe.size() - deleted.size(), deleted.size(), deleted) == 0) {
    exe.resize(exe.size() - deleted.size());
  }
  return Basename(exe);
}

Measurement MeasurePidfile(const std::string& pidfile, const std::string& name) {
  int fd = open(pidfile.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) return Measurement::Value("0");
    return Measurement::Error("cannot read pidfile " + pidfile + ": " + std::strerror(err));
  }
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf);
  int err = errno;
  close(fd);
  if (n < 0)
    return Measurement::Error("cannot read pidfile " + pidfile + ": " + std::strerror(err));
  std::string text(buf, static_cast<size_t>(n));
  auto pid = ParseInteger(Trim(text), 1, 4'194'304);  // PID_MAX_LIMIT
  if (!pid) {
    std::string shown(Trim(text).substr(0, 40));
    return Measurement::Error("pidfile " + pidfile + " holds no process id: '" + shown + "'");
  }
  pid_t p = static_cast<pid_t>(*pid);
  if (!ProcessAlive(p)) return Measurement::Value("0");
  if (!name.empty() && !ProcessMatches(p, name)) return Measurement::Value("0");
  return Measurement::Value("1");
}

class ProcessCheck final : public Check {
 public:
  ProcessCheck(std::string pidfile, std::string name, Duration timeout)
      : pidfile_(std::move(pidfile)), name_(std::move(name)), timeout_(timeout) {}

  void Run(Runtime& rt, Done done) override {
    RunBlocking(
        rt, "proc", timeout_,
        [pidfile = pidfile_, name = name_]() -> Measurement {
          if (!pidfile.empty()) return MeasurePidfile(pidfile, name);
          return Measurement::Value(AnyProcessNamed(name) ? "1" : "0");
        },
        std::move(done));
  }

 private:
  const std::string pidfile_;
  const std::string name_;
  const Duration timeout_;
};

constexpr OptionSpec kOptions[] = {
    opt::Text("pidfile",
              "the pid file, an absolute path (pidfile, name or both: the pid counts only if it "
              "runs name)"),
    opt::Text("name", "the program name (no '/'): a process of that name runs"),
};

constexpr const char* kExample = R"([check mariadbd]
type    = process
pidfile = /run/mysqld/mysqld.pid
name    = mariadbd
crit    = == 0
)";

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  auto pidfile = opts.Text("pidfile");
  auto name = opts.Text("name");
  bool bad = false;
  if (!opts.Has("pidfile") && !opts.Has("name")) {
    opts.Error(opts.section().title() + " needs 'pidfile' or 'name' (or both)");
    bad = true;
  }
  if (pidfile && (*pidfile)[0] != '/') {
    opts.Error(*opts.Find("pidfile"), "pidfile must be an absolute path");
    bad = true;
  }
  if (name && name->find('/') != std::string::npos) {
    opts.Error(*opts.Find("name"), "name is a program name, not a path (no '/')");
    bad = true;
  }
  if (bad || (!pidfile && !name)) return nullptr;
  return std::make_unique<ProcessCheck>(pidfile.value_or(""), name.value_or(""), common.timeout);
}

}  // namespace

bool ProcessAlive(pid_t pid) {
  std::string stat_line;
  if (!ReadSmallFile(ProcPath(pid, "stat"), &stat_line) || stat_line.empty()) return false;
  // "PID (comm) S ...": comm may hold spaces and parentheses.
  auto paren = stat_line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat_line.size()) return false;
  char state = stat_line[paren + 2];
  return state != 'Z' && state != 'X';
}

bool ProcessMatches(pid_t pid, const std::string& name) {
  return ExeBasename(pid) == name || Argv0Basename(pid) == name;
}

bool AnyProcessNamed(const std::string& name) {
  DIR* dir = opendir("/proc");
  if (!dir) return false;
  bool found = false;
  while (struct dirent* e = readdir(dir)) {
    auto pid = ParseInteger(e->d_name, 1, 4'194'304);
    if (!pid) continue;
    pid_t p = static_cast<pid_t>(*pid);
    // comm is cut to 15 bytes by the kernel: a longer name matches argv[0].
    bool match = Comm(p) == name || Argv0Basename(p) == name;
    if (match && ProcessAlive(p)) {
      found = true;
      break;
    }
  }
  closedir(dir);
  return found;
}

const CheckType kProcessCheckType = {"process", "1 when the process runs, 0 when not", false,
                                     kOptions, kExample, &Make};

}  // namespace warden
