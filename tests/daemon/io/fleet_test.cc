// Fleet slots against a real etcd: one winner among concurrent acquirers,
// resuming with our own slot, the fleet mutex stopping an acquire, release
// only when the slot is still ours, and etcd gone.
#include "daemon/io/fleet.h"

#include <ev.h>

#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "tests/support/etcd_test_server.h"
#include "tests/support/run_loop.h"

using namespace warden;
using testing::EtcdTestServer;

namespace {

using warden::testing::RunUntil;

FleetConfig Config(const EtcdTestServer& etcd) {
  FleetConfig c;
  c.enabled = true;
  c.etcd.endpoints = {etcd.endpoint()};
  c.etcd.timeout = Duration(5000);
  c.prefix = "/warden";
  return c;
}

SlotOutcome AcquireOnce(FleetSlots& f, const std::string& group, int capacity) {
  std::optional<SlotOutcome> got;
  f.Acquire(group, capacity, "upgrade", [&](SlotOutcome o) { got = std::move(o); });
  REQUIRE(RunUntil([&] { return got.has_value(); }, 20));
  return *got;
}

}  // namespace

TEST_CASE("20 concurrent acquirers of 1 slot: exactly one wins", "[fleet][etcd]") {
  EtcdTestServer etcd;
  std::vector<std::unique_ptr<FleetSlots>> hosts;
  for (int i = 0; i < 20; ++i) {
    hosts.push_back(std::make_unique<FleetSlots>(EV_DEFAULT, Config(etcd),
                                                 "db-" + std::to_string(i)));
  }
  std::vector<std::optional<SlotOutcome>> got(hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    hosts[i]->Acquire("chain-a", 1, "upgrade", [&got, i](SlotOutcome o) { got[i] = std::move(o); });
  }
  REQUIRE(RunUntil(
      [&] {
        for (const auto& g : got) {
          if (!g) return false;
        }
        return true;
      },
      30));
  int winners = 0;
  std::string winner;
  for (size_t i = 0; i < got.size(); ++i) {
    INFO(i << ": " << got[i]->error);
    CHECK(got[i]->kind != SlotOutcome::Kind::kError);
    if (got[i]->kind == SlotOutcome::Kind::kAcquired) {
      ++winners;
      winner = "db-" + std::to_string(i);
      CHECK(got[i]->key == "/warden/slots/chain-a/0");
    } else {
      CHECK(got[i]->kind == SlotOutcome::Kind::kFull);
    }
  }
  CHECK(winners == 1);
  auto stored = etcd.Get("/warden/slots/chain-a/0");
  REQUIRE(stored);
  auto v = nlohmann::json::parse(*stored);
  CHECK(v["host"] == winner);
  CHECK(v["job"] == "upgrade");
  // With capacity 3 the next two get slots 1 and 2, the rest wait.
  int more = 0;
  for (size_t i = 0; i < hosts.size() && more < 5; ++i) {
    if ("db-" + std::to_string(i) == winner) continue;
    SlotOutcome o = AcquireOnce(*hosts[i], "chain-a", 3);
    if (more < 2) {
      CHECK(o.kind == SlotOutcome::Kind::kAcquired);
    } else {
      CHECK(o.kind == SlotOutcome::Kind::kFull);
      CHECK(o.holders.size() == 3);
    }
    ++more;
  }
}

TEST_CASE("a host that holds a slot resumes with it; release only if still ours",
          "[fleet][etcd]") {
  EtcdTestServer etcd;
  FleetSlots a(EV_DEFAULT, Config(etcd), "db-a");
  FleetSlots b(EV_DEFAULT, Config(etcd), "db-b");
  SlotOutcome first = AcquireOnce(a, "g", 1);
  REQUIRE(first.kind == SlotOutcome::Kind::kAcquired);
  CHECK_FALSE(first.resumed);
  SlotOutcome again = AcquireOnce(a, "g", 1);
  REQUIRE(again.kind == SlotOutcome::Kind::kAcquired);
  CHECK(again.resumed);
  CHECK(again.key == first.key);
  CHECK(again.value == first.value);
  SlotOutcome other = AcquireOnce(b, "g", 1);
  CHECK(other.kind == SlotOutcome::Kind::kFull);
  REQUIRE(other.holders.size() == 1);
  CHECK(other.holders[0].host == "db-a");
  CHECK(other.holders[0].index == 0);

  // An operator replaced the value: not ours any more, nothing deleted.
  etcd.Put(first.key, R"({"host":"db-z","job":"x","since":"now"})");
  std::optional<bool> deleted;
  a.Release(first.key, first.value, [&](Status s, bool d) {
    CHECK(s.ok());
    deleted = d;
  });
  REQUIRE(RunUntil([&] { return deleted.has_value(); }, 20));
  CHECK_FALSE(*deleted);
  CHECK(etcd.Get(first.key));
  // Ours: deleted, and the next host gets it.
  etcd.Put(first.key, first.value);
  deleted.reset();
  a.Release(first.key, first.value, [&](Status s, bool d) {
    CHECK(s.ok());
    deleted = d;
  });
  REQUIRE(RunUntil([&] { return deleted.has_value(); }, 20));
  CHECK(*deleted);
  CHECK_FALSE(etcd.Get(first.key));
  CHECK(AcquireOnce(b, "g", 1).kind == SlotOutcome::Kind::kAcquired);
}

TEST_CASE("the fleet mutex stops an acquire, and etcd gone is an error", "[fleet][etcd]") {
  EtcdTestServer etcd;
  FleetSlots a(EV_DEFAULT, Config(etcd), "db-a");
  etcd.Put("/warden/mutex", "rollout stopped by ops");
  SlotOutcome halted = AcquireOnce(a, "g", 2);
  CHECK(halted.kind == SlotOutcome::Kind::kHalted);
  CHECK(halted.error.find("rollout stopped by ops") != std::string::npos);
  CHECK_FALSE(etcd.Get("/warden/slots/g/0"));
  etcd.Delete("/warden/mutex");
  CHECK(AcquireOnce(a, "g", 2).kind == SlotOutcome::Kind::kAcquired);

  etcd.Stop();
  FleetSlots b(EV_DEFAULT, Config(etcd), "db-b");
  SlotOutcome down = AcquireOnce(b, "g", 2);
  CHECK(down.kind == SlotOutcome::Kind::kError);
  CHECK(down.error.find("etcd") != std::string::npos);
  std::optional<Status> released;
  b.Release("/warden/slots/g/0", "x", [&](Status s, bool) { released = s; });
  REQUIRE(RunUntil([&] { return released.has_value(); }, 20));
  CHECK_FALSE(released->ok());
  CHECK(released->message().find("cannot release /warden/slots/g/0") != std::string::npos);
}
