// Helpers for action tests: build an action from key/values the way the
// config loader does (the type's factory, then Finish), and run it on the
// libev default loop (ev_child needs it) with a real WorkerPool and
// ProcessRunner. Loop thread = the test's thread.
#pragma once

#include <ev.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "actions/action.h"
#include "daemon/base/ini.h"
#include "daemon/base/options.h"
#include "daemon/config/config.h"
#include "daemon/io/process.h"
#include "daemon/io/runtime.h"
#include "daemon/io/worker_pool.h"
#include "tests/support/run_loop.h"

namespace warden::testing {

using Keys = std::vector<std::pair<std::string, std::string>>;

// An [action t] section at test.ini line 1, one key per following line
// (the first key is on line 2).
inline RawSection ActionSection(const Keys& keys) {
  RawSection s;
  s.kind = "action";
  s.name = "t";
  s.where = Location{"test.ini", 1};
  int line = 2;
  for (const auto& [k, v] : keys) {
    int continued = v.find('\n') != std::string::npos ? line + 1 : 0;
    s.entries.push_back(ConfigEntry{k, v, Location{"test.ini", line}, continued});
    line += 1 + static_cast<int>(std::count(v.begin(), v.end(), '\n'));
  }
  return s;
}

struct BuiltAction {
  std::unique_ptr<Action> action;
  std::vector<std::string> errors;
  std::string error() const {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
    return all;
  }
};

inline ActionCommon Common(const std::string& type) {
  ActionCommon c;
  c.name = "t";
  c.type = type;
  return c;
}

inline BuiltAction MakeAction(const std::string& type, const Keys& keys) {
  BuiltAction b;
  const ActionType* t = FindActionType(type);
  if (!t) {
    b.errors.push_back("no action type " + type);
    return b;
  }
  RawSection s = ActionSection(keys);
  Diagnostics diag;
  OptionReader opts(s, diag);
  b.action = BuildAction(*t, opts, Common(type));
  opts.Finish("action type " + type);
  b.errors = diag.errors();
  return b;
}

// A loop, two workers, a process runner, a Config and the Runtime over them.
struct ActionHarness {
  struct ev_loop* loop = EV_DEFAULT;
  WorkerPool workers{loop, 2};
  ProcessRunner processes{loop};
  Runtime rt;

  ActionHarness() {
    rt.loop = loop;
    rt.workers = &workers;
    rt.processes = &processes;
  }

  ActionOutcome Run(Action& action, const ActionCommon& common, const Trigger& trigger = {}) {
    std::optional<ActionOutcome> out;
    action.Run(rt, common, trigger, [&](ActionOutcome o) { out = std::move(o); });
    if (!PumpUntil(loop, [&] { return out.has_value(); })) {
      ActionOutcome never;
      never.error = "the action did not finish within 20s";
      return never;
    }
    return std::move(*out);
  }
};

}  // namespace warden::testing
