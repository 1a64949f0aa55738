#include "actions/mysql_sql.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>

#include "daemon/io/mysql.h"
#include "tests/support/action_harness.h"
#include "tests/support/temp_dir.h"

using namespace warden;
using namespace warden::testing;
using Statements = std::vector<std::string>;

namespace {

Statements Split(std::string_view sql) {
  auto s = SplitSqlStatements(sql);
  INFO("sql: " << sql << " error: " << (s.ok() ? "" : s.error()));
  REQUIRE(s.ok());
  return *s;
}

std::string SplitError(std::string_view sql) {
  auto s = SplitSqlStatements(sql);
  INFO("sql: " << sql);
  REQUIRE_FALSE(s.ok());
  return s.error();
}

}  // namespace

TEST_CASE("mysql_sql: statements split on semicolons", "[actions][mysql_sql]") {
  CHECK(Split("STOP REPLICA; START REPLICA") == Statements{"STOP REPLICA", "START REPLICA"});
  CHECK(Split("SELECT 1") == Statements{"SELECT 1"});
  CHECK(Split("SELECT 1;") == Statements{"SELECT 1"});
  CHECK(Split("  SELECT 1 ;; ;\n SELECT 2;  \n") == Statements{"SELECT 1", "SELECT 2"});
  CHECK(Split("SET GLOBAL x = 1;\n  FLUSH LOGS") == Statements{"SET GLOBAL x = 1", "FLUSH LOGS"});
}

TEST_CASE("mysql_sql: a semicolon inside quotes and backticks does not split", "[actions][mysql_sql]") {
  CHECK(Split("SELECT 'a;b'; SELECT 2") == Statements{"SELECT 'a;b'", "SELECT 2"});
  CHECK(Split("SELECT \"a;b\"; SELECT 2") == Statements{"SELECT \"a;b\"", "SELECT 2"});
  CHECK(Split("SELECT `we;ird` FROM t; SELECT 2") ==
        Statements{"SELECT `we;ird` FROM t", "SELECT 2"});
  CHECK(Split("SELECT 'it''s;'; SELECT 2") == Statements{"SELECT 'it''s;'", "SELECT 2"});
  CHECK(Split("SELECT 'back\\';slash'; SELECT 2") ==
        Statements{"SELECT 'back\\';slash'", "SELECT 2"});
  CHECK(Split("SELECT \"q\\\";\"; SELECT 2") == Statements{"SELECT \"q\\\";\"", "SELECT 2"});
  CHECK(Split("SELECT `a``;b`; SELECT 2") == Statements{"SELECT `a``;b`", "SELECT 2"});
  CHECK(Split("SELECT 'a\"b`c;'") == Statements{"SELECT 'a\"b`c;'"});
}

TEST_CASE("mysql_sql: comments", "[actions][mysql_sql]") {
  CHECK(Split("SELECT 1; -- a comment; with a semicolon\nSELECT 2") ==
        Statements{"SELECT 1", "-- a comment; with a semicolon\nSELECT 2"});
  CHECK(Split("SELECT 1 # hash; comment\n; SELECT 2") ==
        Statements{"SELECT 1 # hash; comment", "SELECT 2"});
  CHECK(Split("SELECT /* a; b */ 1; SELECT 2") == Statements{"SELECT /* a; b */ 1", "SELECT 2"});
  CHECK(Split("SELECT 1 /* multi\nline; */; SELECT 2") ==
        Statements{"SELECT 1 /* multi\nline; */", "SELECT 2"});
  // "--" without a blank after it is not a comment in MySQL: 1--1 is 1 - (-1).
  CHECK(Split("SELECT 1--1; SELECT 2") == Statements{"SELECT 1--1", "SELECT 2"});
  CHECK(Split("SELECT 1;--\nSELECT 2") == Statements{"SELECT 1", "--\nSELECT 2"});
  // Only comments between two ';': no empty statement is sent.
  CHECK(Split("SELECT 1; -- just a note\n; /* and this */ ; # and this") == Statements{"SELECT 1"});
  // Executable comments are statements.
  CHECK(Split("/*!40101 SET NAMES utf8 */; SELECT 2") ==
        Statements{"/*!40101 SET NAMES utf8 */", "SELECT 2"});
  CHECK(Split("/*M!100100 SET x=1 */") == Statements{"/*M!100100 SET x=1 */"});
  CHECK(Split("SELECT '--'; SELECT '#'; SELECT '/*'") ==
        Statements{"SELECT '--'", "SELECT '#'", "SELECT '/*'"});
}

TEST_CASE("mysql_sql: split errors", "[actions][mysql_sql]") {
  CHECK(SplitError("SELECT 'abc") == "unterminated single quote (opened on line 1)");
  CHECK(SplitError("SELECT 1;\nSELECT \"abc") == "unterminated double quote (opened on line 2)");
  CHECK(SplitError("SELECT `abc") == "unterminated backtick (opened on line 1)");
  CHECK(SplitError("SELECT 'abc\\'") == "unterminated single quote (opened on line 1)");
  CHECK(SplitError("SELECT 1 /* never\nclosed") == "unterminated /* comment (opened on line 1)");
  CHECK(SplitError("") == "no SQL statement (only blanks, comments or ';')");
  CHECK(SplitError(" ; ;\n -- nothing") == "no SQL statement (only blanks, comments or ';')");
  CHECK(SplitError("SELECT 1;\ndelimiter //\nCREATE PROCEDURE p() BEGIN SELECT 1; END //") ==
        "DELIMITER (line 2) is a command of the mysql client, not SQL: run such a script with "
        "the mysql client from an exec action");
}

TEST_CASE("mysql_sql: config", "[actions][mysql_sql]") {
  CHECK(MakeAction("mysql_sql", {{"sql", "STOP REPLICA;\n  START REPLICA"}}).errors.empty());
  CHECK(MakeAction("mysql_sql", {{"file", "/etc/warden/fix.sql"}}).errors.empty());
  CHECK(MakeAction("mysql_sql", {{"sql", "SELECT 1"}, {"file", "x.sql"}}).error() ==
        "test.ini:3: set either sql or file, not both");
  CHECK(MakeAction("mysql_sql", {}).error() ==
        "test.ini:1: [action t] needs 'sql' (statements separated by ';') or 'file'");
  CHECK(MakeAction("mysql_sql", {{"sql", "SELECT 'x"}}).error() ==
        "test.ini:2: sql: unterminated single quote (opened on line 1)");
  CHECK(MakeAction("mysql_sql", {{"sql", "SELECT 1"}, {"sqll", "x"}}).error() ==
        "test.ini:3: unknown key 'sqll' for action type mysql_sql");
  const ActionType* t = FindActionType("mysql_sql");
  REQUIRE(t);
  CHECK(t->uses_mysql);
  CHECK(t->guarded);
}

TEST_CASE("mysql_sql: run-time errors without a server", "[actions][mysql_sql]") {
  warden::testing::TempDir dir;
  ActionHarness h;
  MysqlConnConfig conn;
  conn.socket = dir / "no-such.sock";
  conn.user = "warden";
  conn.connect_timeout = std::chrono::milliseconds(500);
  MysqlReads mysql(h.workers, {{"", conn}});
  h.rt.mysql = &mysql;

  // A file that does not exist is read (and reported) when the action runs.
  BuiltAction missing = MakeAction("mysql_sql", {{"file", dir / "missing.sql"}});
  REQUIRE(missing.action);
  auto out = h.Run(*missing.action, Common("mysql_sql"));
  CHECK_FALSE(out.ok);
  CHECK(out.error == "cannot read " + (dir / "missing.sql") + ": No such file or directory");

  dir.Write("bad.sql", "SELECT 1;\nSELECT 'unterminated\n");
  BuiltAction bad = MakeAction("mysql_sql", {{"file", dir / "bad.sql"}});
  REQUIRE(bad.action);
  out = h.Run(*bad.action, Common("mysql_sql"));
  CHECK(out.error == dir / "bad.sql" + ": unterminated single quote (opened on line 2)");

  // Read, split, and sent to the connection, whose error is the outcome's.
  dir.Write("good.sql", "SELECT 1;\nSELECT 2;\n");
  BuiltAction good = MakeAction("mysql_sql", {{"file", dir / "good.sql"}});
  REQUIRE(good.action);
  out = h.Run(*good.action, Common("mysql_sql"));
  CHECK_FALSE(out.ok);
  CHECK_FALSE(out.error.empty());
  CHECK(out.extra["statements"] == 2);

  BuiltAction inline_sql = MakeAction("mysql_sql", {{"sql", "SELECT 1"}});
  REQUIRE(inline_sql.action);
  ActionCommon other = Common("mysql_sql");
  other.connection = "nowhere";
  out = h.Run(*inline_sql.action, other);
  CHECK_FALSE(out.ok);
  CHECK(out.error.find("nowhere") != std::string::npos);
}

TEST_CASE("mysql_sql: runs statements on a real server and reports its errors",
          "[actions][mysql_sql][mariadb]") {
  if (::access("/usr/sbin/mariadbd", X_OK) != 0) {
    WARN("mariadbd is not installed: skipped");
    return;
  }
  warden::testing::TempDir dir;
  ActionHarness h;
  const std::string sandbox = std::string(WARDEN_SOURCE_DIR) + "/scripts/mariadb-sandbox";
  auto run_script = [&](const std::string& verb) {
    ProcessSpec spec;
    spec.argv = {sandbox, verb, dir.path()};
    spec.timeout = std::chrono::seconds(60);
    std::optional<ProcessResult> r;
    h.processes.Spawn(spec, [&](ProcessResult res) { r = std::move(res); });
    REQUIRE(PumpUntil(
        h.loop, [&] { return r.has_value(); }, std::chrono::seconds(70)));
    INFO(r->stderr_tail);
    return r->success();
  };
  REQUIRE(run_script("start"));
  struct Stop {
    std::function<void()> f;
    ~Stop() { f(); }
  } stop{[&] { run_script("stop"); }};

  MysqlConnConfig conn;
  conn.socket = dir / "mysqld.sock";
  conn.user = "root";  // the sandbox's socket-authenticated superuser when run as root
  if (::geteuid() != 0) conn.user = std::getenv("USER") ? std::getenv("USER") : "root";
  MysqlReads mysql(h.workers, {{"", conn}});
  h.rt.mysql = &mysql;

  BuiltAction setup = MakeAction("mysql_sql",
                           {{"sql",
                             "CREATE DATABASE IF NOT EXISTS wt; -- a comment; still one statement\n"
                             "CREATE TABLE wt.t (a INT, b VARCHAR(20));\n"
                             "INSERT INTO wt.t VALUES (1, 'x;y'), (2, \"it's\");"}});
  REQUIRE(setup.action);
  auto out = h.Run(*setup.action, Common("mysql_sql"));
  INFO(out.error);
  CHECK(out.ok);
  CHECK(out.extra["statements"] == 3);

  std::optional<Expected<MysqlRows>> rows;
  mysql.Query("", "SELECT COUNT(*), GROUP_CONCAT(b ORDER BY a) FROM wt.t",
              [&](Expected<MysqlRows> r) { rows = std::move(r); });
  REQUIRE(PumpUntil(h.loop, [&] { return rows.has_value(); }));
  REQUIRE(rows->ok());
  REQUIRE((*rows)->rows.size() == 1);
  CHECK((*rows)->rows[0][0] == std::optional<std::string>("2"));
  CHECK((*rows)->rows[0][1] == std::optional<std::string>("x;y,it's"));

  // Stops at the first error, which carries the server's message.
  dir.Write("fail.sql",
            "INSERT INTO wt.t VALUES (3, 'z');\nSELECT * FROM wt.nope;\n"
            "INSERT INTO wt.t VALUES (4, 'never');\n");
  BuiltAction failing = MakeAction("mysql_sql", {{"file", dir / "fail.sql"}});
  REQUIRE(failing.action);
  out = h.Run(*failing.action, Common("mysql_sql"));
  CHECK_FALSE(out.ok);
  CHECK(out.error.find("1146") != std::string::npos);
  CHECK(out.error.find("wt.nope") != std::string::npos);
  CHECK(out.extra["statements"] == 3);

  rows.reset();
  mysql.Query("", "SELECT COUNT(*) FROM wt.t", [&](Expected<MysqlRows> r) { rows = std::move(r); });
  REQUIRE(PumpUntil(h.loop, [&] { return rows.has_value(); }));
  REQUIRE(rows->ok());
  CHECK((*rows)->rows[0][0] == std::optional<std::string>("3"));
}
