// type = exec: runs one command.
//
//   command = ...   split into argv as a POSIX shell splits words (quotes
//                   and backslashes, no expansion, no shell runs: see
//                   daemon/base/words.h); may continue on indented lines.
//                   Shell syntax (| > ; $VAR $(...) ...) is a config error
//                   that says to quote it or to set shell = yes.
//   shell = yes     run the command text with /bin/sh -c instead (default no).
//   env = K=V ...   extra environment, words as in `command`
//                   (env = LANG=C "MSG=two words"); each K a valid name.
//
// The child also gets WARDEN_ACTION, WARDEN_TRIGGER (check, job or ctl),
// WARDEN_TRIGGER_NAME, WARDEN_STATE and WARDEN_VALUE (what tripped it);
// `env` may override them. It runs through the ProcessRunner (own process
// group, stdin /dev/null, SIGTERM then SIGKILL at the action's timeout).
// The outcome is ok iff the exit status is 0; error says why not ("exit
// status 3", "killed by signal 9 (SIGKILL)", "timed out after 5s",
// "command not found: foo"). Terminate: SIGTERM to the group, SIGKILL after
// the grace ("terminated: killed by signal 15 (SIGTERM)", extra terminated).
#pragma once

#include "actions/action.h"
#include "daemon/io/process.h"

#include <cstdint>
#include <memory>

namespace warden {

extern const ActionType kExecActionType;

// Bytes of stdout/stderr that process-running actions capture. More than
// the 4 KB an event keeps: the executor redacts secrets and then cuts, so a
// secret cut in half at the capture boundary never reaches an event.
inline constexpr size_t kActionCaptureLimit = 8192;

// The outcome of an action that ran one process: ok iff exit status 0.
ActionOutcome ProcessOutcome(const ProcessResult& result);

// The process run of an action that runs one process at a time (exec,
// service): Spawn keeps its id until it ends, Terminate ends it early.
class RunningProcess {
 public:
  void Spawn(ProcessRunner& runner, ProcessSpec spec, ProcessRunner::Done done);
  bool Terminate(ProcessRunner* runner, Duration kill_grace);

 private:
  std::shared_ptr<std::uint64_t> id_ = std::make_shared<std::uint64_t>(0);   // 0: none
};

// The WARDEN_* variables that describe why an action runs.
std::vector<std::string> TriggerEnvironment(const ActionCommon& common, const Trigger& trigger);

}  // namespace warden
