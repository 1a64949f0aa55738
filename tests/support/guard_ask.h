// One question to a Guard without a mutex client (it answers at once), and
// the action it is asked about, for the guard and pause tests.
#pragma once

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <utility>

#include "daemon/engine/guard.h"

namespace warden::testing {

// The guard's decision on running `a` (for `check`, when a check triggers it).
inline GuardDecision AskGuard(Guard& g, const ActionCommon& a, const std::string& check = "") {
  std::optional<GuardDecision> d;
  g.Consult(a, [&](GuardDecision x) { d = std::move(x); }, check);
  REQUIRE(d);
  return *d;
}

// An exec action named `name`, no limits set.
inline ActionCommon ExecAction(const char* name) {
  ActionCommon a;
  a.name = name;
  a.type = "exec";
  return a;
}

}  // namespace warden::testing
