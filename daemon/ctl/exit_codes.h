// wardenctl's exit codes (docs/control.md, "wardenctl"): 0 done / ok, 1 the
// daemon said no (or the check is not ok, the action failed, the reload was
// refused), 2 usage, 3 the daemon cannot be reached.
#pragma once

namespace warden::ctl {

constexpr int kExitOk = 0;
constexpr int kExitNo = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

}  // namespace warden::ctl
