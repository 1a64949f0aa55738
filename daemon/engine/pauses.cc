#include "daemon/engine/pauses.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace warden {

namespace {

constexpr std::int64_t kDayMs = 24 * 3600 * 1000LL;

bool Live(const Pause& p, std::int64_t now_ms) { return p.until_ms == 0 || p.until_ms > now_ms; }

// Whether `a` lasts longer than `b` (no expiry: longest).
bool Longer(const Pause& a, const Pause& b) {
  if (a.until_ms == 0) return b.until_ms != 0;
  return b.until_ms != 0 && a.until_ms > b.until_ms;
}

int Rank(PauseScope::Kind k) {
  switch (k) {
    case PauseScope::Kind::kHost: return 0;
    case PauseScope::Kind::kAction: return 1;
    case PauseScope::Kind::kCheck: return 2;
    case PauseScope::Kind::kGroup: return 3;
  }
  return 4;
}

// Digits only, exactly `n` of them, from `s` at `pos`.
bool Digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::string PauseScope::Describe() const {
  if (kind == Kind::kHost) return "host";
  return std::string(ScopeKindName(kind)) + " " + name;
}

const char* ScopeKindName(PauseScope::Kind kind) {
  switch (kind) {
    case PauseScope::Kind::kHost: return "host";
    case PauseScope::Kind::kGroup: return "group";
    case PauseScope::Kind::kAction: return "action";
    case PauseScope::Kind::kCheck: return "check";
  }
  return "?";
}

std::optional<PauseScope::Kind> ScopeKindFromName(std::string_view name) {
  for (auto k : {PauseScope::Kind::kHost, PauseScope::Kind::kGroup, PauseScope::Kind::kAction,
                 PauseScope::Kind::kCheck}) {
    if (name == ScopeKindName(k)) return k;
  }
  return std::nullopt;
}

std::optional<Pause> PauseSet::Set(Pause p) {
  for (auto& q : pauses_) {
    if (q.scope == p.scope && q.window == p.window) {
      Pause old = std::move(q);
      q = std::move(p);
      return old;
    }
  }
  pauses_.push_back(std::move(p));
  return std::nullopt;
}

std::optional<Pause> PauseSet::Remove(const PauseScope& scope, const std::string& window) {
  for (auto it = pauses_.begin(); it != pauses_.end(); ++it) {
    if (it->scope == scope && it->window == window) {
      Pause old = std::move(*it);
      pauses_.erase(it);
      return old;
    }
  }
  return std::nullopt;
}

std::vector<Pause> PauseSet::TakeExpired(std::int64_t now_ms) {
  std::vector<Pause> out;
  for (auto it = pauses_.begin(); it != pauses_.end();) {
    if (!Live(*it, now_ms)) {
      out.push_back(std::move(*it));
      it = pauses_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

const Pause* PauseSet::Blocking(const std::string& action, const std::vector<std::string>& groups,
                                const std::string& check, std::int64_t now_ms) const {
  const Pause* best = nullptr;
  for (const auto& p : pauses_) {
    if (!Live(p, now_ms)) continue;
    bool hit = false;
    switch (p.scope.kind) {
      case PauseScope::Kind::kHost: hit = true; break;
      case PauseScope::Kind::kAction: hit = p.scope.name == action; break;
      case PauseScope::Kind::kCheck: hit = !check.empty() && p.scope.name == check; break;
      case PauseScope::Kind::kGroup:
        hit = std::find(groups.begin(), groups.end(), p.scope.name) != groups.end();
        break;
    }
    if (!hit) continue;
    if (!best || Rank(p.scope.kind) < Rank(best->scope.kind) ||
        (Rank(p.scope.kind) == Rank(best->scope.kind) && Longer(p, *best))) {
      best = &p;
    }
  }
  return best;
}

const Pause* PauseSet::Find(const PauseScope& scope, const std::string& window) const {
  for (const auto& p : pauses_) {
    if (p.scope == scope && p.window == window) return &p;
  }
  return nullptr;
}

const Pause* PauseSet::FindWindow(const std::string& name) const {
  for (const auto& p : pauses_) {
    if (!name.empty() && p.window == name) return &p;
  }
  return nullptr;
}

std::optional<WindowSpan> WindowAt(const CronSchedule& schedule, Duration hold,
                                   std::int64_t now_ms) {
  if (hold.count() <= 0) return std::nullopt;
  const std::int64_t now_s = now_ms / 1000;
  // Firings after now - hold, up to now: the latest one opened the window
  // in force (a schedule firing more often than `hold` keeps it open).
  std::optional<std::int64_t> latest;
  std::optional<std::int64_t> f = NextCronTime(schedule, (now_ms - hold.count()) / 1000);
  for (int i = 0; f && *f <= now_s && i < 100'000; ++i) {
    latest = f;
    f = NextCronTime(schedule, *f);
  }
  if (!latest) return std::nullopt;
  WindowSpan w{*latest * 1000, *latest * 1000 + hold.count()};
  if (w.end_ms <= now_ms || w.start_ms > now_ms) return std::nullopt;
  return w;
}

std::optional<std::int64_t> PauseSet::NextExpiry() const {
  std::optional<std::int64_t> out;
  for (const auto& p : pauses_) {
    if (p.until_ms != 0 && (!out || p.until_ms < *out)) out = p.until_ms;
  }
  return out;
}

std::string ShortUtc(std::int64_t ms, std::int64_t now_ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  char secs[8] = "";
  if (tm.tm_sec != 0) std::snprintf(secs, sizeof secs, ":%02d", tm.tm_sec);
  if (ms >= now_ms && ms - now_ms < kDayMs) {
    std::snprintf(buf, sizeof buf, "%02d:%02d%s UTC", tm.tm_hour, tm.tm_min, secs);
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d%s UTC", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, secs);
  }
  return buf;
}

std::string DescribeBlock(const Pause& p, std::int64_t now_ms) {
  std::string when = p.until_ms == 0 ? "no expiry" : "until " + ShortUtc(p.until_ms, now_ms);
  std::string window = p.window.empty() ? "" : "maintenance " + p.window + ", ";
  return "paused (" + window + p.scope.Describe() + ", " + when + "): " + p.reason;
}

Expected<std::int64_t> ParseUntil(std::string_view text, std::int64_t now_ms) {
  auto bad = [&] {
    return Expected<std::int64_t>::Error(
        "--until '" + std::string(text) +
        "' is not a time: HH:MM (the next one, UTC), YYYY-MM-DD HH:MM or "
        "YYYY-MM-DDTHH:MM[:SS]Z (UTC)");
  };
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;
  bool has_date = false;
  size_t pos = 0;
  if (text.size() >= 10 && text[4] == '-') {
    if (!Digits(text, 0, 4, year) || text[4] != '-' || !Digits(text, 5, 2, mon) ||
        text[7] != '-' || !Digits(text, 8, 2, day)) {
      return bad();
    }
    if (text.size() < 11 || (text[10] != ' ' && text[10] != 'T')) return bad();
    has_date = true;
    pos = 11;
  }
  if (!Digits(text, pos, 2, hour) || pos + 2 >= text.size() || text[pos + 2] != ':' ||
      !Digits(text, pos + 3, 2, min)) {
    return bad();
  }
  pos += 5;
  if (pos < text.size() && text[pos] == ':') {
    if (!Digits(text, pos + 1, 2, sec)) return bad();
    pos += 3;
  }
  if (pos < text.size() && text[pos] == 'Z' && has_date) ++pos;
  if (pos != text.size()) return bad();
  if (hour > 23 || min > 59 || sec > 59) return bad();
  std::int64_t ms = 0;
  if (has_date) {
    if (mon < 1 || mon > 12 || day < 1 || day > 31) return bad();
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    std::time_t t = ::timegm(&tm);
    if (tm.tm_mday != day) return bad();   // 2026-02-30 and the like
    ms = static_cast<std::int64_t>(t) * 1000;
  } else {
    std::int64_t day_start = now_ms / kDayMs * kDayMs;
    ms = day_start + (hour * 3600LL + min * 60LL + sec) * 1000;
    if (ms <= now_ms) ms += kDayMs;
  }
  if (ms <= now_ms) {
    return Expected<std::int64_t>::Error("--until " + std::string(text) + " has already passed (now " +
                                         ShortUtc(now_ms, now_ms + kDayMs) + ")");
  }
  return ms;
}

}  // namespace warden
