// type = process: "1" when the process runs, "0" when not.
//
//   pidfile = PATH   the pid in PATH must be a live process (not a zombie).
//                    A missing pidfile is "0"; an unreadable one or one
//                    that holds no pid is an error.
//   name = NAME      with pidfile: the pid counts only if the basename of
//                    /proc/PID/exe (" (deleted)" after an upgrade ignored)
//                    or of argv[0] in /proc/PID/cmdline is NAME, so a
//                    reused pid is not mistaken for the server.
//                    Alone: "1" if any live process has comm or argv[0]
//                    basename NAME.
//
// Reads /proc on a worker (lane "proc"). Linux only.
#pragma once

#include <sys/types.h>

#include <string>

#include "checks/check.h"

namespace warden {

extern const CheckType kProcessCheckType;

// Worker-side helpers, exposed for tests.
// True when /proc/PID exists and the process is not a zombie.
bool ProcessAlive(pid_t pid);
// True when the exe or argv[0] basename of `pid` is `name`.
bool ProcessMatches(pid_t pid, const std::string& name);
// True when some live process's comm or argv[0] basename is `name`.
bool AnyProcessNamed(const std::string& name);

}  // namespace warden
