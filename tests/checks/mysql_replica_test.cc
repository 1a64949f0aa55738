// heartbeat_lag's pure parts and its keys; against a real replica in
// tests/integration/test_replica.py.
#include "checks/mysql_replica.h"

#include <catch2/catch.hpp>

#include "tests/support/check_harness.h"

using warden::Expected;
using warden::MysqlRows;
using warden::testing::MakeCheck;
using warden::testing::Show;

namespace {

MysqlRows Status(const std::string& column, std::optional<std::string> value) {
  MysqlRows r;
  r.columns = {"Connection_name", column};
  r.rows = {{std::string(""), std::move(value)}};
  return r;
}

MysqlRows One(std::optional<std::string> cell) {
  MysqlRows r;
  r.columns = {"lag_us"};
  r.rows = {{std::move(cell)}};
  return r;
}

}  // namespace

TEST_CASE("heartbeat_lag: the source id, the query and the lag", "[checks][mysql]") {
  auto id = warden::ReplicaSourceId(Status("Master_Server_Id", "7"), "");
  REQUIRE(id);
  CHECK(*id == 7);
  CHECK(*warden::ReplicaSourceId(Status("Source_Server_Id", "9"), "") == 9);
  auto zero = warden::ReplicaSourceId(Status("Master_Server_Id", "0"), "");
  REQUIRE_FALSE(zero);
  CHECK(zero.error().find("has not connected to its source yet") != std::string::npos);
  CHECK_FALSE(warden::ReplicaSourceId(MysqlRows{}, ""));

  CHECK(warden::HeartbeatSql("percona.heartbeat", 7, true) ==
        "SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) FROM percona.heartbeat "
        "WHERE server_id = 7");
  CHECK(warden::HeartbeatSql("hb.beat", 7, false).find("NOW(6)") != std::string::npos);

  CHECK(Show(warden::HeartbeatLag(One("2500000"), "percona.heartbeat", 7)) == "value 2.500");
  // From the future (clocks apart): 0, not a negative lag.
  CHECK(Show(warden::HeartbeatLag(One("-300"), "percona.heartbeat", 7)) == "value 0.000");
  CHECK(Show(warden::HeartbeatLag(MysqlRows{{"x"}, {}}, "percona.heartbeat", 7))
            .find("no heartbeat in percona.heartbeat for server_id 7") != std::string::npos);
  CHECK(Show(warden::HeartbeatLag(One(std::nullopt), "percona.heartbeat", 7))
            .find("has no readable ts (NULL)") != std::string::npos);
  CHECK(Show(warden::HeartbeatLag(Expected<MysqlRows>::Error("ERROR 1146 (42S02): Table "
                                                              "'percona.heartbeat' doesn't exist"),
                                  "percona.heartbeat", 7)) ==
        "error heartbeat table percona.heartbeat: ERROR 1146 (42S02): Table "
        "'percona.heartbeat' doesn't exist");
}

TEST_CASE("heartbeat_lag: its keys are checked", "[checks][mysql]") {
  CHECK(MakeCheck("mysql_replica", {{"field", "heartbeat_lag"}}).errors.empty());
  CHECK(MakeCheck("mysql_replica", {{"field", "heartbeat_lag"},
                                    {"heartbeat_table", "hb.beat"},
                                    {"heartbeat_server_id", "12"},
                                    {"heartbeat_utc", "no"}})
            .errors.empty());
  auto bad = MakeCheck("mysql_replica", {{"field", "heartbeat_lag"},
                                         {"heartbeat_table", "beat; DROP TABLE x"}});
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].find("heartbeat_table must be DATABASE.TABLE") != std::string::npos);
  auto misplaced = MakeCheck("mysql_replica", {{"field", "lag"}, {"heartbeat_table", "a.b"}});
  REQUIRE(misplaced.errors.size() == 1);
  CHECK(misplaced.errors[0].find("heartbeat_table is for field = heartbeat_lag") !=
        std::string::npos);
}
