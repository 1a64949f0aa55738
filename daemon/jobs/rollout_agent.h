// A host's side of the rollouts (docs/mutex.md, "Rollouts"): with
// `[fleet] groups`, wardend keeps one etcd lease, registers itself under
// <prefix>/members/<group>/<host> with its order and its jobs, and reads
// <prefix>/rollouts/ when the mutex watch reports a change there (SetOnKey)
// and every [fleet] poll (±20 %) in case the watch is down.
//
// For a running rollout it is one of the hosts of, when DecideStart says
// so (daemon/io/rollout.h), it takes its place with one txn that compares
// the rollout key's mod_revision (so two hosts never both take the last
// place: every start rewrites that key) and requires started/<host> to be
// missing (so a host never starts a rollout twice, whatever its state
// dir says), putting started/<host> and hosts/<host> (running, under the
// lease). Then it records the id in <state_dir>/rollouts.json, and queues
// the job through the JobRunner (the guard and the mutex apply as to any
// job). Each job.step start updates hosts/<host> (step k/n); the job's end
// writes done or failed (no lease); a failure also sets the rollout's
// state to stopped. A host that finds, at start-up, a rollout it started
// and did not finish (kill -9, a crash) reports it failed (interrupted):
// it never runs it again. A dead host's running record vanishes with its
// lease: the others see it died and stop the rollout.
//
// Threads: loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config/config.h"
#include "daemon/io/etcd_client.h"
#include "daemon/io/rollout.h"

struct ev_loop;
struct ev_timer;

namespace warden {

class JobRunner;
class EventLog;

class RolloutAgent {
 public:
  RolloutAgent(struct ev_loop* loop, const FleetConfig& fleet, std::string host, JobRunner& jobs,
               EventLog& events, std::string record_path);
  ~RolloutAgent();
  RolloutAgent(const RolloutAgent&) = delete;
  RolloutAgent& operator=(const RolloutAgent&) = delete;

  // Reads the record of rollouts queued here, grants the lease, registers
  // the memberships and starts reading rollouts.
  void Start(std::shared_ptr<const Config> config);
  // The jobs defined may have changed: the member records are rewritten.
  void Reload(std::shared_ptr<const Config> config);
  // A key under the prefix changed (the mutex watch): read the rollouts
  // soon when it is one of theirs.
  void OnKey(const std::string& key);
  // Every event wardend emits: job.step start of the rollout's job moves
  // its record to step k/n.
  void OnEvent(const nlohmann::json& event);
  // What `wardenctl status` shows (its `rollout`): the groups this host is
  // a member of and its order, whether it holds its lease, the rollout
  // whose job it runs now (id, job, the host's record) or null, the
  // rollouts it queued, and the last problem with etcd or the record (null
  // when none).
  nlohmann::json Status() const;

 private:
  struct Current {
    std::string id;
    std::string job;
    RolloutHost record;
  };
  void GrantLease();
  void Register();
  void Scan();
  void OnScan(EtcdResult<EtcdRange> r);
  void Handle(const RolloutView& v);
  void TakePlace(const RolloutView& v);
  // Writes hosts/<host> = record (under the lease while running).
  void PutRecord(const std::string& id, const RolloutHost& record);
  struct RecordWrite {
    std::string id;
    RolloutHost record;
    bool final = false;   // done / failed: no lease, started/<host> too, then the event
  };
  void Write(RecordWrite w);
  void SendNext();
  // Our job ended: the final record, and the rollout stopped on failure.
  void Finished(const std::string& id, RolloutHost record);
  // Marks the rollout stopped / done with a txn on its mod_revision,
  // re-reading and trying again while others changed it.
  void SetState(const std::string& id, const std::string& state, const std::string& why,
                int tries = 5);
  bool LoadRecord();
  warden::Status SaveRecord();
  void ArmScan(double seconds);
  static void OnScanTimer(struct ev_loop* loop, ev_timer* w, int revents);
  static void OnLeaseTimer(struct ev_loop* loop, ev_timer* w, int revents);

  std::string RolloutKey(const std::string& id) const { return fleet_.prefix + "/rollouts/" + id; }

  struct ev_loop* loop_;
  const FleetConfig fleet_;
  const std::string host_;
  JobRunner& jobs_;
  EventLog& events_;
  const std::string record_path_;
  std::shared_ptr<const Config> config_;
  EtcdClient etcd_;
  std::int64_t lease_ = 0;
  std::string lease_error_;
  std::unique_ptr<ev_timer> scan_timer_;
  std::unique_ptr<ev_timer> lease_timer_;
  bool scanning_ = false;
  bool rescan_ = false;
  bool taking_ = false;                    // a TakePlace txn is in flight
  std::vector<std::string> queued_;        // rollout ids queued here, oldest first (the record)
  std::set<std::string> seen_;             // rollout.start emitted (this process)
  std::set<std::string> started_here_;     // places taken by this process
  std::set<std::string> stopped_seen_;     // rollout.stopped emitted (this process)
  std::set<std::string> bad_seen_;         // malformed keys logged
  std::optional<Current> current_;
  std::map<std::string, RolloutHost> unsent_;   // final records etcd has not confirmed
  std::deque<RecordWrite> pending_;        // writes of hosts/<host>, in order
  bool writing_ = false;                   // one of them is in flight
  std::string last_error_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace warden
