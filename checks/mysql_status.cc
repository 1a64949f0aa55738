#include "checks/mysql_status.h"

#include <cctype>
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "daemon/io/mysql.h"

namespace warden {

std::optional<double> CounterRate(const std::string& previous, const std::string& current,
                                  double seconds) {
  std::string_view p = Trim(previous), c = Trim(current);
  std::uint64_t pu = 0, cu = 0;
  auto pr = std::from_chars(p.data(), p.data() + p.size(), pu);
  auto cr = std::from_chars(c.data(), c.data() + c.size(), cu);
  if (pr.ec == std::errc() && pr.ptr == p.data() + p.size() && cr.ec == std::errc() &&
      cr.ptr == c.data() + c.size()) {
    if (cu < pu) return std::nullopt;
    return static_cast<double>(cu - pu) / seconds;
  }
  auto pd = ParseNumber(p), cd = ParseNumber(c);
  if (!pd || !cd || *cd < *pd) return std::nullopt;
  return (*cd - *pd) / seconds;
}

namespace {

using Clock = std::chrono::steady_clock;

// SHOW GLOBAL STATUS on a connection, for the scheduler's shared reads.
class StatusSource final : public SharedSource {
 public:
  void Read(Runtime& rt, const std::string& scope, std::shared_ptr<const NameSet> names,
            Done done) const override {
    if (!rt.mysql) {
      done(Snapshot::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    rt.mysql->GlobalStatus(scope, std::move(names), std::move(done));
  }
};
const StatusSource kStatusSource;

struct Sample {
  std::string value;
  Clock::time_point at;
};

class MysqlStatusCheck final : public Check {
 public:
  MysqlStatusCheck(std::string connection, std::string variable, bool rate)
      : connection_(std::move(connection)), state_(std::make_shared<State>()) {
    state_->variable = std::move(variable);
    state_->key = state_->variable;
    for (auto& ch : state_->key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    state_->rate = rate;
    own_names_ = NameSet::Of({state_->key});
  }

  void Run(Runtime& rt, Done done) override {
    if (!rt.mysql) {
      done(Measurement::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    // The completion may outlive this object (a reload): it holds the
    // state, never `this`.
    auto measure = [state = state_, done = std::move(done)](const Snapshot& status) {
      done(MeasureSnapshot(status, [s = state.get()](const MysqlMap& map, Measurement& otherwise) {
        return s->Read(map, otherwise);
      }));
    };
    // 48 bytes: queued in place, without an allocation (SharedDone).
    static_assert(MysqlReads::SharedDone<MysqlMap>::kInPlace<decltype(measure)>);
    rt.mysql->GlobalStatus(connection_, own_names_, std::move(measure));
  }

  SharedRead shared_read() const override {
    return {&kStatusSource, &connection_, std::span<const std::string>(&state_->key, 1),
            state_->rate ? nullptr : &state_->key};
  }
  std::optional<std::string_view> ReadFrom(const NamedValues& status,
                                           Measurement& otherwise) override {
    return state_->Read(status, otherwise);
  }

 private:
  // What a run needs, made once and shared with the runs in flight: the
  // variable as configured and lower-cased (the snapshot's key), where it
  // was in the last snapshot, and the last sample for a rate. Loop thread
  // only.
  struct State {
    // What every run reads first (the scheduler reads a plain value with
    // a hint of its own: this one is for rates and Run).
    MysqlMap::Hint hint;
    bool rate = false;
    std::string variable;
    std::string key;
    std::optional<Sample> last;

    // ReadFrom: the value itself, or (a missing name, a rate) the result
    // in `otherwise`.
    std::optional<std::string_view> Read(const MysqlMap& status, Measurement& otherwise) {
      const auto value = status.get(key, &hint);
      if (value && !rate) return value;
      otherwise = Otherwise(value, status.taken);
      return std::nullopt;
    }

    // Out of line: the usual result never comes here.
    [[gnu::noinline]] Measurement Otherwise(std::optional<std::string_view> found,
                                            Clock::time_point taken) {
      if (!found) {
        return Measurement::Error("no status variable '" + variable + "' in SHOW GLOBAL STATUS");
      }
      const std::string_view value = *found;
      if (!ParseNumber(value)) {
        return Measurement::Error("'" + variable + "' is '" + std::string(value) +
                                  "', not a counter: rate = yes needs a number");
      }
      Sample now{std::string(value), taken};
      std::optional<Sample> before = std::move(last);
      last = now;
      if (!before) return Measurement::NotYet("a rate needs two samples");
      double seconds = std::chrono::duration<double>(now.at - before->at).count();
      if (seconds <= 0) {
        last = before;  // same instant: keep the older sample
        return Measurement::NotYet("no time passed since the previous sample");
      }
      auto r = CounterRate(before->value, now.value, seconds);
      if (!r) {
        return Measurement::NotYet("'" + variable + "' went down from " + before->value + " to " +
                                   now.value + " (server restarted or FLUSH STATUS)");
      }
      return Measurement::Number(*r);
    }
  };
  const std::string connection_;
  const std::shared_ptr<State> state_;
  std::shared_ptr<const NameSet> own_names_;   // a run on its own reads this name only
};

constexpr OptionSpec kOptions[] = {
    opt::Text("variable", "a SHOW GLOBAL STATUS name, e.g. Threads_running").Required(),
    opt::Bool("rate",
              "yes: the counter's increase per second instead of its value (the first sample "
              "gives none)")
        .Default("no"),
};

constexpr const char* kExample = R"([check slow_queries_per_s]
type     = mysql_status
variable = Slow_queries
rate     = yes
warn     = > 5
)";

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  auto variable = opts.Text("variable");
  auto rate = opts.GetBool("rate");
  if (!variable || !rate) return nullptr;
  return std::make_unique<MysqlStatusCheck>(common.connection, *variable, *rate);
}

}  // namespace

const CheckType kMysqlStatusCheckType = {
    "mysql_status", "a SHOW GLOBAL STATUS value, or its per-second rate (rate = yes)", true,
    kOptions, kExample, &Make};

}  // namespace warden
