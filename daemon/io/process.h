// Child processes on the libev default loop (ev_child only works there).
// Each child runs in its own process group, with stdin from /dev/null and
// stdout/stderr captured through non-blocking pipes (bounded: a head and a
// tail of at most `capture_limit` bytes each). At the timeout the whole
// group gets SIGTERM, then SIGKILL after `kill_grace`. Never a zombie: the
// completion runs after the child was reaped.
//
// The child: argv[0] without a '/' is looked up in the PATH of the child's
// environment (empty PATH entries, i.e. the current directory, are
// skipped); no signal blocked, every disposition default; every descriptor
// but 0, 1, 2 closed. Completion comes when the child itself exits: what it
// wrote is read without blocking, and a background grandchild that still
// holds the pipes does not delay it (it keeps running, in the child's group,
// unless the timeout had fired: then the group gets SIGKILL).
//
// Process-wide: libev reaps children of the default loop with
// waitpid(-1, ...), so nothing else in the process may wait for children of
// its own (std::system, popen, a second waitpid loop): run them here.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/base/units.h"

struct ev_loop;

namespace warden {

struct ProcessSpec {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH if it has no '/'
  std::vector<std::string> env;            // "KEY=VALUE", added to (or replacing in) our environment
  Duration timeout{60'000};
  Duration kill_grace{5'000};
  size_t capture_limit = 4096;
};

struct ProcessResult {
  bool started = false;          // false: spawn failed, see error
  std::string error;             // spawn failure, or "timed out after 10s"
  int exit_code = -1;            // set when the child exited
  int signal = 0;                // set when a signal ended it
  bool timed_out = false;
  bool terminated = false;       // ended by Terminate (an abort or a terminating halt)
  Duration elapsed{0};
  std::string stdout_head;       // first capture_limit bytes
  std::string stdout_tail;       // last capture_limit bytes
  std::string stderr_tail;

  bool success() const { return started && !timed_out && signal == 0 && exit_code == 0; }
  // "exit status 3", "killed by signal 9 (SIGKILL)", "timed out after 10s",
  // "terminated: killed by signal 15 (SIGTERM)"
  std::string Describe() const;
};

class ProcessRunner {
 public:
  // `loop` must be the default loop (EV_DEFAULT); aborts otherwise.
  explicit ProcessRunner(struct ev_loop* loop);
  // Kills (SIGKILL to each group) and reaps what still runs; their `done`
  // callbacks are not called.
  ~ProcessRunner();
  ProcessRunner(const ProcessRunner&) = delete;
  ProcessRunner& operator=(const ProcessRunner&) = delete;

  using Done = std::function<void(ProcessResult)>;
  // Loop thread only. `done` runs on the loop, never from inside Spawn
  // (a spawn failure is reported on the next loop iteration). Returns the
  // child's id for Terminate (never 0).
  std::uint64_t Spawn(ProcessSpec spec, Done done);

  // Ends child `id` early: SIGTERM to its group now, SIGKILL to the group
  // `kill_grace` later if the child has not exited (and, as at a timeout,
  // SIGKILL to what is left of the group once it has). Its result says
  // terminated. False when no such child runs (it has ended already).
  bool Terminate(std::uint64_t id, Duration kill_grace);

  size_t running() const;
  // SIGTERM to every running group (shutdown); their timeouts still apply.
  void TerminateAll();

 private:
  struct Child;
  struct ev_loop* loop_;
  std::map<Child*, std::unique_ptr<Child>> children_;
  std::uint64_t next_id_ = 1;
  friend struct Child;
};

}  // namespace warden
