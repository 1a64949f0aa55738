#include "daemon/io/fleet.h"

#include <cstdlib>
#include <set>

#include "daemon/base/wall_time.h"

namespace warden {

using nlohmann::json;

nlohmann::json SlotHolder::ToJson() const {
  return {{"key", key}, {"index", index}, {"host", host}, {"job", job}, {"since", since}};
}

std::vector<SlotHolder> ParseSlotHolders(const std::string& group_prefix,
                                         const std::vector<EtcdKv>& kvs) {
  std::vector<SlotHolder> out;
  for (const auto& kv : kvs) {
    SlotHolder h;
    h.key = kv.key;
    h.create_revision = kv.create_revision;
    if (kv.key.size() > group_prefix.size()) {
      std::string rest = kv.key.substr(group_prefix.size());
      char* end = nullptr;
      long n = std::strtol(rest.c_str(), &end, 10);
      if (!rest.empty() && end && *end == '\0' && n >= 0 && n < 1'000'000 &&
          rest.find_first_not_of("0123456789") == std::string::npos) {
        h.index = static_cast<int>(n);
      }
    }
    json v = json::parse(kv.value, nullptr, false);
    if (v.is_object() && v.contains("host") && v["host"].is_string()) {
      h.host = v["host"].get<std::string>();
      if (v.contains("job") && v["job"].is_string()) h.job = v["job"].get<std::string>();
      if (v.contains("since") && v["since"].is_string()) h.since = v["since"].get<std::string>();
    } else {
      h.host = "?";
      h.job = kv.value.substr(0, 200);
    }
    out.push_back(std::move(h));
  }
  return out;
}

struct FleetSlots::Attempt {
  std::string group;
  std::string job;
  std::string value;
  std::vector<int> free;        // slot indices still to try, in order
  std::vector<SlotHolder> holders;
  AcquireDone done;
};

namespace {

// The same per-host endpoint rotation as the mutex (EtcdConfig::first).
EtcdConfig Rotated(EtcdConfig etcd, const std::string& host) {
  if (!etcd.endpoints.empty()) etcd.first = HostHash(host) % etcd.endpoints.size();
  return etcd;
}

}  // namespace

FleetSlots::FleetSlots(struct ev_loop* loop, const FleetConfig& config, std::string host)
    : config_(config), host_(std::move(host)), etcd_(loop, Rotated(config.etcd, host_)) {}

FleetSlots::~FleetSlots() = default;

std::string FleetSlots::GroupPrefix(const std::string& group) const {
  return config_.prefix + "/slots/" + group + "/";
}

void FleetSlots::Holders(const std::string& group, HoldersDone done) {
  const std::string prefix = GroupPrefix(group);
  etcd_.Range(prefix, EtcdPrefixEnd(prefix),
              [prefix, done = std::move(done)](EtcdResult<EtcdRange> r) {
                if (!r) {
                  done(Expected<std::vector<SlotHolder>>::Error(r.error().message));
                  return;
                }
                done(ParseSlotHolders(prefix, r->kvs));
              });
}

void FleetSlots::Acquire(const std::string& group, int capacity, const std::string& job,
                         AcquireDone done) {
  auto a = std::make_shared<Attempt>();
  a->group = group;
  a->job = job;
  a->value = json{{"host", host_}, {"job", job}, {"since", Rfc3339FromMs(WallMsNow())}}.dump();
  a->done = std::move(done);
  const std::string prefix = GroupPrefix(group);
  // One linearizable read of the group and the fleet mutex together.
  etcd_.Txn({}, {EtcdOp::RangePrefix(prefix), EtcdOp::Range(MutexKey())}, {},
            [this, a, prefix, capacity](EtcdResult<EtcdTxnResult> r) {
              SlotOutcome out;
              if (!r || r->responses.size() != 2) {
                out.kind = SlotOutcome::Kind::kError;
                out.error = r ? "etcd: unexpected answer to the group read" : r.error().message;
                a->done(std::move(out));
                return;
              }
              const std::vector<EtcdKv>& kvs = r->responses[0].kvs;
              a->holders = ParseSlotHolders(prefix, kvs);
              out.holders = a->holders;
              std::set<int> taken;
              for (const auto& h : a->holders) {
                if (h.host == host_) {   // ours already: resume with it, halt or not
                  out.kind = SlotOutcome::Kind::kAcquired;
                  out.key = h.key;
                  for (const auto& kv : kvs) {
                    if (kv.key == h.key) out.value = kv.value;
                  }
                  out.resumed = true;
                  a->done(std::move(out));
                  return;
                }
                if (h.index >= 0) taken.insert(h.index);
              }
              if (!r->responses[1].kvs.empty()) {
                out.kind = SlotOutcome::Kind::kHalted;
                out.error = "fleet halted: " + MutexKey() + " is set (" +
                            r->responses[1].kvs[0].value + ")";
                a->done(std::move(out));
                return;
              }
              for (int i = 0; i < capacity; ++i) {
                if (!taken.count(i)) a->free.push_back(i);
              }
              TryNext(a);
            });
}

void FleetSlots::TryNext(std::shared_ptr<Attempt> a) {
  if (a->free.empty()) {
    SlotOutcome out;
    out.kind = SlotOutcome::Kind::kFull;
    out.holders = a->holders;
    a->done(std::move(out));
    return;
  }
  const std::string key = GroupPrefix(a->group) + std::to_string(a->free.front());
  a->free.erase(a->free.begin());
  etcd_.Txn({EtcdCompare::Missing(MutexKey()), EtcdCompare::Missing(key)},
            {EtcdOp::Put(key, a->value)}, {EtcdOp::Range(MutexKey()), EtcdOp::Range(key)},
            [this, a, key](EtcdResult<EtcdTxnResult> r) {
              SlotOutcome out;
              out.holders = a->holders;
              if (!r) {
                out.kind = SlotOutcome::Kind::kError;
                out.error = r.error().message +
                            (r.error().maybe_applied
                                 ? " (the slot may have been taken: the next attempt re-reads)"
                                 : "");
                a->done(std::move(out));
                return;
              }
              if (r->succeeded) {
                out.kind = SlotOutcome::Kind::kAcquired;
                out.key = key;
                out.value = a->value;
                a->done(std::move(out));
                return;
              }
              if (!r->responses.empty() && !r->responses[0].kvs.empty()) {
                out.kind = SlotOutcome::Kind::kHalted;
                out.error = "fleet halted: " + MutexKey() + " is set (" +
                            r->responses[0].kvs[0].value + ")";
                a->done(std::move(out));
                return;
              }
              // Taken between our read and our transaction: the next one.
              if (r->responses.size() > 1) {
                auto taken = ParseSlotHolders(GroupPrefix(a->group), r->responses[1].kvs);
                a->holders.insert(a->holders.end(), taken.begin(), taken.end());
              }
              TryNext(a);
            });
}

void FleetSlots::Release(const std::string& key, const std::string& value, ReleaseDone done) {
  etcd_.Txn({EtcdCompare::ValueIs(key, value)}, {EtcdOp::Delete(key)}, {EtcdOp::Range(key)},
            [key, done = std::move(done)](EtcdResult<EtcdTxnResult> r) {
              if (!r) {
                done(Status::Error("cannot release " + key + ": " + r.error().message), false);
                return;
              }
              done(Status::Ok(), r->succeeded);
            });
}

}  // namespace warden
