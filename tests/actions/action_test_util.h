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

namespace warden::action_test {

inline void Tick(struct ev_loop*, ev_timer*, int) {}

// Runs `loop` until `until()` holds or `limit` passes; returns until().
inline bool PumpUntil(struct ev_loop* loop, const std::function<bool()>& until,
                      std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  ev_timer tick;
  ev_timer_init(&tick, &Tick, 0.01, 0.01);
  ev_timer_start(loop, &tick);
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!until() && std::chrono::steady_clock::now() < deadline) ev_run(loop, EVRUN_ONCE);
  ev_timer_stop(loop, &tick);
  return until();
}

using Keys = std::vector<std::pair<std::string, std::string>>;

// An [action t] section at test.ini line 1, one key per following line
// (the first key is on line 2).
inline RawSection Section(const Keys& keys) {
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

struct Built {
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

inline Built MakeAction(const std::string& type, const Keys& keys) {
  Built b;
  const ActionType* t = FindActionType(type);
  if (!t) {
    b.errors.push_back("no action type " + type);
    return b;
  }
  RawSection s = Section(keys);
  Diagnostics diag;
  OptionReader opts(s, diag);
  b.action = BuildAction(*t, opts, Common(type));
  opts.Finish("action type " + type);
  b.errors = diag.errors();
  return b;
}

// A loop, two workers, a process runner, a Config and the Runtime over them.
struct Harness {
  struct ev_loop* loop = EV_DEFAULT;
  WorkerPool workers{loop, 2};
  ProcessRunner processes{loop};
  Runtime rt;

  Harness() {
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

}  // namespace warden::action_test
