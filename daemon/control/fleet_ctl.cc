#include "daemon/control/fleet_ctl.h"

#include <ev.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <map>

#include <nlohmann/json.hpp>

#include "daemon/io/etcd_client.h"
#include "daemon/io/fleet.h"
#include "daemon/io/rollout.h"
#include "daemon/base/wall_time.h"

namespace warden {

namespace {

// Runs the loop until `done` is set (the client's own timeouts bound it).
template <typename T>
EtcdResult<T> Wait(struct ev_loop* loop, std::optional<EtcdResult<T>>& got) {
  while (!got) ev_run(loop, EVRUN_ONCE);
  return std::move(*got);
}

int Failed(nlohmann::json* out, const std::string& what) {
  if (out) {
    *out = {{"ok", false}, {"error", what}};
  } else {
    std::fprintf(stderr, "wardenctl: %s\n", what.c_str());
  }
  return 1;
}

std::string RolloutState(const RolloutView& v) {
  std::string state = v.rollout.state;
  std::string why = v.rollout.why;
  // A host died and no member has said "stopped" yet: it is.
  if (state == "running" && !FirstFailure(v, &why).empty()) state = "stopped";
  return why.empty() ? state : state + ": " + why;
}

int Count(const RolloutView& v, RolloutHostState s) {
  int n = 0;
  for (const auto& m : v.rollout.hosts) n += HostStateOf(v, m.host) == s;
  return n;
}

std::string RolloutSummary(const RolloutView& v) {
  return v.rollout.id + "  " + v.rollout.job + " over " + v.rollout.group + ", " +
         std::to_string(Count(v, RolloutHostState::kDone)) + "/" +
         std::to_string(v.rollout.hosts.size()) + " done, " + RolloutState(v);
}

nlohmann::json RolloutSummaryJson(const RolloutView& v) {
  const Rollout& r = v.rollout;
  std::string why = r.why;
  std::string state = r.state;
  if (state == "running" && !FirstFailure(v, &why).empty()) state = "stopped";
  return {{"id", r.id},           {"job", r.job},     {"group", r.group},
          {"parallel", r.parallel}, {"reason", r.reason}, {"created", r.created},
          {"by", r.by},           {"state", state},   {"why", why},
          {"hosts", r.hosts.size()}, {"done", Count(v, RolloutHostState::kDone)}};
}

// fleet run / cancel / status ROLLOUT.
int RunRolloutCommand(EtcdClient& client, struct ev_loop* loop, const std::string& prefix,
                      const std::vector<std::string>& args, const FleetOptions& options,
                      nlohmann::json* out) {
  const std::string& sub = args[0];
  const std::string base = prefix + "/rollouts/";
  auto ReadRollouts = [&](std::vector<EtcdKv>* kvs) -> std::optional<std::string> {
    std::optional<EtcdResult<EtcdRange>> got;
    client.Range(base, EtcdPrefixEnd(base), [&](EtcdResult<EtcdRange> r) { got = std::move(r); });
    auto r = Wait(loop, got);
    if (!r) return r.error().message;
    *kvs = std::move(r->kvs);
    return std::nullopt;
  };

  if (sub == "run") {
    const std::string& job = args[1];
    const std::string& group = *options.group;
    if (group.empty() || group.find_first_of("/ \t") != std::string::npos) {
      return Failed(out, "fleet run: '" + group + "' is not a group name");
    }
    const std::string members = prefix + "/members/" + group + "/";
    std::optional<EtcdResult<EtcdRange>> got;
    client.Range(members, EtcdPrefixEnd(members),
                 [&](EtcdResult<EtcdRange> r) { got = std::move(r); });
    auto r = Wait(loop, got);
    if (!r) return Failed(out, "fleet run: " + r.error().message);
    if (r->kvs.empty()) {
      return Failed(out, "fleet run: group " + group + " has no member: nothing under " + members +
                             " (each host registers there while wardend runs with [fleet] groups "
                             "= " + group + "); nothing written");
    }
    Rollout ro;
    std::vector<std::string> lacking;
    for (const auto& kv : r->kvs) {
      auto m = ParseMemberRecord(kv.key, kv.value);
      if (!m) return Failed(out, "fleet run: " + m.error());
      if (std::find(m->jobs.begin(), m->jobs.end(), job) == m->jobs.end()) lacking.push_back(m->host);
      ro.hosts.push_back({m->host, m->order});
    }
    if (!lacking.empty()) {
      std::string list;
      for (const auto& h : lacking) list += (list.empty() ? "" : ", ") + h;
      return Failed(out, "fleet run: job " + job + " is not defined on " + list + " (member" +
                             (lacking.size() > 1 ? "s" : "") + " of " + group +
                             "); nothing written");
    }
    std::vector<EtcdKv> kvs;
    if (auto e = ReadRollouts(&kvs)) return Failed(out, "fleet run: " + *e);
    std::vector<std::string> ignored;
    for (const auto& [id, v] : ParseRollouts(prefix, kvs, &ignored)) {
      std::string why;
      if (v.rollout.group == group && v.rollout.state == "running" && !AllDone(v) &&
          FirstFailure(v, &why).empty()) {
        return Failed(out, "fleet run: rollout " + id + " (" + v.rollout.job + ") of group " + group +
                               " is still running (wardenctl fleet cancel " + id + "); nothing written");
      }
    }
    std::sort(ro.hosts.begin(), ro.hosts.end(), [](const auto& a, const auto& b) {
      return a.order != b.order ? a.order < b.order : a.host < b.host;
    });
    ro.job = job;
    ro.group = group;
    ro.parallel = options.parallel ? static_cast<int>(*options.parallel) : 1;
    ro.reason = options.reason.value_or("");
    ro.created = Rfc3339FromMs(WallMsNow());
    ro.by = options.by;
    std::random_device rd;
    ro.id = NewRolloutId(WallMsNow(), rd());
    const std::string key = base + ro.id;
    std::optional<EtcdResult<EtcdTxnResult>> put;
    client.Txn({EtcdCompare::Missing(key)}, {EtcdOp::Put(key, ro.Serialize())}, {},
               [&](EtcdResult<EtcdTxnResult> t) { put = std::move(t); });
    auto t = Wait(loop, put);
    if (!t) return Failed(out, "fleet run: " + t.error().message);
    if (!t->succeeded) return Failed(out, "fleet run: " + key + " exists already; try again");
    if (out) {
      nlohmann::json hosts = nlohmann::json::array();
      for (const auto& m : ro.hosts) hosts.push_back({{"host", m.host}, {"order", m.order}});
      *out = {{"ok", true}, {"rollout", ro.id}, {"key", key}, {"job", job}, {"group", group},
              {"parallel", ro.parallel}, {"hosts", hosts}, {"revision", t->header.revision}};
      return 0;
    }
    std::printf("rollout %s: %s over %s, %zu host(s), %d at a time (%s)\n", ro.id.c_str(),
                job.c_str(), group.c_str(), ro.hosts.size(), ro.parallel, key.c_str());
    for (const auto& m : ro.hosts) std::printf("  order %-6d %s\n", m.order, m.host.c_str());
    std::printf("wardenctl fleet status %s follows it\n", ro.id.c_str());
    return 0;
  }

  const std::string& id = args[1];
  std::vector<EtcdKv> kvs;
  if (auto e = ReadRollouts(&kvs)) return Failed(out, "fleet " + sub + ": " + *e);
  std::vector<std::string> errors;
  auto views = ParseRollouts(prefix, kvs, &errors);
  auto it = views.find(id);
  if (it == views.end()) {
    for (const auto& e : errors) {
      if (e.rfind(base + id + ":", 0) == 0) return Failed(out, "fleet " + sub + ": " + e);
    }
    return Failed(out, "fleet " + sub + ": no rollout " + id + " (" + base + id + " does not exist)");
  }
  const RolloutView& v = it->second;

  if (sub == "cancel") {
    if (v.rollout.state != "running") {
      return Failed(out, "fleet cancel: rollout " + id + " is " + RolloutState(v) + " already");
    }
    Rollout ro = v.rollout;
    ro.state = "cancelled";
    ro.why = "cancelled by " + options.by + (options.reason ? ": " + *options.reason : "");
    const std::string key = base + id;
    std::optional<EtcdResult<EtcdTxnResult>> put;
    client.Txn({EtcdCompare::Revision(key, EtcdCompare::Target::kMod, EtcdCompare::Result::kEqual,
                                      v.mod_revision)},
               {EtcdOp::Put(key, ro.Serialize())}, {},
               [&](EtcdResult<EtcdTxnResult> t) { put = std::move(t); });
    auto t = Wait(loop, put);
    if (!t) return Failed(out, "fleet cancel: " + t.error().message);
    if (!t->succeeded) {
      return Failed(out, "fleet cancel: " + key + " changed meanwhile (a host took its place); "
                         "not cancelled: try again");
    }
    int running = Count(v, RolloutHostState::kRunning);
    if (out) {
      *out = {{"ok", true}, {"cancelled", id}, {"running", running}};
      return 0;
    }
    std::printf("rollout %s cancelled: no host that has not started will start; %d running "
                "host(s) finish their job\n", id.c_str(), running);
    return 0;
  }

  // status ROLLOUT
  if (out) {
    nlohmann::json hosts = nlohmann::json::array();
    for (const auto& m : v.rollout.hosts) {
      nlohmann::json h = {{"host", m.host}, {"order", m.order},
                          {"state", RolloutHostStateName(HostStateOf(v, m.host))},
                          {"text", DescribeHost(v, m.host)}};
      if (auto rec = v.hosts.find(m.host); rec != v.hosts.end()) {
        h["step"] = rec->second.step;
        h["steps"] = rec->second.steps;
        h["step_name"] = rec->second.step_name;
        h["error"] = rec->second.error;
        h["since"] = rec->second.since;
        h["ended"] = rec->second.ended;
      }
      hosts.push_back(std::move(h));
    }
    *out = {{"ok", true}, {"rollout", RolloutSummaryJson(v)}, {"hosts", std::move(hosts)}};
    return 0;
  }
  const Rollout& ro = v.rollout;
  std::printf("rollout   %s\njob       %s over %s, %d at a time\nstate     %s\n", ro.id.c_str(),
              ro.job.c_str(), ro.group.c_str(), ro.parallel, RolloutState(v).c_str());
  if (!ro.reason.empty()) std::printf("reason    %s\n", ro.reason.c_str());
  std::printf("created   %s by %s\n", ro.created.c_str(), ro.by.c_str());
  for (const auto& m : ro.hosts) {
    std::printf("host      %-20s order %-6d %s\n", m.host.c_str(), m.order,
                DescribeHost(v, m.host).c_str());
  }
  return 0;
}

}  // namespace

std::string TerminateHaltRecord(const std::string& reason) {
  return nlohmann::json{{"reason", reason}, {"terminate", true}}.dump();
}

int RunFleetCommand(const Config& config, const std::vector<std::string>& args,
                    const FleetOptions& options, nlohmann::json* out) {
  const std::optional<std::string>& reason = options.reason;
  const bool terminate = options.terminate;
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
  const bool usage_ok = (sub == "status" && args.size() <= 2) ||
                        (sub == "halt" && args.size() == 1 && reason && !reason->empty()) ||
                        (sub == "clear" && args.size() == 1) ||
                        (sub == "release" && args.size() == 3) ||
                        (sub == "run" && args.size() == 2 && options.group) ||
                        (sub == "cancel" && args.size() == 2);
  if (!usage_ok || (terminate && sub != "halt") ||
      ((options.group || options.parallel) && sub != "run")) {
    const char* usage = "usage: wardenctl fleet status [ROLLOUT] | halt --reason TEXT [--terminate] | "
                        "clear | release GROUP HOST | run JOB --group G [--parallel N] "
                        "[--reason TEXT] | cancel ROLLOUT [--reason TEXT]";
    if (out) *out = {{"ok", false}, {"error", usage}, {"usage", true}};
    std::fprintf(stderr, "%s\n", usage);
    return 2;
  }
  if (sub == "run" && options.parallel && *options.parallel < 1) {
    const std::string e = "fleet run: --parallel must be at least 1 (it is how many hosts run the job at once)";
    if (out) *out = {{"ok", false}, {"error", e}, {"usage", true}};
    std::fprintf(stderr, "wardenctl: %s\n", e.c_str());
    return 2;
  }
  struct ev_loop* loop = ev_default_loop(0);
  EtcdClient client(loop, etcd);
  if (sub == "run" || sub == "cancel" || (sub == "status" && args.size() == 2)) {
    return RunRolloutCommand(client, loop, prefix, args, options, out);
  }
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

  std::vector<std::string> rollout_errors;
  const auto rollouts = ParseRollouts(prefix, r->kvs, &rollout_errors);
  if (out) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [id, v] : rollouts) list.push_back(RolloutSummaryJson(v));
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
            {"slots", std::move(held)},
            {"rollouts", std::move(list)},
            {"rollout_errors", rollout_errors}};
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
  for (const auto& [id, v] : rollouts) {
    std::printf("rollout   %s\n", RolloutSummary(v).c_str());
  }
  for (const auto& e : rollout_errors) std::printf("error     %s\n", e.c_str());
  return 0;
}

}  // namespace warden
