#include "daemon/commands.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "daemon/daemon.h"
#include "daemon/engine/events.h"
#include "daemon/engine/executor.h"
#include "daemon/engine/guard.h"
#include "daemon/engine/scheduler.h"
#include "daemon/engine/state.h"
#include "daemon/io/forward_sender.h"
#include "daemon/io/mutex_client.h"
#include "daemon/jobs/job_runner.h"
#include "version.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WARDEN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WARDEN_ASAN 1
#endif
#ifdef WARDEN_ASAN
// From the ASan runtime (gcc's and clang's; gcc ships no header for it).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace warden {

using nlohmann::json;

namespace {

// Heap in use: what the allocator has handed out and not had back, the
// figure a leak or an ever-growing container moves (RSS also moves with the
// allocator's caches, and under ASan with its quarantine and shadow). ASan
// replaces malloc, so its own count is asked there.
std::uint64_t HeapBytes() {
#ifdef WARDEN_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 m = ::mallinfo2();
  return m.uordblks + m.hblkhd;
#endif
}

json Error(const std::string& message) { return {{"ok", false}, {"error", message}}; }

json Time(std::optional<std::chrono::steady_clock::time_point> tp) {
  if (!tp || *tp == std::chrono::steady_clock::time_point{}) return nullptr;
  return Rfc3339FromMs(SteadyToWallMs(*tp));
}

// How one measurement compares with the check's thresholds (and its own
// verdict, if it has one), as the evaluator judges it.
std::string Classify(const Measurement& m, const CheckConfig* c) {
  return ResultName(m, c ? c->rules : EvalRules{});
}

}  // namespace

std::vector<std::string> LastLines(const std::string& path, size_t n, size_t max_bytes) {
  std::vector<std::string> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || n == 0) {
    if (fd >= 0) ::close(fd);
    return out;
  }
  struct stat sb {};
  if (::fstat(fd, &sb) != 0 || sb.st_size == 0) {
    ::close(fd);
    return out;
  }
  // Read backwards in blocks until n newlines (+ the last line's) are seen.
  std::string data;
  off_t end = sb.st_size;
  const off_t block = 64 * 1024;
  size_t newlines = 0;
  while (end > 0 && data.size() < max_bytes && newlines <= n) {
    off_t start = end > block ? end - block : 0;
    std::string chunk(static_cast<size_t>(end - start), '\0');
    ssize_t got = ::pread(fd, chunk.data(), chunk.size(), start);
    if (got <= 0) break;
    chunk.resize(static_cast<size_t>(got));
    for (char ch : chunk) newlines += ch == '\n' ? 1 : 0;
    data.insert(0, chunk);
    end = start;
  }
  ::close(fd);
  // Only complete lines: drop a torn last one, and the first one when the
  // read did not start at the beginning of the file.
  size_t last_nl = data.rfind('\n');
  if (last_nl == std::string::npos) return out;
  data.resize(last_nl + 1);
  size_t pos = 0;
  if (end > 0) {
    size_t first = data.find('\n');
    pos = first == std::string::npos ? data.size() : first + 1;
  }
  std::deque<std::string> lines;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    lines.push_back(data.substr(pos, nl - pos));
    if (lines.size() > n) lines.pop_front();
    pos = nl + 1;
  }
  out.assign(lines.begin(), lines.end());
  return out;
}

ControlCommands::ControlCommands(DaemonControl& daemon) : d_(daemon) {}

ControlCommands::~ControlCommands() = default;

void ControlCommands::Handle(const json& request, const Peer& peer, Access access,
                             ControlServer::Reply reply) {
  Dispatch(*this, request, peer, access, std::move(reply));
}

void ControlCommands::Ping(const CommandRequest&, ControlServer::Reply reply) {
  reply({{"ok", true}, {"version", kVersion}});
}

void ControlCommands::Status(const CommandRequest& r, ControlServer::Reply reply) {
  const std::string group = r.Text("group");
  if (group.empty()) return reply(StatusJson());
  if (!d_.config()->HasGroup(group)) {
    return reply(Error("status: no check, action or job is in group '" + group + "' (group = " +
                       group + ")"));
  }
  json j = StatusJson();
  auto in = [&group](const json& one) {
    for (const auto& g : one.value("groups", json::array())) {
      if (g == group) return true;
    }
    return false;
  };
  for (const char* list : {"checks", "actions"}) {
    json kept = json::array();
    for (auto& one : j[list]) {
      if (in(one)) kept.push_back(std::move(one));
    }
    j[list] = std::move(kept);
  }
  j["group"] = group;
  reply(std::move(j));
}

bool EventFilter::Matches(const json& e) const {
  if (!types.empty()) {
    const std::string name = e.value("event", "");
    bool any = false;
    for (const auto& t : types) {
      any = any || (t.back() == '*' ? name.compare(0, t.size() - 1, t, 0, t.size() - 1) == 0
                                    : name == t);
    }
    if (!any) return false;
  }
  if (!checks.empty()) {
    auto it = e.find("check");
    if (it == e.end() || !it->is_string()) return false;
    if (std::find(checks.begin(), checks.end(), it->get<std::string>()) == checks.end()) {
      return false;
    }
  }
  return true;
}

Expected<EventFilter> ParseEventFilter(std::vector<std::string> types,
                                       std::vector<std::string> checks, const Config& config) {
  for (const auto& t : types) {
    const size_t star = t.find('*');
    const bool ok = !t.empty() && (star == std::string::npos || star == t.size() - 1) &&
                    t.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.*") ==
                        std::string::npos;
    if (!ok) {
      return Status::Error("events: bad event type '" + t +
                           "' (a name like pause.start, or a prefix like pause.*)");
    }
  }
  for (const auto& c : checks) {
    if (!config.FindCheck(c)) return Status::Error("events: no check '" + c + "' in the config");
  }
  return EventFilter{std::move(types), std::move(checks)};
}

void ControlCommands::Events(const CommandRequest& r, ControlServer::Reply reply) {
  if (r.Flag("follow")) return Follow(r, std::move(reply));
  if (!r.List("event").empty() || !r.List("check").empty()) {
    return reply(Error("events: --event and --check filter what -f follows; without -f, "
                       "events prints the last N events as they are"));
  }
  const std::int64_t n = std::min<std::int64_t>(r.Count("n").value_or(20), 10000);
  json events = json::array();
  for (const auto& line : LastLines(d_.config()->EventsPath(), static_cast<size_t>(n))) {
    json e = json::parse(line, nullptr, false);
    if (!e.is_discarded()) events.push_back(std::move(e));
  }
  reply({{"ok", true}, {"events", std::move(events)}});
}

void ControlCommands::Run(const CommandRequest& r, ControlServer::Reply reply) {
  const std::string name = r.Text("name");
  const bool dry_run = r.Flag("dry_run"), wait = r.Flag("wait");
  spdlog::info("wardenctl run {}{}{} by {}", name, dry_run ? " --dry-run" : "",
               wait ? " --wait" : "", r.peer.Describe());
  if (d_.config()->FindJob(name)) {
    RunJob(name, dry_run, wait, std::move(reply));
  } else {
    RunAction(name, dry_run, wait, std::move(reply));
  }
}

namespace {

// --group, --action or --check (at most one; none: the host), each naming
// what the config has.
Expected<PauseScope> ScopeOf(const CommandRequest& r, const Config& c, const std::string& cmd) {
  PauseScope scope;
  int given = 0;
  for (auto [key, kind] : {std::pair{"group", PauseScope::Kind::kGroup},
                           std::pair{"action", PauseScope::Kind::kAction},
                           std::pair{"check", PauseScope::Kind::kCheck}}) {
    std::string v = r.Text(key);
    if (v.empty()) continue;
    ++given;
    scope = {kind, v};
  }
  if (given > 1) {
    return Expected<PauseScope>::Error(cmd + ": --group, --action and --check exclude each other");
  }
  const std::string& n = scope.name;
  switch (scope.kind) {
    case PauseScope::Kind::kHost: break;
    case PauseScope::Kind::kGroup:
      if (!c.HasGroup(n)) {
        return Expected<PauseScope>::Error(cmd + ": no check, action or job is in group '" + n +
                                           "' (group = " + n + ")");
      }
      break;
    case PauseScope::Kind::kAction:
      if (!c.FindAction(n) && !c.FindJob(n)) {
        return Expected<PauseScope>::Error(cmd + ": no action or job named '" + n + "'");
      }
      break;
    case PauseScope::Kind::kCheck:
      if (!c.FindCheck(n)) return Expected<PauseScope>::Error(cmd + ": no check named '" + n + "'");
      break;
  }
  return scope;
}

// A reason: not blank, at most 1,024 bytes, cut on a character boundary
// (it goes into state.json and events, whose JSON must stay valid UTF-8).
Expected<std::string> ReasonOf(const CommandRequest& r, const std::string& cmd) {
  std::string reason = r.Text("reason");
  if (reason.find_first_not_of(" \t") == std::string::npos) {
    return Expected<std::string>::Error(cmd + ": a reason is needed (--reason TEXT)");
  }
  if (reason.size() > 1024) {
    size_t end = 1024;
    while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
    reason.resize(end);
  }
  return reason;
}

// The expiry from --for or --until (0: none), capped by [daemon] max_pause.
struct Expiry {
  std::int64_t until_ms = 0;
  bool capped = false;
};
Expected<Expiry> ExpiryOf(const CommandRequest& r, const Config& c, std::int64_t now_ms,
                          const std::string& cmd) {
  Expiry out;
  const std::string for_text = r.Text("for"), until_text = r.Text("until");
  if (!for_text.empty() && !until_text.empty()) {
    return Expected<Expiry>::Error(cmd + ": --for and --until exclude each other");
  }
  if (!for_text.empty()) {
    auto d = ParseDuration(for_text);
    if (!d) return Expected<Expiry>::Error(cmd + ": --for: " + d.error());
    if (d->count() <= 0) return Expected<Expiry>::Error(cmd + ": --for must be longer than 0");
    out.until_ms = now_ms + d->count();
  } else if (!until_text.empty()) {
    auto u = ParseUntil(until_text, now_ms);
    if (!u) return Expected<Expiry>::Error(cmd + ": " + u.error());
    out.until_ms = *u;
  }
  if (c.daemon.max_pause) {
    const std::int64_t cap = now_ms + c.daemon.max_pause->count();
    if (out.until_ms == 0 || out.until_ms > cap) {
      out.until_ms = cap;
      out.capped = true;
    }
  }
  return out;
}

json PauseJson(const warden::Pause& p) {
  json j = {{"scope", ScopeKindName(p.scope.kind)},
            {"window", p.window.empty() ? json(nullptr) : json(p.window)},
            {"name", p.scope.name},
            {"reason", p.reason},
            {"by", p.by},
            {"since", p.at_ms ? json(Rfc3339FromMs(p.at_ms)) : json(nullptr)},
            {"until", p.until_ms ? json(Rfc3339FromMs(p.until_ms)) : json(nullptr)},
            {"no_expiry", p.until_ms == 0}};
  return j;
}

}  // namespace

void ControlCommands::Pause(const CommandRequest& r, ControlServer::Reply reply) {
  const std::shared_ptr<const Config> config = d_.config();
  auto reason = ReasonOf(r, "pause");
  if (!reason) return reply(Error(reason.error()));
  auto scope = ScopeOf(r, *config, "pause");
  if (!scope) return reply(Error(scope.error()));
  const std::int64_t now = WallMsNow();
  auto expiry = ExpiryOf(r, *config, now, "pause");
  if (!expiry) return reply(Error(expiry.error()));
  warden::Pause p;
  p.scope = *scope;
  p.reason = *reason;
  p.by = r.peer.Describe();
  p.uid = r.peer.uid;
  p.pid = r.peer.pid;
  p.at_ms = now;
  p.until_ms = expiry->until_ms;
  json answer = {{"ok", true}, {"paused", true}, {"capped", expiry->capped}};
  answer.update(PauseJson(p));
  if (expiry->capped) answer["max_pause"] = FormatDuration(*config->daemon.max_pause);
  d_.StartPause(std::move(p));
  // Answered once the state file holds the pause (or could not).
  d_.SaveStateThen([reply, answer](bool saved) mutable {
    answer["persisted"] = saved;
    reply(std::move(answer));
  });
}

void ControlCommands::Unpause(const CommandRequest& r, ControlServer::Reply reply) {
  const std::shared_ptr<const Config> config = d_.config();
  std::vector<PauseScope> scopes;
  if (r.Flag("all")) {
    if (!r.Text("group").empty() || !r.Text("action").empty() || !r.Text("check").empty()) {
      return reply(Error("unpause: --all and --group, --action or --check exclude each other"));
    }
    for (const auto& p : d_.guard().pauses().all()) scopes.push_back(p.scope);
  } else {
    // A scope the config no longer names may still be paused: only its
    // absence from both is an error.
    auto scope = ScopeOf(r, *config, "unpause");
    if (!scope) {
      PauseScope named;
      for (auto [key, kind] : {std::pair{"group", PauseScope::Kind::kGroup},
                               std::pair{"action", PauseScope::Kind::kAction},
                               std::pair{"check", PauseScope::Kind::kCheck}}) {
        if (!r.Text(key).empty()) named = {kind, r.Text(key)};
      }
      if (!d_.guard().pauses().Find(named)) return reply(Error(scope.error()));
      scope = named;
    }
    scopes.push_back(*scope);
  }
  json ended = json::array();
  for (size_t i = 0; i < scopes.size(); ++i) {
    auto p = d_.EndPause(scopes[i], r.peer);
    if (p) ended.push_back(PauseJson(*p));
  }
  json answer = {{"ok", true},
                 {"paused", d_.guard().host_pause() != nullptr},
                 {"was_paused", !ended.empty()},
                 {"ended", ended},
                 {"scope", scopes.size() == 1 ? json(ScopeKindName(scopes[0].kind)) : json("all")},
                 {"name", scopes.size() == 1 ? json(scopes[0].name) : json("")},
                 {"still_paused", d_.guard().pauses().all().size()}};
  // Answered once the state file holds the change (or could not).
  d_.SaveStateThen([reply, answer](bool saved) mutable {
    answer["persisted"] = saved;
    reply(std::move(answer));
  });
}

void ControlCommands::Disable(const CommandRequest& r, ControlServer::Reply reply) {
  const std::shared_ptr<const Config> config = d_.config();
  const std::string name = r.Text("name");
  if (!config->FindCheck(name)) return reply(Error("disable: no check named '" + name + "'"));
  auto reason = ReasonOf(r, "disable");
  if (!reason) return reply(Error(reason.error()));
  const std::int64_t now = WallMsNow();
  auto expiry = ExpiryOf(r, *config, now, "disable");
  if (!expiry) return reply(Error(expiry.error()));
  warden::Pause d;
  d.scope = {PauseScope::Kind::kCheck, name};
  d.reason = *reason;
  d.by = r.peer.Describe();
  d.uid = r.peer.uid;
  d.pid = r.peer.pid;
  d.at_ms = now;
  d.until_ms = expiry->until_ms;
  json answer = PauseJson(d);
  answer.erase("scope");
  answer.erase("name");
  answer.update({{"ok", true}, {"check", name}, {"disabled", true}, {"capped", expiry->capped}});
  if (expiry->capped) answer["max_pause"] = FormatDuration(*config->daemon.max_pause);
  d_.DisableCheck(std::move(d));
  d_.SaveStateThen([reply, answer](bool saved) mutable {
    answer["persisted"] = saved;
    reply(std::move(answer));
  });
}

void ControlCommands::Enable(const CommandRequest& r, ControlServer::Reply reply) {
  const std::string name = r.Text("name");
  // A check the config no longer has cannot still be disabled (a reload
  // forgets it), so an unknown name is an error either way.
  if (!d_.config()->FindCheck(name)) return reply(Error("enable: no check named '" + name + "'"));
  auto was = d_.EnableCheck(name, r.peer);
  json answer = {{"ok", true}, {"check", name}, {"disabled", false}, {"was_disabled", was.has_value()}};
  d_.SaveStateThen([reply, answer](bool saved) mutable {
    answer["persisted"] = saved;
    reply(std::move(answer));
  });
}

void ControlCommands::Resume(const CommandRequest& r, ControlServer::Reply reply) {
  d_.jobs().Resume(r.peer.Describe(), std::move(reply));
}

void ControlCommands::Abort(const CommandRequest& r, ControlServer::Reply reply) {
  const std::string job = r.Text("job");
  const std::string action = r.Text("action");
  if (!job.empty() && !action.empty()) {
    reply({{"ok", false}, {"error", "abort: --job or --action, not both"}});
    return;
  }
  const auto config = d_.config();
  if (!job.empty() && !config->FindJob(job)) {
    reply({{"ok", false}, {"error", "abort: no job named '" + job + "'"}});
    return;
  }
  if (!action.empty() && !config->FindAction(action)) {
    reply({{"ok", false}, {"error", "abort: no action named '" + action + "'"}});
    return;
  }
  const std::string by = r.peer.Describe();
  json done = d_.Terminate(job, action, "abort", "wardenctl abort by " + by);
  const bool reached = done["job"].is_string() || !done["actions"].empty();
  if (!reached && (!job.empty() || !action.empty())) {
    reply({{"ok", false},
           {"error", "abort: " + (job.empty() ? "action " + action : "job " + job) +
                         " is not running" +
                         (action.empty() ? ""
                                         : " (or its type ends only by its own timeout)")}});
    return;
  }
  done["ok"] = true;
  done["kill_grace"] = FormatDuration(config->daemon.kill_grace);
  reply(std::move(done));
}

void ControlCommands::Reload(const CommandRequest& r, ControlServer::Reply reply) {
  spdlog::info("reload requested by {}", r.peer.Describe());
  reply(d_.Reload("wardenctl"));
}

json ControlCommands::StatusJson() const {
  const std::shared_ptr<const Config> config = d_.config();
  const Config& c = *config;
  json j = json::object();
  j["ok"] = true;
  j["host"] = c.daemon.host_id;
  j["version"] = kVersion;
  j["pid"] = ::getpid();
  j["heap_bytes"] = HeapBytes();
  j["config"] = c.path;
  j["config_digest"] = c.digest;
  json checks = json::array();
  const PauseSet& disabled = d_.disabled();
  for (const auto& s : d_.scheduler().Status()) {
    const warden::Pause* off = disabled.Find({PauseScope::Kind::kCheck, s.name});
    json why = nullptr;
    if (off) {
      why = PauseJson(*off);
      why.erase("scope");
      why.erase("name");
    }
    const CheckConfig* cc = c.FindCheck(s.name);
    checks.push_back({{"name", s.name},
                      {"groups", cc ? cc->groups : std::vector<std::string>()},
                      {"disabled", std::move(why)},
                      {"type", s.type},
                      {"state", StateName(s.state)},
                      {"value", s.value},
                      {"since", Time(s.since)},
                      {"last_run", Time(s.last_run)},
                      {"last_error", Redact(s.error, c.secrets)},
                      {"detail", Redact(s.detail, c.secrets)},
                      {"unit", s.unit},
                      {"runs", s.runs},
                      {"overruns", s.overruns},
                      {"running", s.in_flight}});
    json& one = checks.back();
    one["warn"] = cc && cc->rules.warn ? json(cc->rules.warn->ToString()) : json(nullptr);
    one["crit"] = cc && cc->rules.crit ? json(cc->rules.crit->ToString()) : json(nullptr);
  }
  j["checks"] = std::move(checks);
  json actions = json::array();
  const auto& history = d_.guard().history();
  for (const auto& a : c.actions) {
    json one = {{"name", a.common.name}, {"type", a.common.type}, {"groups", a.groups}};
    auto it = history.find(a.common.name);
    one["running"] = it != history.end() && it->second.running;
    one["last_end"] = it != history.end() ? Time(it->second.last_end) : json(nullptr);
    if (a.common.budget) {
      size_t used = 0;
      if (it != history.end()) {
        auto now = std::chrono::steady_clock::now();
        for (auto tp : it->second.starts) used += now - tp < a.common.budget->window ? 1 : 0;
      }
      one["budget"] = {{"used", used}, {"count", a.common.budget->count},
                       {"window", FormatDuration(a.common.budget->window)}};
    }
    actions.push_back(std::move(one));
  }
  j["actions"] = std::move(actions);
  // "pause": the host pause, as earlier versions showed it; "pauses":
  // every pause in force, the host's among them.
  const warden::Pause* host = d_.guard().host_pause();
  j["pause"] = {{"paused", host != nullptr},
                {"reason", host ? host->reason : std::string()},
                {"by", host ? json(host->by) : json(nullptr)},
                {"since", host && host->at_ms ? json(Rfc3339FromMs(host->at_ms)) : json(nullptr)},
                {"until", host && host->until_ms ? json(Rfc3339FromMs(host->until_ms)) : json(nullptr)},
                {"no_expiry", host && host->until_ms == 0}};
  json pauses = json::array();
  const std::int64_t now_ms = WallMsNow();
  for (const auto& p : d_.guard().pauses().all()) {
    if (p.until_ms == 0 || p.until_ms > now_ms) pauses.push_back(PauseJson(p));
  }
  j["pauses"] = std::move(pauses);
  // [maintenance] windows: open now (until), and the next one.
  json windows = json::array();
  for (const auto& m : c.maintenance) {
    auto span = WindowAt(m.schedule, m.hold, now_ms);
    auto next = NextCronTime(m.schedule, now_ms / 1000);
    windows.push_back({{"name", m.name},
                       {"schedule", m.schedule.text},
                       {"for", FormatDuration(m.hold)},
                       {"scope", m.scope_kind == "host" ? "host" : m.scope_kind + " " + m.scope_name},
                       {"reason", m.reason},
                       {"open", span.has_value()},
                       {"until", span ? json(Rfc3339FromMs(span->end_ms)) : json(nullptr)},
                       {"next", next ? json(Rfc3339FromMs(*next * 1000)) : json(nullptr)}});
  }
  j["maintenance"] = std::move(windows);
  j["halt"] = {{"halted", d_.guard().halted()}, {"reason", d_.guard().halt_reason()}};
  j["jobs"] = d_.jobs().Status();
  d_.AddHealth(j);
  return j;
}

void ControlCommands::Check(const CommandRequest& r, ControlServer::Reply reply) {
  const std::string name = r.Text("name"), group = r.Text("group");
  if (name.empty() == group.empty()) {
    return reply(Error("check needs NAME or --group G, not both (usage: check [NAME] [--group G])"));
  }
  if (!group.empty()) return CheckGroup(group, std::move(reply));
  if (!d_.config()->FindCheck(name)) {
    reply(Error("no check named '" + name + "'"));
    return;
  }
  if (const warden::Pause* off = d_.disabled().Find({PauseScope::Kind::kCheck, name})) {
    reply(Error("check " + name + " is disabled (" + off->reason + ", by " + off->by +
                "): wardenctl enable " + name + " first"));
    return;
  }
  DaemonControl* d = &d_;
  bool ok = d_.scheduler().RunNow(name, [d, name, reply](const Measurement& m, const Verdict& v) {
    const std::shared_ptr<const Config> config = d->config();
    const CheckConfig* c = config->FindCheck(name);
    std::string result = Classify(m, c);
    json answer = {{"ok", true},
                   {"check", name},
                   {"type", c ? c->common.type : std::string()},
                   {"result", result},
                   {"value", m.kind == Measurement::Kind::kValue ? m.value : std::string()},
                   {"error", Redact(m.error, config->secrets)},
                   {"state", StateName(v.state)},
                   {"changed", v.changed}};
    if (!m.unit.empty()) answer["unit"] = m.unit;
    if (!m.detail.empty()) answer["detail"] = Redact(m.detail, config->secrets);
    if (c && c->rules.warn) answer["warn"] = c->rules.warn->ToString();
    if (c && c->rules.crit) answer["crit"] = c->rules.crit->ToString();
    reply(std::move(answer));
  });
  if (!ok) reply(Error("check " + name + " cannot run now (wardend is stopping)"));
}

void ControlCommands::CheckGroup(const std::string& group, ControlServer::Reply reply) {
  const std::shared_ptr<const Config> config = d_.config();
  if (!config->HasGroup(group)) {
    return reply(Error("check: no check, action or job is in group '" + group + "' (group = " +
                       group + ")"));
  }
  std::vector<std::string> names;
  json skipped = json::array();
  for (const auto& c : config->checks) {
    if (std::find(c.groups.begin(), c.groups.end(), group) == c.groups.end()) continue;
    if (d_.disabled().Find({PauseScope::Kind::kCheck, c.common.name})) {
      skipped.push_back(c.common.name);
    } else {
      names.push_back(c.common.name);
    }
  }
  // One reply once every check of the group has answered, in config order.
  struct Gather {
    json results;
    size_t left = 0;
    bool all_ok = true;
    ControlServer::Reply reply;
    json skipped;
    std::string group;
  };
  auto g = std::make_shared<Gather>();
  g->results = json::array();
  for (size_t i = 0; i < names.size(); ++i) g->results.push_back(nullptr);
  g->left = names.size();
  g->reply = std::move(reply);
  g->skipped = std::move(skipped);
  g->group = group;
  auto finish = [](Gather& x) {
    x.reply({{"ok", x.all_ok}, {"group", x.group}, {"results", std::move(x.results)},
             {"disabled", std::move(x.skipped)}});
  };
  if (names.empty()) return finish(*g);
  DaemonControl* d = &d_;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string name = names[i];
    bool ok = d_.scheduler().RunNow(name, [d, g, i, name, finish](const Measurement& m,
                                                               const Verdict& v) {
      const std::shared_ptr<const Config> cfg = d->config();
      const CheckConfig* c = cfg->FindCheck(name);
      std::string result = Classify(m, c);
      g->all_ok = g->all_ok && result == "ok";
      g->results[i] = {{"check", name},
                       {"type", c ? c->common.type : std::string()},
                       {"result", result},
                       {"value", m.kind == Measurement::Kind::kValue ? m.value : std::string()},
                       {"error", Redact(m.error, cfg->secrets)},
                       {"state", StateName(v.state)}};
      if (--g->left == 0) finish(*g);
    });
    if (!ok) {
      g->all_ok = false;
      g->results[i] = {{"check", name}, {"result", "error"}, {"error", "cannot run now (wardend is stopping)"}};
      if (--g->left == 0) finish(*g);
    }
  }
}

void ControlCommands::RunAction(const std::string& name, bool dry_run, bool wait,
                                ControlServer::Reply reply) {
  std::shared_ptr<const Config> config = d_.config();
  const ActionConfig* a = config->FindAction(name);
  if (!a) {
    reply(Error("no action or job named '" + name + "'"));
    return;
  }
  if (d_.stopping()) {
    reply(Error("wardend is stopping: no new actions"));
    return;
  }
  if (dry_run) {
    // Ask the guard without running anything (nothing is recorded).
    json would = {{"ok", true},
                  {"dry_run", true},
                  {"action", name},
                  {"type", a->common.type},
                  {"defined_at", a->where.str()},
                  {"timeout", FormatDuration(a->common.timeout)},
                  {"guarded", a->type->guarded}};
    if (a->common.cooldown) would["cooldown"] = FormatDuration(*a->common.cooldown);
    if (a->common.budget) {
      would["budget"] = std::to_string(a->common.budget->count) + " per " +
                        FormatDuration(a->common.budget->window);
    }
    if (!a->type->guarded) {
      would["guard"] = {{"allowed", true}, {"reason", ""}, {"detail", "not guarded"}};
      reply(std::move(would));
      return;
    }
    if (a->type->informs) {   // as Executor::Fire: not the pause, the halt or the mutex
      GuardDecision g = d_.guard().ConsultLocal(a->common);
      would["guard"] = {{"allowed", g.allowed}, {"reason", g.reason}, {"detail", g.detail}};
      would["informs"] = true;
      reply(std::move(would));
      return;
    }
    d_.guard().Consult(a->common, [reply, would, config](GuardDecision g) mutable {
      would["guard"] = {{"allowed", g.allowed}, {"reason", g.reason}, {"detail", g.detail}};
      reply(std::move(would));
    });
    return;
  }
  runs_[name].push_back(PendingRun{wait, false, std::move(reply)});
  d_.executor().Fire(config, *a, Trigger{"ctl", "wardenctl", "", ""});
}

void ControlCommands::RunJob(const std::string& name, bool dry_run, bool wait,
                             ControlServer::Reply reply) {
  if (dry_run) {
    d_.jobs().Plan(name, std::move(reply));
    return;
  }
  if (wait && d_.jobs().halted()) {
    reply(Error("the job queue is halted (" + d_.guard().halt_reason() +
                "): job " + name + " would wait until wardenctl resume; not queued"));
    return;
  }
  JobRunner::Done done;
  if (wait) {
    done = [reply](const json& e) {
      bool ok = e.value("event", "") == "job.finish";
      json r = {{"ok", ok}, {"finished", true}, {"event", e}};
      if (!ok) {
        r["error"] = "job " + e.value("job", "") + " " +
                     (e.value("result", "") == "interrupted" ? "was interrupted" : "failed") +
                     (e.value("step", "").empty() ? "" : " at " + e.value("step", "")) + ": " +
                     e.value("error", "");
      }
      reply(std::move(r));
    };
  }
  JobRunner::Queued q = d_.jobs().Enqueue(name, Trigger{"ctl", "wardenctl", "", ""}, done);
  if (!q.ok) {
    reply(Error(q.error));
    return;
  }
  if (!wait) {
    json r = {{"ok", true}, {"queued", true}, {"job", name}, {"position", q.position}};
    if (d_.jobs().halted()) r["halted"] = d_.guard().halt_reason();
    reply(std::move(r));
  }
}

void ControlCommands::Follow(const CommandRequest& r, ControlServer::Reply reply) {
  if (r.Count("n")) {
    return reply(Error("events: -n and -f do not go together (-f prints the events from now "
                       "on; events -n N the last N)"));
  }
  auto filter = ParseEventFilter(r.List("event"), r.List("check"), *d_.config());
  if (!filter.ok()) return reply(Error(filter.error()));
  spdlog::info("wardenctl events -f by {}", r.peer.Describe());
  auto stream = reply.OpenStream({{"ok", true}, {"following", true}});
  if (!stream) return;   // the client has gone
  followers_.push_back({std::move(*filter), std::move(stream)});
}

void ControlCommands::OnEvent(const json& e) {
  // Followers first, each event as it is emitted: a stream that ended
  // (gone, or fell behind) is forgotten.
  std::erase_if(followers_, [&e](Follower& f) {
    if (!f.filter.Matches(e)) return !f.stream->open();
    return !f.stream->Push(e);
  });
  if (runs_.empty() || e.value("trigger", "") != "ctl") return;
  const std::string event = e.value("event", "");
  auto it = runs_.find(e.value("action", ""));
  if (it == runs_.end()) return;
  auto& q = it->second;
  if (event == "action.blocked") {
    for (auto p = q.begin(); p != q.end(); ++p) {
      if (p->started) continue;
      auto reply = std::move(p->reply);
      q.erase(p);
      reply({{"ok", false},
             {"error", "action " + e.value("action", "") + " blocked (" + e.value("reason", "") +
                           "): " + e.value("detail", "")},
             {"blocked", e.value("reason", "")},
             {"event", e}});
      break;
    }
  } else if (event == "action.start") {
    for (auto p = q.begin(); p != q.end(); ++p) {
      if (p->started) continue;
      if (p->wait) {
        p->started = true;
      } else {
        auto reply = std::move(p->reply);
        q.erase(p);
        reply({{"ok", true}, {"started", true}, {"event", e}});
      }
      break;
    }
  } else if (event == "action.finish") {
    for (auto p = q.begin(); p != q.end(); ++p) {
      if (!p->started) continue;
      auto reply = std::move(p->reply);
      q.erase(p);
      bool ok = e.value("result", "") == "ok";
      json r = {{"ok", ok}, {"finished", true}, {"event", e}};
      if (!ok) r["error"] = "action " + e.value("action", "") + " failed: " + e.value("error", "");
      reply(std::move(r));
      break;
    }
  }
  if (q.empty()) runs_.erase(it);
}

}  // namespace warden
