#include "daemon/io/process.h"

#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "daemon/base/units.h"

extern char** environ;

namespace warden {
namespace {

using Clock = std::chrono::steady_clock;

// Used when neither our environment nor spec.env sets PATH.
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// One captured stream: the read end of a pipe and what we keep of it.
struct Capture {
  int fd = -1;
  ev_io io{};
  size_t limit = 4096;
  bool keep_head = false;
  std::string head;
  std::string tail;

  void Append(const char* data, size_t n) {
    if (keep_head && head.size() < limit) head.append(data, std::min(n, limit - head.size()));
    if (n >= limit) {
      tail.assign(data + (n - limit), limit);
    } else {
      tail.append(data, n);
      // Trim in batches so that many small reads stay linear.
      if (tail.size() > 2 * limit) tail.erase(0, tail.size() - limit);
    }
  }
  std::string TakeTail() {
    if (tail.size() > limit) tail.erase(0, tail.size() - limit);
    return std::move(tail);
  }

  // Reads what the pipe holds now, without blocking. Returns false once the
  // pipe is at end of file (or broken): nothing more will come.
  bool Drain() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        Append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;
    }
  }

  void Close(struct ev_loop* loop) {
    if (fd < 0) return;
    ev_io_stop(loop, &io);
    ::close(fd);
    fd = -1;
  }
};

// Moves fd to a number >= 3 (keeping O_CLOEXEC) so that the dup2 onto 0..2
// in the child cannot clobber another pipe end. Only matters when our own
// standard descriptors were closed.
bool RaiseFd(int& fd) {
  if (fd >= 3) return true;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return false;
  ::close(fd);
  fd = moved;
  return true;
}

bool SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Our environment with `extra` ("KEY=VALUE") added or replacing.
Expected<std::vector<std::string>> MergeEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  std::map<std::string, size_t, std::less<>> index;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    index.emplace(std::string(kv.substr(0, eq)), env.size());
    env.emplace_back(kv);
  }
  for (const auto& kv : extra) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Expected<std::vector<std::string>>::Error("environment entry '" + kv +
                                                       "' is not KEY=VALUE");
    }
    auto [it, added] = index.emplace(kv.substr(0, eq), env.size());
    if (added) {
      env.push_back(kv);
    } else {
      env[it->second] = kv;
    }
  }
  return env;
}

std::string LookupEnv(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& kv : env) {
    if (kv.size() > key.size() && kv.compare(0, key.size(), key) == 0 && kv[key.size()] == '=') {
      return kv.substr(key.size() + 1);
    }
  }
  return {};
}

// The program to execute: argv[0] itself if it has a '/', else the first
// executable regular file named so in the child's PATH.
Expected<std::string> ResolveProgram(const std::string& name, const std::vector<std::string>& env) {
  if (name.empty()) return Expected<std::string>::Error("empty command name");
  if (name.find('/') != std::string::npos) {
    // Checked here as well as by exec: the messages stay the same where
    // posix_spawn cannot report exec errors (valgrind runs it as a fork).
    struct stat sb {};
    if (::stat(name.c_str(), &sb) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) {
        return Expected<std::string>::Error("command not found: " + name);
      }
      return Expected<std::string>::Error("cannot run " + name + ": " + std::strerror(errno));
    }
    if (!S_ISREG(sb.st_mode)) {
      return Expected<std::string>::Error("cannot run " + name + ": not a regular file");
    }
    if (::access(name.c_str(), X_OK) != 0) {
      return Expected<std::string>::Error("cannot run " + name + ": " + std::strerror(errno));
    }
    return name;
  }
  std::string path = LookupEnv(env, "PATH");
  if (path.empty()) path = kDefaultPath;
  std::string denied;
  size_t start = 0;
  while (start <= path.size()) {
    size_t colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    std::string dir = path.substr(start, colon - start);
    start = colon + 1;
    if (dir.empty()) continue;  // never the current directory: we run as root
    std::string candidate = dir + "/" + name;
    struct stat sb {};
    if (::stat(candidate.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (denied.empty()) denied = candidate;
  }
  if (!denied.empty()) return Expected<std::string>::Error("permission denied: " + denied);
  return Expected<std::string>::Error("command not found: " + name);
}

}  // namespace

std::string ProcessResult::Describe() const {
  if (!started) return error.empty() ? "not started" : error;
  if (terminated) {
    std::string how = signal != 0 ? "killed by signal " + std::to_string(signal) + " (" +
                                        SignalName(signal) + ")"
                                  : "exit status " + std::to_string(exit_code);
    return "terminated: " + how;
  }
  if (timed_out) return error.empty() ? "timed out" : error;
  if (signal != 0)
    return "killed by signal " + std::to_string(signal) + " (" + SignalName(signal) + ")";
  return "exit status " + std::to_string(exit_code);
}

// One spawned (or failed) child. Owned by ProcessRunner::children_; all
// watchers point back here through `data`.
struct ProcessRunner::Child {
  ProcessRunner* runner = nullptr;
  std::uint64_t id = 0;
  ProcessSpec spec;
  Done done;
  ProcessResult result;
  pid_t pid = -1;
  Clock::time_point start;
  bool term_sent = false;
  bool kill_sent = false;
  bool exited = false;
  Capture out;
  Capture err;
  ev_child child_w{};
  ev_timer timer_w{};  // timeout, then the kill grace
  ev_timer fail_w{};   // reports a spawn failure on the next iteration

  struct ev_loop* loop() const {
    return runner->loop_;
  }

  void Signal(int sig) {
    if (pid > 0 && !exited) ::kill(-pid, sig);
  }

  // Stops every watcher and closes our pipe ends. Idempotent.
  void Shutdown() {
    if (ev_is_active(&child_w)) ev_child_stop(loop(), &child_w);
    ev_timer_stop(loop(), &timer_w);
    ev_timer_stop(loop(), &fail_w);
    out.Close(loop());
    err.Close(loop());
  }

  // Hands the result to `done` after removing this child from the runner
  // (so that `done` may spawn again). `this` is gone afterwards.
  void Complete() {
    Shutdown();
    result.elapsed = std::chrono::duration_cast<Duration>(Clock::now() - start);
    result.stdout_head = std::move(out.head);
    result.stdout_tail = out.TakeTail();
    result.stderr_tail = err.TakeTail();
    ProcessResult r = std::move(result);
    Done d = std::move(done);
    auto it = runner->children_.find(this);
    std::unique_ptr<Child> self = std::move(it->second);
    runner->children_.erase(it);
    self.reset();
    if (d) d(std::move(r));
  }

  static void OnChild(struct ev_loop* /*loop*/, ev_child* w, int /*revents*/) {
    auto* c = static_cast<Child*>(w->data);
    int status = w->rstatus;
    c->exited = true;
    if (WIFEXITED(status)) {
      c->result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      c->result.signal = WTERMSIG(status);
    }
    // At a timeout the whole group goes, including what survived SIGTERM.
    if (c->term_sent) ::kill(-c->pid, SIGKILL);
    // What the child wrote before it exited is in the pipes; a background
    // grandchild that keeps them open must not hold up the completion.
    if (c->out.fd >= 0) c->out.Drain();
    if (c->err.fd >= 0) c->err.Drain();
    c->Complete();
  }

  static void OnRead(struct ev_loop* loop, ev_io* w, int /*revents*/) {
    auto* cap = static_cast<Capture*>(w->data);
    if (!cap->Drain()) cap->Close(loop);
  }

  static void OnTimer(struct ev_loop* loop, ev_timer* w, int /*revents*/) {
    auto* c = static_cast<Child*>(w->data);
    if (!c->term_sent) {
      c->term_sent = true;
      c->result.timed_out = true;
      c->result.error = "timed out after " + FormatDuration(c->spec.timeout);
      c->Signal(SIGTERM);
      ev_timer_set(&c->timer_w, Seconds(c->spec.kill_grace) + ev_time() - ev_now(loop), 0.);
      ev_timer_start(loop, &c->timer_w);
    } else if (!c->kill_sent) {
      c->kill_sent = true;
      c->Signal(SIGKILL);
    }
  }

  static void OnFail(struct ev_loop* /*loop*/, ev_timer* w, int /*revents*/) {
    static_cast<Child*>(w->data)->Complete();
  }

  // Reports `failure` as a spawn failure on the next loop iteration.
  void Fail(const Status& failure) {
    result.started = false;
    result.error = failure.message();
    ev_timer_init(&fail_w, &Child::OnFail, 0., 0.);
    fail_w.data = this;
    ev_timer_start(loop(), &fail_w);
  }

  // Ok once the child runs, or why it could not be started.
  Status Start() {
    if (spec.argv.empty()) return Status::Invalid("empty command");
    auto env = MergeEnvironment(spec.env);
    if (!env) return env.status();
    auto program = ResolveProgram(spec.argv[0], *env);
    if (!program) return program.status();

    int out_pipe[2] = {-1, -1};
    int err_pipe[2] = {-1, -1};
    auto close_all = [&] {
      for (int* fd : {&out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1]}) CloseFd(*fd);
    };
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
      Status e = Status::FromErrno(errno, "cannot create a pipe");
      close_all();
      return e;
    }
    for (int* fd : {&out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1]}) {
      if (!RaiseFd(*fd)) {
        Status e = Status::FromErrno(errno, "cannot move a pipe");
        close_all();
        return e;
      }
    }
    if (!SetNonBlocking(out_pipe[0]) || !SetNonBlocking(err_pipe[0])) {
      Status e = Status::FromErrno(errno, "cannot set O_NONBLOCK");
      close_all();
      return e;
    }

    // In the child (glibc runs these between clone and exec, async-signal
    // safe): stdin from /dev/null, stdout/stderr to the pipes (dup2 clears
    // O_CLOEXEC on 1 and 2), every other descriptor closed with one
    // close_range, its own process group, no blocked signals and default
    // dispositions (SIG_IGN is inherited through exec otherwise).
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    ::posix_spawn_file_actions_init(&fa);
    ::posix_spawnattr_init(&attr);
    int rc = ::posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    if (rc == 0) rc = ::posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    sigset_t empty_mask, all_signals;
    sigemptyset(&empty_mask);
    sigfillset(&all_signals);
    if (rc == 0) {
      rc = ::posix_spawnattr_setflags(
          &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    if (rc == 0) rc = ::posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0) rc = ::posix_spawnattr_setsigmask(&attr, &empty_mask);
    if (rc == 0) rc = ::posix_spawnattr_setsigdefault(&attr, &all_signals);

    std::vector<char*> argv;
    for (auto& a : spec.argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& kv : *env) envp.push_back(kv.data());
    envp.push_back(nullptr);

    Status error;
    if (rc != 0) {
      error = Status::FromErrno(rc, "cannot prepare to spawn");
    } else {
      start = Clock::now();
      rc = ::posix_spawn(&pid, program->c_str(), &fa, &attr, argv.data(), envp.data());
      if (rc == ENOENT) {
        error = Status::NotFound("command not found: " + *program);
      } else if (rc == ENOEXEC) {
        error = Status::WithCode(ErrnoCode(rc), "cannot run " + *program + ": " +
                                                    std::strerror(rc) + " (a script needs a #! line)");
      } else if (rc != 0) {
        error = Status::FromErrno(rc, "cannot run " + *program);
      }
    }
    ::posix_spawn_file_actions_destroy(&fa);
    ::posix_spawnattr_destroy(&attr);
    CloseFd(out_pipe[1]);
    CloseFd(err_pipe[1]);
    if (!error.ok()) {
      pid = -1;
      close_all();
      return error;
    }

    result.started = true;
    out.fd = out_pipe[0];
    out.limit = spec.capture_limit;
    out.keep_head = true;
    err.fd = err_pipe[0];
    err.limit = spec.capture_limit;
    for (Capture* cap : {&out, &err}) {
      ev_io_init(&cap->io, &Child::OnRead, cap->fd, EV_READ);
      cap->io.data = cap;
      ev_io_start(loop(), &cap->io);
    }
    // ev_child works only on the default loop. Started before we return to
    // the loop, so libev's SIGCHLD handler cannot reap the child unseen.
    ev_child_init(&child_w, &Child::OnChild, pid, 0);
    child_w.data = this;
    ev_child_start(loop(), &child_w);
    // From now, not from the loop's cached time of its last wake-up.
    ev_timer_init(&timer_w, &Child::OnTimer, Seconds(spec.timeout) + ev_time() - ev_now(loop()),
                  0.);
    timer_w.data = this;
    ev_timer_start(loop(), &timer_w);
    return {};
  }
};

ProcessRunner::ProcessRunner(struct ev_loop* loop) : loop_(loop) {
  // The default loop's SIGCHLD watcher must exist before the first child.
  if (!ev_is_default_loop(loop)) {
    std::fprintf(stderr, "ProcessRunner needs the libev default loop (ev_child)\n");
    std::abort();
  }
}

ProcessRunner::~ProcessRunner() {
  for (auto& [raw, child] : children_) {
    child->Shutdown();
    if (child->pid > 0 && !child->exited) {
      ::kill(-child->pid, SIGKILL);
      int status = 0;
      while (::waitpid(child->pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  children_.clear();
}

std::uint64_t ProcessRunner::Spawn(ProcessSpec spec, Done done) {
  auto owned = std::make_unique<Child>();
  Child* c = owned.get();
  c->runner = this;
  c->id = next_id_++;
  const std::uint64_t id = c->id;
  c->spec = std::move(spec);
  c->done = std::move(done);
  c->start = Clock::now();
  if (c->spec.capture_limit == 0) c->spec.capture_limit = 1;
  children_.emplace(c, std::move(owned));
  if (Status started = c->Start(); !started.ok()) c->Fail(started);
  return id;
}

bool ProcessRunner::Terminate(std::uint64_t id, Duration kill_grace) {
  for (auto& [raw, child] : children_) {
    Child& c = *child;
    if (c.id != id) continue;
    if (c.pid <= 0 || c.exited) return false;
    c.result.terminated = true;
    if (c.term_sent) return true;   // already within a grace (a timeout or a Terminate)
    c.term_sent = true;
    c.Signal(SIGTERM);
    // The grace from now, replacing the timeout.
    ev_timer_stop(loop_, &c.timer_w);
    ev_timer_set(&c.timer_w, Seconds(kill_grace) + ev_time() - ev_now(loop_), 0.);
    ev_timer_start(loop_, &c.timer_w);
    return true;
  }
  return false;
}

size_t ProcessRunner::running() const {
  size_t n = 0;
  for (const auto& [raw, child] : children_) {
    if (child->result.started) ++n;
  }
  return n;
}

void ProcessRunner::TerminateAll() {
  for (auto& [raw, child] : children_) child->Signal(SIGTERM);
}

}  // namespace warden
