// Thresholds, trip and recover for one check. Pure logic, no I/O, no clock
// of its own: the scheduler feeds it results and the time.
//
// Rules (also in docs/behaviour.md, "Evaluation"):
//  * Each result is classified: error (the check failed, or the value could
//    not be compared), crit (crit matches), warn (warn matches), else ok.
//    A result with a verdict of its own (Measurement::level: a Nagios
//    plugin's exit status) is the worse of that verdict and the thresholds;
//    with no value, the verdict alone.
//  * Bad results are counted over a window of the last M results since the
//    last state change (trip = N of M; trip = N means N in a row).
//    error wins over crit, crit over warn when several trip at once.
//  * From a bad state, `recover` ok results in a row return to ok.
//    From pending or skipped, one ok result is ok.
//  * on_warn/on_crit/on_error fire when that state is entered, and again
//    every `repeat` while it lasts (if set); on_recover fires on entering ok
//    from warn, crit or error.
#pragma once

#include <algorithm>
#include <chrono>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "checks/check.h"
#include "daemon/base/units.h"

namespace warden {

enum class CheckState { kPending, kOk, kWarn, kCrit, kError, kSkipped, kDisabled };
const char* StateName(CheckState s);
std::optional<CheckState> StateFromName(std::string_view name);

struct Verdict {
  bool changed = false;
  CheckState prev = CheckState::kPending;
  CheckState state = CheckState::kPending;
  // Which hook to fire now, if any: the state's own (on_warn, on_crit,
  // on_error) or on_recover.
  enum class Fire { kNone, kState, kRecover };
  Fire fire = Fire::kNone;
  bool repeat = false;          // fire because of `repeat`, not a change
  std::string value;            // the last value (may be empty)
  std::string threshold;        // "> 600" for warn/crit ("" when the check's own verdict)
  std::string error;            // for error
  std::string detail;           // the last result's Measurement::detail
  std::string unit;             // the last value's Measurement::unit
};

// What one result is, judged alone against `rules` (no trip window): "ok",
// "warn", "crit", "error", or "no_value" (Measurement::kNotYet). What
// Observe classifies a result as, for wardenctl check.
const char* ResultName(const Measurement& m, const EvalRules& rules);

class Evaluator {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Evaluator(EvalRules rules)
      : has_thresholds_(rules.warn || rules.crit),
        need_(rules.trip.need),
        capacity_(std::max(1, rules.trip.window)),
        recover_(rules.recover),
        rules_(std::move(rules)) {}

  Verdict Observe(const Measurement& m, Clock::time_point now);
  // The usual result, taken in place when it has nothing to say: a value
  // (as Measurement::Value) that leaves an ok check ok with no hook to
  // fire. Then it is recorded exactly as Observe would (last value,
  // window, streak) and Quiet returns true; otherwise nothing changes and
  // the caller goes through Observe. Saves building a Measurement and a
  // Verdict for each of the thousand results a second that change nothing.
  bool Quiet(std::string_view value);
  // A dependency is not ok: the check did not run.
  Verdict Skip(Clock::time_point now);
  // wardenctl disable / enable: into `disabled` (no hook fires; a
  // dependent sees it as not ok), or back to `pending`.
  Verdict SetDisabled(bool disabled, Clock::time_point now);
  // Restores a state persisted before a restart (daemon/engine/state.h): no hook
  // fires for it; `repeat` counts from `now`, and the return to ok needs
  // `recover` ok results and fires on_recover as usual. `detail` and `unit`
  // are the last result's (a nagios plugin's text): status shows them until
  // the next run.
  void Restore(CheckState state, Clock::time_point since, std::string value, std::string error,
               Clock::time_point now, std::string detail = {}, std::string unit = {}) {
    state_ = state;
    since_ = since;
    last_value_ = std::move(value);
    last_error_ = std::move(error);
    last_detail_ = std::move(detail);
    last_unit_ = std::move(unit);
    ClearWindow();
    ok_streak_ = 0;
    if (state == CheckState::kWarn || state == CheckState::kCrit || state == CheckState::kError) {
      last_fire_ = now;
    } else {
      last_fire_.reset();
    }
  }

  CheckState state() const { return state_; }
  Clock::time_point since() const { return since_; }
  const std::string& last_value() const { return last_value_; }
  const std::string& last_error() const { return last_error_; }
  // The last result's Measurement::detail and unit ("" when it had none).
  const std::string& last_detail() const { return last_detail_; }
  const std::string& last_unit() const { return last_unit_; }
  const EvalRules& rules() const { return rules_; }

 private:
  enum class Level : std::uint8_t { kOk, kWarn, kCrit, kError };
  // The result's level (worst first: error, crit, warn), with `threshold`
  // set to the threshold that matched (if that decided it) and `error` to
  // why it is an error (if it is). Observe's and ResultName's.
  static Level Classify(const Measurement& m, const EvalRules& rules, bool has_thresholds,
                        std::string& threshold, std::string& error);
  friend const char* ResultName(const Measurement& m, const EvalRules& rules);
  // Moves to `next`, filling in `v` (which the caller returns).
  void Enter(CheckState next, Clock::time_point now, Verdict& v);
  // The window: the levels of the last trip.window results since the last
  // state change, as a ring (in the object up to kInlineWindow results:
  // no allocation and nothing more to touch per result for the usual
  // trip rules), and the counts the trip rule reads.
  void PushWindow(Level level);
  void ClearWindow();
  static constexpr int kInlineWindow = 16;

  // Read or written by every result, first and together (two cache lines):
  // a result's cost is mostly cache misses on evaluators touched a second
  // ago. need_, capacity_ and recover_ are rules_'s, copied here.
  CheckState state_ = CheckState::kPending;
  bool has_thresholds_ = false;      // rules_.warn or rules_.crit
  int need_ = 1;
  int capacity_ = 1;                 // the window: trip.window, at least 1
  int recover_ = 1;
  int window_start_ = 0;
  int window_size_ = 0;
  int window_errors_ = 0;
  int window_crits_ = 0;
  int window_warns_ = 0;             // warn or crit
  int ok_streak_ = 0;
  std::array<Level, kInlineWindow> window_inline_{};
  std::string last_value_;
  std::string last_error_;

  EvalRules rules_;
  Clock::time_point since_{};
  std::optional<Clock::time_point> last_fire_;
  std::vector<Level> window_heap_;   // trip.window > kInlineWindow
  std::string last_threshold_;
  std::string last_detail_;
  std::string last_unit_;
};

}  // namespace warden
