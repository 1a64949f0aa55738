#include "daemon/engine/executor.h"

#include <spdlog/spdlog.h>

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

}  // namespace

void Executor::Fire(std::shared_ptr<const Config> config, const ActionConfig& action,
                    Trigger trigger, Done done, Started started) {
  if (!action.type->guarded) {
    Start(std::move(config), action, std::move(trigger), std::move(done), std::move(started));
    return;
  }
  const ActionConfig* a = &action;
  guard_.Consult(action.common, [this, config, a, trigger, done,
                                 started = std::move(started)](GuardDecision d) mutable {
    if (!d.allowed) {
      nlohmann::json f = TriggerFields(trigger);
      f["action"] = a->common.name;
      f["type"] = a->common.type;
      f["reason"] = d.reason;
      f["detail"] = d.detail;
      events_.Emit("action.blocked", std::move(f));
      spdlog::warn("action {} blocked ({}): {}", a->common.name, d.reason, d.detail);
      if (done) done(Result{false, false, d.reason, d.detail, "", ""});
      return;
    }
    Start(std::move(config), *a, std::move(trigger), std::move(done), std::move(started));
  }, trigger.kind == "check" ? trigger.name : std::string());
}

void Executor::Start(std::shared_ptr<const Config> config, const ActionConfig& action,
                     Trigger trigger, Done done, Started started) {
  if (started) started();
  auto begin = rt_.time->Now();
  if (action.type->guarded) guard_.RecordStart(action.common, begin);
  ++running_;
  ++started_;
  nlohmann::json f = TriggerFields(trigger);
  f["action"] = action.common.name;
  f["type"] = action.common.type;
  events_.Emit("action.start", f);
  spdlog::info("action {} ({}) started by {} {}", action.common.name, action.common.type,
               trigger.kind, trigger.name);
  const ActionConfig* a = &action;
  action.impl->Run(rt_, action.common, trigger,
                   [this, config, a, f, begin, done](ActionOutcome out) mutable {
    auto end = rt_.time->Now();
    if (a->type->guarded) guard_.RecordEnd(a->common.name, end);
    --running_;
    nlohmann::json fin = f;
    fin["result"] = out.ok ? "ok" : "fail";
    fin["duration_ms"] = std::chrono::duration_cast<Duration>(end - begin).count();
    if (out.exit_code >= 0) fin["exit_code"] = out.exit_code;
    if (out.signal != 0) fin["signal"] = out.signal;
    if (!out.error.empty()) fin["error"] = Redact(out.error, config->secrets);
    if (!out.stdout_tail.empty()) fin["stdout_tail"] = Utf8Tail(Redact(out.stdout_tail, config->secrets));
    if (!out.stderr_tail.empty()) fin["stderr_tail"] = Utf8Tail(Redact(out.stderr_tail, config->secrets));
    for (auto& [k, v] : out.extra.items()) {
      if (!fin.contains(k)) fin[k] = v;
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
                  std::move(stderr_tail)});
    }
  });
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
