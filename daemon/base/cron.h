// Cron schedules for jobs (`[job NAME] schedule = 0 3 * * 0`): the five
// fields of Vixie cron, read in the local time zone of the process.
// Parsing is a pure function; NextCronTime only reads the time zone
// (localtime_r) and does no other I/O.
//
// Syntax, as crontab(5) has it: "minute hour day-of-month month day-of-week"
// separated by blanks. Each field is a comma list of items; an item is `*`,
// a value, a range `a-b`, or `*` or a range with a step (`*/15`, `8-18/2`).
// Months take jan-dec, days of week sun-sat (3 letters, any case; in
// ranges too: mon-fri). Day of week 0-7, 0 and 7 both Sunday. Also @hourly,
// @daily (= @midnight), @weekly, @monthly, @yearly (= @annually).
// Not accepted, each with a message that says so: @reboot, a sixth field
// (seconds or years), empty list items, reversed ranges (5-1), a step of 0
// or longer than the field (`*/90` in minutes: cron cannot say "every 90
// minutes"), a step on a single value (`5/10`: write `5-59/10`).
//
// Day rule (Vixie cron's): a day-of-month or day-of-week field is
// "restricted" unless it starts with `*` (so `*/2` is not restricted). When
// both are restricted a day matches if EITHER matches ("1 * mon" = the 1st
// and every Monday); otherwise both must.
//
// Daylight saving time (times are local wall-clock times; see
// docs/behaviour.md "Job schedules (cron)"):
//  * Hour field starting with `*` (`*`, `*/2`; @hourly): the job fires at
//    every real minute whose local wall time matches. A wall time that does
//    not exist (spring forward) never fires; one that happens twice (fall
//    back) fires both times. `*/15 * * * *` keeps running every 15 minutes.
//  * Any other hour field (`3`, `1-5`, `2,14`): every matching wall time
//    fires exactly once, at the first instant the local clock shows that
//    time or a later one. A repeated time fires at its first occurrence
//    only; a time skipped by spring forward fires at the first minute after
//    the gap (02:30 on a 02:00->03:00 day fires at 03:00); several skipped
//    times that land on the same minute fire once.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace warden {

// A parsed schedule. Bit i of a set means value i matches.
struct CronSchedule {
  std::bitset<60> minutes;        // 0-59
  std::bitset<24> hours;          // 0-23
  std::bitset<32> days_of_month;  // 1-31 (bit 0 unused)
  std::bitset<13> months;         // 1-12 (bit 0 unused)
  std::bitset<7> days_of_week;    // 0-6, Sunday = 0 (a 7 is stored as 0)
  bool hour_restricted = false;   // hour field does not start with `*`
  bool dom_restricted = false;    // day-of-month field does not start with `*`
  bool dow_restricted = false;    // day-of-week field does not start with `*`
  std::string text;               // as written, trimmed ("0 3 * * 0", "@weekly")
};

// Parses "m h dom mon dow" or an @-macro. Errors start with "schedule: " and
// name the field and the bad token: "schedule: hour field '25' is out of
// range 0-23". Accepts schedules that can never fire (`0 0 30 2 *`):
// NextCronTime returns nullopt for them, which the caller should reject.
Expected<CronSchedule> ParseCron(std::string_view text);

// The first firing strictly after `after` (Unix seconds), by the rules
// above, in the process's local time zone (TZ; call tzset() after changing
// it). nullopt when the schedule does not fire within 8 years (long enough
// for Feb 29 across 2100, so nullopt means never: Feb 30, Apr 31) or
// `after` is outside what localtime_r can convert. Safe on any thread.
// Assumes a zone changes its UTC offset at most once within any 32 hours
// (true of every zone in tzdata from 1970 on: the closest changes are a
// week apart).
std::optional<std::int64_t> NextCronTime(const CronSchedule& s, std::int64_t after);

}  // namespace warden
