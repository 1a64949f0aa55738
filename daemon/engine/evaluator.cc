#include "daemon/engine/evaluator.h"

#include <algorithm>

namespace warden {

const char* StateName(CheckState s) {
  switch (s) {
    case CheckState::kPending: return "pending";
    case CheckState::kOk: return "ok";
    case CheckState::kWarn: return "warn";
    case CheckState::kCrit: return "crit";
    case CheckState::kError: return "error";
    case CheckState::kSkipped: return "skipped";
    case CheckState::kDisabled: return "disabled";
  }
  return "?";
}

std::optional<CheckState> StateFromName(std::string_view name) {
  for (auto s : {CheckState::kPending, CheckState::kOk, CheckState::kWarn, CheckState::kCrit,
                 CheckState::kError, CheckState::kSkipped, CheckState::kDisabled}) {
    if (name == StateName(s)) return s;
  }
  return std::nullopt;
}

namespace {
bool IsBad(CheckState s) {
  return s == CheckState::kWarn || s == CheckState::kCrit || s == CheckState::kError;
}
}  // namespace

void Evaluator::Enter(CheckState next, Clock::time_point now, Verdict& v) {
  v.prev = state_;
  v.state = next;
  if (next != state_) {
    v.changed = true;
    if (IsBad(next)) {
      v.fire = Verdict::Fire::kState;
      last_fire_ = now;
    } else if (next == CheckState::kOk && IsBad(state_)) {
      v.fire = Verdict::Fire::kRecover;
      last_fire_.reset();
    } else {
      last_fire_.reset();
    }
    state_ = next;
    since_ = now;
    ClearWindow();
    ok_streak_ = 0;
  } else if (IsBad(state_) && rules_.repeat && last_fire_ && now - *last_fire_ >= *rules_.repeat) {
    v.fire = Verdict::Fire::kState;
    v.repeat = true;
    last_fire_ = now;
  }
}

void Evaluator::PushWindow(Level level) {
  const int capacity = capacity_;
  Level* ring = window_inline_.data();
  if (capacity > kInlineWindow) {
    if (window_heap_.size() != static_cast<size_t>(capacity)) {
      window_heap_.assign(static_cast<size_t>(capacity), Level::kOk);
    }
    ring = window_heap_.data();
  }
  auto count = [this](Level l, int delta) {
    if (l == Level::kError) window_errors_ += delta;
    if (l == Level::kCrit) window_crits_ += delta;
    if (l == Level::kCrit || l == Level::kWarn) window_warns_ += delta;
  };
  // No division (a result's few instructions would be mostly that): the
  // indices stay below capacity by a compare.
  if (window_size_ == capacity) {
    // Full: the oldest result leaves.
    count(ring[window_start_], -1);
    ring[window_start_] = level;
    if (++window_start_ == capacity) window_start_ = 0;
  } else {
    int at = window_start_ + window_size_;
    if (at >= capacity) at -= capacity;
    ring[at] = level;
    ++window_size_;
  }
  count(level, +1);
}

void Evaluator::ClearWindow() {
  window_start_ = window_size_ = 0;
  window_errors_ = window_crits_ = window_warns_ = 0;
}

Evaluator::Level Evaluator::Classify(const Measurement& m, const EvalRules& rules,
                                     bool has_thresholds, std::string& threshold,
                                     std::string& error) {
  if (m.kind == Measurement::Kind::kError) {
    error = m.error;
    return Level::kError;
  }
  Level level = Level::kOk;
  // A verdict of the check's own with no value (a plugin that could not
  // measure) has nothing for the thresholds to compare.
  const bool own = m.level != Measurement::Level::kNone;
  if (has_thresholds && !(own && m.value.empty())) {
    // crit first: a value past both thresholds is crit.
    auto classify = [&](const std::optional<Threshold>& t, Level l) {
      if (!t || level != Level::kOk) return;
      auto hit = t->Matches(m.value);
      if (!hit) {
        level = Level::kError;
        error = hit.error();
      } else if (*hit) {
        level = l;
        threshold = t->ToString();
      }
    };
    classify(rules.crit, Level::kCrit);
    classify(rules.warn, Level::kWarn);
  }
  if (own && level != Level::kError) {
    // The worse of the two; the check's own when it is worse, and then no
    // threshold is what decided.
    const Level mine = m.level == Measurement::Level::kCrit   ? Level::kCrit
                       : m.level == Measurement::Level::kWarn ? Level::kWarn
                                                              : Level::kOk;
    if (mine > level) {
      level = mine;
      threshold.clear();
    }
  }
  return level;
}

const char* ResultName(const Measurement& m, const EvalRules& rules) {
  if (m.kind == Measurement::Kind::kNotYet) return "no_value";
  std::string threshold, error;
  switch (Evaluator::Classify(m, rules, rules.warn || rules.crit, threshold, error)) {
    case Evaluator::Level::kOk: return "ok";
    case Evaluator::Level::kWarn: return "warn";
    case Evaluator::Level::kCrit: return "crit";
    case Evaluator::Level::kError: return "error";
  }
  return "error";
}

Verdict Evaluator::Observe(const Measurement& m, Clock::time_point now) {
  // One Verdict, filled in place and returned as it is: a result with
  // nothing to say (no thresholds, no error, the value as before) copies
  // one short string, and touches no other.
  Verdict v;
  v.prev = v.state = state_;
  if (m.kind == Measurement::Kind::kNotYet) return v;

  const Level level = Classify(m, rules_, has_thresholds_, v.threshold, v.error);
  if (m.kind != Measurement::Kind::kValue) {
    last_value_.clear();
  } else if (last_value_ != m.value) {
    last_value_ = m.value;
  }
  last_error_ = v.error;
  if (!v.threshold.empty()) {
    last_threshold_ = v.threshold;
  } else if (level == Level::kWarn || level == Level::kCrit) {
    last_threshold_.clear();   // the check's own verdict: no threshold to name
  }
  if (last_detail_ != m.detail) last_detail_ = m.detail;
  if (last_unit_ != m.unit) last_unit_ = m.unit;
  v.value = last_value_;
  v.detail = last_detail_;
  v.unit = last_unit_;

  PushWindow(level);
  ok_streak_ = level == Level::kOk ? ok_streak_ + 1 : 0;

  const int errors = window_errors_, crits = window_crits_, warns = window_warns_;
  const int need = need_;
  CheckState next = state_;
  if (errors >= need) {
    next = CheckState::kError;
  } else if (crits >= need) {
    next = CheckState::kCrit;
  } else if (warns >= need && state_ != CheckState::kCrit) {
    next = CheckState::kWarn;
  } else if (warns >= need && state_ == CheckState::kCrit && level == Level::kWarn) {
    // Down from crit to warn once the warn level itself has tripped.
    next = CheckState::kWarn;
  } else if (level == Level::kOk) {
    bool bad = IsBad(state_);
    if (!bad || ok_streak_ >= recover_) next = CheckState::kOk;
  }
  // A state entered for a reason other than a threshold keeps the reason
  // that put it there in the event.
  if (next == CheckState::kWarn || next == CheckState::kCrit) {
    if (v.threshold.empty()) v.threshold = last_threshold_;
  }
  Enter(next, now, v);
  return v;
}

bool Evaluator::Quiet(std::string_view value) {
  // Observe with state_ ok and an ok level: the window gains an ok
  // (counts never grow), so with every count below need_ the next state
  // is ok again; Enter then neither changes nor fires (ok is not bad).
  if (state_ != CheckState::kOk || window_errors_ >= need_ || window_warns_ >= need_) return false;
  if (has_thresholds_) {
    for (const auto* t : {&rules_.crit, &rules_.warn}) {
      if (!*t) continue;
      auto hit = (*t)->Matches(value);
      if (!hit || *hit) return false;   // an error or a level: Observe says so
    }
  }
  if (last_value_ != value) last_value_.assign(value);
  if (!last_error_.empty()) last_error_.clear();
  PushWindow(Level::kOk);
  ++ok_streak_;
  return true;
}

Verdict Evaluator::Skip(Clock::time_point now) {
  Verdict v;
  v.prev = v.state = state_;
  Enter(CheckState::kSkipped, now, v);
  return v;
}

Verdict Evaluator::SetDisabled(bool disabled, Clock::time_point now) {
  Verdict v;
  v.prev = v.state = state_;
  Enter(disabled ? CheckState::kDisabled : CheckState::kPending, now, v);
  return v;
}

}  // namespace warden
