#include "daemon/control/metrics.h"

#include <ev.h>

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <set>

#include "daemon/base/atomic_file.h"
#include "daemon/base/wall_time.h"
#include "daemon/control/status_page.h"
#include "daemon/engine/executor.h"
#include "daemon/engine/guard.h"
#include "daemon/engine/scheduler.h"
#include "daemon/io/forward_sender.h"
#include "daemon/io/mutex_client.h"
#include "daemon/jobs/job_runner.h"

namespace warden {

namespace {

// What EscapeLabelValue and FormatSampleValue return, appended to `out`
// in place: a page of 1,000 checks is some 12,000 samples, rendered on
// the loop at each scrape.
void AppendEscapedLabelValue(std::string& out, std::string_view value) {
  size_t plain = 0;   // the start of the run not yet appended
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(value.data() + plain, i - plain);
    out += c == '\n' ? "\\n" : c == '"' ? "\\\"" : "\\\\";
    plain = i + 1;
  }
  out.append(value.data() + plain, value.size() - plain);
}

void AppendSampleValue(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  // Times to the millisecond (1700000000.25) without the general shortest
  // form's search: when the value is exactly the double of a whole number
  // of thousandths, those digits are its shortest form.
  if (const double ms = value * 1000; std::fabs(ms) < 1e15) {
    const long long r = std::llround(ms);
    if (r % 1000 != 0 && static_cast<double>(r) / 1000 == value) {
      const long long whole = r / 1000;
      long long frac = r % 1000;
      if (r < 0) {
        out += '-';
        frac = -frac;
      }
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, whole < 0 ? -whole : whole);
      out.append(buf, end);
      out += '.';
      char digits[3] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                        static_cast<char>('0' + frac % 10)};
      out.append(digits, digits[2] != '0' ? 3 : digits[1] != '0' ? 2 : 1);
      return;
    }
  }
  // Whole numbers (counters, Unix times) in full: 1700000000, not 1.7e+09.
  auto [end, ec] = value == std::trunc(value) && std::fabs(value) < 1e15
                       ? std::to_chars(buf, buf + sizeof buf, static_cast<long long>(value))
                       : std::to_chars(buf, buf + sizeof buf, value);
  if (ec != std::errc()) out += "NaN";
  else out.append(buf, end);
}

// A whole number of milliseconds as seconds, as AppendSampleValue writes
// ms / 1000.0 (1700000000.25, 1700000000), without going through a double:
// every check's last run at every page.
void AppendMillis(std::string& out, std::int64_t ms) {
  if (ms <= -1'000'000'000'000'000 || ms >= 1'000'000'000'000'000) {
    AppendSampleValue(out, static_cast<double>(ms) / 1000.0);
    return;
  }
  if (ms < 0) {
    out += '-';
    ms = -ms;
  }
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, ms / 1000);
  const auto frac = static_cast<int>(ms % 1000);
  if (frac != 0) {
    *end++ = '.';
    *end++ = static_cast<char>('0' + frac / 100);
    if (frac % 100 != 0) *end++ = static_cast<char>('0' + frac / 10 % 10);
    if (frac % 10 != 0) *end++ = static_cast<char>('0' + frac % 10);
  }
  out.append(buf, end);
}

// A counter as AppendSampleValue writes it (in full below 1e15).
void AppendCount(std::string& out, std::uint64_t n) {
  if (n >= 1'000'000'000'000'000) {
    AppendSampleValue(out, static_cast<double>(n));
    return;
  }
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

}  // namespace

std::string FormatMillis(std::int64_t ms) {
  std::string out;
  AppendMillis(out, ms);
  return out;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  AppendEscapedLabelValue(out, value);
  return out;
}

std::string EscapeHelp(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string FormatSampleValue(double value) {
  std::string out;
  AppendSampleValue(out, value);
  return out;
}

std::optional<double> NumericValue(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  if (text.front() == '+') text.remove_prefix(1);
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string& Exposition::out() {
  if (!out_) {
    if (spare_ && next_spare_ < spare_->size() && (*spare_)[next_spare_].use_count() == 1) {
      // No page holds it any more: its memory again. (The disk thread may
      // have let go of it last, writing the textfile: its reads come
      // before these writes.)
      std::atomic_thread_fence(std::memory_order_acquire);
      out_ = (*spare_)[next_spare_];
      out_->clear();
    } else {
      out_ = std::make_shared<std::string>();
      if (spare_ && next_spare_ < spare_->size()) (*spare_)[next_spare_] = out_;
      else if (spare_) spare_->push_back(out_);
    }
    ++next_spare_;
  }
  return *out_;
}

void Exposition::Piece(std::shared_ptr<const std::string> lines) {
  if (out_ && !out_->empty()) pieces_.push_back(out_);
  out_.reset();
  if (lines && !lines->empty()) pieces_.push_back(std::move(lines));
}

std::vector<std::shared_ptr<const std::string>> Exposition::TakePieces() {
  if (out_ && !out_->empty()) pieces_.push_back(out_);
  out_.reset();
  return std::move(pieces_);
}

std::string Exposition::text() const {
  std::string all;
  for (const auto& p : pieces_) all += *p;
  if (out_) all += *out_;
  return all;
}

void Exposition::Family(std::string_view name, std::string_view type, std::string_view help) {
  std::string& out = this->out();
  out += "# HELP ";
  out += name;
  out += ' ';
  out += EscapeHelp(help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Exposition::Sample(std::string_view name, Labels labels, double value) {
  std::string& out = this->out();
  out += name;
  if (labels.size() > 0) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      AppendEscapedLabelValue(out, v);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  AppendSampleValue(out, value);
  out += '\n';
}

std::size_t MetricsPage::size() const {
  std::size_t n = 0;
  for (const auto& p : pieces) n += p->size();
  return n;
}

std::string MetricsPage::Join() const {
  std::string all;
  all.reserve(size());
  for (const auto& p : pieces) all += *p;
  return all;
}

namespace {

using SteadyClock = std::chrono::steady_clock;

// The guard's reasons (daemon/engine/guard.h), listed at 0 for every
// guarded action so that a rate() has a series before the first block.
constexpr std::array<const char*, 7> kBlockReasons = {"paused",   "halted", "mutex", "running",
                                                      "cooldown", "budget", "dry_run"};
constexpr std::array<CheckState, 7> kStates = {CheckState::kPending, CheckState::kOk,
                                               CheckState::kWarn,    CheckState::kCrit,
                                               CheckState::kError,   CheckState::kSkipped,
                                               CheckState::kDisabled};

}  // namespace

// MetricsCache's renderer: each check's series, copied from the last page
// where what they show did not change.
struct MetricsCacheAccess {
  using Cache = MetricsCache;

  // A series whose key is `key`, appended to `out`: the kept text when
  // the key is the same, else `render(text)` into it (text cleared first).
  template <class Key, class Render>
  static void Series(Cache& cache, Cache::Series<Key>& series, const Key& key, std::string& out,
                     Render&& render) {
    if (!series.set || !(series.key == key)) {
      series.text.clear();
      render(series.text);
      series.key = key;
      series.set = true;
      ++cache.rendered_;
    } else {
      ++cache.reused_;
    }
    out.append(series.text);
  }

  // name{check="label"} value
  static void CheckSample(std::string& out, std::string_view name, const std::string& label,
                          double value) {
    out += name;
    out += "{check=\"";
    out += label;
    out += "\"} ";
    AppendSampleValue(out, value);
    out += '\n';
  }

  // A value that is a plain whole number (digits, no sign, no leading
  // zero, fewer than 16) is its own sample text: no conversion either way.
  static bool PlainWhole(const std::string& v) {
    if (v.empty() || v.size() > 15 || (v[0] == '0' && v.size() > 1)) return false;
    for (char c : v) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  }

  static void RenderChecks(Cache& cache, const Scheduler* scheduler, std::int64_t now_ms,
                           Exposition& x);
};

namespace {

void RenderChecks(const MetricsSources& s, std::int64_t now_ms, Exposition& x) {
  MetricsCache fresh;
  MetricsCacheAccess::RenderChecks(s.cache ? *s.cache : fresh, s.scheduler, now_ms, x);
}

void RenderActions(const MetricsSources& s, Exposition& x) {
  static const ActionCounters kNone;
  std::vector<std::pair<const ActionConfig*, const ActionCounters*>> actions;
  if (s.config) {
    for (const auto& a : s.config->actions) {
      const ActionCounters* n = &kNone;
      if (s.executor) {
        auto it = s.executor->counters().find(a.common.name);
        if (it != s.executor->counters().end()) n = &it->second;
      }
      actions.emplace_back(&a, n);
    }
  }
  x.Family("warden_action_runs_total", "counter", "Runs of the action, by result (ok, fail).");
  for (const auto& [a, n] : actions) {
    x.Sample("warden_action_runs_total", {{"action", a->common.name}, {"result", "ok"}},
             static_cast<double>(n->ok));
    x.Sample("warden_action_runs_total", {{"action", a->common.name}, {"result", "fail"}},
             static_cast<double>(n->fail));
  }
  x.Family("warden_action_blocked_total", "counter",
           "Times the guard kept the action from running, by reason.");
  for (const auto& [a, n] : actions) {
    std::set<std::string> reasons;
    if (a->type && a->type->guarded) reasons.insert(kBlockReasons.begin(), kBlockReasons.end());
    for (const auto& [reason, count] : n->blocked) reasons.insert(reason);
    for (const auto& reason : reasons) {
      auto it = n->blocked.find(reason);
      x.Sample("warden_action_blocked_total", {{"action", a->common.name}, {"reason", reason}},
               it == n->blocked.end() ? 0 : static_cast<double>(it->second));
    }
  }
  x.Family("warden_action_duration_seconds", "histogram", "How long the action's runs took.");
  for (const auto& [a, n] : actions) {
    const std::string& name = a->common.name;
    for (size_t i = 0; i < ActionCounters::kBuckets.size(); ++i) {
      const std::string le = FormatSampleValue(ActionCounters::kBuckets[i]);
      x.Sample("warden_action_duration_seconds_bucket", {{"action", name}, {"le", le}},
               static_cast<double>(n->within[i]));
    }
    x.Sample("warden_action_duration_seconds_bucket", {{"action", name}, {"le", "+Inf"}},
             static_cast<double>(n->runs()));
    x.Sample("warden_action_duration_seconds_sum", {{"action", name}}, n->seconds);
    x.Sample("warden_action_duration_seconds_count", {{"action", name}},
             static_cast<double>(n->runs()));
  }
}

void RenderHost(const MetricsSources& s, std::int64_t now_ms, Exposition& x) {
  // The mutex: fail-closed, so no answer yet counts as held.
  const bool mutex_off = !s.config || s.config->mutex.mode == MutexConfig::Mode::kOff;
  x.Family("warden_mutex_held", "gauge",
           "1 when the central mutex holds automation (or has not answered yet: fail-closed), "
           "0 when clear or mode = off.");
  bool held = false;
  if (!mutex_off && s.mutex) held = !s.mutex->last() || s.mutex->last()->held;
  x.Sample("warden_mutex_held", {}, held ? 1 : 0);
  x.Family("warden_mutex_answer_age_seconds", "gauge", "Age of the mutex's last answer.");
  if (!mutex_off && s.mutex) {
    if (auto age = s.mutex->last_age()) {
      x.Sample("warden_mutex_answer_age_seconds", {}, static_cast<double>(age->count()) / 1000.0);
    }
  }
  x.Family("warden_paused", "gauge", "1 while the host is paused (wardenctl pause).");
  x.Sample("warden_paused", {}, s.guard && s.guard->host_pause() ? 1 : 0);
  x.Family("warden_pauses", "gauge",
           "Pauses in force, of any scope (host, group, action, check; windows included).");
  x.Sample("warden_pauses", {}, s.guard ? static_cast<double>(s.guard->pauses().all().size()) : 0);
  x.Family("warden_queue_halted", "gauge",
           "1 while the job queue is halted after a failed or interrupted job.");
  x.Sample("warden_queue_halted", {}, s.guard && s.guard->halted() ? 1 : 0);

  nlohmann::json jobs = s.jobs ? s.jobs->Status() : nlohmann::json::object();
  const nlohmann::json& running = jobs.contains("running") ? jobs["running"] : nlohmann::json();
  x.Family("warden_job_running", "gauge",
           "1 for the job running now and its current step; no series when none runs.");
  if (running.is_object()) {
    x.Sample("warden_job_running",
             {{"job", running.value("job", std::string())},
              {"step", running.value("step", std::string())}},
             1);
  }
  x.Family("warden_job_queue_length", "gauge", "Jobs queued behind the running one.");
  x.Sample("warden_job_queue_length", {},
           jobs.contains("queue") ? static_cast<double>(jobs["queue"].size()) : 0);
  bool slot = false;
  if (running.is_object() && running.contains("slot") && running["slot"].is_object()) {
    slot = running["slot"].value("state", std::string()) == "held";
  }
  if (jobs.contains("halt") && jobs["halt"].is_object() && jobs["halt"]["slot_kept"].is_string()) {
    slot = true;
  }
  x.Family("warden_fleet_slot_held", "gauge",
           "1 while this host holds a fleet slot (a running job's, or one a failed job keeps).");
  x.Sample("warden_fleet_slot_held", {}, slot ? 1 : 0);

  if (s.fluentd) {
    const FluentdStats f = s.fluentd->stats();
    x.Family("warden_fluentd_connected", "gauge", "1 while connected to fluentd.");
    x.Sample("warden_fluentd_connected", {}, f.connected ? 1 : 0);
    x.Family("warden_fluentd_backlog_events", "gauge",
             "Events buffered and not yet acknowledged by fluentd.");
    x.Sample("warden_fluentd_backlog_events", {}, static_cast<double>(f.backlog_events));
    x.Family("warden_fluentd_backlog_bytes", "gauge",
             "Bytes of the events buffered and not yet acknowledged by fluentd.");
    x.Sample("warden_fluentd_backlog_bytes", {}, static_cast<double>(f.backlog_bytes));
    x.Family("warden_fluentd_last_ack_age_seconds", "gauge",
             "Time since fluentd last acknowledged a chunk; no series before the first.");
    if (f.last_ack) {
      const auto ack_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              f.last_ack->time_since_epoch())
                              .count();
      x.Sample("warden_fluentd_last_ack_age_seconds", {},
               std::max<double>(0, static_cast<double>(now_ms - ack_ms) / 1000.0));
    }
    x.Family("warden_fluentd_dropped_events_total", "counter",
             "Events dropped before fluentd had them (buffer limit, full disk).");
    x.Sample("warden_fluentd_dropped_events_total", {}, static_cast<double>(f.dropped_total));
  }
}

}  // namespace

void MetricsCacheAccess::RenderChecks(Cache& cache, const Scheduler* scheduler,
                                      std::int64_t now_ms, Exposition& x) {
  static thread_local std::vector<Scheduler::CheckView> checks;
  checks.clear();
  if (scheduler) scheduler->Views(checks);
  const std::uint64_t changes = scheduler ? scheduler->state_changes() : 0;
  const std::int64_t size = static_cast<std::int64_t>(checks.size());
  // The same checks as the last page (no Start or Reload since): the
  // per-check entries still match them, name for name.
  if (!cache.states_.Same(scheduler, changes, size)) {
    if (cache.checks_.size() > checks.size()) cache.checks_.resize(checks.size());
    while (cache.checks_.size() < checks.size()) cache.checks_.emplace_back();
    for (size_t i = 0; i < checks.size(); ++i) {
      Cache::OneCheck& one = cache.checks_[i];
      if (one.name != *checks[i].name) {   // another check at this place: nothing of it holds
        one = Cache::OneCheck{};
        one.name = *checks[i].name;
        AppendEscapedLabelValue(one.label, one.name);
        one.last_run_prefix = "warden_check_last_run_timestamp_seconds{check=\"" + one.label + "\"} ";
        one.runs_prefix = "warden_check_runs_total{check=\"" + one.label + "\"} ";
      }
    }
  }
  // Steady times as Unix times: one offset for the whole page, kept while
  // the clocks agree with it (so that a time not changed renders the same).
  const std::int64_t steady_now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now().time_since_epoch())
          .count();
  const std::int64_t offset = now_ms - steady_now_ms;
  if (!cache.has_offset_ || std::llabs(offset - cache.offset_ms_) > MetricsCache::kOffsetSlackMs) {
    cache.offset_ms_ = offset;
    cache.has_offset_ = true;
  }
  auto wall = [&cache](SteadyClock::time_point t) {
    const std::int64_t ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    return std::pair<std::int64_t, std::int64_t>(ms, cache.offset_ms_);
  };
  x.Family("warden_check_state", "gauge",
           "The check's state: 1 for the current one, 0 for the others.");
  if (!cache.states_.Same(scheduler, changes, size)) {
    std::string& out = cache.states_.Fresh();
    for (size_t i = 0; i < checks.size(); ++i) {
      const Scheduler::CheckView& c = checks[i];
      Cache::OneCheck& one = cache.checks_[i];
      Series(cache, one.states, static_cast<int>(c.state), out, [&](std::string& text) {
        for (CheckState st : kStates) {
          text += "warden_check_state{check=\"";
          text += one.label;
          text += "\",state=\"";
          text += StateName(st);
          text += c.state == st ? "\"} 1\n" : "\"} 0\n";
        }
      });
    }
    cache.states_.Mark(scheduler, changes, size);
  } else {
    ++cache.reused_;
  }
  x.Piece(cache.states_.text);
  x.Family("warden_check_value", "gauge", "The check's last value, when it is a number.");
  std::string& page = x.out();
  for (size_t i = 0; i < checks.size(); ++i) {
    const Scheduler::CheckView& c = checks[i];
    Cache::OneCheck& one = cache.checks_[i];
    Series(cache, one.value, *c.value, page, [&](std::string& text) {
      if (PlainWhole(*c.value)) {
        text += "warden_check_value{check=\"";
        text += one.label;
        text += "\"} ";
        text += *c.value;
        text += '\n';
      } else if (auto v = NumericValue(*c.value)) {
        CheckSample(text, "warden_check_value", one.label, *v);
      }
    });
  }
  // The last run and the runs change at every run (at a scrape a second
  // and checks every second, at every page): rendered each time, straight
  // into the page.
  x.Family("warden_check_last_run_timestamp_seconds", "gauge",
           "When the check's last run ended (Unix time).");
  for (size_t i = 0; i < checks.size(); ++i) {
    const Scheduler::CheckView& c = checks[i];
    if (!c.last_run) continue;
    const auto key = wall(*c.last_run);
    page += cache.checks_[i].last_run_prefix;
    AppendMillis(page, key.first + key.second);
    page += '\n';
  }
  x.Family("warden_check_last_change_timestamp_seconds", "gauge",
           "When the check entered its current state (Unix time).");
  if (!cache.since_.Same(scheduler, changes, cache.offset_ms_)) {
    std::string& out = cache.since_.Fresh();
    for (size_t i = 0; i < checks.size(); ++i) {
      const Scheduler::CheckView& c = checks[i];
      if (c.since == SteadyClock::time_point{}) continue;   // pending since start: no change yet
      Cache::OneCheck& one = cache.checks_[i];
      const auto key = wall(c.since);
      Series(cache, one.since, key, out, [&](std::string& text) {
        CheckSample(text, "warden_check_last_change_timestamp_seconds", one.label,
                    static_cast<double>(key.first + key.second) / 1000.0);
      });
    }
    cache.since_.Mark(scheduler, changes, cache.offset_ms_);
  } else {
    ++cache.reused_;
  }
  x.Piece(cache.since_.text);
  x.Family("warden_check_runs_total", "counter", "Runs of the check.");
  std::string& runs = x.out();   // (a new piece after last changes)
  for (size_t i = 0; i < checks.size(); ++i) {
    runs += cache.checks_[i].runs_prefix;
    AppendCount(runs, checks[i].runs);
    runs += '\n';
  }
  x.Family("warden_check_errors_total", "counter",
           "Runs of the check whose result was an error (it could not measure).");
  const std::int64_t errors =
      static_cast<std::int64_t>(scheduler ? scheduler->error_results() : 0);
  if (!cache.errors_.Same(scheduler, changes, errors)) {
    std::string& out = cache.errors_.Fresh();
    for (size_t i = 0; i < checks.size(); ++i) {
      Cache::OneCheck& one = cache.checks_[i];
      Series(cache, one.errors, checks[i].errors, out, [&](std::string& text) {
        CheckSample(text, "warden_check_errors_total", one.label,
                    static_cast<double>(checks[i].errors));
      });
    }
    cache.errors_.Mark(scheduler, changes, errors);
  } else {
    ++cache.reused_;
  }
  x.Piece(cache.errors_.text);
}

MetricsPage RenderMetricsPieces(const MetricsSources& s, std::int64_t now_ms) {
  Exposition x(s.cache ? &s.cache->spare_ : nullptr);
  x.Family("warden_build_info", "gauge", "wardend's version and host; always 1.");
  x.Sample("warden_build_info", {{"version", s.version}, {"host", s.host}}, 1);
  x.Family("warden_start_time_seconds", "gauge", "When wardend started (Unix time).");
  x.Sample("warden_start_time_seconds", {}, static_cast<double>(s.started_ms) / 1000.0);
  RenderChecks(s, now_ms, x);
  RenderActions(s, x);
  RenderHost(s, now_ms, x);
  MetricsPage page;
  page.pieces = x.TakePieces();
  return page;
}

std::string RenderMetrics(const MetricsSources& s, std::int64_t now_ms) {
  return RenderMetricsPieces(s, now_ms).Join();
}

// --- the endpoint and the textfile ---

MetricsExporter::MetricsExporter(struct ev_loop* loop, MetricsConfig config, DiskWriter* writer,
                                 Render render)
    : loop_(loop), config_(std::move(config)), writer_(writer), render_(std::move(render)) {}

MetricsExporter::~MetricsExporter() {
  if (textfile_timer_) ev_timer_stop(loop_, textfile_timer_.get());
}

Status MetricsExporter::Start() {
  if (!config_.textfile.empty()) {
    textfile_timer_ = std::make_unique<ev_timer>();
    const double every = std::chrono::duration<double>(config_.interval).count();
    ev_timer_init(textfile_timer_.get(), &MetricsExporter::OnTextfileTimer, every, every);
    textfile_timer_->data = this;
    ev_timer_start(loop_, textfile_timer_.get());
    WriteTextfile();
  }
  if (config_.listen.empty()) return Status::Ok();
  HttpServer::Options o;
  o.host = config_.host;
  o.port = config_.port;
  o.max_connections = kMaxConnections;
  o.timeout_s = kTimeout;
  o.memory_limit = kRequestMemory;
  server_ = std::make_unique<HttpServer>(
      loop_, o, [this](std::string_view method, std::string_view path) { return Serve(method, path); });
  Status s = server_->Start();
  if (!s.ok()) server_.reset();
  return s;
}

const MetricsPage& MetricsExporter::Page() {
  const double now = ev_now(loop_);
  if (!page_ || now - page_at_ >= kReuse || now < page_at_) {
    page_.reset();   // its pieces free to be rendered into again, unless still being sent
    page_ = render_();
    page_at_ = now;
  }
  return *page_;
}

void MetricsExporter::StatusPages() {
  const double now = ev_now(loop_);
  if (status_json_ && status_html_ && now - status_at_ < kReuse && now >= status_at_) return;
  const nlohmann::json status = status_source_();
  status_json_ = std::make_shared<const std::string>(status.dump(2, ' ', false,
                                                                 nlohmann::json::error_handler_t::replace) + "\n");
  status_html_ = std::make_shared<const std::string>(RenderStatusPage(status, WallMsNow()));
  status_at_ = now;
}

HttpServer::Reply MetricsExporter::Serve(std::string_view method, std::string_view path) {
  HttpServer::Reply r;
  // Every answer: the browser must not guess a type (a 404's text is not HTML).
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  const bool status = config_.status_page && status_source_;
  const bool known = path == "/metrics" || (status && (path == "/" || path == "/status.json"));
  if (!known) {
    r.status = 404;
    r.body = std::make_shared<const std::string>(
        status ? "not found: wardend serves /metrics, / and /status.json\n"
               : "not found: wardend serves only /metrics\n");
    return r;
  }
  // HEAD is GET without the body (HTTP's rule; MHD leaves the body out):
  // the same status and headers, for a `curl -I` or an uptime probe.
  if (method != "GET" && method != "HEAD") {
    r.status = 405;
    r.headers.emplace_back("Allow", "GET, HEAD");
    r.body = std::make_shared<const std::string>("method not allowed: only GET or HEAD " +
                                                 std::string(path) + "\n");
    return r;
  }
  if (path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.pieces = Page().pieces;
    return r;
  }
  StatusPages();
  r.headers.emplace_back("Content-Security-Policy", kStatusPageCsp);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  if (path == "/") {
    r.content_type = "text/html; charset=utf-8";
    r.body = status_html_;
  } else {
    r.content_type = "application/json";
    r.body = status_json_;
  }
  return r;
}

void MetricsExporter::OnTextfileTimer(struct ev_loop*, ev_timer* w, int) {
  static_cast<MetricsExporter*>(w->data)->WriteTextfile();
}

void MetricsExporter::WriteTextfile() {
  // Rendered now (or the page a scrape rendered less than kReuse ago), on
  // the loop; written on the disk thread from its pieces, which no render
  // writes into while this holds them. A write not yet started is
  // replaced by this newer one (the "metrics" key).
  std::weak_ptr<bool> alive = alive_;
  writer_->Post(
      "metrics",
      [path = config_.textfile, page = Page()] {
        std::vector<std::string_view> parts;
        parts.reserve(page.pieces.size());
        for (const auto& p : page.pieces) parts.emplace_back(*p);
        return ReplaceFile(path, parts, 0644);
      },
      [this, alive](const Status& s) {
        if (alive.expired()) return;   // the exporter is gone
        // Said once when writing starts failing and once when it works again.
        if (!s.ok() && !textfile_failing_) {
          spdlog::error("metrics textfile: {} (tried again every {} s)", s.message(),
                        std::chrono::duration_cast<std::chrono::seconds>(config_.interval).count());
        } else if (s.ok() && textfile_failing_) {
          spdlog::warn("metrics textfile {} written again", config_.textfile);
        }
        textfile_failing_ = !s.ok();
        textfile_error_ = s.ok() ? "" : s.message();
      });
}

}  // namespace warden
