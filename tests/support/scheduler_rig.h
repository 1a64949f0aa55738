// A Scheduler with what it needs (an event log in a temporary directory, a
// guard with no mutex, an Executor) on a given Runtime: for tests that
// drive the scheduler on their own loop and checks.
#pragma once

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "daemon/events.h"
#include "daemon/executor.h"
#include "daemon/guard.h"
#include "daemon/runtime.h"
#include "daemon/scheduler.h"
#include "support/temp_dir.h"

namespace warden::testing {

struct SchedulerRig {
  TempDir dir;
  EventLog events;
  Guard guard{nullptr};
  std::unique_ptr<Executor> executor;
  std::unique_ptr<Scheduler> scheduler;

  // Sets rt.events; rt.loop (and what the checks use) is the caller's.
  explicit SchedulerRig(Runtime& rt) {
    REQUIRE(events.Open(dir / "events.jsonl", dir.path(), "test").ok());
    rt.events = &events;
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

}  // namespace warden::testing
