#include "daemon/base/cron.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

using namespace warden;

namespace {

// Sets TZ for the life of the object; restores the previous TZ (or its
// absence) afterwards, so other tests keep the process's zone.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    if (old_) {
      setenv("TZ", old_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  ScopedTz(const ScopedTz&) = delete;
  ScopedTz& operator=(const ScopedTz&) = delete;

 private:
  std::optional<std::string> old_;
};

// Unix seconds of a UTC date and time.
std::int64_t Utc(int year, int month, int day, int hour, int minute) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  return static_cast<std::int64_t>(timegm(&tm));
}

long UtcOffset(std::int64_t t) {
  auto tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  return tm.tm_gmtoff;
}

// Fails loudly when tzdata is missing (TZ would silently mean UTC).
void RequireZone(const char* zone, std::int64_t at, long offset) {
  INFO("zone " << zone << " (is tzdata installed?)");
  REQUIRE(UtcOffset(at) == offset);
}

CronSchedule Parse(const char* text) {
  auto s = ParseCron(text);
  INFO(text);
  REQUIRE(s.ok());
  return *s;
}

std::optional<std::int64_t> Next(const char* text, std::int64_t after) {
  return NextCronTime(Parse(text), after);
}

// Every firing in (from, to], by repeated NextCronTime; each must be
// strictly after the one before.
std::vector<std::int64_t> Firings(const char* text, std::int64_t from, std::int64_t to) {
  auto s = Parse(text);
  std::vector<std::int64_t> out;
  std::int64_t prev = from;
  while (auto t = NextCronTime(s, prev)) {
    if (*t <= prev) {
      FAIL_CHECK(text << ": NextCronTime(" << prev << ") = " << *t << " is not after it");
      break;
    }
    if (*t > to) break;
    out.push_back(*t);
    prev = *t;
  }
  return out;
}

std::string ParseError(const char* text) {
  auto s = ParseCron(text);
  INFO(text);
  REQUIRE_FALSE(s.ok());
  return s.error();
}

// A slow reference, minute by minute over real time, written from the rules
// in cron.h rather than from the implementation:
//  * hour `*`: fire at t when the wall time at t matches;
//  * otherwise: fire at t when a matching wall time is among those the
//    clock shows for the first time at t, i.e. in (highest wall time shown
//    before t, wall time at t].
struct WallFields {
  int minute, hour, day, month, weekday;
};

std::int64_t LocalSeconds(std::int64_t t, WallFields* f) {
  auto tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  if (f) *f = {tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon + 1, tm.tm_wday};
  return t + tm.tm_gmtoff;
}

bool Matches(const CronSchedule& s, const WallFields& f) {
  bool dom = s.days_of_month[static_cast<size_t>(f.day)];
  bool dow = s.days_of_week[static_cast<size_t>(f.weekday)];
  bool day = s.dom_restricted && s.dow_restricted ? (dom || dow) : (dom && dow);
  return s.minutes[static_cast<size_t>(f.minute)] && s.hours[static_cast<size_t>(f.hour)] &&
         s.months[static_cast<size_t>(f.month)] && day;
}

std::vector<std::int64_t> ReferenceFirings(const CronSchedule& s, std::int64_t from,
                                           std::int64_t to) {
  std::vector<std::int64_t> out;
  std::int64_t first = (from / 60 + 1) * 60;
  std::int64_t shown = LocalSeconds(first - 60, nullptr);
  for (std::int64_t t = first - 2 * 86400; t < first - 60; t += 60) {
    shown = std::max(shown, LocalSeconds(t, nullptr));
  }
  for (std::int64_t t = first; t <= to; t += 60) {
    WallFields f{};
    std::int64_t wall = LocalSeconds(t, &f);
    bool fire = false;
    if (!s.hour_restricted) {
      fire = Matches(s, f);
    } else {
      // Wall times newly shown at t: (shown, wall], whole minutes.
      for (std::int64_t w = wall; w > shown && !fire; w -= 60) {
        // The fields of wall time w: read them as UTC.
        auto ww = static_cast<std::time_t>(w);
        std::tm tm{};
        gmtime_r(&ww, &tm);
        fire = Matches(s, {tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon + 1, tm.tm_wday});
      }
    }
    shown = std::max(shown, wall);
    if (fire) out.push_back(t);
  }
  return out;
}

}  // namespace

TEST_CASE("cron: tzdata is installed", "[cron]") {
  ScopedTz tz("Europe/Berlin");
  RequireZone("Europe/Berlin", Utc(2026, 7, 1, 0, 0), 7200);
  RequireZone("Europe/Berlin", Utc(2026, 1, 1, 0, 0), 3600);
  // The test's own arithmetic, against a known Unix time.
  CHECK(Utc(2026, 3, 29, 1, 0) == 1774746000);
}

TEST_CASE("cron: fields, ranges, steps, lists", "[cron]") {
  auto s = Parse("0 3 * * 0");
  CHECK(s.minutes.count() == 1);
  CHECK(s.minutes[0]);
  CHECK(s.hours.count() == 1);
  CHECK(s.hours[3]);
  CHECK(s.days_of_month.count() == 31);
  CHECK_FALSE(s.days_of_month[0]);
  CHECK(s.months.count() == 12);
  CHECK_FALSE(s.months[0]);
  CHECK(s.days_of_week.count() == 1);
  CHECK(s.days_of_week[0]);
  CHECK(s.hour_restricted);
  CHECK_FALSE(s.dom_restricted);
  CHECK(s.dow_restricted);
  CHECK(s.text == "0 3 * * 0");

  auto q = Parse("*/15 8-18/4 1,15,31 */3 1-5");
  CHECK(q.minutes.count() == 4);
  CHECK((q.minutes[0] && q.minutes[15] && q.minutes[30] && q.minutes[45]));
  CHECK(q.hours.count() == 3);
  CHECK((q.hours[8] && q.hours[12] && q.hours[16]));
  CHECK(q.days_of_month.count() == 3);
  CHECK((q.days_of_month[1] && q.days_of_month[15] && q.days_of_month[31]));
  CHECK(q.months.count() == 4);  // 1, 4, 7, 10
  CHECK((q.months[1] && q.months[4] && q.months[7] && q.months[10]));
  CHECK(q.days_of_week.count() == 5);
  CHECK_FALSE(q.days_of_week[0]);
  CHECK_FALSE(q.days_of_week[6]);

  // Blanks around and between fields; a lone value with a range step.
  auto t = Parse("  5\t4-10/3  * * *  ");
  CHECK(t.text == "5\t4-10/3  * * *");
  CHECK(t.hours.count() == 3);
  CHECK((t.hours[4] && t.hours[7] && t.hours[10]));
  // `*/n` counts as a wildcard (Vixie cron: the field starts with '*').
  auto w = Parse("0 */2 */2 * *");
  CHECK_FALSE(w.hour_restricted);
  CHECK_FALSE(w.dom_restricted);
  CHECK(w.hours.count() == 12);
  CHECK(w.days_of_month.count() == 16);
}

TEST_CASE("cron: month and day names, Sunday as 0 or 7", "[cron]") {
  auto s = Parse("0 0 * jan,MAR-May,Dec mon-FRI");
  CHECK(s.months.count() == 5);
  CHECK((s.months[1] && s.months[3] && s.months[4] && s.months[5] && s.months[12]));
  CHECK(s.days_of_week.count() == 5);
  CHECK((s.days_of_week[1] && s.days_of_week[5]));
  CHECK(Parse("0 0 * * 7").days_of_week == Parse("0 0 * * sun").days_of_week);
  CHECK(Parse("0 0 * * 0").days_of_week == Parse("0 0 * * Sun").days_of_week);
  auto weekend = Parse("0 0 * * 5-7");
  CHECK(weekend.days_of_week.count() == 3);
  CHECK((weekend.days_of_week[0] && weekend.days_of_week[5] && weekend.days_of_week[6]));
  CHECK(Parse("0 0 * * sat,sun").days_of_week == Parse("0 0 * * 6-7").days_of_week);
  CHECK(Parse("0 0 * * */2").days_of_week.count() == 4);  // 0 2 4 6 (and 8 is past 7)
}

TEST_CASE("cron: @ macros", "[cron]") {
  auto same = [](const char* macro, const char* fields) {
    auto m = Parse(macro);
    auto f = Parse(fields);
    INFO(macro);
    CHECK(m.minutes == f.minutes);
    CHECK(m.hours == f.hours);
    CHECK(m.days_of_month == f.days_of_month);
    CHECK(m.months == f.months);
    CHECK(m.days_of_week == f.days_of_week);
    CHECK(m.hour_restricted == f.hour_restricted);
    CHECK(m.dom_restricted == f.dom_restricted);
    CHECK(m.dow_restricted == f.dow_restricted);
    CHECK(m.text == macro);
  };
  same("@hourly", "0 * * * *");
  same("@daily", "0 0 * * *");
  same("@midnight", "0 0 * * *");
  same("@weekly", "0 0 * * 0");
  same("@monthly", "0 0 1 * *");
  same("@yearly", "0 0 1 1 *");
  same("@annually", "0 0 1 1 *");
  same("@Weekly", "0 0 * * 0");
}

TEST_CASE("cron: parse errors name the field and the token", "[cron]") {
  const std::string fields = "(minute hour day-of-month month day-of-week)";
  CHECK(ParseError("0 25 * * *") == "schedule: hour field '25' is out of range 0-23");
  CHECK(ParseError("60 * * * *") == "schedule: minute field '60' is out of range 0-59");
  CHECK(ParseError("0 0 0 * *") == "schedule: day-of-month field '0' is out of range 1-31");
  CHECK(ParseError("0 0 * 13 *") == "schedule: month field '13' is out of range 1-12");
  CHECK(ParseError("0 0 * * 8") == "schedule: day-of-week field '8' is out of range 0-7");
  CHECK(ParseError("0 1-25 * * *") == "schedule: hour field '25' is out of range 0-23");
  CHECK(ParseError("0 1,2,99999999999 * * *") ==
        "schedule: hour field '99999999999' is out of range 0-23");

  CHECK(ParseError("") ==
        "schedule: empty; expected 5 fields " + fields + " or @daily, @weekly, ...");
  CHECK(ParseError("  \t ") == ParseError(""));
  CHECK(ParseError("0 3 * *") == "schedule: '0 3 * *' has 4 fields; expected 5 " + fields);
  CHECK(ParseError("0 0 3 * * 0") == "schedule: '0 0 3 * * 0' has 6 fields; expected 5 " + fields +
                                         "; seconds, years or a command do not belong here");

  CHECK(ParseError("1,,2 * * * *") == "schedule: minute field '1,,2' has an empty list item");
  CHECK(ParseError("1, * * * *") == "schedule: minute field '1,' has an empty list item");
  CHECK(ParseError("0 ,3 * * *") == "schedule: hour field ',3' has an empty list item");

  CHECK(ParseError("5-1 * * * *") ==
        "schedule: minute field '5-1' is a reversed range; write the smaller value first");
  CHECK(ParseError("0 0 * * fri-sun") ==
        "schedule: day-of-week field 'fri-sun' is a reversed range; write the smaller value "
        "first (Sunday is also 7)");
  CHECK(ParseError("0 0 * dec-jan/2 *") ==
        "schedule: month field 'dec-jan' is a reversed range; write the smaller value first");
  CHECK(ParseError("0 0 * jan-feb-mar *") ==
        "schedule: month field 'jan-feb-mar' is not a range (a-b)");

  CHECK(ParseError("*/0 * * * *") ==
        "schedule: minute field '*/0' has step 0; a step must be 1-59");
  CHECK(ParseError("0 1-5/0 * * *") ==
        "schedule: hour field '1-5/0' has step 0; a step must be 1-23");
  CHECK(ParseError("*/90 * * * *") ==
        "schedule: minute field '*/90' has step 90; a step must be 1-59 (cron cannot express "
        "longer intervals)");
  CHECK(ParseError("*/ * * * *") == "schedule: minute field '*/' has no step after '/'");
  CHECK(ParseError("*/x * * * *") == "schedule: minute field '*/x' has step 'x', not a number");
  CHECK(ParseError("*/2/3 * * * *") ==
        "schedule: minute field '*/2/3' has step '2/3', not a number");
  CHECK(ParseError("/5 * * * *") ==
        "schedule: minute field '/5' has nothing before '/' (write */5)");
  CHECK(ParseError("5/10 * * * *") ==
        "schedule: minute field '5/10' puts a step on a single value; write 5-59/10 for every "
        "10 from 5");

  // Trailing garbage and things that are not numbers.
  CHECK(ParseError("5x * * * *") == "schedule: minute field '5x' is not a number");
  CHECK(ParseError("-5 * * * *") == "schedule: minute field '-5' is not a number");
  CHECK(ParseError("*-5 * * * *") == "schedule: minute field '*-5' is not a number");
  CHECK(ParseError("** * * * *") == "schedule: minute field '**' is not a number");
  CHECK(ParseError("0 0 * * 0;") ==
        "schedule: day-of-week field '0;' is not a number or a day name (sun-sat)");
  CHECK(ParseError("0 0 * * monday") ==
        "schedule: day-of-week field 'monday' is not a number or a day name (sun-sat)");
  CHECK(ParseError("0 0 * foo *") ==
        "schedule: month field 'foo' is not a number or a month name (jan-dec)");
  CHECK(ParseError("0 0 * sun *") ==
        "schedule: month field 'sun' is not a number or a month name (jan-dec)");
  CHECK(ParseError("0 0 jan * *") == "schedule: day-of-month field 'jan' is not a number");
  CHECK(ParseError("0 0 L * *") == "schedule: day-of-month field 'L' is not a number");
  CHECK(ParseError("0 0 ? * 1") == "schedule: day-of-month field '?' is not a number");

  // @ macros.
  CHECK(ParseError("@reboot") ==
        "schedule: @reboot is not supported: wardend cannot tell a host boot from a restart of "
        "the daemon; run the job from a check or with wardenctl run");
  CHECK(ParseError("@weekely") ==
        "schedule: unknown '@weekely'; use @hourly, @daily, @weekly, @monthly or @yearly, or "
        "five fields " +
            fields);
  CHECK(ParseError("@daily 3") == "schedule: '@daily 3' has text after @daily");
  CHECK(ParseError("@") ==
        "schedule: unknown '@'; use @hourly, @daily, @weekly, @monthly or "
        "@yearly, or five fields " +
            fields);
}

TEST_CASE("cron: next firing in UTC, strictly after", "[cron]") {
  ScopedTz tz("UTC");
  // 2026-01-07 is a Wednesday; the next Sunday is the 11th.
  CHECK(Next("0 3 * * 0", Utc(2026, 1, 7, 12, 0)) == Utc(2026, 1, 11, 3, 0));
  CHECK(Next("0 3 * * 0", Utc(2026, 1, 11, 2, 59) + 59) == Utc(2026, 1, 11, 3, 0));
  CHECK(Next("0 3 * * 0", Utc(2026, 1, 11, 3, 0)) == Utc(2026, 1, 18, 3, 0));
  CHECK(Next("0 3 * * 0", Utc(2026, 1, 11, 3, 0) + 1) == Utc(2026, 1, 18, 3, 0));
  CHECK(Next("* * * * *", Utc(2026, 1, 7, 12, 0)) == Utc(2026, 1, 7, 12, 1));
  CHECK(Next("* * * * *", Utc(2026, 1, 7, 12, 0) + 30) == Utc(2026, 1, 7, 12, 1));
  CHECK(Next("* * * * *", Utc(2026, 1, 7, 12, 0) - 1) == Utc(2026, 1, 7, 12, 0));
  // Rolling over hour, day, month and year.
  CHECK(Next("59 23 31 12 *", Utc(2026, 1, 1, 0, 0)) == Utc(2026, 12, 31, 23, 59));
  CHECK(Next("0 0 1 1 *", Utc(2026, 12, 31, 23, 59)) == Utc(2027, 1, 1, 0, 0));
  CHECK(Next("@weekly", Utc(2026, 1, 7, 12, 0)) == Utc(2026, 1, 11, 0, 0));
  CHECK(Next("@monthly", Utc(2026, 1, 7, 12, 0)) == Utc(2026, 2, 1, 0, 0));
  CHECK(Next("@yearly", Utc(2026, 1, 7, 12, 0)) == Utc(2027, 1, 1, 0, 0));
  CHECK(Next("@hourly", Utc(2026, 1, 7, 12, 0)) == Utc(2026, 1, 7, 13, 0));
  CHECK(Next("@daily", Utc(2026, 1, 7, 12, 0)) == Utc(2026, 1, 8, 0, 0));

  // Steps and names: weekdays in Q1, every 4 hours from 8, on the quarter hour.
  CHECK(
      Firings("*/15 8-18/4 * jan-mar mon-fri", Utc(2026, 3, 27, 17, 50), Utc(2026, 4, 30, 0, 0)) ==
      std::vector<std::int64_t>{
          Utc(2026, 3, 30, 8, 0),   Utc(2026, 3, 30, 8, 15),  Utc(2026, 3, 30, 8, 30),
          Utc(2026, 3, 30, 8, 45),  Utc(2026, 3, 30, 12, 0),  Utc(2026, 3, 30, 12, 15),
          Utc(2026, 3, 30, 12, 30), Utc(2026, 3, 30, 12, 45), Utc(2026, 3, 30, 16, 0),
          Utc(2026, 3, 30, 16, 15), Utc(2026, 3, 30, 16, 30), Utc(2026, 3, 30, 16, 45),
          Utc(2026, 3, 31, 8, 0),   Utc(2026, 3, 31, 8, 15),  Utc(2026, 3, 31, 8, 30),
          Utc(2026, 3, 31, 8, 45),  Utc(2026, 3, 31, 12, 0),  Utc(2026, 3, 31, 12, 15),
          Utc(2026, 3, 31, 12, 30), Utc(2026, 3, 31, 12, 45), Utc(2026, 3, 31, 16, 0),
          Utc(2026, 3, 31, 16, 15), Utc(2026, 3, 31, 16, 30), Utc(2026, 3, 31, 16, 45)});
  // Before 1970 works too.
  CHECK(Next("0 12 * * *", Utc(1969, 7, 20, 20, 17)) == Utc(1969, 7, 21, 12, 0));
}

TEST_CASE("cron: day of month OR day of week when both are restricted", "[cron]") {
  ScopedTz tz("UTC");
  // January 2026: the 1st is a Thursday; Fridays are 2, 9, 16, 23, 30.
  const auto jan1 = Utc(2026, 1, 1, 12, 0);
  const auto feb1 = Utc(2026, 2, 1, 0, 0);
  auto days = [](std::initializer_list<int> ds) {
    std::vector<std::int64_t> out;
    for (int d : ds) out.push_back(Utc(2026, 1, d, 0, 0));
    return out;
  };
  // Both restricted: the 13th OR any Friday.
  CHECK(Firings("0 0 13 * fri", jan1, feb1) == days({2, 9, 13, 16, 23, 30}));
  // Only one restricted: that one alone.
  CHECK(Firings("0 0 13 * *", jan1, feb1) == days({13}));
  CHECK(Firings("0 0 * * fri", jan1, feb1) == days({2, 9, 16, 23, 30}));
  // `*/2` starts with '*', so it does not count as restricted: odd days AND
  // Fridays. Written as a range it does: odd days OR Fridays.
  CHECK(Firings("0 0 */2 * fri", jan1, feb1) == days({9, 23}));
  CHECK(Firings("0 0 1-31/2 * fri", jan1, Utc(2026, 1, 10, 0, 0)) == days({2, 3, 5, 7, 9}));
  // The OR also rescues a day that does not exist: Feb 30 or a Monday.
  CHECK(Next("0 0 30 2 mon", jan1) == Utc(2026, 2, 2, 0, 0));
}

TEST_CASE("cron: Feb 29 and impossible dates", "[cron]") {
  ScopedTz tz("UTC");
  CHECK(Next("0 0 29 2 *", Utc(2026, 3, 1, 0, 0)) == Utc(2028, 2, 29, 0, 0));
  CHECK(Next("0 0 29 2 *", Utc(2028, 2, 29, 0, 0)) == Utc(2032, 2, 29, 0, 0));
  // 2100 is not a leap year: eight years from 2096 to 2104.
  CHECK(Next("0 0 29 2 *", Utc(2096, 3, 1, 0, 0)) == Utc(2104, 2, 29, 0, 0));
  // Feb 29 OR a Monday in February: 2027-02-01 is a Monday.
  CHECK(Next("0 0 29 feb mon", Utc(2026, 3, 1, 0, 0)) == Utc(2027, 2, 1, 0, 0));
  CHECK_FALSE(Next("0 0 30 2 *", Utc(2026, 1, 1, 0, 0)).has_value());
  CHECK_FALSE(Next("0 0 31 2 *", Utc(2026, 1, 1, 0, 0)).has_value());
  CHECK_FALSE(Next("0 0 31 4,6,9,11 *", Utc(2026, 1, 1, 0, 0)).has_value());
  CHECK(Next("0 0 31 4,6,9,12 *", Utc(2026, 1, 1, 0, 0)) == Utc(2026, 12, 31, 0, 0));
  // Out of what the clock can convert.
  CHECK_FALSE(Next("* * * * *", INT64_MAX).has_value());
  CHECK_FALSE(Next("* * * * *", INT64_MIN).has_value());
}

TEST_CASE("cron: spring forward in Berlin fires skipped times once, at 03:00", "[cron]") {
  ScopedTz tz("Europe/Berlin");
  RequireZone("Europe/Berlin", Utc(2026, 7, 1, 0, 0), 7200);
  // 2026-03-29: at 01:00 UTC, 02:00 CET becomes 03:00 CEST.
  const auto jump = Utc(2026, 3, 29, 1, 0);
  const auto day_before = Utc(2026, 3, 27, 23, 0);  // 00:00 CET on the 28th
  const auto day_after = Utc(2026, 3, 30, 22, 0);   // 00:00 CEST on the 31st

  // 02:30 does not exist on the 29th: once at 03:00 CEST, then normal.
  CHECK(Firings("30 2 * * *", day_before, day_after) ==
        std::vector<std::int64_t>{Utc(2026, 3, 28, 1, 30), jump, Utc(2026, 3, 30, 0, 30)});
  // Two skipped times that land on the same minute fire once.
  CHECK(Firings("0,30 2 * * *", Utc(2026, 3, 28, 12, 0), Utc(2026, 3, 29, 12, 0)) ==
        std::vector<std::int64_t>{jump});
  // Every minute of hour 2 (a fixed hour): once, at 03:00.
  CHECK(Firings("* 2 * * *", Utc(2026, 3, 28, 12, 0), Utc(2026, 3, 29, 12, 0)) ==
        std::vector<std::int64_t>{jump});
  // 02:30 shifted to 03:00, 03:30 itself.
  CHECK(Firings("30 2,3 * * *", Utc(2026, 3, 28, 12, 0), Utc(2026, 3, 29, 12, 0)) ==
        std::vector<std::int64_t>{jump, jump + 1800});
  // 03:00 exists; it fires there once, shifted times or not.
  CHECK(Next("0 3 * * *", Utc(2026, 3, 28, 12, 0)) == jump);
  CHECK(Firings("0 2,3 * * *", Utc(2026, 3, 28, 12, 0), Utc(2026, 3, 29, 12, 0)) ==
        std::vector<std::int64_t>{jump});
  // Strictly after: from the jump itself, the next day.
  CHECK(Next("30 2 * * *", jump) == Utc(2026, 3, 30, 0, 30));
  CHECK(Next("30 2 * * *", jump - 1) == jump);
  // Hour `*`: the missing hour's minutes never fire; real time keeps pace.
  CHECK(Firings("*/15 * * * *", Utc(2026, 3, 29, 0, 0), Utc(2026, 3, 29, 2, 0)) ==
        std::vector<std::int64_t>{Utc(2026, 3, 29, 0, 15), Utc(2026, 3, 29, 0, 30),
                                  Utc(2026, 3, 29, 0, 45), jump, Utc(2026, 3, 29, 1, 15),
                                  Utc(2026, 3, 29, 1, 30), Utc(2026, 3, 29, 1, 45),
                                  Utc(2026, 3, 29, 2, 0)});
  CHECK(Firings("5 * * * *", Utc(2026, 3, 28, 23, 30), Utc(2026, 3, 29, 2, 0)) ==
        std::vector<std::int64_t>{Utc(2026, 3, 29, 0, 5), Utc(2026, 3, 29, 1, 5)});
  CHECK(Next("@hourly", Utc(2026, 3, 29, 0, 0)) == jump);
}

TEST_CASE("cron: fall back in Berlin fires a repeated time once, the first time", "[cron]") {
  ScopedTz tz("Europe/Berlin");
  RequireZone("Europe/Berlin", Utc(2026, 7, 1, 0, 0), 7200);
  // 2026-10-25: at 01:00 UTC, 03:00 CEST becomes 02:00 CET; 02:00-02:59 is
  // shown first at 00:xx UTC, then again at 01:xx UTC.
  const auto back = Utc(2026, 10, 25, 1, 0);

  CHECK(Firings("30 2 * * *", Utc(2026, 10, 23, 22, 0), Utc(2026, 10, 26, 23, 0)) ==
        std::vector<std::int64_t>{Utc(2026, 10, 24, 0, 30), Utc(2026, 10, 25, 0, 30),
                                  Utc(2026, 10, 26, 1, 30)});
  // During the second pass, 02:30 is not due again until tomorrow.
  CHECK(Next("30 2 * * *", back + 15 * 60) == Utc(2026, 10, 26, 1, 30));
  CHECK(Next("30 2 * * *", back - 1) == Utc(2026, 10, 26, 1, 30));
  CHECK(Next("0 3 * * *", Utc(2026, 10, 24, 12, 0)) == Utc(2026, 10, 25, 2, 0));
  CHECK(Next("0 3 * * *", back) == Utc(2026, 10, 25, 2, 0));
  // A fixed hour with minute steps: the first pass only.
  CHECK(Firings("*/15 2 * * *", Utc(2026, 10, 24, 12, 0), Utc(2026, 10, 25, 12, 0)) ==
        std::vector<std::int64_t>{Utc(2026, 10, 25, 0, 0), Utc(2026, 10, 25, 0, 15),
                                  Utc(2026, 10, 25, 0, 30), Utc(2026, 10, 25, 0, 45)});
  // Hour `*`: every real 15 minutes, through both passes.
  CHECK(Firings("*/15 * * * *", Utc(2026, 10, 25, 0, 0), Utc(2026, 10, 25, 2, 0)) ==
        std::vector<std::int64_t>{Utc(2026, 10, 25, 0, 15), Utc(2026, 10, 25, 0, 30),
                                  Utc(2026, 10, 25, 0, 45), back, back + 15 * 60, back + 30 * 60,
                                  back + 45 * 60, Utc(2026, 10, 25, 2, 0)});
  CHECK(Next("*/15 * * * *", Utc(2026, 10, 25, 0, 50)) == back);
  CHECK(Firings("@hourly", Utc(2026, 10, 24, 23, 30), Utc(2026, 10, 25, 2, 0)) ==
        std::vector<std::int64_t>{Utc(2026, 10, 25, 0, 0), back, Utc(2026, 10, 25, 2, 0)});
  // `*/2` in the hour field is a wildcard too: 02:00 fires in both passes.
  CHECK(Firings("0 */2 * * *", Utc(2026, 10, 24, 21, 0), Utc(2026, 10, 25, 3, 0)) ==
        std::vector<std::int64_t>{Utc(2026, 10, 24, 22, 0), Utc(2026, 10, 25, 0, 0), back,
                                  Utc(2026, 10, 25, 3, 0)});
}

TEST_CASE("cron: New York transitions", "[cron]") {
  ScopedTz tz("America/New_York");
  RequireZone("America/New_York", Utc(2026, 1, 1, 0, 0), -18000);
  // 2026-03-08: at 07:00 UTC, 02:00 EST becomes 03:00 EDT.
  CHECK(Next("30 2 * * *", Utc(2026, 3, 7, 12, 0)) == Utc(2026, 3, 8, 7, 0));
  CHECK(Next("30 2 * * *", Utc(2026, 3, 8, 7, 0)) == Utc(2026, 3, 9, 6, 30));
  CHECK(Next("0 12 * * *", Utc(2026, 3, 7, 18, 0)) == Utc(2026, 3, 8, 16, 0));
  // 2026-11-01: at 06:00 UTC, 02:00 EDT becomes 01:00 EST.
  CHECK(Firings("30 1 * * *", Utc(2026, 10, 31, 12, 0), Utc(2026, 11, 2, 12, 0)) ==
        std::vector<std::int64_t>{Utc(2026, 11, 1, 5, 30), Utc(2026, 11, 2, 6, 30)});
  CHECK(Firings("*/30 * * * *", Utc(2026, 11, 1, 4, 0), Utc(2026, 11, 1, 8, 0)) ==
        std::vector<std::int64_t>{Utc(2026, 11, 1, 4, 30), Utc(2026, 11, 1, 5, 0),
                                  Utc(2026, 11, 1, 5, 30), Utc(2026, 11, 1, 6, 0),
                                  Utc(2026, 11, 1, 6, 30), Utc(2026, 11, 1, 7, 0),
                                  Utc(2026, 11, 1, 7, 30), Utc(2026, 11, 1, 8, 0)});
  // Weekly on Sunday 01:30, on the fall-back Sunday: once.
  CHECK(Next("30 1 * * sun", Utc(2026, 10, 31, 12, 0)) == Utc(2026, 11, 1, 5, 30));
  CHECK(Next("30 1 * * sun", Utc(2026, 11, 1, 5, 30)) == Utc(2026, 11, 8, 6, 30));
  // @weekly in local time: Sunday 00:00 EST.
  CHECK(Next("@weekly", Utc(2026, 1, 7, 12, 0)) == Utc(2026, 1, 11, 5, 0));
}

TEST_CASE("cron: agrees with a minute-by-minute reference around transitions", "[cron]") {
  struct Zone {
    const char* name;
    std::vector<std::int64_t> transitions;
  };
  const std::vector<Zone> zones = {
      {"Europe/Berlin", {Utc(2026, 3, 29, 1, 0), Utc(2026, 10, 25, 1, 0)}},
      {"America/New_York", {Utc(2026, 3, 8, 7, 0), Utc(2026, 11, 1, 6, 0)}},
      // Half-hour DST: 02:00 -> 01:30 and 02:00 -> 02:30.
      {"Australia/Lord_Howe", {Utc(2026, 4, 4, 15, 0), Utc(2026, 10, 3, 15, 30)}},
      // At midnight: 24:00 -> 23:00 and 24:00 -> 01:00.
      {"America/Santiago", {Utc(2026, 4, 5, 3, 0), Utc(2026, 9, 6, 4, 0)}},
      {"UTC", {Utc(2026, 3, 29, 1, 0)}},
  };
  const char* schedules[] = {"30 2 * * *",  "0,30 2 * * *", "* 2 * * *",     "*/15 * * * *",
                             "5 * * * *",   "0 */2 * * *",  "*/7 1-3 * * *", "0 0 * * *",
                             "30 23 * * *", "15 0 * * sun", "45 1 * * *",    "0 0 5,25 * sat",
                             "@hourly",     "* * * * *",    "59 1 * * *",    "0 3 * * 0"};
  for (const auto& zone : zones) {
    ScopedTz tz(zone.name);
    for (auto transition : zone.transitions) {
      const auto from = transition - 2 * 86400 + 17;
      const auto to = transition + 2 * 86400;
      for (const char* text : schedules) {
        INFO(zone.name << " around " << transition << ": " << text);
        CHECK(Firings(text, from, to) == ReferenceFirings(Parse(text), from, to));
      }
    }
  }
}

TEST_CASE("cron: the DST table in docs/behaviour.md", "[cron]") {
  ScopedTz tz("Europe/Berlin");
  RequireZone("Europe/Berlin", Utc(2026, 7, 1, 0, 0), 7200);
  // Local days in UTC: 29 March is 28 Mar 23:00 - 29 Mar 22:00 UTC,
  // 25 October is 24 Oct 22:00 - 25 Oct 23:00 UTC.
  const auto spring_from = Utc(2026, 3, 28, 23, 0) - 1;
  const auto spring_to = Utc(2026, 3, 29, 2, 59);  // 04:59 CEST
  const auto fall_from = Utc(2026, 10, 24, 22, 0) - 1;
  const auto fall_to = Utc(2026, 10, 25, 3, 59);  // 04:59 CET
  using V = std::vector<std::int64_t>;
  auto spring = [&](const char* s) { return Firings(s, spring_from, spring_to); };
  auto fall = [&](const char* s) { return Firings(s, fall_from, fall_to); };
  const auto cest_0300 = Utc(2026, 3, 29, 1, 0);

  CHECK(spring("30 2 * * *") == V{cest_0300});
  CHECK(fall("30 2 * * *") == V{Utc(2026, 10, 25, 0, 30)});
  CHECK(spring("0,30 2 * * *") == V{cest_0300});
  CHECK(fall("0,30 2 * * *") == V{Utc(2026, 10, 25, 0, 0), Utc(2026, 10, 25, 0, 30)});
  CHECK(spring("30 2,3 * * *") == V{cest_0300, cest_0300 + 1800});
  CHECK(fall("30 2,3 * * *") == V{Utc(2026, 10, 25, 0, 30), Utc(2026, 10, 25, 2, 30)});
  CHECK(spring("*/15 2 * * *") == V{cest_0300});
  CHECK(fall("*/15 2 * * *").size() == 4);
  CHECK(spring("5 * * * *") == V{Utc(2026, 3, 28, 23, 5), Utc(2026, 3, 29, 0, 5),
                                 Utc(2026, 3, 29, 1, 5), Utc(2026, 3, 29, 2, 5)});
  CHECK(fall("5 * * * *") == V{Utc(2026, 10, 24, 22, 5), Utc(2026, 10, 24, 23, 5),
                               Utc(2026, 10, 25, 0, 5), Utc(2026, 10, 25, 1, 5),
                               Utc(2026, 10, 25, 2, 5), Utc(2026, 10, 25, 3, 5)});
  CHECK(spring("0 */2 * * *") == V{Utc(2026, 3, 28, 23, 0), Utc(2026, 3, 29, 2, 0)});
  CHECK(fall("0 */2 * * *") == V{Utc(2026, 10, 24, 22, 0), Utc(2026, 10, 25, 0, 0),
                                 Utc(2026, 10, 25, 1, 0), Utc(2026, 10, 25, 3, 0)});
  // Vixie would run this every minute of both passes; wardend goes by the hour.
  CHECK(fall("* 2 * * *").size() == 60);
  CHECK(fall("* 2 * * *").back() == Utc(2026, 10, 25, 0, 59));
}
