#include "checks/mysql_status.h"

#include <cctype>
#include <charconv>
#include <chrono>

#include "daemon/mysql.h"

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

struct Sample {
  std::string value;
  Clock::time_point at;
};

class MysqlStatusCheck final : public Check {
 public:
  MysqlStatusCheck(std::string connection, std::string variable, bool rate)
      : connection_(std::move(connection)), rate_(rate) {
    auto names = std::make_shared<Names>();
    names->variable = std::move(variable);
    names->key = names->variable;
    for (auto& ch : names->key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    names_ = std::move(names);
  }

  void Run(Runtime& rt, Done done) override {
    if (!rt.mysql) {
      done(Measurement::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    // The completion may outlive this object (a reload): it holds the
    // names and the sample state, never `this`.
    rt.mysql->GlobalStatus(
        connection_, [names = names_, rate = rate_, last = last_,
                      done = std::move(done)](Expected<std::shared_ptr<const MysqlMap>> status) {
          const std::string& variable = names->variable;
          if (!status) {
            done(Measurement::Error(status.error()));
            return;
          }
          auto it = (*status)->find(names->key);
          if (it == (*status)->end()) {
            done(Measurement::Error("no status variable '" + variable + "' in SHOW GLOBAL STATUS"));
            return;
          }
          if (!rate) {
            done(Measurement::Value(it->second));
            return;
          }
          if (!ParseNumber(it->second)) {
            done(Measurement::Error("'" + variable + "' is '" + it->second +
                                    "', not a counter: rate = yes needs a number"));
            return;
          }
          Sample now{it->second, Clock::now()};
          std::optional<Sample> before = std::move(*last);
          *last = now;
          if (!before) {
            done(Measurement::NotYet("a rate needs two samples"));
            return;
          }
          double seconds = std::chrono::duration<double>(now.at - before->at).count();
          if (seconds <= 0) {
            *last = before;  // same instant: keep the older sample
            done(Measurement::NotYet("no time passed since the previous sample"));
            return;
          }
          auto r = CounterRate(before->value, now.value, seconds);
          if (!r) {
            done(Measurement::NotYet("'" + variable + "' went down from " + before->value + " to " +
                                     now.value + " (server restarted or FLUSH STATUS)"));
            return;
          }
          done(Measurement::Number(*r));
        });
  }

 private:
  // The variable as configured and lower-cased (the snapshot's key), made
  // once: a run only copies this pointer.
  struct Names {
    std::string variable;
    std::string key;
  };
  const std::string connection_;
  std::shared_ptr<const Names> names_;
  const bool rate_;
  // Loop thread only; shared with in-flight completions.
  std::shared_ptr<std::optional<Sample>> last_ = std::make_shared<std::optional<Sample>>();
};

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  std::string variable =
      opts.Required("variable", "a SHOW GLOBAL STATUS name, e.g. Threads_running");
  bool rate = opts.GetBool("rate").value_or(false);
  if (variable.empty()) return nullptr;
  return std::make_unique<MysqlStatusCheck>(common.connection, variable, rate);
}

}  // namespace

const CheckType kMysqlStatusCheckType = {
    "mysql_status", "a SHOW GLOBAL STATUS value, or its per-second rate (rate = yes)", true, &Make};

}  // namespace warden
