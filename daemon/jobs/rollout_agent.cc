#include "daemon/jobs/rollout_agent.h"

#include <ev.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/base/atomic_file.h"
#include "daemon/base/wall_time.h"
#include "daemon/engine/events.h"
#include "daemon/jobs/job_runner.h"

namespace warden {

using nlohmann::json;

namespace {

constexpr std::size_t kKeepIds = 200;   // ids kept in the record

EtcdConfig Rotated(EtcdConfig etcd, const std::string& host) {
  if (!etcd.endpoints.empty()) etcd.first = HostHash(host) % etcd.endpoints.size();
  return etcd;
}

const JobConfig* FindJob(const Config& c, const std::string& name) {
  for (const auto& j : c.jobs) {
    if (j.name == name) return &j;
  }
  return nullptr;
}

}  // namespace

RolloutAgent::RolloutAgent(struct ev_loop* loop, const FleetConfig& fleet, std::string host,
                           JobRunner& jobs, EventLog& events, std::string record_path)
    : loop_(loop),
      fleet_(fleet),
      host_(std::move(host)),
      jobs_(jobs),
      events_(events),
      record_path_(std::move(record_path)),
      etcd_(loop, Rotated(fleet.etcd, host_)),
      scan_timer_(std::make_unique<ev_timer>()),
      lease_timer_(std::make_unique<ev_timer>()) {
  ev_timer_init(scan_timer_.get(), &RolloutAgent::OnScanTimer, 0., 0.);
  scan_timer_->data = this;
  ev_timer_init(lease_timer_.get(), &RolloutAgent::OnLeaseTimer, 0., 0.);
  lease_timer_->data = this;
}

RolloutAgent::~RolloutAgent() {
  *alive_ = false;
  ev_timer_stop(loop_, scan_timer_.get());
  ev_timer_stop(loop_, lease_timer_.get());
}

void RolloutAgent::Start(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  if (!LoadRecord()) spdlog::error("rollouts: {}", last_error_);
  GrantLease();
}

void RolloutAgent::Reload(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  if (lease_ != 0) Register();
}

bool RolloutAgent::LoadRecord() {
  auto text = ReadSmallFile(record_path_);
  if (!text) return true;   // none yet
  json doc = json::parse(*text, nullptr, false);
  if (!doc.is_object() || !doc.contains("queued") || !doc["queued"].is_array()) {
    last_error_ = record_path_ + ": not a rollout record ({\"queued\": [ids]}); rollouts already "
                  "queued here are still never run twice (etcd's started/<host> keys say so)";
    return false;
  }
  for (const auto& id : doc["queued"]) {
    if (id.is_string()) queued_.push_back(id.get<std::string>());
  }
  return true;
}

warden::Status RolloutAgent::SaveRecord() {
  while (queued_.size() > kKeepIds) queued_.erase(queued_.begin());
  return WriteFileAtomically(record_path_, json{{"queued", queued_}}.dump() + "\n", 0640);
}

nlohmann::json RolloutAgent::Status() const {
  using nlohmann::json;
  json current = nullptr;
  if (current_) {
    const RolloutHost& r = current_->record;
    current = {{"id", current_->id},
               {"job", current_->job},
               {"state", r.state},
               {"step", r.step},
               {"steps", r.steps},
               {"step_name", r.step_name},
               {"since", r.since}};
  }
  const std::string& error = lease_error_.empty() ? last_error_ : lease_error_;
  return {{"groups", fleet_.groups},
          {"order", fleet_.order},
          {"member", lease_ != 0},
          {"current", std::move(current)},
          {"queued", queued_},
          {"error", error.empty() ? json(nullptr) : json(error)}};
}

// --- the lease and the memberships ------------------------------------------

void RolloutAgent::GrantLease() {
  std::weak_ptr<bool> alive = alive_;
  etcd_.LeaseGrant(fleet_.lease.count() / 1000, [this, alive](EtcdResult<EtcdLeaseResult> r) {
    if (alive.expired()) return;
    if (!r) {
      if (lease_error_ != "no etcd lease: " + r.error().message) {
        spdlog::warn("rollouts: no etcd lease: {}", r.error().message);
      }
      lease_error_ = "no etcd lease: " + r.error().message;
      ev_timer_set(lease_timer_.get(), 1.0, 0.);
      ev_timer_start(loop_, lease_timer_.get());
      return;
    }
    lease_ = r->id;
    lease_error_.clear();
    spdlog::info("rollouts: etcd lease {:x} ({} s); member of {}", lease_, r->ttl,
                 fmt::join(fleet_.groups, ", "));
    Register();
    ev_timer_set(lease_timer_.get(), static_cast<double>(fleet_.lease.count()) / 3000., 0.);
    ev_timer_start(loop_, lease_timer_.get());
    ArmScan(0.);
  });
}

void RolloutAgent::Register() {
  MemberRecord m;
  m.host = host_;
  m.order = fleet_.order;
  if (config_) {
    for (const auto& j : config_->jobs) m.jobs.push_back(j.name);
  }
  std::vector<EtcdOp> puts;
  for (const auto& g : fleet_.groups) {
    puts.push_back(EtcdOp::Put(fleet_.prefix + "/members/" + g + "/" + host_, m.Serialize(), lease_));
  }
  // A running record belongs under the lease too (a new lease after an expiry).
  if (current_) PutRecord(current_->id, current_->record);
  std::weak_ptr<bool> alive = alive_;
  etcd_.Txn({}, std::move(puts), {}, [this, alive](EtcdResult<EtcdTxnResult> r) {
    if (alive.expired()) return;
    if (!r) {
      spdlog::warn("rollouts: cannot register as a member: {}", r.error().message);
      last_error_ = "cannot register as a member: " + r.error().message;
    }
  });
}

void RolloutAgent::OnLeaseTimer(struct ev_loop*, ev_timer* w, int) {
  auto* self = static_cast<RolloutAgent*>(w->data);
  if (self->lease_ == 0) {
    self->GrantLease();
    return;
  }
  std::weak_ptr<bool> alive = self->alive_;
  self->etcd_.LeaseKeepAlive(self->lease_, [self, alive](EtcdResult<EtcdLeaseResult> r) {
    if (alive.expired()) return;
    if (r && r->ttl <= 0) {
      // Expired (etcd was out of reach longer than the TTL): our keys are
      // gone, a running record with them, which stops that rollout.
      spdlog::error("rollouts: etcd lease {:x} expired; granting a new one", self->lease_);
      self->lease_ = 0;
      self->GrantLease();
      return;
    }
    if (!r) {
      spdlog::warn("rollouts: lease keepalive: {}", r.error().message);
      self->lease_error_ = "lease keepalive: " + r.error().message;
    } else {
      self->lease_error_.clear();
    }
    const double every = static_cast<double>(self->fleet_.lease.count()) / 3000.;
    ev_timer_set(self->lease_timer_.get(), r ? every : std::min(every, 1.0), 0.);
    ev_timer_start(self->loop_, self->lease_timer_.get());
  });
}

// --- reading the rollouts ---------------------------------------------------

void RolloutAgent::OnKey(const std::string& key) {
  if (key.rfind(fleet_.prefix + "/rollouts/", 0) == 0) ArmScan(0.02);
}

void RolloutAgent::ArmScan(double seconds) {
  if (scanning_) {
    rescan_ = true;
    return;
  }
  // A sooner scan replaces a later one.
  if (ev_is_active(scan_timer_.get()) && ev_timer_remaining(loop_, scan_timer_.get()) <= seconds) {
    return;
  }
  ev_timer_stop(loop_, scan_timer_.get());
  ev_timer_set(scan_timer_.get(), seconds, 0.);
  ev_timer_start(loop_, scan_timer_.get());
}

void RolloutAgent::OnScanTimer(struct ev_loop*, ev_timer* w, int) {
  static_cast<RolloutAgent*>(w->data)->Scan();
}

void RolloutAgent::Scan() {
  if (lease_ == 0) return;   // GrantLease scans once it has one
  scanning_ = true;
  rescan_ = false;
  const std::string prefix = fleet_.prefix + "/rollouts/";
  std::weak_ptr<bool> alive = alive_;
  etcd_.Range(prefix, EtcdPrefixEnd(prefix), [this, alive](EtcdResult<EtcdRange> r) {
    if (alive.expired()) return;
    scanning_ = false;
    OnScan(std::move(r));
    // The next: at once when something changed meanwhile, else the poll.
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    const double poll = static_cast<double>(fleet_.poll.count()) / 1000. * jitter(rng_);
    ArmScan(rescan_ ? 0.02 : poll);
  });
}

void RolloutAgent::OnScan(EtcdResult<EtcdRange> r) {
  if (!r) {
    if (last_error_ != r.error().message) spdlog::warn("rollouts: {}", r.error().message);
    last_error_ = r.error().message;
    return;
  }
  last_error_.clear();
  std::vector<std::string> errors;
  auto views = ParseRollouts(fleet_.prefix, r->kvs, &errors);
  for (const auto& e : errors) {
    if (bad_seen_.insert(e).second) spdlog::error("rollouts: {}", e);
  }
  for (auto& [id, v] : views) Handle(v);
  // Final records etcd did not confirm: again.
  for (auto it = unsent_.begin(); it != unsent_.end();) {
    auto [id, rec] = *it;
    it = unsent_.erase(it);
    Finished(id, rec);
  }
}

void RolloutAgent::Handle(const RolloutView& v) {
  const Rollout& ro = v.rollout;
  RolloutDecision d = DecideStart(v, host_);
  using K = RolloutDecision::Kind;
  if (d.kind == K::kNotMember) return;
  const bool mine_now = current_ && current_->id == ro.id;
  if (d.kind == K::kStarted) {
    if (mine_now || unsent_.count(ro.id)) return;
    const RolloutHostState s = HostStateOf(v, host_);
    // Started by this wardend: its result is on its way (or written).
    const bool here = started_here_.count(ro.id) != 0;
    if (!here && (s == RolloutHostState::kRunning || s == RolloutHostState::kDied)) {
      // Started here by an earlier wardend that did not see its job end.
      RolloutHost rec = s == RolloutHostState::kRunning ? v.hosts.at(host_) : RolloutHost{};
      rec.state = "failed";
      rec.error = "interrupted: wardend stopped while the job ran (see job.interrupted); not "
                  "run again";
      rec.ended = Rfc3339FromMs(WallMsNow());
      started_here_.insert(ro.id);   // said once
      // Queued by that wardend and not begun (the queue was halted or busy):
      // it is reported failed, so it must not run later either.
      if (jobs_.DropQueued("rollout", ro.id, "rollout " + ro.id + " was interrupted: wardend "
                                             "stopped before the job began") > 0) {
        rec.error = "interrupted: wardend stopped before the job began; dropped from the "
                    "queue, not run";
      }
      Finished(ro.id, rec);
      return;
    }
    if (ro.state == "running" && AllDone(v)) SetState(ro.id, "done", "");
    return;
  }
  if (ro.state == "running" && seen_.insert(ro.id).second) {
    events_.Emit("rollout.start", {{"rollout", ro.id}, {"job", ro.job}, {"group", ro.group},
                                   {"order", fleet_.order}, {"parallel", ro.parallel},
                                   {"hosts", ro.hosts.size()}, {"reason", ro.reason}});
  }
  if (d.kind == K::kNever) {
    // Only for a rollout this wardend saw running: not for every old one at start.
    if (seen_.count(ro.id) && stopped_seen_.insert(ro.id).second) {
      events_.Emit("rollout.stopped", {{"rollout", ro.id}, {"job", ro.job}, {"group", ro.group},
                                       {"state", ro.state}, {"why", d.why}});
    }
    // A host that died leaves the rollout "running": say it is stopped.
    std::string why;
    if (ro.state == "running" && !FirstFailure(v, &why).empty()) SetState(ro.id, "stopped", why);
    return;
  }
  if (d.kind != K::kStart || started_here_.count(ro.id)) return;
  if (std::find(queued_.begin(), queued_.end(), ro.id) != queued_.end()) {
    // Our record says it was queued here, etcd says not started (etcd's
    // data restored from an older backup?): never twice.
    RolloutHost rec;
    rec.state = "failed";
    rec.error = "already queued here once (" + record_path_ + "); not run again";
    rec.ended = Rfc3339FromMs(WallMsNow());
    started_here_.insert(ro.id);
    Finished(ro.id, rec);
    return;
  }
  TakePlace(v);
}

void RolloutAgent::TakePlace(const RolloutView& v) {
  const Rollout& ro = v.rollout;
  if (current_ || taking_) return;   // one rollout at a time here; the next scan looks again
  taking_ = true;
  // From now on a read that shows this host started is this txn's doing
  // (a read can be answered before the txn is), not an earlier wardend's.
  started_here_.insert(ro.id);
  const std::string base = RolloutKey(ro.id);
  RolloutHost rec;
  rec.state = "running";
  for (const auto& m : ro.hosts) {
    if (m.host == host_) rec.order = m.order;
  }
  rec.since = Rfc3339FromMs(WallMsNow());
  const JobConfig* job = config_ ? FindJob(*config_, ro.job) : nullptr;
  if (job) rec.steps = static_cast<int>(job->steps.size());
  std::weak_ptr<bool> alive = alive_;
  etcd_.Txn(
      {EtcdCompare::Revision(base, EtcdCompare::Target::kMod, EtcdCompare::Result::kEqual,
                             v.mod_revision),
       EtcdCompare::Missing(base + "/started/" + host_)},
      {EtcdOp::Put(base, ro.Serialize()), EtcdOp::Put(base + "/started/" + host_, "1"),
       EtcdOp::Put(base + "/hosts/" + host_, rec.Serialize(), lease_)},
      // The config is held with `job` in it: a reload meanwhile must not free it.
      {}, [this, alive, ro, rec, job, config = config_](EtcdResult<EtcdTxnResult> r) {
        (void)config;
        if (alive.expired()) return;
        taking_ = false;
        if (!r || !r->succeeded) {
          // Not taken, or unknown: the next read decides (a place taken by a
          // txn whose answer was lost reads as started and not finished: it
          // is reported failed, never run).
          started_here_.erase(ro.id);
          if (!r) spdlog::warn("rollouts: {}: cannot take a place: {}", ro.id, r.error().message);
          ArmScan(r ? 0.02 : 1.0);
          return;
        }
        current_ = Current{ro.id, ro.job, rec};
        if (!job) {
          RolloutHost failed = rec;
          failed.state = "failed";
          failed.error = "job " + ro.job + " is not defined on " + host_;
          current_.reset();
          Finished(ro.id, failed);
          return;
        }
        queued_.push_back(ro.id);
        if (warden::Status s = SaveRecord(); !s.ok()) {
          RolloutHost failed = rec;
          failed.state = "failed";
          failed.error = "cannot record the rollout in " + record_path_ + ": " + s.message();
          current_.reset();
          Finished(ro.id, failed);
          return;
        }
        events_.Emit("rollout.host.start", {{"rollout", ro.id}, {"job", ro.job},
                                            {"group", ro.group}, {"order", rec.order}});
        const std::string id = ro.id;
        JobRunner::Queued q =
            jobs_.Enqueue(ro.job, Trigger{"rollout", id, "", ""}, [this, alive, id](const json& ev) {
              if (alive.expired() || !current_ || current_->id != id) return;
              RolloutHost fin = current_->record;
              const std::string name = ev.value("event", "");
              fin.state = name == "job.finish" ? "done" : "failed";
              if (fin.state == "failed") {
                fin.error = name + (ev.contains("error") && ev["error"].is_string()
                                        ? ": " + ev["error"].get<std::string>()
                                        : std::string());
              }
              fin.ended = Rfc3339FromMs(WallMsNow());
              current_.reset();
              Finished(id, fin);
            });
        if (!q.ok) {
          RolloutHost failed = rec;
          failed.state = "failed";
          failed.error = "not queued: " + q.error;
          current_.reset();
          Finished(ro.id, failed);
        }
      });
}

void RolloutAgent::OnEvent(const json& event) {
  if (!current_ || event.value("event", "") != "job.step" || event.value("result", "") != "start" ||
      event.value("job", "") != current_->job) {
    return;
  }
  current_->record.step = event.value("step_index", 0);
  current_->record.steps = event.value("steps", current_->record.steps);
  current_->record.step_name = event.value("step", "");
  PutRecord(current_->id, current_->record);
}

void RolloutAgent::PutRecord(const std::string& id, const RolloutHost& record) {
  Write(RecordWrite{id, record, false});
}

void RolloutAgent::Finished(const std::string& id, RolloutHost record) {
  Write(RecordWrite{id, std::move(record), true});
}

// One write of hosts/<host> at a time, in order: two in flight could be
// applied in either order, and a step's progress landing after the result
// would leave the host "running" for good.
void RolloutAgent::Write(RecordWrite w) {
  // Progress not yet sent is replaced by what follows it for the same rollout.
  std::erase_if(pending_, [&](const RecordWrite& p) { return !p.final && p.id == w.id; });
  pending_.push_back(std::move(w));
  if (!writing_) SendNext();
}

void RolloutAgent::SendNext() {
  if (pending_.empty()) {
    writing_ = false;
    return;
  }
  writing_ = true;
  RecordWrite w = std::move(pending_.front());
  pending_.pop_front();
  const std::string base = RolloutKey(w.id);
  std::vector<EtcdOp> ops;
  if (w.final) {
    ops = {EtcdOp::Put(base + "/hosts/" + host_, w.record.Serialize()),
           EtcdOp::Put(base + "/started/" + host_, "1")};
  } else {
    ops = {EtcdOp::Put(base + "/hosts/" + host_, w.record.Serialize(), lease_)};
  }
  std::weak_ptr<bool> alive = alive_;
  etcd_.Txn({}, std::move(ops), {}, [this, alive, w](EtcdResult<EtcdTxnResult> r) {
    if (alive.expired()) return;
    if (!w.final) {
      if (!r) spdlog::warn("rollouts: {}: progress not written: {}", w.id, r.error().message);
    } else if (!r) {
      spdlog::warn("rollouts: {}: result not written (again at the next read): {}", w.id,
                   r.error().message);
      unsent_[w.id] = w.record;
    } else {
      json f = {{"rollout", w.id}, {"result", w.record.state}, {"order", w.record.order}};
      if (!w.record.error.empty()) f["error"] = w.record.error;
      events_.Emit("rollout.host.finish", std::move(f));
      if (w.record.state == "failed") {
        SetState(w.id, "stopped", host_ + " failed: " + w.record.error);
      } else {
        ArmScan(0.02);   // perhaps the last one: done
      }
    }
    SendNext();
  });
}

void RolloutAgent::SetState(const std::string& id, const std::string& state,
                            const std::string& why, int tries) {
  const std::string key = RolloutKey(id);
  std::weak_ptr<bool> alive = alive_;
  etcd_.Range(key, "", [this, alive, key, id, state, why, tries](EtcdResult<EtcdRange> r) {
    if (alive.expired() || !r || r->kvs.empty()) return;
    auto ro = ParseRollout(key, id, r->kvs[0].value);
    if (!ro || ro->state != "running") return;   // already decided
    ro->state = state;
    ro->why = why;
    const std::int64_t rev = r->kvs[0].mod_revision;
    etcd_.Txn({EtcdCompare::Revision(key, EtcdCompare::Target::kMod, EtcdCompare::Result::kEqual,
                                     rev)},
              {EtcdOp::Put(key, ro->Serialize())}, {},
              [this, alive, id, state, why, tries, ro = *ro](EtcdResult<EtcdTxnResult> t) {
                if (alive.expired()) return;
                if (t && t->succeeded) {
                  if (state == "done") {
                    events_.Emit("rollout.done", {{"rollout", id}, {"job", ro.job},
                                                  {"group", ro.group},
                                                  {"hosts", ro.hosts.size()}});
                  } else {
                    spdlog::warn("rollouts: {} stopped: {}", id, why);
                  }
                  return;
                }
                if (tries > 1) SetState(id, state, why, tries - 1);
              });
  });
}

}  // namespace warden
