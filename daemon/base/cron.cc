#include "daemon/base/cron.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <ctime>
#include <vector>

#include "daemon/base/units.h"

namespace warden {

namespace {

// ---------------------------------------------------------------- parsing

struct Field {
  std::string_view name;  // as in messages: "hour field '25' ..."
  int min;
  int max;  // for day of week 7, Sunday again
  // The names of min, min + 1, ... ("jan", "feb", ...); nullptr for none.
  const std::array<std::string_view, 12>* names;
  std::string_view names_hint;  // "a month name (jan-dec)"
};

constexpr std::array<std::string_view, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 12> kDayNames = {"sun", "mon", "tue", "wed", "thu", "fri",
                                                        "sat", "",    "",    "",    "",    ""};

constexpr Field kMinuteField{"minute", 0, 59, nullptr, ""};
constexpr Field kHourField{"hour", 0, 23, nullptr, ""};
constexpr Field kDomField{"day-of-month", 1, 31, nullptr, ""};
constexpr Field kMonthField{"month", 1, 12, &kMonthNames, "a month name (jan-dec)"};
constexpr Field kDowField{"day-of-week", 0, 7, &kDayNames, "a day name (sun-sat)"};

constexpr std::string_view kFieldList = "minute hour day-of-month month day-of-week";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string FieldError(const Field& f, std::string_view token, std::string_view problem) {
  return "schedule: " + std::string(f.name) + " field '" + std::string(token) + "' " +
         std::string(problem);
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

std::string RangeText(int lo, int hi) { return std::to_string(lo) + "-" + std::to_string(hi); }

// One value of a field: a number within [min, max] or, for months and days
// of week, a name. A number out of range is quoted alone ('25'), anything
// else with the list item it is part of ('5x', '*-5').
Expected<int> ParseValue(const Field& f, std::string_view token, std::string_view item) {
  if (AllDigits(token)) {
    int v = 0;
    auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
    if (ec != std::errc() || ptr != token.data() + token.size() || v < f.min || v > f.max) {
      return Expected<int>::Error(
          FieldError(f, token, "is out of range " + RangeText(f.min, f.max)));
    }
    return v;
  }
  if (f.names != nullptr && token.size() == 3) {
    std::string lower = Lower(token);
    for (size_t i = 0; i < f.names->size(); ++i) {
      if ((*f.names)[i] == lower) return f.min + static_cast<int>(i);
    }
  }
  std::string what = "is not a number";
  if (f.names != nullptr) what += " or " + std::string(f.names_hint);
  return Expected<int>::Error(FieldError(f, item, what));
}

// One list item: `*`, `v`, `a-b`, `*/n` or `a-b/n`; sets its bits in `bits`
// (index = value; a day of week 7 is set as 7 and folded by the caller).
Status ParseItem(const Field& f, std::string_view field, std::string_view item,
                 std::vector<bool>* bits) {
  if (item.empty()) return Status::Error(FieldError(f, field, "has an empty list item"));
  std::string_view range = item;
  int step = 1;
  auto slash = item.find('/');
  if (slash != std::string_view::npos) {
    range = item.substr(0, slash);
    std::string_view step_text = item.substr(slash + 1);
    const int max_step = f.max - f.min;
    if (step_text.empty()) return Status::Error(FieldError(f, item, "has no step after '/'"));
    if (!AllDigits(step_text)) {
      return Status::Error(
          FieldError(f, item, "has step '" + std::string(step_text) + "', not a number"));
    }
    auto [ptr, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
    if (ec != std::errc() || step < 1 || step > max_step) {
      std::string problem =
          "has step " + std::string(step_text) + "; a step must be " + RangeText(1, max_step);
      if (step_text != "0") problem += " (cron cannot express longer intervals)";
      return Status::Error(FieldError(f, item, problem));
    }
    if (range.empty()) {
      return Status::Error(
          FieldError(f, item, "has nothing before '/' (write */" + std::string(step_text) + ")"));
    }
  }
  int lo = f.min;
  int hi = f.max;
  if (range != "*") {
    auto dash = range.find('-');
    if (dash != std::string_view::npos && range.find('-', dash + 1) != std::string_view::npos) {
      return Status::Error(FieldError(f, item, "is not a range (a-b)"));
    }
    if (dash == std::string_view::npos) {
      auto v = ParseValue(f, range, item);
      if (!v) return v.failure();
      if (slash != std::string_view::npos) {
        return Status::Error(
            FieldError(f, item,
                       "puts a step on a single value; write " + std::string(range) + "-" +
                           std::to_string(f.max) + std::string(item.substr(slash)) + " for every " +
                           std::string(item.substr(slash + 1)) + " from " + std::string(range)));
      }
      lo = hi = *v;
    } else {
      auto a = ParseValue(f, range.substr(0, dash), item);
      if (!a) return a.failure();
      auto b = ParseValue(f, range.substr(dash + 1), item);
      if (!b) return b.failure();
      if (*a > *b) {
        std::string problem = "is a reversed range; write the smaller value first";
        if (f.name == kDowField.name && *b == 0) problem += " (Sunday is also 7)";
        return Status::Error(FieldError(f, range, problem));
      }
      lo = *a;
      hi = *b;
    }
  }
  for (int v = lo; v <= hi; v += step) (*bits)[static_cast<size_t>(v)] = true;
  return Status::Ok();
}

// A whole field: a comma list of items. Returns the set values.
Expected<std::vector<bool>> ParseField(const Field& f, std::string_view field) {
  std::vector<bool> bits(static_cast<size_t>(f.max) + 1, false);
  size_t start = 0;
  while (true) {
    auto comma = field.find(',', start);
    std::string_view item = field.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    Status st = ParseItem(f, field, item, &bits);
    if (!st.ok()) return st.failure();
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return bits;
}

template <size_t N>
std::bitset<N> ToBits(const std::vector<bool>& v) {
  std::bitset<N> out;
  for (size_t i = 0; i < N && i < v.size(); ++i) out[i] = v[i];
  return out;
}

std::vector<std::string_view> SplitBlanks(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

// "@weekly" and friends, as their five fields; nullopt if unknown.
std::optional<std::string_view> ExpandMacro(std::string_view lower) {
  if (lower == "@hourly") return "0 * * * *";
  if (lower == "@daily" || lower == "@midnight") return "0 0 * * *";
  if (lower == "@weekly") return "0 0 * * 0";
  if (lower == "@monthly") return "0 0 1 * *";
  if (lower == "@yearly" || lower == "@annually") return "0 0 1 1 *";
  return std::nullopt;
}

// ---------------------------------------------------------------- time

constexpr std::int64_t kMinuteSecs = 60;
constexpr std::int64_t kHourSecs = 3600;
constexpr std::int64_t kDaySecs = 86400;
// No UTC offset reaches this far (tzdata's extremes are about 15h), so the
// instant of a wall time w lies within w ± kReach.
constexpr std::int64_t kReach = 16 * kHourSecs;
// How far ahead NextCronTime looks, in years of the wall calendar: more
// than the 8 years between Feb 29 2096 and Feb 29 2104.
constexpr std::int64_t kHorizonYears = 9;
// Instants beyond this (about a million years) are refused up front, so the
// arithmetic below cannot overflow.
constexpr std::int64_t kMaxAbsInstant = std::int64_t{1} << 45;

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}
std::int64_t CeilToMinute(std::int64_t s) { return -FloorDiv(-s, kMinuteSecs) * kMinuteSecs; }

struct Civil {
  std::int64_t year;
  int month;  // 1-12
  int day;    // 1-31
};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// days_from_civil) and back.
std::int64_t DaysFromCivil(Civil c) {
  const std::int64_t y = c.year - (c.month <= 2 ? 1 : 0);
  const std::int64_t era = FloorDiv(y, 400);
  const std::int64_t yoe = y - era * 400;
  const std::int64_t mp = c.month > 2 ? c.month - 3 : c.month + 9;
  const std::int64_t doy = (153 * mp + 2) / 5 + c.day - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

Civil CivilFromDays(std::int64_t z) {
  z += 719468;
  const std::int64_t era = FloorDiv(z, 146097);
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return Civil{yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

// Wall times are handled as "local seconds": the Unix time the wall-clock
// reading would have if the zone were UTC. Wall(t) = t + Offset(t).

// The zone's UTC offset at instant t, from localtime_r; nullopt if t cannot
// be converted.
std::optional<std::int64_t> Offset(std::int64_t t) {
  const auto tt = static_cast<std::time_t>(t);
  if (static_cast<std::int64_t>(tt) != t) return std::nullopt;
  std::tm tm{};
  if (localtime_r(&tt, &tm) == nullptr) return std::nullopt;
  const std::int64_t days =
      DaysFromCivil(Civil{tm.tm_year + std::int64_t{1900}, tm.tm_mon + 1, tm.tm_mday});
  return days * kDaySecs + tm.tm_hour * kHourSecs + tm.tm_min * kMinuteSecs + tm.tm_sec - t;
}

// The local clock over an interval [lo, hi] holding at most one change of
// offset: before `change` the offset is `before`, from it on `after`.
struct Clock {
  std::int64_t before = 0;
  std::int64_t after = 0;
  std::int64_t change = 0;  // meaningful when changes
  bool changes = false;
};

std::optional<Clock> ClockOver(std::int64_t lo, std::int64_t hi) {
  auto o_lo = Offset(lo);
  auto o_hi = Offset(hi);
  if (!o_lo || !o_hi) return std::nullopt;
  Clock c{*o_lo, *o_hi, hi, *o_lo != *o_hi};
  if (!c.changes) return c;
  // Invariant: Offset(lo) == before, Offset(hi) != before.
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    auto o = Offset(mid);
    if (!o) return std::nullopt;
    (*o == c.before ? lo : hi) = mid;
  }
  c.change = hi;
  return c;
}

// How a wall time w maps to instants.
struct Resolved {
  std::optional<std::int64_t> first;  // the first instant showing w; none in a gap
  std::int64_t reached = 0;           // the first instant showing w or a later time
  std::int64_t gap_end = 0;           // in a gap: the first wall time after it
};

std::optional<Resolved> Resolve(std::int64_t w) {
  auto c = ClockOver(w - kReach, w + kReach);
  if (!c) return std::nullopt;
  Resolved r;
  if (!c->changes) {
    r.first = r.reached = w - c->before;
    return r;
  }
  const std::int64_t pre = w - c->before;  // the instant if shown before the change
  const std::int64_t post = w - c->after;  // the instant if shown from the change on
  if (pre < c->change) {
    r.first = pre;
  } else if (post >= c->change) {
    r.first = post;
  }
  r.reached = pre < c->change ? pre : std::max(c->change, post);
  r.gap_end = c->change + c->after;
  return r;
}

bool DayMatches(const CronSchedule& s, Civil c, std::int64_t days) {
  const auto weekday =
      static_cast<size_t>(days - FloorDiv(days + 4, 7) * 7 + 4);  // 1970-01-01: Thu
  const bool dom = s.days_of_month[static_cast<size_t>(c.day)];
  const bool dow = s.days_of_week[weekday];
  return s.dom_restricted && s.dow_restricted ? (dom || dow) : (dom && dow);
}

int DaysInMonth(std::int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// The first wall time >= `from` (local seconds) whose fields all match,
// before day `limit_days`. Skips whole months and days that cannot match.
std::optional<std::int64_t> NextMatchingWall(const CronSchedule& s, std::int64_t from,
                                             std::int64_t limit_days) {
  from = CeilToMinute(from);
  std::int64_t days = FloorDiv(from, kDaySecs);
  std::int64_t second = from - days * kDaySecs;
  Civil c = CivilFromDays(days);
  while (days < limit_days) {
    if (!s.months[static_cast<size_t>(c.month)]) {
      c = c.month == 12 ? Civil{c.year + 1, 1, 1} : Civil{c.year, c.month + 1, 1};
      days = DaysFromCivil(c);
      second = 0;
      continue;
    }
    if (DayMatches(s, c, days)) {
      for (std::int64_t h = second / kHourSecs; h < 24; ++h) {
        if (!s.hours[static_cast<size_t>(h)]) continue;
        const std::int64_t first_minute =
            h == second / kHourSecs ? (second % kHourSecs) / kMinuteSecs : 0;
        for (std::int64_t m = first_minute; m < 60; ++m) {
          if (s.minutes[static_cast<size_t>(m)]) {
            return days * kDaySecs + h * kHourSecs + m * kMinuteSecs;
          }
        }
      }
    }
    ++days;
    second = 0;
    c = c.day < DaysInMonth(c.year, c.month) ? Civil{c.year, c.month, c.day + 1}
                                             : CivilFromDays(days);
  }
  return std::nullopt;
}

// The smallest whole-minute wall time the clock has not shown at or before
// `after`: above Wall(after), and above every time shown before a fall back
// that happened within the last 32 hours (an earlier one cannot matter, as
// no offset exceeds kReach).
std::optional<std::int64_t> FirstUnshownWall(std::int64_t after) {
  auto c = ClockOver(after - 2 * kReach, after);
  if (!c) return std::nullopt;
  std::int64_t shown = after + c->after;
  if (c->changes && c->before > c->after) {
    shown = std::max(shown, c->change - 1 + c->before);
  }
  return CeilToMinute(shown + 1);
}

}  // namespace

Expected<CronSchedule> ParseCron(std::string_view text) {
  const std::string_view trimmed = Trim(text);
  CronSchedule s;
  s.text = std::string(trimmed);
  std::string_view fields_text = trimmed;
  if (!trimmed.empty() && trimmed.front() == '@') {
    auto words = SplitBlanks(trimmed);
    const std::string lower = Lower(words[0]);
    if (lower == "@reboot") {
      return Expected<CronSchedule>::Error(
          "schedule: @reboot is not supported: wardend cannot tell a host boot from a restart "
          "of the daemon; run the job from a check or with wardenctl run");
    }
    auto expanded = ExpandMacro(lower);
    if (!expanded) {
      return Expected<CronSchedule>::Error(
          "schedule: unknown '" + std::string(words[0]) +
          "'; use @hourly, @daily, @weekly, @monthly or @yearly, or five fields (" +
          std::string(kFieldList) + ")");
    }
    if (words.size() > 1) {
      return Expected<CronSchedule>::Error("schedule: '" + std::string(trimmed) +
                                           "' has text after " + std::string(words[0]));
    }
    fields_text = *expanded;
  }

  auto fields = SplitBlanks(fields_text);
  if (fields.empty()) {
    return Expected<CronSchedule>::Error("schedule: empty; expected 5 fields (" +
                                         std::string(kFieldList) + ") or @daily, @weekly, ...");
  }
  if (fields.size() != 5) {
    std::string msg = "schedule: '" + std::string(trimmed) + "' has " +
                      std::to_string(fields.size()) + " fields; expected 5 (" +
                      std::string(kFieldList) + ")";
    if (fields.size() > 5) msg += "; seconds, years or a command do not belong here";
    return Expected<CronSchedule>::Error(msg);
  }

  auto minutes = ParseField(kMinuteField, fields[0]);
  if (!minutes) return minutes.failure();
  auto hours = ParseField(kHourField, fields[1]);
  if (!hours) return hours.failure();
  auto doms = ParseField(kDomField, fields[2]);
  if (!doms) return doms.failure();
  auto months = ParseField(kMonthField, fields[3]);
  if (!months) return months.failure();
  auto dows = ParseField(kDowField, fields[4]);
  if (!dows) return dows.failure();

  s.minutes = ToBits<60>(*minutes);
  s.hours = ToBits<24>(*hours);
  s.days_of_month = ToBits<32>(*doms);
  s.months = ToBits<13>(*months);
  s.days_of_week = ToBits<7>(*dows);
  if ((*dows)[7]) s.days_of_week[0] = true;  // 7 is Sunday too
  s.hour_restricted = fields[1].front() != '*';
  s.dom_restricted = fields[2].front() != '*';
  s.dow_restricted = fields[4].front() != '*';
  return s;
}

std::optional<std::int64_t> NextCronTime(const CronSchedule& s, std::int64_t after) {
  if (after > kMaxAbsInstant || after < -kMaxAbsInstant) return std::nullopt;
  auto from = FirstUnshownWall(after);
  if (!from) return std::nullopt;
  const std::int64_t limit_days =
      DaysFromCivil(Civil{CivilFromDays(FloorDiv(*from, kDaySecs)).year + kHorizonYears, 1, 1});

  auto wall = NextMatchingWall(s, *from, limit_days);
  if (s.hour_restricted) {
    // Each matching wall time fires once, when the clock first reaches it.
    // That instant only grows with the wall time, and every wall time from
    // *from on is first reached after `after`.
    if (!wall) return std::nullopt;
    auto r = Resolve(*wall);
    if (!r) return std::nullopt;
    return r->reached;
  }

  // Hour `*`: every instant showing a matching wall time fires.
  // (a) First showings, after `after` for every wall time from *from on;
  // wall times in a spring-forward gap are never shown.
  std::optional<std::int64_t> best;
  while (wall) {
    auto r = Resolve(*wall);
    if (!r) return std::nullopt;
    if (r->first) {
      best = r->first;
      break;
    }
    wall = NextMatchingWall(s, r->gap_end, limit_days);
  }
  // (b) Second showings after a fall back, of wall times whose first showing
  // was at or before `after`. Such a fall back is at most its size (an hour
  // or two) away from `after`; later second showings follow a first showing
  // counted in (a).
  auto c = ClockOver(after - kReach, after + kReach);
  if (!c) return std::nullopt;
  if (c->changes && c->before > c->after) {
    const std::int64_t repeat_begin = c->change + c->after;  // wall times shown twice
    const std::int64_t repeat_end = c->change + c->before;
    auto again = NextMatchingWall(s, std::max(repeat_begin, after + 1 + c->after), limit_days);
    if (again && *again < repeat_end) {
      const std::int64_t t = *again - c->after;
      if (!best || t < *best) best = t;
    }
  }
  return best;
}

}  // namespace warden
