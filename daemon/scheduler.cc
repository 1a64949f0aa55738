#include "daemon/scheduler.h"

#include <ev.h>
#include <spdlog/spdlog.h>

#include "daemon/events.h"
#include "daemon/executor.h"

namespace warden {

struct Scheduler::Entry {
  Scheduler* owner = nullptr;
  const CheckConfig* cfg = nullptr;
  Evaluator eval;
  ev_timer timer{};
  ev_timer retry{};     // dependency still pending: look again soon
  bool in_flight = false;
  std::uint64_t runs = 0;
  std::uint64_t overruns = 0;

  explicit Entry(const CheckConfig* c) : cfg(c), eval(c->rules) {}
};

Scheduler::Scheduler(Runtime& rt, Executor& executor, EventLog& events)
    : rt_(rt), executor_(executor), events_(events) {}

Scheduler::~Scheduler() {
  Stop();
  *alive_ = false;
}

void Scheduler::Start(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  stopped_ = false;
  entries_.clear();
  by_name_.clear();
  for (const auto& c : config_->checks) {
    auto e = std::make_unique<Entry>(&c);
    e->owner = this;
    double every = std::chrono::duration<double>(c.common.every).count();
    double first = 0;
    if (config_->daemon.jitter > 0) {
      std::uniform_real_distribution<double> d(0, every * config_->daemon.jitter);
      first = d(rng_);
    }
    ev_timer_init(&e->timer, &Scheduler::OnTimer, first, every);
    e->timer.data = e.get();
    ev_timer_start(rt_.loop, &e->timer);
    ev_timer_init(&e->retry, &Scheduler::OnTimer, 0, 0);
    e->retry.data = e.get();
    by_name_[c.common.name] = e.get();
    entries_.push_back(std::move(e));
  }
}

void Scheduler::Stop() {
  stopped_ = true;
  for (auto& e : entries_) {
    ev_timer_stop(rt_.loop, &e->timer);
    ev_timer_stop(rt_.loop, &e->retry);
  }
}

int Scheduler::in_flight() const {
  int n = 0;
  for (const auto& e : entries_) n += e->in_flight ? 1 : 0;
  return n;
}

void Scheduler::OnTimer(struct ev_loop*, ev_timer* w, int) {
  auto* e = static_cast<Entry*>(w->data);
  e->owner->Due(*e);
}

void Scheduler::Due(Entry& e) {
  if (stopped_) return;
  if (e.in_flight) {
    ++e.overruns;
    spdlog::debug("check {}: previous run still in flight, tick skipped", e.cfg->common.name);
    return;
  }
  for (const auto& dep : e.cfg->depends) {
    auto it = by_name_.find(dep);
    if (it == by_name_.end()) continue;
    CheckState ds = it->second->eval.state();
    if (ds == CheckState::kOk) continue;
    if (ds == CheckState::kPending) {
      // Wait for the dependency's first verdict rather than reporting a
      // skip at every start.
      double wait = std::min(1.0, std::chrono::duration<double>(e.cfg->common.every).count());
      ev_timer_stop(rt_.loop, &e.retry);
      ev_timer_set(&e.retry, wait, 0);
      ev_timer_start(rt_.loop, &e.retry);
      return;
    }
    Apply(e, e.eval.Skip(Clock::now()));
    return;
  }
  e.in_flight = true;
  ++e.runs;
  ++runs_;
  std::weak_ptr<bool> alive = alive_;
  Entry* entry = &e;
  e.cfg->impl->Run(rt_, [this, alive, entry](Measurement m) {
    if (alive.expired()) return;
    Finish(*entry, m);
  });
}

void Scheduler::Finish(Entry& e, const Measurement& m) {
  e.in_flight = false;
  if (stopped_) return;
  if (m.kind == Measurement::Kind::kError) {
    spdlog::debug("check {}: error: {}", e.cfg->common.name, m.error);
  }
  Apply(e, e.eval.Observe(m, Clock::now()));
}

void Scheduler::Apply(Entry& e, const Verdict& v) {
  const CheckConfig& c = *e.cfg;
  if (v.changed) {
    nlohmann::json f = nlohmann::json::object();
    f["check"] = c.common.name;
    f["type"] = c.common.type;
    f["state"] = StateName(v.state);
    f["prev_state"] = StateName(v.prev);
    f["value"] = v.value;
    f["threshold"] = v.threshold;
    f["error"] = Redact(v.error, config_->secrets);
    events_.Emit("check.state", std::move(f));
    auto level = v.state == CheckState::kOk ? spdlog::level::info : spdlog::level::warn;
    spdlog::log(level, "check {}: {} -> {}{}{}", c.common.name, StateName(v.prev),
                StateName(v.state), v.value.empty() ? "" : " value " + v.value,
                v.error.empty() ? "" : " error: " + Redact(v.error, config_->secrets));
  }
  if (v.fire == Verdict::Fire::kNone) return;
  const std::vector<std::string>* names = nullptr;
  if (v.fire == Verdict::Fire::kRecover) {
    names = &c.on_recover;
  } else if (v.state == CheckState::kWarn) {
    names = &c.on_warn;
  } else if (v.state == CheckState::kCrit) {
    names = &c.on_crit;
  } else if (v.state == CheckState::kError) {
    names = &c.on_error;
  }
  if (!names || names->empty()) return;
  Trigger t{"check", c.common.name, v.fire == Verdict::Fire::kRecover ? "ok" : StateName(v.state),
            v.value};
  executor_.FireAll(config_, *names, std::move(t));
}

std::vector<Scheduler::CheckStatus> Scheduler::Status() const {
  std::vector<CheckStatus> out;
  for (const auto& e : entries_) {
    out.push_back(CheckStatus{e->cfg->common.name, e->cfg->common.type, e->eval.state(),
                              e->eval.last_value(), e->eval.last_error(), e->eval.since(), e->runs,
                              e->overruns, e->in_flight});
  }
  return out;
}

}  // namespace warden
