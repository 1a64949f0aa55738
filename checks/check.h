// The interface every check type implements. A check only measures: it
// returns a value or an error (and, when it has one of its own, such as a
// Nagios plugin's exit status, a verdict for the evaluator to weigh).
// Thresholds, trip/recover, state and what to fire live in the evaluator
// (daemon/engine/evaluator.h).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/inline_function.h"
#include "daemon/base/named_values.h"
#include "daemon/base/options.h"
#include "daemon/base/status.h"
#include "daemon/base/units.h"
#include "daemon/io/runtime.h"

namespace warden {

// What one run of a check produced.
struct Measurement {
  enum class Kind { kValue, kError, kNotYet };
  Kind kind = Kind::kError;
  std::string value;   // kValue: the value as text ("12", "12.5", "Yes")
  std::string error;   // kError: what went wrong, for an operator; kNotYet: why
  // When the value was read, if the check knows (a shared snapshot's
  // arrival: one clock reading for all its checks); otherwise the
  // scheduler takes the time the result reaches it.
  std::chrono::steady_clock::time_point at{};
  // A verdict the check reached itself (a Nagios plugin's exit status:
  // 0 ok, 1 warn, 2 crit), for a kValue result. The evaluator judges the
  // result as the worse of it and the thresholds; a result with a verdict
  // and an empty value (the plugin could not measure) is judged by the
  // verdict alone. kNone: the thresholds alone judge.
  enum class Level : unsigned char { kNone, kOk, kWarn, kCrit };
  Level level = Level::kNone;
  // The check's own one-line account of the result, for the event and the
  // status (a plugin's first line of output); usually empty.
  std::string detail{};
  // The value's unit when the check knows it ("MB", "%", "s"; a plugin's
  // perfdata UOM); usually empty.
  std::string unit{};
  // kError: what a caller may do about the error (status.h's codes; an
  // error the check made itself is internal) and the peer's own number for
  // it (a MySQL error number: 1227), -1 when none; Error(Failure) copies
  // both from the failure. Callers decide on these, never on `error`'s text
  // (wardenctl validate --grants tells a missing privilege by the number).
  StatusCode code = StatusCode::kOk;
  int peer_code = -1;

  static Measurement Value(std::string v) { return {Kind::kValue, std::move(v), {}}; }
  static Measurement Value(std::string_view v) { return Value(std::string(v)); }
  static Measurement Value(const char* v) { return Value(std::string(v)); }
  static Measurement Number(double v);   // formatted without needless digits
  static Measurement Error(std::string e) {
    Measurement m{Kind::kError, {}, std::move(e)};
    m.code = StatusCode::kInternal;
    return m;
  }
  // The failure's message, code and peer code.
  static Measurement Error(const Failure& f) {
    Measurement m = Error(f.message());
    m.code = f.code();
    m.peer_code = f.peer_code();
    return m;
  }
  // No value yet (a rate needs two samples); the state does not change.
  static Measurement NotYet(std::string why) { return {Kind::kNotYet, {}, std::move(why)}; }
};

// Where a shared snapshot comes from (mysql_status: SHOW GLOBAL STATUS on
// a connection). The scheduler asks a source once for all the checks due
// together that read it, for the union of the names they need, and hands
// the one snapshot to each of them (Check::ReadFrom). A source is a
// constant of its check type, shared by all its checks.
class SharedSource {
 public:
  using Snapshot = Expected<std::shared_ptr<const NamedValues>>;
  // Kept in place (no allocation) when its capture fits 48 bytes.
  using Done = InlineFunction<void(const Snapshot&)>;
  virtual ~SharedSource() = default;
  // Reads one snapshot of `scope` (which one of the source's: the checks'
  // connection) holding at least `names` (null: every name; a source may
  // always read more) and calls `done` exactly once on the loop thread,
  // possibly before returning. Loop thread only; must not block.
  virtual void Read(Runtime& rt, const std::string& scope, std::shared_ptr<const NameSet> names,
                    Done done) const = 0;
};

// What a check whose run only reads a shared snapshot reads, if that is
// all it does.
struct SharedRead {
  const SharedSource* source = nullptr;   // null: no shared snapshot
  // The source's scope, the check's own (its connection: "" is [mysql]).
  const std::string* scope = nullptr;
  // The names its result needs, lower case (the check's own).
  std::span<const std::string> names;
  // When the check's result is one name's value exactly as the snapshot
  // has it (no rate, no parsing): that name, lower case, as the check
  // keeps it. The scheduler then looks it up itself, with a hint of its
  // own kept next to the check's state, and asks ReadFrom only when the
  // name is missing (for the check's own error).
  const std::string* key = nullptr;
};

// The rules a check's results are judged by (daemon/engine/evaluator.h).
struct EvalRules {
  std::optional<Threshold> warn;
  std::optional<Threshold> crit;
  TripRule trip;
  int recover = 1;
  std::optional<Duration> repeat;
};

// Settings every check has, already validated, handed to the factory.
struct CheckCommon {
  std::string name;
  std::string type;
  Duration every{30'000};
  Duration timeout{10'000};
  std::string connection;  // mysql_* only: "" means [mysql]
  bool has_thresholds = false;   // warn or crit is set
};

class Check {
 public:
  Check() = default;
  virtual ~Check() = default;
  Check(const Check&) = delete;
  Check& operator=(const Check&) = delete;

  using Done = std::function<void(Measurement)>;
  // Starts one run. Loop thread only; must not block. Calls `done` exactly
  // once on the loop thread (possibly from inside Run). The scheduler never
  // starts a check again while its previous run is in flight.
  virtual void Run(Runtime& rt, Done done) = 0;

  // A check whose run only reads a shared snapshot says which one: the
  // scheduler then asks for it once for all such checks due together (one
  // completion, not one per check) and has each read its result from it
  // with ReadFrom, which must give what Run would have given with that
  // snapshot. Run stays the way to run the check on its own.
  virtual SharedRead shared_read() const { return {}; }
  using Snapshot = SharedSource::Snapshot;
  // The result in `snapshot`: when it is a value as it stands there (the
  // usual case), that value, a view into the snapshot, and nothing is
  // built; otherwise (not found, a rate...) nullopt with the result in
  // `otherwise`. Either is the result at the snapshot's time.
  virtual std::optional<std::string_view> ReadFrom(const NamedValues& snapshot,
                                                   Measurement& otherwise);
};

// What a shared read gives a check that reads it with `read` (a
// ReadFrom): the read's error, or `read`'s value or other result, at the
// snapshot's time. For completions that outlive their check (Run).
Measurement MeasureSnapshot(
    const Check::Snapshot& snapshot,
    const std::function<std::optional<std::string_view>(const NamedValues&, Measurement&)>& read);

struct CheckType {
  const char* name;      // the `type = ...` word
  const char* summary;   // one line for docs and errors
  bool uses_mysql;       // accepts `connection = NAME`
  // The type's own keys, as data (daemon/base/options.h): what the loader
  // checks before `make` runs (missing, unknown, of the wrong kind), the
  // defaults `make` reads, and what `wardenctl help check TYPE` prints.
  std::span<const OptionSpec> options;
  // A [check NAME] section of this type that validates as it stands (with
  // a [mysql] and a [mutex]), for `wardenctl help` and the tests.
  const char* example;
  // Validates what the table cannot (values against each other, paths)
  // and builds the check, reading its keys through `opts`, where the table
  // is declared. Does no I/O. May return nullptr after reporting.
  std::unique_ptr<Check> (*make)(OptionReader& opts, const CheckCommon& common);
  // Its results carry a verdict of their own (Measurement::level: nagios),
  // so on_warn and on_crit may fire without a warn or crit threshold.
  bool own_verdict = false;
};

// Builds a check of `type` from `opts` the way the config loader does:
// declares the type's table on `opts`, then calls its factory. The caller
// reads the common keys before and calls opts.Finish() after.
std::unique_ptr<Check> BuildCheck(const CheckType& type, OptionReader& opts,
                                  const CheckCommon& common);

// The keys every check has besides its type's own (type, every, warn,
// on_crit, ...), as data for `wardenctl help` and the tests; the config
// loader reads them (daemon/config/check_config.cc), with the checks between
// them that no table says. `connection` is for mysql types only.
std::span<const OptionSpec> CheckCommonOptions();

// The built-in check types (checks/registry.cc).
const std::vector<CheckType>& CheckTypes();
const CheckType* FindCheckType(std::string_view name);

// Runs `measure` on the worker pool (lane `lane`), with `timeout` as its
// queueing deadline, and delivers the result on the loop. If the job could
// not start before the deadline, delivers an error saying so.
void RunBlocking(Runtime& rt, std::string lane, Duration timeout,
                 std::function<Measurement()> measure, Check::Done done);

}  // namespace warden
