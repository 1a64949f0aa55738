// Fleet slots on etcd: at most N hosts of a group (say, one replication
// chain) inside a job at once, and one switch (the fleet mutex) that stops
// every host from taking a slot.
//
// Keys (docs/mutex.md, "Keys" and "Fleet slots"): group G with
// capacity N uses <prefix>/slots/G/0 … N-1, each holding
// {"host":…,"job":…,"since":…}. The fleet mutex is <prefix>/mutex.
//
// Acquire: one linearizable read of the group; if this host already holds a
// slot it resumes with it (a restart, or a write whose answer was lost);
// else each free slot is tried with one transaction that requires both
// "mutex create_revision == 0" and "slot create_revision == 0" and puts our
// value, so a halt set a moment ago also stops the acquire. An error (a
// timeout or a 5xx: the outcome of a write is unknown) is reported as such;
// the caller asks again later and the re-read decides.
// Release: deletes the key only if it still holds exactly our value.
// No lease: a host that dies mid-job keeps its slot until an operator
// releases it (wardenctl resume on that host, or wardenctl fleet release).
//
// Threads: loop thread only; callbacks run on the loop, never inside the
// call, and not after the FleetSlots is destroyed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/status.h"
#include "daemon/io/etcd_client.h"

struct ev_loop;

namespace warden {

// [fleet]
struct FleetConfig {
  bool enabled = false;         // a [fleet] section is present
  EtcdConfig etcd;
  std::string prefix = "/warden";
  int slots = 1;                // default capacity of every group
  Duration poll{10'000};        // while waiting for a slot, ask again this often (±20%)
  // Rollouts (daemon/io/rollout.h): the groups this host is a member of,
  // its place in them (lower first), and the TTL of its etcd lease.
  std::vector<std::string> groups;
  int order = 0;
  Duration lease{10'000};       // whole seconds, >= 2s
};

struct SlotHolder {
  std::string key;
  int index = -1;               // -1: a key that is not <group>/<number>
  std::string host;
  std::string job;
  std::string since;
  std::int64_t create_revision = 0;
  nlohmann::json ToJson() const;
};

struct SlotOutcome {
  enum class Kind { kAcquired, kFull, kHalted, kError };
  Kind kind = Kind::kError;
  std::string key;              // kAcquired: our slot's key
  std::string value;            // kAcquired: its value, exactly as stored
  bool resumed = false;         // kAcquired: this host held it already
  std::vector<SlotHolder> holders;  // the group as read (kAcquired, kFull, kHalted)
  std::string error;            // kHalted: the mutex's reason; kError: etcd's error
};

class FleetSlots {
 public:
  FleetSlots(struct ev_loop* loop, const FleetConfig& config, std::string host);
  ~FleetSlots();
  FleetSlots(const FleetSlots&) = delete;
  FleetSlots& operator=(const FleetSlots&) = delete;

  using AcquireDone = std::function<void(SlotOutcome)>;
  void Acquire(const std::string& group, int capacity, const std::string& job, AcquireDone done);

  // deleted: false when the key no longer held our value (released by an
  // operator, or taken over): nothing was deleted, and that is not an error.
  using ReleaseDone = std::function<void(Status, bool deleted)>;
  void Release(const std::string& key, const std::string& value, ReleaseDone done);

  using HoldersDone = std::function<void(Expected<std::vector<SlotHolder>>)>;
  void Holders(const std::string& group, HoldersDone done);

  std::string GroupPrefix(const std::string& group) const;
  std::string MutexKey() const { return config_.prefix + "/mutex"; }
  const FleetConfig& config() const { return config_; }

 private:
  struct Attempt;
  void TryNext(std::shared_ptr<Attempt> a);

  const FleetConfig config_;
  const std::string host_;
  EtcdClient etcd_;   // destroyed with us: its callbacks never run after
};

// The holders in a group's range (values that are not our JSON are listed
// with host "?" so an operator sees them).
std::vector<SlotHolder> ParseSlotHolders(const std::string& group_prefix,
                                         const std::vector<EtcdKv>& kvs);

}  // namespace warden
