// One question to a MutexClient on libev's default loop, for the mutex
// client tests (HTTP and etcd backends).
#pragma once

#include <catch2/catch.hpp>
#include <optional>
#include <utility>

#include "daemon/io/mutex_client.h"
#include "tests/support/run_loop.h"

namespace warden::testing {

// Queries `client`, checks that the answer does not come inside the call,
// and runs the loop until it comes (30 s at most).
inline MutexAnswer AskMutex(MutexClient& client) {
  std::optional<MutexAnswer> got;
  bool returned = false;
  bool inside = false;
  client.Query([&](MutexAnswer a) {
    if (!returned) inside = true;
    got = std::move(a);
  });
  returned = true;
  CHECK_FALSE(inside);
  REQUIRE(RunUntil([&] { return got.has_value(); }, 30));
  return *got;
}

}  // namespace warden::testing
