#include "daemon/io/rollout.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

namespace warden {

using nlohmann::json;

namespace {

// "<key>: malformed <what>: <problem> (value '<value, cut>')"
std::string Bad(const std::string& key, const char* what, const std::string& problem,
                const std::string& value) {
  std::string shown = value.size() > 200 ? value.substr(0, 200) + "..." : value;
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return key + ": malformed " + what + ": " + problem + " (value '" + shown + "')";
}

// Reads the object's members; the first problem wins.
struct Reader {
  const json& doc;
  std::string problem;
  std::string Text(const char* name, bool required) {
    auto it = doc.find(name);
    if (it == doc.end()) {
      if (required && problem.empty()) problem = std::string("no \"") + name + "\"";
      return "";
    }
    if (!it->is_string()) {
      if (problem.empty()) problem = std::string("\"") + name + "\" is not a string";
      return "";
    }
    return it->get<std::string>();
  }
  int Int(const char* name, bool required, int min, int max) {
    auto it = doc.find(name);
    if (it == doc.end()) {
      if (required && problem.empty()) problem = std::string("no \"") + name + "\"";
      return min;
    }
    if (!it->is_number_integer() || it->get<long long>() < min || it->get<long long>() > max) {
      if (problem.empty()) {
        problem = std::string("\"") + name + "\" is not an integer from " + std::to_string(min) +
                  " to " + std::to_string(max);
      }
      return min;
    }
    return static_cast<int>(it->get<long long>());
  }
};

bool Parse(const std::string& value, json* doc, std::string* problem) {
  *doc = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (doc->is_discarded()) {
    *problem = "not JSON";
    return false;
  }
  if (!doc->is_object()) {
    *problem = "not a JSON object";
    return false;
  }
  return true;
}

bool ValidName(const std::string& s) {
  return !s.empty() && s.size() <= 200 && s.find('/') == std::string::npos &&
         std::none_of(s.begin(), s.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= 0x20; });
}

constexpr int kMaxOrder = 1'000'000;

}  // namespace

std::string MemberRecord::Serialize() const {
  return json{{"host", host}, {"order", order}, {"jobs", jobs}}.dump();
}

Expected<MemberRecord> ParseMemberRecord(const std::string& key, const std::string& value) {
  json doc;
  std::string problem;
  if (!Parse(value, &doc, &problem)) return Expected<MemberRecord>::Error(Bad(key, "member", problem, value));
  Reader r{doc, ""};
  MemberRecord m;
  m.host = r.Text("host", true);
  m.order = r.Int("order", true, -kMaxOrder, kMaxOrder);
  auto it = doc.find("jobs");
  if (r.problem.empty() && (it == doc.end() || !it->is_array())) r.problem = "\"jobs\" is not an array";
  if (r.problem.empty()) {
    for (const auto& j : *it) {
      if (!j.is_string()) {
        r.problem = "\"jobs\" holds a value that is not a string";
        break;
      }
      m.jobs.push_back(j.get<std::string>());
    }
  }
  if (!r.problem.empty()) return Expected<MemberRecord>::Error(Bad(key, "member", r.problem, value));
  return m;
}

std::string Rollout::Serialize() const {
  json h = json::array();
  for (const auto& m : hosts) h.push_back({{"host", m.host}, {"order", m.order}});
  json j = {{"job", job},         {"group", group}, {"parallel", parallel}, {"reason", reason},
            {"created", created}, {"by", by},       {"state", state},       {"hosts", h}};
  if (!why.empty()) j["why"] = why;
  return j.dump();
}

Expected<Rollout> ParseRollout(const std::string& key, const std::string& id,
                               const std::string& value) {
  json doc;
  std::string problem;
  if (!Parse(value, &doc, &problem)) return Expected<Rollout>::Error(Bad(key, "rollout", problem, value));
  Reader r{doc, ""};
  Rollout o;
  o.id = id;
  o.job = r.Text("job", true);
  o.group = r.Text("group", true);
  o.parallel = r.Int("parallel", true, 1, 10'000);
  o.reason = r.Text("reason", false);
  o.created = r.Text("created", false);
  o.by = r.Text("by", false);
  o.state = r.Text("state", true);
  o.why = r.Text("why", false);
  if (r.problem.empty() && o.state != "running" && o.state != "stopped" &&
      o.state != "cancelled" && o.state != "done") {
    r.problem = "\"state\" '" + o.state + "' is not running, stopped, cancelled or done";
  }
  if (r.problem.empty() && !ValidName(o.job)) r.problem = "\"job\" is not a job name";
  if (r.problem.empty() && !ValidName(o.group)) r.problem = "\"group\" is not a group name";
  auto it = doc.find("hosts");
  if (r.problem.empty() && (it == doc.end() || !it->is_array() || it->empty())) {
    r.problem = "\"hosts\" is not a non-empty array";
  }
  if (r.problem.empty()) {
    std::set<std::string> seen;
    for (const auto& h : *it) {
      if (!h.is_object()) {
        r.problem = "\"hosts\" holds a value that is not an object";
        break;
      }
      Reader hr{h, ""};
      RolloutMember m;
      m.host = hr.Text("host", true);
      m.order = hr.Int("order", true, -kMaxOrder, kMaxOrder);
      if (hr.problem.empty() && !ValidName(m.host)) hr.problem = "\"host\" is not a host name";
      if (hr.problem.empty() && !seen.insert(m.host).second) hr.problem = "host " + m.host + " twice";
      if (!hr.problem.empty()) {
        r.problem = "\"hosts\": " + hr.problem;
        break;
      }
      o.hosts.push_back(m);
    }
  }
  if (!r.problem.empty()) return Expected<Rollout>::Error(Bad(key, "rollout", r.problem, value));
  std::stable_sort(o.hosts.begin(), o.hosts.end(), [](const auto& a, const auto& b) {
    return a.order != b.order ? a.order < b.order : a.host < b.host;
  });
  return o;
}

std::string RolloutHost::Serialize() const {
  json j = {{"state", state}, {"order", order}, {"step", step}, {"steps", steps}, {"since", since}};
  if (!step_name.empty()) j["step_name"] = step_name;
  if (!error.empty()) j["error"] = error;
  if (!ended.empty()) j["ended"] = ended;
  return j.dump();
}

Expected<RolloutHost> ParseRolloutHost(const std::string& key, const std::string& value) {
  json doc;
  std::string problem;
  if (!Parse(value, &doc, &problem)) {
    return Expected<RolloutHost>::Error(Bad(key, "rollout host", problem, value));
  }
  Reader r{doc, ""};
  RolloutHost h;
  h.state = r.Text("state", true);
  h.order = r.Int("order", false, -kMaxOrder, kMaxOrder);
  h.step = r.Int("step", false, 0, 100'000);
  h.steps = r.Int("steps", false, 0, 100'000);
  h.step_name = r.Text("step_name", false);
  h.error = r.Text("error", false);
  h.since = r.Text("since", false);
  h.ended = r.Text("ended", false);
  if (r.problem.empty() && h.state != "running" && h.state != "done" && h.state != "failed") {
    r.problem = "\"state\" '" + h.state + "' is not running, done or failed";
  }
  if (!r.problem.empty()) return Expected<RolloutHost>::Error(Bad(key, "rollout host", r.problem, value));
  return h;
}

std::map<std::string, RolloutView> ParseRollouts(const std::string& prefix,
                                                 const std::vector<EtcdKv>& kvs,
                                                 std::vector<std::string>* errors) {
  const std::string base = prefix + "/rollouts/";
  std::map<std::string, RolloutView> out;
  std::set<std::string> bad;
  // The rollouts themselves first: a host record without its rollout is ignored.
  for (const auto& kv : kvs) {
    if (kv.key.rfind(base, 0) != 0) continue;
    const std::string rest = kv.key.substr(base.size());
    if (rest.find('/') != std::string::npos) continue;
    auto r = ParseRollout(kv.key, rest, kv.value);
    if (!r) {
      errors->push_back(r.error());
      bad.insert(rest);
      continue;
    }
    RolloutView& v = out[rest];
    v.rollout = std::move(*r);
    v.mod_revision = kv.mod_revision;
  }
  for (const auto& kv : kvs) {
    if (kv.key.rfind(base, 0) != 0) continue;
    const std::string rest = kv.key.substr(base.size());
    const auto slash = rest.find('/');
    if (slash == std::string::npos) continue;
    const std::string id = rest.substr(0, slash);
    auto it = out.find(id);
    if (it == out.end()) {
      if (!bad.count(id)) errors->push_back(kv.key + ": no rollout " + base + id + " for it");
      continue;
    }
    const std::string tail = rest.substr(slash + 1);
    if (tail.rfind("started/", 0) == 0) {
      it->second.started.insert(tail.substr(8));
    } else if (tail.rfind("hosts/", 0) == 0) {
      auto h = ParseRolloutHost(kv.key, kv.value);
      if (!h) {
        errors->push_back(h.error());
        continue;
      }
      it->second.hosts[tail.substr(6)] = std::move(*h);
    }
  }
  return out;
}

const char* RolloutHostStateName(RolloutHostState s) {
  switch (s) {
    case RolloutHostState::kWaiting: return "waiting";
    case RolloutHostState::kRunning: return "running";
    case RolloutHostState::kDone: return "done";
    case RolloutHostState::kFailed: return "failed";
    case RolloutHostState::kDied: return "died";
    case RolloutHostState::kNotStarted: return "not started";
  }
  return "?";
}

RolloutHostState HostStateOf(const RolloutView& v, const std::string& host) {
  auto it = v.hosts.find(host);
  if (it != v.hosts.end()) {
    if (it->second.state == "done") return RolloutHostState::kDone;
    if (it->second.state == "failed") return RolloutHostState::kFailed;
    return RolloutHostState::kRunning;
  }
  // Took its place, and its running record (under its lease) is gone.
  if (v.started.count(host)) return RolloutHostState::kDied;
  if (v.rollout.state != "running") return RolloutHostState::kNotStarted;
  // A failed or dead host stops the rollout before anyone marks it stopped.
  for (const auto& m : v.rollout.hosts) {
    auto r = v.hosts.find(m.host);
    if (r != v.hosts.end() ? r->second.state == "failed" : v.started.count(m.host) != 0) {
      return RolloutHostState::kNotStarted;
    }
  }
  return RolloutHostState::kWaiting;
}

std::string DescribeHost(const RolloutView& v, const std::string& host) {
  const RolloutHostState s = HostStateOf(v, host);
  auto it = v.hosts.find(host);
  switch (s) {
    case RolloutHostState::kRunning: {
      const RolloutHost& h = it->second;
      if (h.step == 0) return "running (queued, no step yet)";
      return "running step " + std::to_string(h.step) + "/" + std::to_string(h.steps) +
             (h.step_name.empty() ? "" : " (" + h.step_name + ")");
    }
    case RolloutHostState::kFailed:
      return "failed" + (it->second.step > 0 ? " at step " + std::to_string(it->second.step) +
                                                   "/" + std::to_string(it->second.steps)
                                             : std::string()) +
             ": " + it->second.error;
    case RolloutHostState::kDied:
      return "died: its running record expired with its etcd lease";
    default:
      return RolloutHostStateName(s);
  }
}

std::string FirstFailure(const RolloutView& v, std::string* why) {
  for (const auto& m : v.rollout.hosts) {
    const RolloutHostState s = HostStateOf(v, m.host);
    if (s == RolloutHostState::kFailed || s == RolloutHostState::kDied) {
      *why = m.host + " " + DescribeHost(v, m.host);
      return m.host;
    }
  }
  return "";
}

RolloutDecision DecideStart(const RolloutView& v, const std::string& host) {
  using K = RolloutDecision::Kind;
  const RolloutMember* me = nullptr;
  for (const auto& m : v.rollout.hosts) {
    if (m.host == host) me = &m;
  }
  if (!me) return {K::kNotMember, host + " is not one of the rollout's hosts"};
  if (v.started.count(host) || v.hosts.count(host)) return {K::kStarted, "already started"};
  if (v.rollout.state != "running") {
    return {K::kNever, "rollout " + v.rollout.state +
                           (v.rollout.why.empty() ? std::string() : ": " + v.rollout.why)};
  }
  std::string why;
  if (!FirstFailure(v, &why).empty()) return {K::kNever, "stopped: " + why};
  int running = 0;
  for (const auto& m : v.rollout.hosts) {
    const RolloutHostState s = HostStateOf(v, m.host);
    if (s == RolloutHostState::kRunning) ++running;
    if (m.order < me->order && s != RolloutHostState::kDone) {
      return {K::kWait, "waiting for " + m.host + " (order " + std::to_string(m.order) + ")"};
    }
  }
  if (running >= v.rollout.parallel) {
    return {K::kWait, std::to_string(running) + " of " + std::to_string(v.rollout.parallel) +
                          " running"};
  }
  return {K::kStart, ""};
}

bool AllDone(const RolloutView& v) {
  for (const auto& m : v.rollout.hosts) {
    if (HostStateOf(v, m.host) != RolloutHostState::kDone) return false;
  }
  return true;
}

std::string NewRolloutId(std::int64_t wall_ms, unsigned random) {
  std::time_t t = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ-%04x", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, random & 0xffff);
  return buf;
}

}  // namespace warden
