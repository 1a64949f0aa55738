// A Scheduler with what it needs (an event log in a temporary directory, a
// guard with no mutex, an Executor) on a given Runtime: for tests that
// drive the scheduler on their own loop and checks. LoopRig: the same on a
// private loop of its own.
#pragma once

#include <ev.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "daemon/engine/events.h"
#include "daemon/engine/executor.h"
#include "daemon/engine/guard.h"
#include "daemon/engine/scheduler.h"
#include "daemon/io/runtime.h"
#include "tests/support/temp_dir.h"

namespace warden::testing {

struct SchedulerRig {
  TempDir dir;
  EventLog events;
  Guard guard{nullptr};
  std::unique_ptr<Executor> executor;
  std::unique_ptr<Scheduler> scheduler;

  // Sets rt.host; rt.loop (and what the checks use) is the caller's.
  explicit SchedulerRig(Runtime& rt) {
    REQUIRE(events.Open(dir / "events.jsonl", dir.path(), "test").ok());
    rt.host = "test";
    executor = std::make_unique<Executor>(rt, guard, events);
    scheduler = std::make_unique<Scheduler>(rt, *executor, events);
  }
  ~SchedulerRig() { scheduler.reset(); }
  SchedulerRig(const SchedulerRig&) = delete;
  SchedulerRig& operator=(const SchedulerRig&) = delete;

  Scheduler::CheckStatus Get(const std::string& name) {
    for (auto& s : scheduler->Status()) {
      if (s.name == name) return s;
    }
    FAIL("no check " << name);
    return {};
  }
};

// A private loop and its Runtime, made before the SchedulerRig on them.
struct LoopRuntime {
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  Runtime rt;
  LoopRuntime() { rt.loop = loop; }
  ~LoopRuntime() { ev_loop_destroy(loop); }
  LoopRuntime(const LoopRuntime&) = delete;
  LoopRuntime& operator=(const LoopRuntime&) = delete;
};

struct LoopRig : LoopRuntime, SchedulerRig {
  LoopRig() : SchedulerRig(rt) {}
  // Lets what is ready on the loop run, without waiting.
  void Spin() {
    for (int i = 0; i < 5; ++i) ev_run(loop, EVRUN_NOWAIT);
  }
};

}  // namespace warden::testing
