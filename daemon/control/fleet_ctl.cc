#include "daemon/control/fleet_ctl.h"

#include <ev.h>

#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "daemon/io/etcd_client.h"
#include "daemon/io/fleet.h"

namespace warden {

namespace {

// Runs the loop until `done` is set (the client's own timeouts bound it).
template <typename T>
EtcdResult<T> Wait(struct ev_loop* loop, std::optional<EtcdResult<T>>& got) {
  while (!got) ev_run(loop, EVRUN_ONCE);
  return std::move(*got);
}

}  // namespace

std::string TerminateHaltRecord(const std::string& reason) {
  return nlohmann::json{{"reason", reason}, {"terminate", true}}.dump();
}

int RunFleetCommand(const Config& config, const std::vector<std::string>& args,
                    const std::optional<std::string>& reason, bool terminate,
                    nlohmann::json* out) {
  auto Fail = [out](const std::string& what) {
    if (out) {
      *out = {{"ok", false}, {"error", what}};
    } else {
      std::fprintf(stderr, "wardenctl: %s\n", what.c_str());
    }
    return 1;
  };
  EtcdConfig etcd;
  std::string prefix;
  if (config.fleet.enabled) {
    etcd = config.fleet.etcd;
    prefix = config.fleet.prefix;
  } else if (config.mutex.mode == MutexConfig::Mode::kEtcd) {
    etcd = config.mutex.etcd;
    prefix = config.mutex.prefix;
  } else {
    return Fail(config.path + " has no [fleet] and no [mutex] backend = etcd: no fleet to talk to");
  }
  const std::string sub = args.empty() ? "" : args[0];
  const bool usage_ok = (sub == "status" && args.size() == 1) ||
                        (sub == "halt" && args.size() == 1 && reason && !reason->empty()) ||
                        (sub == "clear" && args.size() == 1) ||
                        (sub == "release" && args.size() == 3);
  if (!usage_ok || (terminate && sub != "halt")) {
    const char* usage = "usage: wardenctl fleet status | halt --reason TEXT [--terminate] | clear | "
                        "release GROUP HOST";
    if (out) *out = {{"ok", false}, {"error", usage}, {"usage", true}};
    std::fprintf(stderr, "%s\n", usage);
    return 2;
  }
  struct ev_loop* loop = ev_default_loop(0);
  EtcdClient client(loop, etcd);
  const std::string mutex_key = prefix + "/mutex";
  const std::string armed_key = prefix + "/armed";

  if (sub == "halt" || sub == "clear") {
    if (sub == "halt") {
      std::optional<EtcdResult<EtcdPutResult>> got;
      const std::string value = terminate ? TerminateHaltRecord(*reason) : *reason;
      client.Put(mutex_key, value, [&](EtcdResult<EtcdPutResult> r) { got = std::move(r); });
      auto r = Wait(loop, got);
      if (!r) return Fail("fleet halt: " + r.error().message);
      if (out) {
        *out = {{"ok", true}, {"halted", true}, {"terminate", terminate}, {"key", mutex_key},
                {"reason", *reason}, {"revision", r->header.revision}};
        return 0;
      }
      std::printf("fleet halted%s: %s = %s (revision %lld)\n",
                  terminate ? " and terminating what runs" : "", mutex_key.c_str(),
                  value.c_str(), static_cast<long long>(r->header.revision));
      return 0;
    }
    std::optional<EtcdResult<EtcdTxnResult>> got;
    client.Txn({}, {EtcdOp::Delete(mutex_key), EtcdOp::Range(armed_key)}, {},
               [&](EtcdResult<EtcdTxnResult> r) { got = std::move(r); });
    auto r = Wait(loop, got);
    if (!r) return Fail("fleet clear: " + r.error().message);
    const bool deleted = r->responses.size() > 0 && r->responses[0].deleted > 0;
    const bool armed = r->responses.size() > 1 && !r->responses[1].kvs.empty();
    if (out) {
      *out = {{"ok", true}, {"cleared", deleted}, {"key", mutex_key}, {"armed", armed}};
      return 0;
    }
    std::printf("%s\n", deleted ? ("fleet cleared: " + mutex_key + " deleted").c_str()
                                : ("fleet was not halted (" + mutex_key + " absent)").c_str());
    if (!armed) {
      std::printf("note: %s is missing, so hosts with [mutex] backend = etcd still see the "
                  "mutex as held (etcdctl put %s yes arms it)\n",
                  armed_key.c_str(), armed_key.c_str());
    }
    return 0;
  }

  // status and release read everything under the prefix once.
  std::optional<EtcdResult<EtcdRange>> got;
  client.Range(prefix + "/", EtcdPrefixEnd(prefix + "/"),
               [&](EtcdResult<EtcdRange> r) { got = std::move(r); });
  auto r = Wait(loop, got);
  if (!r) return Fail("fleet " + sub + ": " + r.error().message);
  std::map<std::string, std::vector<EtcdKv>> groups;
  const EtcdKv* mutex = nullptr;
  const EtcdKv* armed = nullptr;
  const std::string slots = prefix + "/slots/";
  for (const auto& kv : r->kvs) {
    if (kv.key == mutex_key) mutex = &kv;
    if (kv.key == armed_key) armed = &kv;
    if (kv.key.rfind(slots, 0) == 0) {
      std::string rest = kv.key.substr(slots.size());
      groups[rest.substr(0, rest.find('/'))].push_back(kv);
    }
  }

  if (sub == "release") {
    const std::string& group = args[1];
    const std::string& host = args[2];
    auto it = groups.find(group);
    if (it == groups.end()) return Fail("fleet release: group " + group + " holds no slot");
    for (const auto& h : ParseSlotHolders(slots + group + "/", it->second)) {
      if (h.host != host) continue;
      std::string value;
      for (const auto& kv : it->second) {
        if (kv.key == h.key) value = kv.value;
      }
      std::optional<EtcdResult<EtcdTxnResult>> del;
      client.Txn({EtcdCompare::ValueIs(h.key, value)}, {EtcdOp::Delete(h.key)}, {},
                 [&](EtcdResult<EtcdTxnResult> d) { del = std::move(d); });
      auto d = Wait(loop, del);
      if (!d) return Fail("fleet release: " + d.error().message);
      if (!d->succeeded) return Fail("fleet release: " + h.key + " changed meanwhile; not deleted");
      if (out) {
        *out = {{"ok", true}, {"released", h.key}, {"group", group}, {"host", host},
                {"job", h.job}, {"since", h.since}};
        return 0;
      }
      std::printf("released %s (held by %s for %s since %s)\n", h.key.c_str(), host.c_str(),
                  h.job.c_str(), h.since.c_str());
      return 0;
    }
    return Fail("fleet release: " + host + " holds no slot of " + group);
  }

  if (out) {
    nlohmann::json held = nlohmann::json::array();
    for (const auto& [group, kvs] : groups) {
      for (const auto& h : ParseSlotHolders(slots + group + "/", kvs)) {
        held.push_back({{"group", group}, {"index", h.index}, {"host", h.host}, {"job", h.job},
                        {"since", h.since}, {"key", h.key}});
      }
    }
    *out = {{"ok", true},
            {"endpoint", client.current_endpoint()},
            {"revision", r->header.revision},
            {"armed", armed != nullptr},
            {"mutex", mutex ? "halted" : "clear"},
            {"reason", mutex ? nlohmann::json(mutex->value) : nlohmann::json()},
            {"slots", std::move(held)}};
    return 0;
  }
  std::printf("etcd      %s (revision %lld)\n", client.current_endpoint().c_str(),
              static_cast<long long>(r->header.revision));
  std::printf("armed     %s\n", armed ? "yes" : ("NO: " + armed_key + " is missing (the etcd "
                                                    "mutex reads as held)").c_str());
  std::string halt = "clear";
  if (mutex) {
    halt = "HALTED: " + mutex->value;
    nlohmann::json doc = nlohmann::json::parse(mutex->value, nullptr, /*allow_exceptions=*/false);
    if (doc.is_object() && doc.contains("reason") && doc["reason"].is_string()) {
      const bool term = doc.value("terminate", nlohmann::json(false)) == nlohmann::json(true);
      halt = std::string(term ? "HALTED, terminating: " : "HALTED: ") +
             doc["reason"].get<std::string>();
    }
  }
  std::printf("mutex     %s\n", halt.c_str());
  if (groups.empty()) std::printf("slots     none held\n");
  for (const auto& [group, kvs] : groups) {
    for (const auto& h : ParseSlotHolders(slots + group + "/", kvs)) {
      std::printf("slot      %-16s %-4d %-20s %-16s since %s\n", group.c_str(), h.index,
                  h.host.c_str(), h.job.c_str(), h.since.c_str());
    }
  }
  return 0;
}

}  // namespace warden
