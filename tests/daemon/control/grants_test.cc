#include "daemon/control/grants.h"

#include <catch2/catch.hpp>

using namespace warden;

namespace {

GrantSet SetOf(std::initializer_list<const char*> lines) {
  GrantSet set;
  for (const char* l : lines) {
    auto g = ParseGrantLine(l);
    REQUIRE(g.ok());
    set.Add(*g);
  }
  return set;
}

}  // namespace

TEST_CASE("privilege names are normalised across MySQL and MariaDB spellings", "[grants]") {
  CHECK(NormalizePrivilege("replication_slave_admin") == "REPLICATION SLAVE ADMIN");
  CHECK(NormalizePrivilege("  Replica   Monitor ") == "REPLICA MONITOR");
  CHECK(NormalizePrivilege("READ_ONLY ADMIN") == "READ ONLY ADMIN");
}

TEST_CASE("a MariaDB SHOW GRANTS line with global privileges", "[grants]") {
  auto g = ParseGrantLine(
      "GRANT SELECT, RELOAD, PROCESS, SUPER, BINLOG MONITOR, CONNECTION ADMIN, REPLICATION SLAVE "
      "ADMIN ON *.* TO `warden`@`%` IDENTIFIED BY PASSWORD '*E7EC5E3FDD928D851DF656BC43001CB0'");
  REQUIRE(g.ok());
  CHECK(g->kind == GrantLine::Kind::kPrivileges);
  CHECK(g->global);
  CHECK(g->database.empty());
  CHECK_FALSE(g->with_grant_option);
  // BINLOG MONITOR is MariaDB 10.5+'s name of REPLICATION CLIENT.
  CHECK(g->privileges == std::vector<std::string>{"SELECT", "RELOAD", "PROCESS", "SUPER",
                                                  "REPLICATION CLIENT", "CONNECTION ADMIN",
                                                  "REPLICATION SLAVE ADMIN"});
  GrantSet set;
  set.Add(*g);
  CHECK(set.HasGlobal("connection_admin"));
  CHECK(set.HasGlobal("BINLOG MONITOR"));
  CHECK_FALSE(set.HasGlobal("SLAVE MONITOR"));
  CHECK(set.FirstHeld({"SLAVE MONITOR", "SUPER"}) == "SUPER");
  CHECK(set.FirstHeld({"SLAVE MONITOR", "SHUTDOWN"}).empty());
}

TEST_CASE("ALL PRIVILEGES on *.* holds everything, on db.* holds nothing globally", "[grants]") {
  auto all = ParseGrantLine("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION");
  REQUIRE(all.ok());
  CHECK(all->global);
  CHECK(all->with_grant_option);
  CHECK(all->privileges == std::vector<std::string>{"ALL PRIVILEGES"});
  GrantSet root;
  root.Add(*all);
  CHECK(root.HasGlobal("SLAVE MONITOR"));
  CHECK(root.HasGlobal("CONNECTION ADMIN"));

  auto db = ParseGrantLine("GRANT ALL PRIVILEGES ON `warden_demo`.* TO `warden`@`%`");
  REQUIRE(db.ok());
  CHECK_FALSE(db->global);
  CHECK(db->database == "warden_demo");
  CHECK(db->table == "*");
  GrantSet set = SetOf({"GRANT USAGE ON *.* TO `w`@`%`",
                        "GRANT ALL PRIVILEGES ON `warden_demo`.* TO `w`@`%`"});
  CHECK_FALSE(set.HasGlobal("SELECT"));
  CHECK(set.GlobalList() == "USAGE");

  auto short_all = ParseGrantLine("GRANT ALL ON *.* TO 'x'@'%'");
  REQUIRE(short_all.ok());
  CHECK(short_all->privileges == std::vector<std::string>{"ALL PRIVILEGES"});
}

TEST_CASE("table, column and routine grants are not global", "[grants]") {
  auto t = ParseGrantLine("GRANT SELECT, INSERT ON `app`.`t``x` TO `w`@`h`");
  REQUIRE(t.ok());
  CHECK(t->database == "app");
  CHECK(t->table == "t`x");
  CHECK_FALSE(t->global);
  auto col = ParseGrantLine("GRANT SELECT (`a`, `b`), UPDATE (`c`) ON `app`.`t` TO `w`@`h`");
  REQUIRE(col.ok());
  CHECK(col->privileges == std::vector<std::string>{"SELECT", "UPDATE"});
  auto proc = ParseGrantLine("GRANT EXECUTE ON PROCEDURE `ops`.`kill_sleepers` TO `w`@`h`");
  REQUIRE(proc.ok());
  CHECK(proc->routine);
  CHECK(proc->database == "ops");
  CHECK(proc->table == "kill_sleepers");
  GrantSet set;
  set.Add(*t);
  set.Add(*col);
  set.Add(*proc);
  CHECK_FALSE(set.HasGlobal("SELECT"));
  CHECK_FALSE(set.HasGlobal("EXECUTE"));
}

TEST_CASE("MySQL 8 dynamic privileges and roles", "[grants]") {
  GrantSet set = SetOf({
      "GRANT PROCESS, REPLICATION CLIENT ON *.* TO `warden`@`%`",
      "GRANT CONNECTION_ADMIN,REPLICATION_SLAVE_ADMIN ON *.* TO `warden`@`%`",
      "GRANT `monitor`@`%`,`ops` TO `warden`@`%`",
      "GRANT PROXY ON ``@`` TO `warden`@`%` WITH GRANT OPTION",
  });
  CHECK(set.HasGlobal("CONNECTION ADMIN"));
  CHECK(set.HasGlobal("REPLICATION SLAVE ADMIN"));
  CHECK(set.HasGlobal("REPLICATION CLIENT"));
  CHECK_FALSE(set.HasGlobal("PROXY"));
  CHECK(set.roles() == std::vector<std::string>{"monitor", "ops"});
  auto proxy = ParseGrantLine("GRANT PROXY ON ''@'%' TO 'w'@'%'");
  REQUIRE(proxy.ok());
  CHECK(proxy->kind == GrantLine::Kind::kProxy);
}

TEST_CASE("a MariaDB role's grants and REPLICA MONITOR as SLAVE MONITOR", "[grants]") {
  auto role = ParseGrantLine("GRANT `mon` TO `lim`@`127.0.0.1`");
  REQUIRE(role.ok());
  CHECK(role->kind == GrantLine::Kind::kRoles);
  CHECK(role->roles == std::vector<std::string>{"mon"});
  auto admin = ParseGrantLine("GRANT `mon` TO `lim`@`127.0.0.1` WITH ADMIN OPTION");
  REQUIRE(admin.ok());
  CHECK(admin->with_grant_option);
  // SHOW GRANTS lists the active role's own grants, granted TO the role.
  GrantSet set = SetOf({"GRANT `mon` TO `lim`@`127.0.0.1`",
                        "GRANT USAGE ON *.* TO `lim`@`127.0.0.1`",
                        "GRANT SLAVE MONITOR ON *.* TO `mon`"});
  CHECK(set.HasGlobal("REPLICA MONITOR"));
  CHECK(set.HasGlobal("slave_monitor"));
  CHECK(set.GlobalList() == "SLAVE MONITOR");
}

TEST_CASE("lines that are not grants are errors naming the line", "[grants]") {
  auto notgrant = ParseGrantLine("REVOKE SELECT ON *.* FROM x");
  REQUIRE_FALSE(notgrant.ok());
  CHECK_THAT(notgrant.error(), Catch::Contains("not a GRANT line: REVOKE"));
  auto noto = ParseGrantLine("GRANT SELECT ON *.*");
  REQUIRE_FALSE(noto.ok());
  CHECK_THAT(noto.error(), Catch::Contains("no TO"));
  auto empty = ParseGrantLine("GRANT SELECT,, INSERT ON *.* TO x");
  REQUIRE_FALSE(empty.ok());
  CHECK_THAT(empty.error(), Catch::Contains("empty privilege"));
  // "TO" inside a quoted name is not the keyword.
  auto quoted = ParseGrantLine("GRANT SELECT ON `a to b`.* TO `w`@`%`");
  REQUIRE(quoted.ok());
  CHECK(quoted->database == "a to b");
}

TEST_CASE("server versions", "[grants]") {
  auto maria = ParseServerVersion("10.11.19-MariaDB-0+deb12u1");
  CHECK(maria.mariadb);
  CHECK(maria.major == 10);
  CHECK(maria.minor == 11);
  CHECK(maria.patch == 19);
  CHECK(maria.AtLeast(10, 5, 9));
  auto prefixed = ParseServerVersion("5.5.5-10.5.8-MariaDB");
  CHECK(prefixed.mariadb);
  CHECK(prefixed.major == 10);
  CHECK_FALSE(prefixed.AtLeast(10, 5, 9));
  auto mysql = ParseServerVersion("8.0.36");
  CHECK_FALSE(mysql.mariadb);
  CHECK(mysql.AtLeast(8, 0, 22));
}

TEST_CASE("replica status needs depend on the server", "[grants]") {
  using V = std::vector<std::string>;
  CHECK(ReplicaStatusNeeds(ParseServerVersion("10.11.19-MariaDB")) == V{"SLAVE MONITOR", "SUPER"});
  CHECK(ReplicaStatusNeeds(ParseServerVersion("10.5.4-MariaDB")) ==
        V{"REPLICATION SLAVE ADMIN", "SUPER"});
  CHECK(ReplicaStatusNeeds(ParseServerVersion("10.4.30-MariaDB")) ==
        V{"REPLICATION CLIENT", "SUPER"});
  CHECK(ReplicaStatusNeeds(ParseServerVersion("8.4.0")) == V{"REPLICATION CLIENT", "SUPER"});
}

TEST_CASE("what a mysql_sql statement needs, from its first words", "[grants]") {
  auto maria = ParseServerVersion("10.11.19-MariaDB");
  auto kill = NeedOfStatement("  -- the sleepers\n/* x */ kill connection 12", maria);
  CHECK(kill.what == "KILL");
  CHECK(kill.any_of == std::vector<std::string>{"CONNECTION ADMIN", "SUPER"});
  CHECK(kill.unverified.empty());
  CHECK(NeedOfStatement("KILL 3", ParseServerVersion("10.4.1-MariaDB")).any_of ==
        std::vector<std::string>{"SUPER"});
  auto stop = NeedOfStatement("STOP REPLICA", maria);
  CHECK(stop.what == "STOP REPLICA");
  CHECK(stop.any_of == std::vector<std::string>{"REPLICATION SLAVE ADMIN", "SUPER"});
  CHECK(NeedOfStatement("start slave 'a'", maria).what == "START SLAVE");
  CHECK(NeedOfStatement("CHANGE MASTER TO master_delay=0", maria).any_of.size() == 2);
  CHECK(NeedOfStatement("flush logs", maria).any_of == std::vector<std::string>{"RELOAD"});
  auto set = NeedOfStatement("SET GLOBAL read_only = 1", maria);
  CHECK(set.what == "SET GLOBAL");
  CHECK(set.any_of.empty());
  CHECK_THAT(set.unverified, Catch::Contains("READ_ONLY ADMIN"));
  CHECK(NeedOfStatement("set @@global.read_only=1", maria).what == "SET GLOBAL");
  // A session SET needs nothing known: not verified rather than assumed.
  CHECK_FALSE(NeedOfStatement("SET SESSION x = 1", maria).unverified.empty());
  auto select = NeedOfStatement("SELECT * FROM app.hot", maria);
  CHECK(select.any_of == std::vector<std::string>{"SELECT"});
  CHECK_THAT(select.unverified, Catch::Contains("on the tables it names"));
  // An executable comment is not skipped as a comment: not verified.
  CHECK_FALSE(NeedOfStatement("/*!50000 KILL 4 */", maria).unverified.empty());
}

TEST_CASE("privilege errors by their MySQL number", "[grants]") {
  CHECK(IsPrivilegeError(1227));
  CHECK(IsPrivilegeError(1142));
  CHECK(IsPrivilegeError(1045));
  CHECK_FALSE(IsPrivilegeError(1064));
  CHECK_FALSE(IsPrivilegeError(2003));
  CHECK_FALSE(IsPrivilegeError(-1));   // no number: not a MySQL error
}
