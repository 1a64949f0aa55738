#include "daemon/engine/executor.h"

#include <ev.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/engine/events.h"

namespace warden {

namespace {

nlohmann::json TriggerFields(const Trigger& t) {
  nlohmann::json j = nlohmann::json::object();
  j["trigger"] = t.kind;
  if (t.kind == "check") {
    j["check"] = t.name;
    j["state"] = t.state;
    if (!t.value.empty()) j["value"] = t.value;
  } else if (t.kind == "job") {
    j["job"] = t.name;
  }
  return j;
}

bool Names(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

Executor::Executor(Runtime& rt, Guard& guard, EventLog& events)
    : rt_(rt), guard_(guard), events_(events) {
  if (rt_.loop) {
    resolve_timer_ = std::make_unique<ev_timer>();
    ev_timer_init(resolve_timer_.get(), &Executor::OnResolveTimer, 0., 0.);
    resolve_timer_->data = this;
  }
  // The log may outlive this executor (and emit after it is gone).
  events_.Subscribe([this, alive = alive_](const nlohmann::json& e) {
    if (*alive) OnEvent(e);
  });
}

Executor::~Executor() {
  *alive_ = false;
  if (resolve_timer_) ev_timer_stop(rt_.loop, resolve_timer_.get());
}

void ActionCounters::Finished(bool succeeded, double took) {
  ++(succeeded ? ok : fail);
  seconds += took;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (took <= kBuckets[i]) ++within[i];
  }
}

void Executor::Fire(std::shared_ptr<const Config> config, const ActionConfig& action,
                    Trigger trigger, Done done, Started started) {
  if (trigger.kind == "check" && trigger.threshold.empty() && trigger.state != "ok") {
    auto it = thresholds_.find(trigger.name);
    if (it != thresholds_.end()) trigger.threshold = it->second;
  }
  if (!action.type->guarded) {
    Start(std::move(config), action, std::move(trigger), std::move(done), std::move(started));
    return;
  }
  if (action.type->informs) {
    // Changes nothing: the pause, the halt and the mutex do not hold it back.
    GuardDecision d = guard_.ConsultLocal(action.common);
    Decided(std::move(config), action, std::move(trigger), std::move(done), std::move(started), d);
    return;
  }
  const ActionConfig* a = &action;
  guard_.Consult(action.common, [this, config, a, trigger, done,
                                 started = std::move(started)](GuardDecision d) mutable {
    Decided(std::move(config), *a, std::move(trigger), std::move(done), std::move(started), d);
  }, trigger.kind == "check" ? trigger.name : std::string(), trigger.past_halt);
}

void Executor::Decided(std::shared_ptr<const Config> config, const ActionConfig& action,
                       Trigger trigger, Done done, Started started, const GuardDecision& d) {
  if (!d.allowed) {
    nlohmann::json f = TriggerFields(trigger);
    f["action"] = action.common.name;
    f["type"] = action.common.type;
    f["reason"] = d.reason;
    f["detail"] = d.detail;
    ++counters_[action.common.name].blocked[d.reason];
    events_.Emit("action.blocked", std::move(f));
    spdlog::warn("action {} blocked ({}): {}", action.common.name, d.reason, d.detail);
    if (done) done(Result{false, false, d.reason, d.detail, "", "", ""});
    return;
  }
  Start(std::move(config), action, std::move(trigger), std::move(done), std::move(started));
}

void Executor::OnEvent(const nlohmann::json& e) {
  if (e.value("event", "") != "check.state") return;
  const std::string check = e.value("check", "");
  const std::string state = e.value("state", "");
  thresholds_[check] = e.value("threshold", "");
  const std::string prev = e.value("prev_state", "");
  if (state != "ok" || (prev != "warn" && prev != "crit" && prev != "error")) return;
  if (!config_) return;
  const CheckConfig* c = config_->FindCheck(check);
  if (!c) return;
  std::vector<std::string> names;
  for (const auto* hook : {&c->on_warn, &c->on_crit, &c->on_error}) {
    for (const auto& name : *hook) {
      const ActionConfig* a = config_->FindAction(name);
      if (!a || !a->type->resolves || a->common.dry_run || Names(c->on_recover, name) ||
          Names(names, name)) {
        continue;   // a job, a type that reports no state, or run by on_recover itself
      }
      names.push_back(name);
    }
  }
  for (auto& name : names) {
    Trigger t{"check", check, "ok", e.value("value", "")};
    t.resolve = true;
    resolves_.push_back(Resolve{config_, std::move(name), std::move(t)});
  }
  if (!names.empty()) ScheduleResolves();
}

void Executor::ScheduleResolves() {
  if (!resolve_timer_) {   // no loop (tests): at once
    RunResolves();
    return;
  }
  ev_timer_stop(rt_.loop, resolve_timer_.get());
  ev_timer_set(resolve_timer_.get(), 0., 0.);
  ev_timer_start(rt_.loop, resolve_timer_.get());
}

void Executor::OnResolveTimer(struct ev_loop* /*loop*/, ev_timer* w, int /*revents*/) {
  static_cast<Executor*>(w->data)->RunResolves();
}

void Executor::RunResolves() {
  std::vector<Resolve> ready;
  std::vector<Resolve> waiting;
  for (auto& r : resolves_) {
    // One in flight (the report itself, still retrying) ends first: the
    // resolve must reach the peer after it. Started again when a run ends.
    bool busy = guard_.Running(r.action);
    for (const auto& o : ready) busy = busy || o.action == r.action;
    (busy ? waiting : ready).push_back(std::move(r));
  }
  resolves_ = std::move(waiting);
  for (auto& r : ready) {
    const ActionConfig* a = r.config->FindAction(r.action);
    if (!a) continue;
    Start(r.config, *a, std::move(r.trigger), nullptr, nullptr);
  }
}

void Executor::Start(std::shared_ptr<const Config> config, const ActionConfig& action,
                     Trigger trigger, Done done, Started started) {
  if (started) started();
  auto begin = rt_.time->Now();
  const bool resolve = trigger.resolve;
  if (resolve) {
    guard_.SetRunning(action.common.name, true);
  } else if (action.type->guarded) {
    guard_.RecordStart(action.common, begin);
  }
  ++running_;
  ++started_;
  nlohmann::json f = TriggerFields(trigger);
  f["action"] = action.common.name;
  f["type"] = action.common.type;
  if (resolve) f["resolve"] = true;
  nlohmann::json start = f;
  if (action.type->informs) {
    start["informs"] = true;
    start["note"] = "informs only: a paused host, a halted queue or a held mutex does not block it";
  }
  events_.Emit("action.start", std::move(start));
  spdlog::info("action {} ({}) started by {} {}", action.common.name, action.common.type,
               trigger.kind, trigger.name);
  const ActionConfig* a = &action;
  const std::uint64_t run = next_run_++;
  in_flight_[run] = InFlight{a, config, resolve, ""};
  action.impl->Run(rt_, action.common, trigger,
                   [this, config, a, f, begin, done, resolve, run](ActionOutcome out) mutable {
    auto end = rt_.time->Now();
    std::string terminated;
    if (auto it = in_flight_.find(run); it != in_flight_.end()) {
      terminated = std::move(it->second.terminated);
      in_flight_.erase(it);
    }
    if (resolve) {
      guard_.SetRunning(a->common.name, false);
    } else if (a->type->guarded) {
      guard_.RecordEnd(a->common.name, end);
    }
    --running_;
    if (!resolves_.empty()) ScheduleResolves();
    nlohmann::json fin = f;
    fin["result"] = out.ok ? "ok" : "fail";
    fin["duration_ms"] = std::chrono::duration_cast<Duration>(end - begin).count();
    counters_[a->common.name].Finished(out.ok, std::chrono::duration<double>(end - begin).count());
    if (out.exit_code >= 0) fin["exit_code"] = out.exit_code;
    if (out.signal != 0) fin["signal"] = out.signal;
    if (!out.error.empty()) fin["error"] = Redact(out.error, config->secrets);
    if (!out.stdout_tail.empty()) fin["stdout_tail"] = Utf8Tail(Redact(out.stdout_tail, config->secrets));
    if (!out.stderr_tail.empty()) fin["stderr_tail"] = Utf8Tail(Redact(out.stderr_tail, config->secrets));
    for (auto& [k, v] : out.extra.items()) {
      if (!fin.contains(k)) fin[k] = v;
    }
    if (!terminated.empty()) {
      fin["terminated"] = true;
      fin["terminated_by"] = terminated;
    }
    std::string stderr_tail = fin.value("stderr_tail", std::string());
    events_.Emit("action.finish", std::move(fin));
    if (out.ok) {
      spdlog::info("action {} finished ok", a->common.name);
    } else {
      spdlog::warn("action {} failed: {}", a->common.name, Redact(out.error, config->secrets));
    }
    if (done) {
      done(Result{true, out.ok, "", "", Redact(out.error, config->secrets),
                  std::move(stderr_tail), terminated});
    }
  });
}

bool Executor::Terminable(const std::string& action) const {
  for (const auto& [run, f] : in_flight_) {
    if (f.action->common.name == action && !f.resolve && f.action->type->guarded &&
        !f.action->type->informs) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> Executor::Terminate(const std::string& action, Duration kill_grace,
                                             const std::string& why) {
  std::vector<std::string> reached;
  // A copy of the run numbers: a Terminate may complete a run at once.
  std::vector<std::uint64_t> runs;
  for (const auto& [run, f] : in_flight_) runs.push_back(run);
  for (std::uint64_t run : runs) {
    auto it = in_flight_.find(run);
    if (it == in_flight_.end()) continue;
    InFlight& f = it->second;
    const ActionConfig& a = *f.action;
    // Informing types tell people what happens: they are never cut short.
    if (f.resolve || !a.type->guarded || a.type->informs) continue;
    if (!action.empty() && a.common.name != action) continue;
    if (!f.terminated.empty()) {   // asked before: still on its way down
      reached.push_back(a.common.name);
      continue;
    }
    f.terminated = why;
    if (!a.impl->Terminate(rt_, kill_grace)) {
      f.terminated.clear();
      spdlog::warn("action {} ({}) cannot be stopped early: it ends by its timeout ({})",
                   a.common.name, a.common.type, FormatDuration(a.common.timeout));
      continue;
    }
    spdlog::warn("action {} terminated ({}): SIGTERM / KILL QUERY sent, kill_grace {}",
                 a.common.name, why, FormatDuration(kill_grace));
    reached.push_back(a.common.name);
  }
  return reached;
}

void Executor::FireAll(std::shared_ptr<const Config> config, std::vector<std::string> names,
                       Trigger trigger, std::function<void()> done) {
  if (names.empty()) {
    if (done) done();
    return;
  }
  std::string first = names.front();
  names.erase(names.begin());
  if (config->FindJob(first) && job_queue_) {
    job_queue_(first, trigger);
    FireAll(std::move(config), std::move(names), std::move(trigger), std::move(done));
    return;
  }
  const ActionConfig* a = config->FindAction(first);
  if (!a) {  // validated at load; a reload could race only in later versions
    spdlog::error("unknown action {}", first);
    FireAll(std::move(config), std::move(names), std::move(trigger), std::move(done));
    return;
  }
  Fire(config, *a, trigger,
       [this, config, names = std::move(names), trigger, done = std::move(done)](Result) mutable {
         FireAll(std::move(config), std::move(names), std::move(trigger), std::move(done));
       });
}

}  // namespace warden
