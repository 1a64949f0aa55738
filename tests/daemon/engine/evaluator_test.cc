#include "daemon/engine/evaluator.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>

using namespace warden;
using Clock = Evaluator::Clock;
using namespace std::chrono_literals;

namespace {

EvalRules Rules(const char* warn, const char* crit, const char* trip = "1", int recover = 1) {
  EvalRules r;
  if (warn) r.warn = *ParseThreshold(warn);
  if (crit) r.crit = *ParseThreshold(crit);
  r.trip = *ParseTrip(trip);
  r.recover = recover;
  return r;
}

struct Driver {
  Evaluator eval;
  Clock::time_point now = Clock::time_point{} + 1h;
  int fired_state = 0;
  int fired_recover = 0;
  int changes = 0;

  explicit Driver(EvalRules r) : eval(std::move(r)) {}

  Verdict Feed(const Measurement& m, std::chrono::milliseconds step = 10s) {
    now += step;
    Verdict v = eval.Observe(m, now);
    if (v.fire == Verdict::Fire::kState) ++fired_state;
    if (v.fire == Verdict::Fire::kRecover) ++fired_recover;
    if (v.changed) ++changes;
    return v;
  }
  Verdict Value(const char* v) { return Feed(Measurement::Value(v)); }
};

}  // namespace

TEST_CASE("pending until the first result, then ok", "[evaluator]") {
  Driver d(Rules("> 60", "> 600"));
  CHECK(d.eval.state() == CheckState::kPending);
  Verdict v = d.Value("5");
  CHECK(v.changed);
  CHECK(v.prev == CheckState::kPending);
  CHECK(v.state == CheckState::kOk);
  CHECK(v.fire == Verdict::Fire::kNone);  // ok from pending is no recovery
}

TEST_CASE("warn and crit fire on entry only", "[evaluator]") {
  Driver d(Rules("> 60", "> 600"));
  d.Value("5");
  Verdict w = d.Value("61");
  CHECK(w.state == CheckState::kWarn);
  CHECK(w.fire == Verdict::Fire::kState);
  CHECK(w.threshold == "> 60");
  CHECK(d.Value("70").fire == Verdict::Fire::kNone);  // still warn: no re-fire
  Verdict c = d.Value("601");
  CHECK(c.state == CheckState::kCrit);
  CHECK(c.prev == CheckState::kWarn);
  CHECK(c.threshold == "> 600");
  CHECK(c.fire == Verdict::Fire::kState);
  // Down from crit to warn.
  Verdict back = d.Value("100");
  CHECK(back.state == CheckState::kWarn);
  CHECK(back.fire == Verdict::Fire::kState);
  Verdict ok = d.Value("1");
  CHECK(ok.state == CheckState::kOk);
  CHECK(ok.fire == Verdict::Fire::kRecover);
  CHECK(d.fired_state == 3);
  CHECK(d.fired_recover == 1);
}

TEST_CASE("a value past both thresholds is crit", "[evaluator]") {
  Driver d(Rules("> 60", "> 600"));
  CHECK(d.Value("1000").state == CheckState::kCrit);
}

TEST_CASE("trip N in a row", "[evaluator]") {
  Driver d(Rules(nullptr, "> 10", "3"));
  d.Value("1");
  CHECK(d.Value("11").state == CheckState::kOk);
  CHECK(d.Value("11").state == CheckState::kOk);
  Verdict v = d.Value("11");
  CHECK(v.state == CheckState::kCrit);
  CHECK(v.fire == Verdict::Fire::kState);
}

TEST_CASE("a flapping value never trips N in a row", "[evaluator]") {
  Driver d(Rules(nullptr, "> 10", "3"));
  for (int i = 0; i < 100; ++i) d.Value(i % 2 ? "11" : "1");
  CHECK(d.eval.state() == CheckState::kOk);
  CHECK(d.fired_state == 0);
  CHECK(d.changes == 1);  // pending -> ok only
}

TEST_CASE("trip N of M counts within the window", "[evaluator]") {
  Driver d(Rules(nullptr, "> 10", "3 of 5"));
  d.Value("1");
  // bad, ok, bad, ok: 2 of the last 5.
  d.Value("11");
  d.Value("1");
  d.Value("11");
  d.Value("1");
  CHECK(d.eval.state() == CheckState::kOk);
  Verdict v = d.Value("11");  // 3 bad of the last 5
  CHECK(v.state == CheckState::kCrit);
  CHECK(d.fired_state == 1);
}

TEST_CASE("a flapping value fires at most once per trip under N of M", "[evaluator]") {
  // Alternating with recover = 2: after crit it needs two oks in a row,
  // which an alternating value never gives, so it fires exactly once.
  Driver d(Rules(nullptr, "> 10", "3 of 5", 2));
  for (int i = 0; i < 200; ++i) d.Value(i % 2 ? "11" : "1");
  CHECK(d.eval.state() == CheckState::kCrit);
  CHECK(d.fired_state == 1);
  CHECK(d.fired_recover == 0);
}

TEST_CASE("one bad value in each window never trips 2 of 5", "[evaluator]") {
  Driver d(Rules(nullptr, "> 10", "2 of 5"));
  for (int i = 0; i < 100; ++i) d.Value(i % 5 == 0 ? "11" : "1");
  CHECK(d.fired_state == 0);
  CHECK(d.eval.state() == CheckState::kOk);
}

TEST_CASE("trip N of M counts only the last M, in and beyond the inline window", "[evaluator]") {
  // The window is a ring of the last M levels (kept in the evaluator up to
  // 16, on the heap beyond): after it has wrapped many times, a bad value
  // that left the window no longer counts, and one still in it does.
  for (const char* trip : {"3 of 4", "3 of 16", "3 of 17", "20 of 40"}) {
    INFO(trip);
    const int m = std::atoi(std::strstr(trip, "of ") + 3);
    const int n = std::atoi(trip);
    Driver d(Rules(nullptr, "> 10", trip));
    // Many wraps with one bad value per window: never trips.
    for (int i = 0; i < 10 * m; ++i) d.Value(i % m == 0 ? "11" : "1");
    CHECK(d.eval.state() == CheckState::kOk);
    // n - 1 bad values in a row, then oks until the first of them is the
    // oldest still in the window: the nth bad value trips ...
    for (int i = 0; i < n - 1; ++i) d.Value("11");
    for (int i = 0; i < m - n; ++i) d.Value("1");
    CHECK(d.eval.state() == CheckState::kOk);
    CHECK(d.Value("11").state == CheckState::kCrit);
    CHECK(d.fired_state == 1);
    // ... and one ok later, it would not have: the first bad value has left.
    Driver late(Rules(nullptr, "> 10", trip));
    for (int i = 0; i < 3 * m; ++i) late.Value("1");
    for (int i = 0; i < n - 1; ++i) late.Value("11");
    for (int i = 0; i < m - n + 1; ++i) late.Value("1");
    CHECK(late.Value("11").state == CheckState::kOk);
    CHECK(late.fired_state == 0);
  }
}

TEST_CASE("a state change empties the window", "[evaluator]") {
  // The two bad values that tripped crit do not count toward the next trip:
  // back to ok, then one bad value is one of 20.
  Driver r(Rules(nullptr, "> 10", "2 of 20", 1));
  r.Value("11");
  r.Value("11");
  CHECK(r.eval.state() == CheckState::kCrit);
  CHECK(r.Value("1").state == CheckState::kOk);
  CHECK(r.Value("11").state == CheckState::kOk);
  CHECK(r.Value("11").state == CheckState::kCrit);
  CHECK(r.fired_state == 2);
}

TEST_CASE("recover needs N ok results in a row", "[evaluator]") {
  Driver d(Rules(nullptr, "> 10", "1", 3));
  d.Value("11");
  CHECK(d.eval.state() == CheckState::kCrit);
  d.Value("1");
  d.Value("1");
  d.Value("11");  // resets the streak (and stays crit, no new fire)
  d.Value("1");
  d.Value("1");
  CHECK(d.eval.state() == CheckState::kCrit);
  Verdict v = d.Value("1");
  CHECK(v.state == CheckState::kOk);
  CHECK(v.fire == Verdict::Fire::kRecover);
  CHECK(d.fired_state == 1);
}

TEST_CASE("errors enter error and recover like any bad state", "[evaluator]") {
  Driver d(Rules("> 60", "> 600"));
  d.Value("1");
  Verdict e = d.Feed(Measurement::Error("connection refused"));
  CHECK(e.state == CheckState::kError);
  CHECK(e.error == "connection refused");
  CHECK(e.fire == Verdict::Fire::kState);
  Verdict ok = d.Value("1");
  CHECK(ok.state == CheckState::kOk);
  CHECK(ok.fire == Verdict::Fire::kRecover);
}

TEST_CASE("errors also obey trip", "[evaluator]") {
  Driver d(Rules(nullptr, "> 600", "2"));
  d.Value("1");
  CHECK(d.Feed(Measurement::Error("timeout")).state == CheckState::kOk);
  CHECK(d.Feed(Measurement::Error("timeout")).state == CheckState::kError);
}

TEST_CASE("a word against a numeric threshold is an error", "[evaluator]") {
  Driver d(Rules(nullptr, "> 600"));
  Verdict v = d.Value("Connecting");
  CHECK(v.state == CheckState::kError);
  CHECK_THAT(v.error, Catch::Contains("not a number"));
}

TEST_CASE("word thresholds", "[evaluator]") {
  Driver d(Rules(nullptr, "!= Yes"));
  CHECK(d.Value("Yes").state == CheckState::kOk);
  Verdict v = d.Value("No");
  CHECK(v.state == CheckState::kCrit);
  CHECK(v.threshold == "!= Yes");
}

TEST_CASE("not-yet results change nothing", "[evaluator]") {
  Driver d(Rules(nullptr, "> 10"));
  Verdict v = d.Feed(Measurement::NotYet("first sample"));
  CHECK_FALSE(v.changed);
  CHECK(d.eval.state() == CheckState::kPending);
}

TEST_CASE("repeat re-fires while the state lasts", "[evaluator]") {
  EvalRules r = Rules(nullptr, "> 10");
  r.repeat = Duration(60'000);
  Driver d(r);
  d.Value("11");          // enter crit, fire
  CHECK(d.fired_state == 1);
  d.Value("11");          // +10 s
  CHECK(d.fired_state == 1);
  for (int i = 0; i < 5; ++i) d.Value("11");  // +60 s since the fire
  CHECK(d.fired_state == 2);
  Verdict v = d.Feed(Measurement::Value("11"), 61s);
  CHECK(v.repeat);
  CHECK(d.fired_state == 3);
}

TEST_CASE("without repeat a lasting state fires once", "[evaluator]") {
  Driver d(Rules(nullptr, "> 10"));
  for (int i = 0; i < 50; ++i) d.Feed(Measurement::Value("11"), 1h);
  CHECK(d.fired_state == 1);
}

TEST_CASE("skipped and back", "[evaluator]") {
  Driver d(Rules(nullptr, "> 10"));
  d.Value("11");
  CHECK(d.eval.state() == CheckState::kCrit);
  Verdict s = d.eval.Skip(d.now);
  CHECK(s.changed);
  CHECK(s.state == CheckState::kSkipped);
  CHECK(s.fire == Verdict::Fire::kNone);
  CHECK_FALSE(d.eval.Skip(d.now).changed);
  Verdict ok = d.Value("1");
  CHECK(ok.state == CheckState::kOk);
  CHECK(ok.fire == Verdict::Fire::kNone);  // on_recover is for leaving warn/crit/error
  Verdict crit = d.Value("11");
  CHECK(crit.fire == Verdict::Fire::kState);
}

TEST_CASE("state names round-trip", "[evaluator]") {
  for (auto s : {CheckState::kPending, CheckState::kOk, CheckState::kWarn, CheckState::kCrit,
                 CheckState::kError, CheckState::kSkipped}) {
    CHECK(StateFromName(StateName(s)) == s);
  }
  CHECK_FALSE(StateFromName("bogus"));
}

TEST_CASE("every move between bad states fires the new state's hook", "[evaluator]") {
  Driver d(Rules("> 60", "> 600"));
  d.Value("1");
  struct Step {
    Measurement m;
    CheckState want;
  };
  std::vector<Step> steps = {
      {Measurement::Error("lost connection"), CheckState::kError},
      {Measurement::Value("700"), CheckState::kCrit},     // error -> crit
      {Measurement::Error("timeout"), CheckState::kError},  // crit -> error
      {Measurement::Value("61"), CheckState::kWarn},      // error -> warn
      {Measurement::Error("timeout"), CheckState::kError},  // warn -> error
      {Measurement::Value("5"), CheckState::kOk},         // error -> ok
  };
  int fires = 0;
  for (const auto& s : steps) {
    Verdict v = d.Feed(s.m);
    INFO(StateName(v.prev) << " -> " << StateName(v.state));
    CHECK(v.state == s.want);
    CHECK(v.changed);
    if (v.fire != Verdict::Fire::kNone) ++fires;
  }
  CHECK(fires == 6);
  CHECK(d.fired_recover == 1);
}

TEST_CASE("skipped from pending and from ok", "[evaluator]") {
  Driver d(Rules(nullptr, "> 10"));
  Verdict s = d.eval.Skip(d.now);
  CHECK(s.prev == CheckState::kPending);
  CHECK(s.state == CheckState::kSkipped);
  d.Value("1");
  CHECK(d.eval.state() == CheckState::kOk);
  Verdict s2 = d.eval.Skip(d.now);
  CHECK(s2.prev == CheckState::kOk);
  CHECK(s2.fire == Verdict::Fire::kNone);
}

TEST_CASE("Quiet takes a value exactly as Observe would, or leaves everything as it was",
          "[evaluator]") {
  // Two evaluators fed the same random results: `plain` through Observe
  // only, `fast` through Quiet first (as the scheduler does for shared
  // reads). Where Quiet takes a value, Observe must have had nothing to
  // say; where it declines, Observe's verdicts must still agree, so Quiet
  // changed nothing.
  struct Rule {
    const char* warn;
    const char* crit;
    const char* trip;
    int recover;
    bool repeat;
  };
  const Rule rules[] = {
      {nullptr, nullptr, "1", 1, false},  {"> 50", "> 90", "1", 1, false},
      {"> 50", nullptr, "2 of 3", 2, true}, {nullptr, "== OFF", "2", 1, false},
      {"> 50", "> 90", "3 of 20", 3, true},  // a window beyond the inline one
  };
  const char* values[] = {"1", "7", "60", "95", "ON", "OFF", "abc", " 3 "};
  std::srand(42);
  for (const Rule& r : rules) {
    INFO("warn " << (r.warn ? r.warn : "-") << " crit " << (r.crit ? r.crit : "-") << " trip "
                 << r.trip);
    auto make = [&] {
      EvalRules er = Rules(r.warn, r.crit, r.trip, r.recover);
      if (r.repeat) er.repeat = 30s;
      return er;
    };
    Evaluator plain(make()), fast(make());
    Clock::time_point now = Clock::time_point{} + 1h;
    int taken = 0, declined = 0;
    for (int i = 0; i < 4000; ++i) {
      now += 10s;
      const int pick = std::rand() % 100;
      INFO("step " << i);
      if (pick < 3) {
        Verdict a = plain.Skip(now);
        Verdict b = fast.Skip(now);
        CHECK(a.state == b.state);
        continue;
      }
      Measurement m;
      if (pick < 8) {
        m = Measurement::Error("boom");
      } else if (pick < 10) {
        m = Measurement::NotYet("later");
      } else {
        // Mostly quiet values, now and then one past a threshold.
        const int v = std::rand() % 100;
        m = Measurement::Value(v < 80 ? values[std::rand() % 2] : values[std::rand() % 8]);
      }
      Verdict a = plain.Observe(m, now);
      if (m.kind == Measurement::Kind::kValue && fast.Quiet(m.value)) {
        ++taken;
        CHECK(!a.changed);
        CHECK(a.fire == Verdict::Fire::kNone);
        CHECK(a.state == CheckState::kOk);
      } else {
        if (m.kind == Measurement::Kind::kValue) ++declined;
        Verdict b = fast.Observe(m, now);
        CHECK(a.changed == b.changed);
        CHECK(a.prev == b.prev);
        CHECK(a.state == b.state);
        CHECK(a.fire == b.fire);
        CHECK(a.repeat == b.repeat);
        CHECK(a.value == b.value);
        CHECK(a.threshold == b.threshold);
        CHECK(a.error == b.error);
      }
      REQUIRE(plain.state() == fast.state());
      REQUIRE(plain.last_value() == fast.last_value());
      REQUIRE(plain.last_error() == fast.last_error());
      REQUIRE(plain.since() == fast.since());
    }
    // Both ways were taken many times.
    CHECK(taken > 500);
    CHECK(declined > 100);
  }
}

TEST_CASE("evaluator: disabled fires nothing and comes back pending", "[evaluator]") {
  Driver d(Rules(nullptr, "> 10"));
  d.Value("20");
  REQUIRE(d.eval.state() == CheckState::kCrit);
  int fired = d.fired_state;
  Verdict off = d.eval.SetDisabled(true, d.now);
  CHECK(off.changed);
  CHECK(off.state == CheckState::kDisabled);
  CHECK(off.fire == Verdict::Fire::kNone);   // not a recovery either
  CHECK(StateName(CheckState::kDisabled) == std::string("disabled"));
  CHECK(StateFromName("disabled") == CheckState::kDisabled);
  Verdict on = d.eval.SetDisabled(false, d.now);
  CHECK(on.state == CheckState::kPending);
  CHECK(on.fire == Verdict::Fire::kNone);
  // Crit again from pending fires its hook as a new state.
  d.Value("20");
  CHECK(d.fired_state == fired + 1);
}

namespace {

Measurement Judged(const char* value, Measurement::Level level, const char* detail = "") {
  Measurement m = Measurement::Value(value);
  m.level = level;
  m.detail = detail;
  return m;
}

}  // namespace

TEST_CASE("a check's own verdict is the state without thresholds", "[evaluator]") {
  using L = Measurement::Level;
  Driver d(Rules(nullptr, nullptr));
  Verdict ok = d.Feed(Judged("", L::kOk, "OK: fine"));
  CHECK(ok.state == CheckState::kOk);
  CHECK(ok.detail == "OK: fine");
  Verdict warn = d.Feed(Judged("", L::kWarn, "WARNING: half"));
  CHECK(warn.state == CheckState::kWarn);
  CHECK(warn.fire == Verdict::Fire::kState);
  CHECK(warn.threshold.empty());
  CHECK(warn.detail == "WARNING: half");
  CHECK(d.eval.last_detail() == "WARNING: half");
  Verdict crit = d.Feed(Judged("", L::kCrit, "CRITICAL: down"));
  CHECK(crit.state == CheckState::kCrit);
  Verdict back = d.Feed(Judged("", L::kOk, "OK"));
  CHECK(back.state == CheckState::kOk);
  CHECK(back.fire == Verdict::Fire::kRecover);
  CHECK(ResultName(Judged("", L::kCrit), EvalRules{}) == std::string("crit"));
  CHECK(ResultName(Judged("", L::kWarn), EvalRules{}) == std::string("warn"));
  CHECK(ResultName(Measurement::NotYet("rate"), EvalRules{}) == std::string("no_value"));
}

TEST_CASE("a check's own verdict and the thresholds: the worse wins", "[evaluator]") {
  using L = Measurement::Level;
  EvalRules rules = Rules("> 80", "> 90");
  // Thresholds worse than the verdict: the threshold is named.
  Driver d(rules);
  Verdict v = d.Feed(Judged("95", L::kWarn));
  CHECK(v.state == CheckState::kCrit);
  CHECK(v.threshold == "> 90");
  CHECK(ResultName(Judged("95", L::kWarn), rules) == std::string("crit"));
  // The verdict worse than the thresholds: no threshold is named, not even
  // the one of an earlier result.
  Driver e(rules);
  e.Feed(Judged("85", L::kOk));
  CHECK(e.eval.state() == CheckState::kWarn);
  Verdict w = e.Feed(Judged("10", L::kCrit, "CRITICAL: plugin says so"));
  CHECK(w.state == CheckState::kCrit);
  CHECK(w.threshold.empty());
  CHECK(ResultName(Judged("10", L::kCrit), rules) == std::string("crit"));
  CHECK(ResultName(Judged("10", L::kOk), rules) == std::string("ok"));
  // No value with a verdict (the plugin could not measure): the verdict
  // alone, the thresholds not compared.
  Driver f(rules);
  Verdict n = f.Feed(Judged("", L::kCrit, "Can't connect"));
  CHECK(n.state == CheckState::kCrit);
  CHECK(n.error.empty());
  CHECK(ResultName(Judged("", L::kCrit), rules) == std::string("crit"));
  // An empty value with no verdict is still an error against thresholds.
  CHECK(ResultName(Measurement::Value(""), rules) == std::string("error"));
  // An error is an error whatever the level says.
  Measurement err = Measurement::Error("boom");
  err.level = L::kOk;
  CHECK(ResultName(err, rules) == std::string("error"));
}

TEST_CASE("a check's own verdict goes through the trip window", "[evaluator]") {
  using L = Measurement::Level;
  Driver d(Rules(nullptr, nullptr, "2 of 3"));
  d.Feed(Judged("", L::kOk));
  CHECK(d.Feed(Judged("", L::kCrit)).state == CheckState::kOk);
  Verdict v = d.Feed(Judged("", L::kCrit));
  CHECK(v.state == CheckState::kCrit);
  CHECK(v.changed);
  CHECK(v.threshold.empty());
}
