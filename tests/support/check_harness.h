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
#include "tests/support/run_loop.h"

namespace warden::testing {

// A [check t] section at test.ini line 1, one key per following line.
inline RawSection CheckSection(const std::vector<std::pair<std::string, std::string>>& keys) {
  RawSection s;
  s.kind = "check";
  s.name = "t";
  s.where = Location{"test.ini", 1};
  int line = 2;
  for (const auto& [k, v] : keys)
    s.entries.push_back(ConfigEntry{k, v, Location{"test.ini", line++}, 0});
  return s;
}

struct BuiltCheck {
  std::unique_ptr<Check> check;
  std::vector<std::string> errors;
};

// Validates like the config loader: the type's table and factory, then Finish().
inline BuiltCheck MakeCheck(const std::string& type,
                       const std::vector<std::pair<std::string, std::string>>& keys,
                       CheckCommon common = {}) {
  BuiltCheck b;
  const CheckType* t = FindCheckType(type);
  if (!t) {
    b.errors.push_back("no check type " + type);
    return b;
  }
  RawSection s = CheckSection(keys);
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
struct CheckHarness {
  struct ev_loop* loop = EV_DEFAULT;
  WorkerPool workers{loop, 2};
  Runtime rt;

  CheckHarness() {
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

}  // namespace warden::testing
