#include "daemon/engine/scheduler.h"

#include <ev.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <mutex>
#include <utility>

#include "daemon/engine/events.h"
#include "daemon/engine/executor.h"
#include "daemon/engine/state.h"

namespace warden {

struct alignas(64) Scheduler::Entry {
  // At 1,000 checks each entry is touched once a second, long evicted, and
  // a run's cost is mostly its cache misses. So what a run of a shared
  // read touches is in the entry's first four lines, and nothing else of
  // the check is: the usual result (Quiet) reads and writes these lines
  // and the snapshot, and no more.
  //
  // Line 0: what RunDue, LaunchShared and every result read or write.
  bool has_depends = false;
  bool in_flight = false;
  bool retired = false;           // of an older snapshot (Reload)
  bool waiting = false;           // !waiters.empty()
  int shared_id = -1;             // shared.connection's, Scheduler::SharedId
  std::int64_t every_ms = 0;
  std::int64_t due_ms = -1;  // the key in Scheduler::due_ while armed, else -1
  // From *cfg, here because every run needs them: the rest of the config
  // is read only when a state changes.
  Check* impl = nullptr;
  Scheduler* owner = nullptr;
  std::uint64_t runs = 0;
  std::optional<Clock::time_point> last_run;
  // Line 1: the name a shared read's result is (SharedRead::key; null
  // when the check reads it itself, ReadFrom) and where it was last.
  const std::string* key = nullptr;
  NamedValues::Hint hint;
  // Lines 2 and 3: the evaluator's own hot part comes first.
  Evaluator eval;
  // What a state change, a reload or wardenctl reads.
  SharedRead shared;              // impl->shared_read()
  std::vector<RunDone> waiters;   // wardenctl check: the result of the run in flight
  const CheckConfig* cfg = nullptr;
  Entry* successor = nullptr;     // retired: the same check in the new snapshot
  std::uint64_t overruns = 0;
  std::uint64_t errors = 0;       // runs whose result was an error (metrics)
  // wardenctl disable: not armed (so no tick reads this), a result of a
  // run in flight dropped.
  bool disabled = false;
  ev_timer retry{};     // dependency still pending: look again soon

  explicit Entry(const CheckConfig* c)
      : has_depends(!c->depends.empty()),
        every_ms(std::max<std::int64_t>(1, c->common.every.count())),
        impl(c->impl.get()),
        eval(c->rules),
        shared(impl ? impl->shared_read() : SharedRead{}),
        cfg(c) {
    key = shared.key;
    // The lines above, as laid out (a quiet result touches lines 0-3).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
    static_assert(offsetof(Entry, key) == 64 && offsetof(Entry, eval) == 128);
#pragma GCC diagnostic pop
  }
};

Scheduler::Scheduler(Runtime& rt, Executor& executor, EventLog& events)
    : rt_(rt), executor_(executor), events_(events), wheel_(std::make_unique<ev_timer>()) {
  ev_timer_init(wheel_.get(), &Scheduler::OnWheel, 0, 0);
  wheel_->data = this;
}

Scheduler::~Scheduler() {
  Stop();
  std::vector<std::unique_ptr<Entry>> orphans;
  auto orphan = [&](std::unique_ptr<Entry>& e) {
    if (!e->in_flight) return;
    e->owner = nullptr;
    e->waiters.clear();   // what they would reach is going away too
    e->waiting = false;
    orphans.push_back(std::move(e));
  };
  for (auto& e : entries_) orphan(e);
  for (auto& r : retired_) {
    for (auto& e : r.entries) orphan(e);
  }
  if (!orphans.empty()) KeepOrphans(std::move(orphans));
}

void Scheduler::KeepOrphans(std::vector<std::unique_ptr<Entry>> orphans) {
  // In wardend that is once, at exit; in a test, a few entries.
  static std::mutex mu;
  static auto* kept = new std::vector<std::unique_ptr<Entry>>;   // never freed: still reachable
  std::lock_guard<std::mutex> lock(mu);
  for (auto& e : orphans) kept->push_back(std::move(e));
}

void Scheduler::Start(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  stopped_ = false;
  ++generation_;
  ++state_changes_;
  launched_.clear();
  // A run still in flight keeps its entry until it ends, as on Reload.
  Retired retired{config_, {}};
  for (auto& e : entries_) {
    ev_timer_stop(rt_.loop, &e->retry);
    e->due_ms = -1;
    RetireIfInFlight(e, retired);
  }
  if (!retired.entries.empty()) retired_.push_back(std::move(retired));
  due_.clear();
  entries_.clear();
  by_name_.clear();
  const double base = NowMs();
  for (const auto& c : config_->checks) {
    auto e = std::make_unique<Entry>(&c);
    e->owner = this;
    e->shared_id = SharedId(e->shared);
    Arm(*e, FirstRun(c), base);
    by_name_[c.common.name] = e.get();
    entries_.push_back(std::move(e));
  }
  RearmWheel();
}

double Scheduler::NowMs() const {
  return std::chrono::duration<double, std::milli>(rt_.time->Now().time_since_epoch()).count();
}

double Scheduler::FirstRun(const CheckConfig& c) {
  double every = std::chrono::duration<double>(c.common.every).count();
  if (config_->daemon.jitter <= 0) return 0;
  if (!config_->daemon.spread_shared_reads && c.impl && c.impl->shared_read().source) {
    // A check that only reads a shared snapshot costs nothing of its own
    // per run: spreading it would only split one read into several. All
    // such checks run on one absolute grid of their cadence (a second at
    // most), so those of one `every` share one read per tick, and a check
    // added by a reload joins them.
    const double grid = std::min(every, 1.0);
    const double now = ev_now(rt_.loop);
    return std::max(0.0, std::ceil(now / grid) * grid - now);
  }
  std::uniform_real_distribution<double> d(0, every * config_->daemon.jitter);
  double first = d(rng_);
  // Spread over a grid, not a continuum: checks whose runs fall on the same
  // 100 ms tick (every/10 for faster checks) expire in one pass of the loop,
  // and mysql checks on one tick share one read. At 100 checks a second
  // that is 10 wake-ups instead of 100. The grid is absolute (ev_now), so
  // checks added by a reload land on it too.
  double grid = std::min(kRunGrid, every / 10);
  double now = ev_now(rt_.loop);
  double at = std::ceil((now + first) / grid) * grid;
  return std::max(0.0, at - now);
}

void Scheduler::Arm(Entry& e, double first, double base_ms) {
  Disarm(e);
  // Rounded down: a check due now (jitter 0, RunNow) has a key not after
  // now, so the wheel's wait is 0 and it runs on the next pass, never half
  // a millisecond later (RunDue takes keys up to now + 1 ms anyway).
  e.due_ms = static_cast<std::int64_t>(std::floor(base_ms + first * 1000));
  due_[e.due_ms].push_back(&e);
  ev_timer_init(&e.retry, &Scheduler::OnTimer, 0, 0);
  e.retry.data = &e;
}

void Scheduler::Disarm(Entry& e) {
  if (e.due_ms < 0) return;
  auto it = due_.find(e.due_ms);
  if (it != due_.end()) {
    std::erase(it->second, &e);
    if (it->second.empty()) due_.erase(it);
  }
  e.due_ms = -1;
}

void Scheduler::RearmWheel() {
  ev_timer_stop(rt_.loop, wheel_.get());
  if (stopped_ || due_.empty()) return;
  // libev counts the wait from its idea of now, which is as old as this
  // pass of the loop: brought up to date, the timer does not fire early.
  ev_now_update(rt_.loop);
  double wait = (static_cast<double>(due_.begin()->first) - NowMs()) / 1000;
  ev_timer_set(wheel_.get(), std::max(0.0, wait), 0);
  ev_timer_start(rt_.loop, wheel_.get());
}

void Scheduler::OnWheel(struct ev_loop*, ev_timer* w, int) {
  static_cast<Scheduler*>(w->data)->RunDue();
}

void Scheduler::RunDue() {
  const double now = NowMs();
  // Due now: the keys are whole milliseconds, the timer's wait is not.
  const auto limit = static_cast<std::int64_t>(std::floor(now)) + 1;
  std::vector<decltype(due_)::node_type> ready;
  ready.swap(ready_);   // its capacity, from the last pass
  while (!due_.empty() && due_.begin()->first <= limit) ready.push_back(due_.extract(due_.begin()));
  // Every entry's first line, last touched a run ago, is read below: asked
  // for all at once, their misses overlap.
  for (auto& node : ready) {
    for (Entry* e : node.mapped()) __builtin_prefetch(e);
  }
  // Each one's next time: `every` after this one; one that fell behind
  // by more (a stalled loop) is due again at once, on the next pass, as
  // libev does with a late repeating timer.
  //
  // At 1,000 checks every pass over the entries costs (their first lines
  // do not all stay in the nearest cache): the usual node is walked once
  // here, and once below to launch them.
  const std::int64_t now_ms = std::llround(now);
  std::vector<Entry*> batch;
  batch.swap(batch_);   // its capacity, from the last pass
  batch.clear();
  for (auto& node : ready) {
    const std::int64_t at = node.key();
    std::vector<Entry*>& entries = node.mapped();
    batch.insert(batch.end(), entries.begin(), entries.end());
    const std::int64_t every = entries.front()->every_ms;
    bool same = at + every >= now_ms;
    if (same) {
      // The usual case: all of them are due together again (the node
      // and its vector are reused). A check that runs on its own is
      // touched beyond its first line when launched: asked for now.
      for (Entry* e : entries) {
        same = same && e->every_ms == every;
        e->due_ms = at + every;
        if (e->shared_id < 0) __builtin_prefetch(e->impl);
      }
    }
    if (same) {
      node.key() = at + every;
      auto put = due_.insert(std::move(node));
      if (!put.inserted) {
        put.position->second.insert(put.position->second.end(), put.node.mapped().begin(),
                                    put.node.mapped().end());
      }
      continue;
    }
    for (Entry* e : entries) {
      e->due_ms = std::max(at + e->every_ms, now_ms);
      due_[e->due_ms].push_back(e);
    }
  }
  ready.clear();
  ready_.swap(ready);
  const std::uint64_t generation = generation_;
  // Checks that only read a shared snapshot are launched together, one
  // read and one completion per snapshot (LaunchShared); the others one by
  // one.
  for (auto& g : groups_) g.entries->clear();
  ReapRetired();
  launched_.clear();       // (the last pass's: their results are in or near)
  launched_warm_ = true;
  for (Entry* e : batch) {
    // The usual entry (idle, no dependencies) is ready: Ready's other
    // tests are for the rest, and its ReapRetired is done above.
    const bool plain = !e->in_flight && !e->has_depends && !stopped_;
    if (!plain && !Ready(*e)) {
      if (generation_ != generation) return;
      continue;
    }
    if (e->shared_id >= 0) {   // (e->shared is in a colder line)
      GroupOf(*e).push_back(e);
      continue;
    }
    Launch(*e);
    // Start, Reload or Stop from inside a run: the rest of the batch may be gone.
    if (generation_ != generation) return;
    launched_.push_back(e);
  }
  for (auto& g : groups_) {
    if (g.entries->empty()) continue;
    LaunchShared(g);
    if (generation_ != generation) return;
  }
  // (A shared read's completion prefetches its own: FinishShared.) Those
  // launched on their own that are still in flight are Warm's.
  std::erase_if(launched_, [](const Entry* e) { return !e->in_flight; });
  launched_warm_ = launched_.empty();
  batch_.swap(batch);
  RearmWheel();
}

void Scheduler::Prefetch(const std::vector<Entry*>& entries) {
  // A result: the entry's hot part and its evaluator's span its first
  // four lines; and its check, whose run completes.
  for (Entry* e : entries) {
    const char* p = reinterpret_cast<const char*>(e);
    for (size_t at = 0; at < 256 && at < sizeof(Entry); at += 64) __builtin_prefetch(p + at);
  }
  for (Entry* e : entries) __builtin_prefetch(e->impl);
}

void Scheduler::Warm() {
  launched_warm_ = true;
  Prefetch(launched_);   // some may have finished already: a wasted prefetch
  launched_.clear();
}

void Scheduler::Reload(std::shared_ptr<const Config> config) {
  ++generation_;
  ++state_changes_;
  launched_.clear();
  const double base = NowMs();
  // Remaining time of each old cadence, to keep an unchanged check's.
  std::map<std::string, double> remaining;
  std::map<std::string, std::unique_ptr<Entry>> old;
  for (auto& e : entries_) {
    if (e->due_ms >= 0) {
      remaining[e->cfg->common.name] = (static_cast<double>(e->due_ms) - base) / 1000;
    }
    Disarm(*e);
    ev_timer_stop(rt_.loop, &e->retry);
    std::string name = e->cfg->common.name;
    old[name] = std::move(e);
  }
  Retired retired{config_, {}};
  entries_.clear();
  by_name_.clear();
  config_ = std::move(config);
  for (const auto& c : config_->checks) {
    auto e = std::make_unique<Entry>(&c);
    e->owner = this;
    e->shared_id = SharedId(e->shared);
    double every = std::chrono::duration<double>(c.common.every).count();
    double first = 0;
    auto it = old.find(c.common.name);
    if (it != old.end() && it->second->cfg->digest == c.digest) {
      Entry& prev = *it->second;
      e->eval = std::move(prev.eval);
      e->runs = prev.runs;
      e->overruns = prev.overruns;
      e->errors = prev.errors;
      e->last_run = prev.last_run;
      first = std::clamp(remaining[c.common.name], 0.0, every);
      if (prev.in_flight) {
        e->in_flight = true;
        e->waiters = std::move(prev.waiters);
        e->waiting = !e->waiters.empty();
        prev.waiting = false;
        prev.successor = e.get();
      }
    } else {
      first = FirstRun(c);
    }
    Arm(*e, first, base);
    by_name_[c.common.name] = e.get();
    entries_.push_back(std::move(e));
  }
  for (auto& [name, e] : old) RetireIfInFlight(e, retired);
  if (!retired.entries.empty()) retired_.push_back(std::move(retired));
  stopped_ = false;
  RearmWheel();
}

void Scheduler::RetireIfInFlight(std::unique_ptr<Entry>& e, Retired& into) {
  if (!e->in_flight) return;
  e->retired = true;
  into.entries.push_back(std::move(e));
}

void Scheduler::ReapRetired() {
  for (auto& r : retired_) {
    std::erase_if(r.entries, [](const std::unique_ptr<Entry>& e) { return !e->in_flight; });
  }
  std::erase_if(retired_, [](const Retired& r) { return r.entries.empty(); });
}

bool Scheduler::SetDisabled(const std::string& name, bool disabled) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return false;
  Entry& e = *it->second;
  if (e.disabled == disabled) return true;
  e.disabled = disabled;
  if (disabled) {
    Disarm(e);
    ev_timer_stop(rt_.loop, &e.retry);
  } else {
    Arm(e, 0, NowMs());   // runs on the next pass, then at its cadence
  }
  ++state_changes_;
  Apply(e, e.eval.SetDisabled(disabled, Clock::now()));
  RearmWheel();
  return true;
}

bool Scheduler::RunNow(const std::string& name, RunDone done) {
  auto it = by_name_.find(name);
  if (stopped_ || it == by_name_.end()) return false;
  Entry& e = *it->second;
  e.waiters.push_back(std::move(done));
  e.waiting = true;
  if (!e.in_flight) Launch(e);
  return true;
}

void Scheduler::Capture(PersistedState& state) const {
  state.checks.clear();
  for (const auto& e : entries_) {
    CheckRecord r;
    r.state = StateName(e->eval.state());
    r.value = e->eval.last_value();
    r.unit = e->eval.last_unit();
    r.detail = Redact(e->eval.last_detail(), config_->secrets);
    r.error = Redact(e->eval.last_error(), config_->secrets);
    r.since_ms = e->eval.since() == Clock::time_point{} ? 0 : SteadyToWallMs(e->eval.since());
    r.last_run_ms = e->last_run ? SteadyToWallMs(*e->last_run) : 0;
    r.runs = e->runs;
    r.overruns = e->overruns;
    r.digest = e->cfg->digest;
    state.checks[e->cfg->common.name] = std::move(r);
  }
}

void Scheduler::Restore(const PersistedState& state) {
  ++state_changes_;
  auto now = Clock::now();
  for (auto& e : entries_) {
    auto it = state.checks.find(e->cfg->common.name);
    if (it == state.checks.end() || it->second.digest != e->cfg->digest) continue;
    const CheckRecord& r = it->second;
    e->runs = r.runs;
    e->overruns = r.overruns;
    if (r.last_run_ms > 0) e->last_run = WallMsToSteady(r.last_run_ms);
    auto st = StateFromName(r.state);
    if (!st || !(*st == CheckState::kWarn || *st == CheckState::kCrit || *st == CheckState::kError)) {
      continue;
    }
    e->eval.Restore(*st, r.since_ms > 0 ? WallMsToSteady(r.since_ms) : now, r.value, r.error, now,
                    r.detail, r.unit);
  }
}

void Scheduler::Stop() {
  stopped_ = true;
  ++generation_;
  launched_.clear();
  for (auto& e : entries_) {
    Disarm(*e);
    ev_timer_stop(rt_.loop, &e->retry);
  }
  due_.clear();
  ev_timer_stop(rt_.loop, wheel_.get());
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
  if (Ready(e)) Launch(e);
}

bool Scheduler::Ready(Entry& e) {
  ReapRetired();
  if (stopped_) return false;
  if (e.in_flight) {
    ++e.overruns;
    spdlog::debug("check {}: previous run still in flight, tick skipped", e.cfg->common.name);
    return false;
  }
  if (e.has_depends) {
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
        return false;
      }
      Apply(e, e.eval.Skip(Clock::now()));
      return false;
    }
  }
  return true;
}

void Scheduler::Launch(Entry& e) {
  e.in_flight = true;
  ++e.runs;
  ++runs_;
  // One pointer: std::function keeps it in place, no allocation per run.
  // An entry outlives its run (retired on Reload, orphaned when the
  // scheduler goes); it has no owner once the scheduler is gone.
  Entry* entry = &e;
  e.impl->Run(rt_, [entry](Measurement m) {
    if (entry->owner) entry->owner->Finish(*entry, m);
  });
}

int Scheduler::SharedId(const SharedRead& read) {
  if (!read.source) return -1;
  auto [it, added] = shared_ids_.try_emplace({read.source, *read.scope}, 0);
  if (added) it->second = static_cast<int>(shared_ids_.size()) - 1;
  return it->second;
}

std::vector<Scheduler::Entry*>& Scheduler::GroupOf(const Entry& e) {
  // A handful of groups at most (one per connection and kind), and the
  // usual batch fills one: the last one asked for is tried first. A group
  // with no entries is free (its read is of an earlier batch).
  const int id = e.shared_id;
  auto match = [id](const SharedGroup& g) { return g.id == id && !g.entries->empty(); };
  if (last_group_ < groups_.size() && match(groups_[last_group_])) {
    return *groups_[last_group_].entries;
  }
  size_t free = groups_.size();
  for (size_t i = 0; i < groups_.size(); ++i) {
    if (match(groups_[i])) {
      last_group_ = i;
      return *groups_[i].entries;
    }
    if (free == groups_.size() && groups_[i].entries->empty()) free = i;
  }
  if (free == groups_.size()) {
    groups_.push_back(SharedGroup{id, e.shared, std::make_unique<std::vector<Entry*>>()});
  }
  last_group_ = free;
  groups_[free].id = id;
  groups_[free].read = e.shared;
  return *groups_[free].entries;
}

void Scheduler::LaunchShared(SharedGroup& group) {
  // The group's list goes with the read (its completion walks it); the
  // group gets a new one, for the next batch.
  auto entries = std::move(group.entries);
  group.entries = std::make_unique<std::vector<Entry*>>();
  group.entries->reserve(entries->size());
  for (Entry* e : *entries) {
    e->in_flight = true;
    ++e->runs;
  }
  runs_ += entries->size();
  // The read's scope belongs to the first check: copied, as the
  // completion may run (and a reload free that check) before the call
  // returns.
  const SharedSource* source = group.read.source;
  const std::string scope = *group.read.scope;
  std::shared_ptr<const NameSet> names = NamesOf(group.id, *entries);
  auto done = [entries = std::move(entries)](const Check::Snapshot& snapshot) {
    FinishShared(*entries, snapshot);
  };
  source->Read(rt_, scope, std::move(names), std::move(done));
}

std::shared_ptr<const NameSet> Scheduler::NamesOf(int id, const std::vector<Entry*>& entries) {
  // The checks due together are usually the same ones tick after tick
  // (one node of due_, in the same order): their names are gathered once
  // and kept for as long as the list is the same. Comparing the list
  // reads only the pointers, not the entries' colder lines.
  if (names_.size() <= static_cast<size_t>(id)) names_.resize(static_cast<size_t>(id) + 1);
  NamesKept& kept = names_[static_cast<size_t>(id)];
  if (kept.names && kept.generation == generation_ && kept.entries == entries) return kept.names;
  std::vector<std::string> names;
  for (const Entry* e : entries) {
    names.insert(names.end(), e->shared.names.begin(), e->shared.names.end());
  }
  kept.names = NameSet::Of(std::move(names));
  kept.entries = entries;
  kept.generation = generation_;
  return kept.names;
}

void Scheduler::FinishShared(const std::vector<Entry*>& entries, const Check::Snapshot& snapshot) {
  // Each entry outlives its run as Launch's do (retired, orphaned); its
  // check is gone only once it has no owner.
  //
  // The usual result (a value that leaves an ok check ok, nobody waiting
  // for it) is recorded in place: no Measurement, no Verdict (Quiet).
  //
  // The entries were last touched at launch, their results a run ago:
  // each one's first four lines (all that a quiet result touches) are
  // asked for kAhead entries before its turn, so that the misses overlap
  // and the lines are not evicted again before they are used.
  const NamedValues* map = snapshot ? snapshot->get() : nullptr;
  Measurement otherwise;   // one for the loop: most results never fill it
  constexpr size_t kAhead = 8;
  const size_t n = entries.size();
  auto prefetch = [&entries](size_t i) {
    const char* p = reinterpret_cast<const char*>(entries[i]);
    for (size_t at = 0; at < 256; at += 64) __builtin_prefetch(p + at, 1);
  };
  for (size_t i = 0; i < std::min(n, kAhead); ++i) prefetch(i);
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) prefetch(i + kAhead);
    Entry* e = entries[i];
    Scheduler* owner = e->owner;
    if (!owner) continue;
    if (!snapshot) {
      owner->Finish(*e, Measurement::Error(snapshot.failure()));
      continue;
    }
    // The name's value, looked up here with the entry's own hint; the
    // check's ReadFrom for the rest (a rate, a missing name's error).
    std::optional<std::string_view> value;
    if (e->key) value = map->get(*e->key, &e->hint);
    if (!value) value = e->impl->ReadFrom(*map, otherwise);
    if (value && !e->retired && !e->waiting && !owner->stopped_ && e->eval.Quiet(*value)) {
      e->in_flight = false;
      e->last_run = map->taken != Clock::time_point{} ? map->taken : Clock::now();
      continue;
    }
    Measurement m = value ? Measurement::Value(*value) : std::exchange(otherwise, Measurement{});
    m.at = map->taken;
    owner->Finish(*e, m);
  }
}

void Scheduler::Finish(Entry& e, const Measurement& m) {
  if (!launched_warm_) Warm();
  e.in_flight = false;
  if (e.retired) {
    // Freed later (ReapRetired, from a timer): we are inside its check's
    // callback here.
    Entry* next = e.successor;
    if (next) {
      Finish(*next, m);
    } else {
      auto waiters = std::move(e.waiters);
      e.waiters.clear();
      e.waiting = false;
      for (auto& w : waiters) w(m, Verdict{});
    }
    return;
  }
  const Clock::time_point now = m.at != Clock::time_point{} ? m.at : Clock::now();
  e.last_run = now;
  auto waiters = std::move(e.waiters);
  e.waiters.clear();
  e.waiting = false;
  if (stopped_ || e.disabled) {   // a run in flight when it was disabled counts for nothing
    for (auto& w : waiters) w(m, Verdict{});
    return;
  }
  if (m.kind == Measurement::Kind::kError) {
    ++e.errors;
    ++error_results_;
    spdlog::debug("check {}: error: {}", e.cfg->common.name, m.error);
  }
  Verdict v = e.eval.Observe(m, now);
  Apply(e, v);
  for (auto& w : waiters) w(m, v);
}

void Scheduler::Apply(Entry& e, const Verdict& v) {
  const CheckConfig& c = *e.cfg;
  if (v.changed) {
    ++state_changes_;
    nlohmann::json f = nlohmann::json::object();
    f["check"] = c.common.name;
    f["type"] = c.common.type;
    f["state"] = StateName(v.state);
    f["prev_state"] = StateName(v.prev);
    f["value"] = v.value;
    f["threshold"] = v.threshold;
    f["error"] = Redact(v.error, config_->secrets);
    if (!v.unit.empty()) f["unit"] = v.unit;
    if (!v.detail.empty()) f["detail"] = Redact(v.detail, config_->secrets);
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
                              e->overruns, e->in_flight, e->last_run, e->errors,
                              e->eval.last_detail(), e->eval.last_unit()});
  }
  return out;
}

void Scheduler::Views(std::vector<CheckView>& out) const {
  out.clear();
  out.reserve(entries_.size());
  for (const auto& e : entries_) {
    out.push_back(CheckView{&e->cfg->common.name, &e->eval.last_value(), e->eval.state(),
                            e->eval.since(), e->runs, e->errors, e->last_run});
  }
}

}  // namespace warden
