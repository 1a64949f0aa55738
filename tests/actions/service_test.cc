#include "actions/service.h"

#include <catch2/catch.hpp>

#include "tests/support/action_harness.h"
#include "tests/support/temp_dir.h"

using namespace warden;
using namespace warden::testing;
using Words = std::vector<std::string>;

namespace {

// A stand-in for systemctl that prints its arguments, one per line, and
// exits with $EXIT_WITH baked in.
std::string RecorderScript(const warden::testing::TempDir& dir, int exit_status = 0) {
  return dir.Write("record.sh",
                   "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\nexit " +
                       std::to_string(exit_status) + "\n",
                   0755);
}

ActionOutcome RunService(const std::string& service_command, const Keys& keys) {
  BuiltAction b = MakeAction("service", keys);
  INFO(b.error());
  REQUIRE(b.errors.empty());
  REQUIRE(b.action);
  ActionHarness h;
  h.rt.service_command = service_command;
  return h.Run(*b.action, Common("service"));
}

}  // namespace

TEST_CASE("service: argv from service_command", "[actions][service]") {
  auto plain = ServiceArgv("systemctl", "restart", "mariadb");
  REQUIRE(plain.ok());
  CHECK(*plain == Words{"systemctl", "restart", "mariadb"});

  auto with_flags = ServiceArgv("systemctl --no-ask-password", "stop", "mysql");
  REQUIRE(with_flags.ok());
  CHECK(*with_flags == Words{"systemctl", "--no-ask-password", "stop", "mysql"});

  auto placeholders = ServiceArgv("service {name} {op}", "reload", "mariadb");
  REQUIRE(placeholders.ok());
  CHECK(*placeholders == Words{"service", "mariadb", "reload"});

  auto inside = ServiceArgv("/usr/sbin/rc-service --unit={name}.service '{op} now'", "start", "db");
  REQUIRE(inside.ok());
  CHECK(*inside == Words{"/usr/sbin/rc-service", "--unit=db.service", "start now"});

  auto bad = ServiceArgv("systemctl | cat", "start", "db");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error() == "service_command: '|' needs a shell: quote it");
}

TEST_CASE("service: runs service_command with op and name appended", "[actions][service]") {
  warden::testing::TempDir dir;
  std::string script = RecorderScript(dir);
  auto out = RunService(script, {{"name", "mariadb"}, {"op", "restart"}});
  CHECK(out.ok);
  CHECK(out.exit_code == 0);
  CHECK(out.stdout_tail == "restart\nmariadb\n");
  CHECK(out.extra["service"] == "mariadb");
  CHECK(out.extra["op"] == "restart");
}

TEST_CASE("service: placeholders in service_command", "[actions][service]") {
  warden::testing::TempDir dir;
  std::string script = RecorderScript(dir);
  auto out = RunService(script + " --unit={name}.service -- {op}",
                        {{"name", "mysql@replica"}, {"op", "reload"}});
  CHECK(out.ok);
  CHECK(out.stdout_tail == "--unit=mysql@replica.service\n--\nreload\n");
}

TEST_CASE("service: a failing command fails the action", "[actions][service]") {
  warden::testing::TempDir dir;
  std::string script = RecorderScript(dir, 5);
  auto out = RunService(script, {{"name", "mariadb"}, {"op", "stop"}});
  CHECK_FALSE(out.ok);
  CHECK(out.exit_code == 5);
  CHECK(out.error == "exit status 5");

  auto missing = RunService("/nonexistent/systemctl", {{"name", "mariadb"}, {"op", "stop"}});
  CHECK_FALSE(missing.ok);
  CHECK(missing.error == "command not found: /nonexistent/systemctl");

  auto unsplittable = RunService("systemctl 'x", {{"name", "mariadb"}, {"op", "stop"}});
  CHECK_FALSE(unsplittable.ok);
  CHECK(unsplittable.error ==
        "service_command: unterminated single quote (opened at character 11)");
}

TEST_CASE("service: config errors", "[actions][service]") {
  CHECK(MakeAction("service", {{"name", "-x"}, {"op", "start"}}).error() ==
        "test.ini:2: name: '-x' is not a service name (letters, digits and : _ . @ \\ -, not "
        "starting with '-')");
  CHECK(MakeAction("service", {{"name", "a b"}, {"op", "start"}}).error() ==
        "test.ini:2: name: 'a b' is not a service name (letters, digits and : _ . @ \\ -, not "
        "starting with '-')");
  CHECK(MakeAction("service", {{"name", "db"}, {"op", "bounce"}}).error() ==
        "test.ini:3: op: 'bounce' is not one of start, stop, restart, reload");
  CHECK(MakeAction("service", {{"name", "db"}}).error() ==
        "test.ini:1: [action t] needs 'op' (start, stop, restart or reload)");
  CHECK(MakeAction("service", {{"op", "start"}}).error() ==
        "test.ini:1: [action t] needs 'name' (the service to act on, e.g. mariadb)");
  auto ok = MakeAction("service", {{"name", "mariadb.service"}, {"op", "start"}});
  CHECK(ok.errors.empty());
  CHECK(ok.action);
}
