#include "checks/check.h"

#include <cmath>
#include <cstdio>
#include <exception>
#include <optional>

#include "daemon/io/mysql.h"
#include "daemon/io/worker_pool.h"

namespace warden {

std::optional<std::string_view> Check::ReadFrom(const NamedValues&, Measurement& otherwise) {
  otherwise = Measurement::Error("internal error: this check reads no shared snapshot");
  return std::nullopt;
}

Measurement MeasureSnapshot(
    const Check::Snapshot& snapshot,
    const std::function<std::optional<std::string_view>(const NamedValues&, Measurement&)>& read) {
  if (!snapshot) return Measurement::Error(snapshot.failure());
  Measurement m;
  if (auto value = read(**snapshot, m)) m = Measurement::Value(*value);
  m.at = (*snapshot)->taken;
  return m;
}

Measurement Measurement::Number(double v) {
  if (!std::isfinite(v)) return Error("value is not a finite number");
  if (v == 0) return Value("0");  // also -0
  char buf[64];
  // Integers (exactly representable) print without decimals.
  if (std::fabs(v) < 1e15 && v == std::trunc(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return Value(buf);
  }
  // Otherwise at most 6 decimals; below 1, 6 significant digits so that
  // small rates do not collapse to 0; trailing zeros dropped.
  int decimals = 6;
  double mag = std::fabs(v);
  if (mag < 1) {
    int leading_zeros = static_cast<int>(std::floor(-std::log10(mag)));
    decimals = std::min(6 + leading_zeros, 17);
  }
  if (mag >= 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  std::string s(buf);
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return Value(std::move(s));
}

void RunBlocking(Runtime& rt, std::string lane, Duration timeout,
                 std::function<Measurement()> measure, Check::Done done) {
  if (!rt.workers) {
    done(Measurement::Error("internal error: no worker pool"));
    return;
  }
  // Written on the worker, read on the loop after the pool's hand-over
  // (which orders the two through its mutex).
  auto out = std::make_shared<std::optional<Measurement>>();
  rt.workers->Submit(
      std::move(lane), WorkerPool::Clock::now() + timeout,
      [out, measure = std::move(measure)]() -> bool {
        try {
          *out = measure();
        } catch (const std::exception& e) {
          *out = Measurement::Error(std::string("internal error: ") + e.what());
        } catch (...) {
          *out = Measurement::Error("internal error: unknown exception");
        }
        return (*out)->kind != Measurement::Kind::kError;
      },
      [out, timeout, done = std::move(done)](bool ran) {
        if (!ran) {
          done(Measurement::Error(Status::Transient("not started within " +
                                                    FormatDuration(timeout) +
                                                    ": all workers busy")));
        } else if (!*out) {
          done(Measurement::Error("internal error: check ended without a result"));
        } else {
          done(std::move(**out));
        }
      });
}

}  // namespace warden
