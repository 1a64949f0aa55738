// Helpers for check tests: build a check from INI-like key/values the way
// the config loader does, and run it on the libev default loop (ev_child
// needs it) with a real WorkerPool. Loop thread = the test's thread.
#pragma once

#include <ev.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "checks/check.h"
#include "daemon/base/ini.h"
#include "daemon/base/options.h"
#include "daemon/io/runtime.h"
#include "daemon/io/worker_pool.h"

namespace warden::test {

inline void IgnoreTimer(struct ev_loop*, ev_timer*, int) {}

// Runs `loop` until `until()` holds or `limit` passes; returns until().
inline bool PumpUntil(struct ev_loop* loop, const std::function<bool()>& until,
                      std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  // A ticking timer keeps ev_run from returning at once (the worker pool
  // does not hold a reference on the loop) and lets us see the deadline.
  ev_timer tick;
  ev_timer_init(&tick, &IgnoreTimer, 0.01, 0.01);
  ev_timer_start(loop, &tick);
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!until() && std::chrono::steady_clock::now() < deadline) ev_run(loop, EVRUN_ONCE);
  ev_timer_stop(loop, &tick);
  return until();
}

// A [check t] section at test.ini line 1, one key per following line.
inline RawSection Section(const std::vector<std::pair<std::string, std::string>>& keys) {
  RawSection s;
  s.kind = "check";
  s.name = "t";
  s.where = Location{"test.ini", 1};
  int line = 2;
  for (const auto& [k, v] : keys)
    s.entries.push_back(ConfigEntry{k, v, Location{"test.ini", line++}, 0});
  return s;
}

struct Built {
  std::unique_ptr<Check> check;
  std::vector<std::string> errors;
};

// Validates like the config loader: the type's table and factory, then Finish().
inline Built MakeCheck(const std::string& type,
                       const std::vector<std::pair<std::string, std::string>>& keys,
                       CheckCommon common = {}) {
  Built b;
  const CheckType* t = FindCheckType(type);
  if (!t) {
    b.errors.push_back("no check type " + type);
    return b;
  }
  RawSection s = Section(keys);
  Diagnostics diag;
  OptionReader opts(s, diag);
  common.name = "t";
  common.type = type;
  b.check = BuildCheck(*t, opts, common);
  opts.Finish("check type " + type);
  b.errors = diag.errors();
  return b;
}

// A loop, two workers and a Runtime; add processes/mysql as needed.
struct Harness {
  struct ev_loop* loop = EV_DEFAULT;
  WorkerPool workers{loop, 2};
  Runtime rt;

  Harness() {
    rt.loop = loop;
    rt.workers = &workers;
  }

  // One run of `check`; fails the test if it does not finish in `limit`.
  Measurement Run(Check& check, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    std::optional<Measurement> got;
    check.Run(rt, [&got](Measurement m) { got = std::move(m); });
    if (!PumpUntil(
            loop, [&got] { return got.has_value(); }, limit)) {
      return Measurement::Error("test harness: the check did not finish in time");
    }
    return std::move(*got);
  }
};

inline const char* KindName(Measurement::Kind k) {
  switch (k) {
    case Measurement::Kind::kValue:
      return "value";
    case Measurement::Kind::kError:
      return "error";
    case Measurement::Kind::kNotYet:
      return "not-yet";
  }
  return "?";
}

// For INFO/CAPTURE: "value 12" / "error ...".
inline std::string Show(const Measurement& m) {
  return std::string(KindName(m.kind)) + " " +
         (m.kind == Measurement::Kind::kValue ? m.value : m.error);
}

}  // namespace warden::test
