// Rollouts on etcd: one job run over the members of a fleet group, host
// after host in their `order`, at most `parallel` at once, stopped by the
// first failure (docs/mutex.md, "Rollouts"). This file holds the pure
// parts: the records as stored, their strict parsing (an error names the
// key and the value), and the decision a host makes from what it read.
//
// Keys, under <prefix>:
//   members/<group>/<host>       MemberRecord, under the host's lease
//   rollouts/<id>                Rollout (written by wardenctl fleet run)
//   rollouts/<id>/started/<host> "1": the host took its place (never removed;
//                                 makes "run once per rollout" hold in etcd)
//   rollouts/<id>/hosts/<host>   RolloutHost: running (under the host's
//                                 lease: it vanishes when the host dies),
//                                 then done or failed (no lease)
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/io/etcd_client.h"

namespace warden {

// What a host says of itself at start-up, per group it is in.
struct MemberRecord {
  std::string host;
  int order = 0;
  std::vector<std::string> jobs;  // the jobs it defines
  std::string Serialize() const;
};
Expected<MemberRecord> ParseMemberRecord(const std::string& key, const std::string& value);

struct RolloutMember {
  std::string host;
  int order = 0;
  bool operator==(const RolloutMember&) const = default;
};

struct Rollout {
  std::string id;
  std::string job;
  std::string group;
  int parallel = 1;                    // >= 1
  std::string reason;
  std::string created;                 // RFC 3339
  std::string by;                      // who ran wardenctl fleet run (user@host)
  std::string state = "running";       // running, stopped, cancelled, done
  std::string why;                     // stopped / cancelled: why
  std::vector<RolloutMember> hosts;    // the group's members when it was written, by (order, host)
  std::string Serialize() const;
  bool operator==(const Rollout&) const = default;
};
// `value` of key <prefix>/rollouts/<id>; the id is the key's last part.
Expected<Rollout> ParseRollout(const std::string& key, const std::string& id,
                               const std::string& value);

struct RolloutHost {
  std::string state;       // running, done, failed
  int order = 0;
  int step = 0;            // running: the step in flight (1-based), 0 before the first
  int steps = 0;
  std::string step_name;
  std::string error;       // failed: why
  std::string since;       // when it started (RFC 3339)
  std::string ended;       // done / failed: when
  std::string Serialize() const;
  bool operator==(const RolloutHost&) const = default;
};
Expected<RolloutHost> ParseRolloutHost(const std::string& key, const std::string& value);

// One rollout as read from a range over <prefix>/rollouts/<id>.
struct RolloutView {
  Rollout rollout;
  std::int64_t mod_revision = 0;                // of the rollout's own key
  std::map<std::string, RolloutHost> hosts;     // host -> record
  std::set<std::string> started;                // hosts that took their place
};

// Every rollout in a range over <prefix>/rollouts/ (the kvs of one read).
// A value that does not parse is left out and described in *errors
// ("<key>: <what>, value '<value>'").
std::map<std::string, RolloutView> ParseRollouts(const std::string& prefix,
                                                 const std::vector<EtcdKv>& kvs,
                                                 std::vector<std::string>* errors);

// How a host of a rollout stands, for status and decisions.
enum class RolloutHostState { kWaiting, kRunning, kDone, kFailed, kDied, kNotStarted };
const char* RolloutHostStateName(RolloutHostState s);
RolloutHostState HostStateOf(const RolloutView& v, const std::string& host);
// "running step 2/3 (upgrade_stop)", "failed: exit status 1", "died (its lease expired)"...
std::string DescribeHost(const RolloutView& v, const std::string& host);

// The first host that failed or died, by order ("" none), and why.
std::string FirstFailure(const RolloutView& v, std::string* why);

struct RolloutDecision {
  enum class Kind {
    kStart,    // take the place now (with a txn that compares mod_revision)
    kWait,     // not yet: `why`
    kNever,    // this rollout will not run here: `why` (stopped, cancelled, a failure)
    kStarted,  // this host already took its place (a restart, a lost answer)
    kNotMember
  };
  Kind kind = Kind::kWait;
  std::string why;
};
// May `host` start now? Only while the rollout is running, no host failed
// or died, every host with a lower order is done, and fewer than
// `parallel` are running.
RolloutDecision DecideStart(const RolloutView& v, const std::string& host);

// All hosts done: the rollout may be marked done.
bool AllDone(const RolloutView& v);

// A new rollout id: <UTC yyyymmddThhmmssZ>-<4 hex> (a valid key part).
std::string NewRolloutId(std::int64_t wall_ms, unsigned random);

}  // namespace warden
