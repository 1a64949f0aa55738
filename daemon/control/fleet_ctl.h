// `wardenctl fleet …`: the fleet's switches and slots on etcd, for
// operators, through the same client wardend uses (no hand-encoded base64):
//
//   fleet status                  armed?, the mutex and its reason, every
//                                 group's holders and since when
//   fleet halt --reason TEXT      puts <prefix>/mutex = TEXT: every host
//                                 blocks its actions and takes no slot
//     [--terminate]               puts the halt record {"reason": TEXT,
//                                 "terminate": true} instead: every host
//                                 also stops what is running
//   fleet clear                   deletes <prefix>/mutex (and says so when
//                                 <prefix>/armed is missing: still held)
//   fleet release GROUP HOST      deletes HOST's slot in GROUP, only if it
//                                 still holds the value just read
//   fleet run JOB --group G       writes a rollout of JOB over G's members
//     [--parallel N] [--reason T] (docs/mutex.md, "Rollouts")
//   fleet status ROLLOUT          each host of a rollout: waiting, running
//                                 step k/n, done, failed, died, not started
//   fleet cancel ROLLOUT          sets the rollout cancelled: no host that
//                                 has not started starts
//
// The etcd settings come from [fleet], else from [mutex] backend = etcd.
// Runs its own libev loop; blocks until etcd answered or timed out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config/config.h"

namespace warden {

// `args` are the words after "fleet". Prints to stdout (results) and stderr
// (errors); with `out`, fills it instead (a JSON object: `ok`, and the
// result's members or `error`; docs/control.md). Returns the exit code: 0
// done, 1 etcd said no or failed, 2 usage.
struct FleetOptions {
  std::optional<std::string> reason;
  bool terminate = false;
  std::optional<std::string> group;       // run
  std::optional<std::int64_t> parallel;   // run
  std::string by;                         // run: who (user@host)
};
int RunFleetCommand(const Config& config, const std::vector<std::string>& args,
                    const FleetOptions& options, nlohmann::json* out = nullptr);

// The value `fleet halt --terminate` writes to <prefix>/mutex.
std::string TerminateHaltRecord(const std::string& reason);

}  // namespace warden
