// The pure parts of rollouts: the records as stored in etcd, parsed
// strictly (an error names the key and the value), and the decision a host
// makes from one read: may it start now?
#include "daemon/io/rollout.h"

#include <catch2/catch.hpp>

using namespace warden;

namespace {

Rollout Sample() {
  Rollout r;
  r.id = "20261207T101500Z-00aa";
  r.job = "upgrade";
  r.group = "chain-a";
  r.parallel = 1;
  r.reason = "MariaDB 10.11.9";
  r.created = "2026-12-07T10:15:00.000Z";
  r.by = "ops@bastion";
  r.hosts = {{"db-1", 1}, {"db-2", 1}, {"db-3", 2}};
  return r;
}

RolloutView View(Rollout r) {
  RolloutView v;
  v.rollout = std::move(r);
  v.mod_revision = 7;
  return v;
}

void Set(RolloutView& v, const std::string& host, const std::string& state, int step = 0) {
  RolloutHost h;
  h.state = state;
  h.step = step;
  h.steps = 2;
  if (state == "failed") h.error = "job.fail: exit status 1";
  v.hosts[host] = h;
  v.started.insert(host);
}

const std::string kKey = "/warden/rollouts/x";

}  // namespace

TEST_CASE("a rollout survives serialize and parse, its hosts in order") {
  Rollout r = Sample();
  r.hosts = {{"db-3", 2}, {"db-2", 1}, {"db-1", 1}};
  auto back = ParseRollout(kKey, r.id, r.Serialize());
  REQUIRE(back.ok());
  CHECK(back->job == "upgrade");
  CHECK(back->group == "chain-a");
  CHECK(back->state == "running");
  CHECK(back->by == "ops@bastion");
  REQUIRE(back->hosts.size() == 3);
  CHECK(back->hosts[0] == RolloutMember{"db-1", 1});
  CHECK(back->hosts[1] == RolloutMember{"db-2", 1});
  CHECK(back->hosts[2] == RolloutMember{"db-3", 2});
  Rollout stopped = *back;
  stopped.state = "stopped";
  stopped.why = "db-2 failed";
  auto again = ParseRollout(kKey, r.id, stopped.Serialize());
  REQUIRE(again.ok());
  CHECK(*again == stopped);
}

TEST_CASE("a malformed rollout is an error naming the key and the value") {
  struct Case {
    std::string value;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"upgrade please", "not JSON"},
      {"[1,2]", "not a JSON object"},
      {R"({"group":"g","parallel":1,"state":"running","hosts":[{"host":"a","order":1}]})",
       "no \"job\""},
      {R"({"job":"j","group":"g","parallel":0,"state":"running","hosts":[{"host":"a","order":1}]})",
       "\"parallel\" is not an integer from 1 to 10000"},
      {R"({"job":"j","group":"g","parallel":"2","state":"running","hosts":[{"host":"a","order":1}]})",
       "\"parallel\" is not an integer"},
      {R"({"job":"j","group":"g","parallel":1,"state":"paused","hosts":[{"host":"a","order":1}]})",
       "\"state\" 'paused' is not running, stopped, cancelled or done"},
      {R"({"job":"j","group":"g","parallel":1,"state":"running","hosts":[]})",
       "\"hosts\" is not a non-empty array"},
      {R"({"job":"j","group":"g","parallel":1,"state":"running","hosts":[{"host":"a"}]})",
       "\"hosts\": no \"order\""},
      {R"({"job":"j","group":"g","parallel":1,"state":"running","hosts":[{"host":"a","order":1},{"host":"a","order":2}]})",
       "\"hosts\": host a twice"},
      {R"({"job":"j/k","group":"g","parallel":1,"state":"running","hosts":[{"host":"a","order":1}]})",
       "\"job\" is not a job name"},
  };
  for (const auto& c : cases) {
    INFO(c.value);
    auto r = ParseRollout(kKey, "x", c.value);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().rfind(kKey + ": malformed rollout: ", 0) == 0);
    CHECK(r.error().find(c.says) != std::string::npos);
    CHECK(r.error().find("(value '" + c.value.substr(0, 20)) != std::string::npos);
  }
  // Long and binary values are cut and made printable.
  auto r = ParseRollout(kKey, "x", std::string(500, 'x') + "\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().size() < 320);
  CHECK(r.error().find('\n') == std::string::npos);
}

TEST_CASE("host and member records parse strictly") {
  RolloutHost h;
  h.state = "running";
  h.order = 3;
  h.step = 2;
  h.steps = 5;
  h.step_name = "upgrade_stop";
  h.since = "2026-12-07T10:15:00.000Z";
  auto back = ParseRolloutHost(kKey + "/hosts/a", h.Serialize());
  REQUIRE(back.ok());
  CHECK(*back == h);
  auto bad = ParseRolloutHost(kKey + "/hosts/a", R"({"state":"sleeping"})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error() == kKey + "/hosts/a: malformed rollout host: \"state\" 'sleeping' is not "
                              "running, done or failed (value '{\"state\":\"sleeping\"}')");

  MemberRecord m{"db-1", -2, {"upgrade", "rollback"}};
  auto mb = ParseMemberRecord("/warden/members/g/db-1", m.Serialize());
  REQUIRE(mb.ok());
  CHECK(mb->order == -2);
  CHECK(mb->jobs == std::vector<std::string>{"upgrade", "rollback"});
  auto mbad = ParseMemberRecord("/warden/members/g/db-1", R"({"host":"db-1","order":1,"jobs":"upgrade"})");
  REQUIRE_FALSE(mbad.ok());
  CHECK(mbad.error().find("/warden/members/g/db-1: malformed member: \"jobs\" is not an array") == 0);
}

TEST_CASE("ParseRollouts groups the keys of one read and reports the bad ones") {
  Rollout r = Sample();
  RolloutHost done;
  done.state = "done";
  std::vector<EtcdKv> kvs = {
      {"/warden/rollouts/" + r.id, r.Serialize(), 5, 9, 2},
      {"/warden/rollouts/" + r.id + "/started/db-1", "1", 6, 6, 1},
      {"/warden/rollouts/" + r.id + "/hosts/db-1", done.Serialize(), 6, 8, 2},
      {"/warden/rollouts/bad", "garbage", 3, 3, 1},
      {"/warden/rollouts/bad/hosts/db-1", done.Serialize(), 4, 4, 1},
      {"/warden/rollouts/orphan/hosts/db-1", done.Serialize(), 4, 4, 1},
      {"/warden/rollouts/" + r.id + "/hosts/db-2", "{}", 7, 7, 1},
  };
  std::vector<std::string> errors;
  auto views = ParseRollouts("/warden", kvs, &errors);
  REQUIRE(views.size() == 1);
  const RolloutView& v = views.at(r.id);
  CHECK(v.mod_revision == 9);
  CHECK(v.started == std::set<std::string>{"db-1"});
  CHECK(v.hosts.size() == 1);
  REQUIRE(errors.size() == 3);
  CHECK(errors[0] == "/warden/rollouts/bad: malformed rollout: not JSON (value 'garbage')");
  CHECK(errors[1] == "/warden/rollouts/orphan/hosts/db-1: no rollout /warden/rollouts/orphan for it");
  CHECK(errors[2].rfind("/warden/rollouts/" + r.id + "/hosts/db-2: malformed rollout host: no \"state\"", 0) == 0);
}

TEST_CASE("may I start: order first, then at most parallel, and never after a failure") {
  using K = RolloutDecision::Kind;
  RolloutView v = View(Sample());
  // Equal orders may run together, but parallel is 1.
  CHECK(DecideStart(v, "db-1").kind == K::kStart);
  CHECK(DecideStart(v, "db-2").kind == K::kStart);
  CHECK(DecideStart(v, "db-3").kind == K::kWait);
  CHECK(DecideStart(v, "db-3").why == "waiting for db-1 (order 1)");
  CHECK(DecideStart(v, "db-9").kind == K::kNotMember);
  CHECK(HostStateOf(v, "db-3") == RolloutHostState::kWaiting);
  CHECK(DescribeHost(v, "db-3") == "waiting");
  Set(v, "db-1", "running", 1);
  CHECK(DecideStart(v, "db-1").kind == K::kStarted);
  CHECK(DecideStart(v, "db-2").kind == K::kWait);
  CHECK(DecideStart(v, "db-2").why == "1 of 1 running");
  CHECK(DescribeHost(v, "db-1") == "running step 1/2");
  v.rollout.parallel = 2;
  CHECK(DecideStart(v, "db-2").kind == K::kStart);
  CHECK(DecideStart(v, "db-3").kind == K::kWait);   // order 2 waits for all of order 1
  Set(v, "db-1", "done");
  Set(v, "db-2", "done");
  CHECK(DecideStart(v, "db-3").kind == K::kStart);
  CHECK_FALSE(AllDone(v));
  Set(v, "db-3", "done");
  CHECK(AllDone(v));
}

TEST_CASE("a failure, a dead host, a cancel: no host that has not started starts") {
  using K = RolloutDecision::Kind;
  RolloutView v = View(Sample());
  Set(v, "db-1", "failed", 2);
  auto d = DecideStart(v, "db-2");
  CHECK(d.kind == K::kNever);
  CHECK(d.why == "stopped: db-1 failed at step 2/2: job.fail: exit status 1");
  // Not marked stopped yet, but no host will start: not started.
  CHECK(HostStateOf(v, "db-3") == RolloutHostState::kNotStarted);
  v.rollout.state = "stopped";
  CHECK(HostStateOf(v, "db-3") == RolloutHostState::kNotStarted);
  CHECK(std::string(RolloutHostStateName(HostStateOf(v, "db-3"))) == "not started");

  // Died: it took its place (started) and its leased record is gone.
  RolloutView dead = View(Sample());
  dead.started.insert("db-1");
  CHECK(HostStateOf(dead, "db-1") == RolloutHostState::kDied);
  std::string why;
  CHECK(FirstFailure(dead, &why) == "db-1");
  CHECK(DecideStart(dead, "db-2").kind == K::kNever);
  CHECK(DecideStart(dead, "db-1").kind == K::kStarted);   // never twice

  RolloutView cancelled = View(Sample());
  cancelled.rollout.state = "cancelled";
  cancelled.rollout.why = "cancelled by ops@bastion";
  CHECK(DecideStart(cancelled, "db-1").kind == K::kNever);
  CHECK(DecideStart(cancelled, "db-1").why == "rollout cancelled: cancelled by ops@bastion");
}

TEST_CASE("rollout ids are UTC time and 4 hex digits") {
  CHECK(NewRolloutId(1796638500123, 0x1234abcd) == "20261207T101500Z-abcd");
}
