#include "actions/exec.h"

#include <signal.h>

#include <catch2/catch.hpp>

#include "tests/support/action_harness.h"

using namespace warden;
using namespace warden::testing;
using namespace std::chrono_literals;

namespace {

ActionOutcome RunExec(const Keys& keys, ActionCommon common = Common("exec"),
                      const Trigger& trigger = {}) {
  BuiltAction b = MakeAction("exec", keys);
  INFO(b.error());
  REQUIRE(b.errors.empty());
  REQUIRE(b.action);
  ActionHarness h;
  return h.Run(*b.action, common, trigger);
}

std::string ConfigError(const Keys& keys) {
  BuiltAction b = MakeAction("exec", keys);
  CHECK_FALSE(b.action);
  return b.error();
}

}  // namespace

TEST_CASE("exec: success and output", "[actions][exec]") {
  auto out = RunExec({{"command", "echo hello 'two words'"}});
  CHECK(out.ok);
  CHECK(out.exit_code == 0);
  CHECK(out.signal == 0);
  CHECK(out.error.empty());
  CHECK(out.stdout_tail == "hello two words\n");
  CHECK(out.stderr_tail.empty());
}

TEST_CASE("exec: a non-zero exit status fails", "[actions][exec]") {
  auto out = RunExec({{"command", "sh -c 'echo oops >&2; exit 3'"}});
  CHECK_FALSE(out.ok);
  CHECK(out.exit_code == 3);
  CHECK(out.error == "exit status 3");
  CHECK(out.stderr_tail == "oops\n");
}

TEST_CASE("exec: timeout kills it and says so", "[actions][exec]") {
  ActionCommon common = Common("exec");
  common.timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  auto out = RunExec({{"command", "sleep 30"}}, common);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK_FALSE(out.ok);
  CHECK(out.error == "timed out after 200ms");
  CHECK(out.signal == SIGTERM);
  CHECK(out.extra.value("timed_out", false));
}

TEST_CASE("exec: command not found", "[actions][exec]") {
  auto out = RunExec({{"command", "warden-no-such-command --flag"}});
  CHECK_FALSE(out.ok);
  CHECK(out.error == "command not found: warden-no-such-command");
  CHECK(out.exit_code == -1);
}

TEST_CASE("exec: env and the trigger's variables", "[actions][exec]") {
  Trigger trigger{"check", "replica_lag", "crit", "712"};
  auto out = RunExec(
      {{"command",
        "sh -c 'printf \"%s|%s|%s|%s|%s|%s|%s\" \"$GREETING\" \"$TWO\" \"$WARDEN_ACTION\" "
        "\"$WARDEN_TRIGGER\" \"$WARDEN_TRIGGER_NAME\" \"$WARDEN_STATE\" \"$WARDEN_VALUE\"'"},
       {"env", "GREETING=hi \"TWO=a b\"\n  WARDEN_VALUE=overridden"}},
      Common("exec"), trigger);
  CHECK(out.ok);
  CHECK(out.stdout_tail == "hi|a b|t|check|replica_lag|crit|overridden");
}

TEST_CASE("exec: shell = yes runs /bin/sh -c", "[actions][exec]") {
  auto out =
      RunExec({{"command", "echo \"$WARDEN_ACTION\" | tr a-z A-Z; exit 4"}, {"shell", "yes"}});
  CHECK(out.stdout_tail == "T\n");
  CHECK(out.exit_code == 4);
  CHECK(out.error == "exit status 4");
}

TEST_CASE("exec: without a shell, shell syntax is a config error", "[actions][exec]") {
  CHECK(ConfigError({{"command", "echo $HOME"}}) ==
        "test.ini:2: command: '$HOME' needs a shell (variable expansion): quote it, or set "
        "shell = yes");
  CHECK(ConfigError({{"shell", "no"}, {"command", "ls /tmp | wc -l"}}) ==
        "test.ini:3: command: '|' needs a shell: quote it, or set shell = yes");
  CHECK(ConfigError({{"command", "echo 'unterminated"}}) ==
        "test.ini:2: command: unterminated single quote (opened at character 6)");
  CHECK(ConfigError({{"command", "FOO=bar mycmd"}}) ==
        "test.ini:2: command: 'FOO=bar' would set an environment variable in a shell: use env = "
        "FOO=bar, or set shell = yes");
}

TEST_CASE("exec: quoted shell syntax is passed literally", "[actions][exec]") {
  auto out = RunExec({{"command", "echo '$HOME' \"a|b\" \\$PATH"}});
  CHECK(out.ok);
  CHECK(out.stdout_tail == "$HOME a|b $PATH\n");
}

TEST_CASE("exec: a command may continue on indented lines", "[actions][exec]") {
  auto out = RunExec({{"command", "echo one\n  two\n  three"}});
  CHECK(out.stdout_tail == "one two three\n");
}

TEST_CASE("exec: bad env entries are config errors", "[actions][exec]") {
  CHECK(ConfigError({{"command", "true"}, {"env", "NOEQUALS"}}) ==
        "test.ini:3: env: 'NOEQUALS' is not NAME=VALUE");
  CHECK(ConfigError({{"command", "true"}, {"env", "1X=2"}}) ==
        "test.ini:3: env: '1X' is not a variable name (letters, digits and _, not starting with "
        "a digit)");
  CHECK(ConfigError({{"command", "true"}, {"env", "A=$(x)"}}) ==
        "test.ini:3: env: '$(' needs a shell (command substitution): quote it");
  CHECK(ConfigError({{"command", "true"}, {"shell", "maybe"}}).rfind("test.ini:3: shell: ", 0) ==
        0);
}

TEST_CASE("exec: tails are bounded", "[actions][exec]") {
  auto out = RunExec({{"command", "sh -c 'seq 1 200000; seq 1 100000 >&2'"}});
  CHECK(out.ok);
  CHECK(out.stdout_tail.size() == kActionCaptureLimit);
  CHECK(out.stderr_tail.size() == kActionCaptureLimit);
  CHECK(out.stdout_tail.substr(out.stdout_tail.size() - 14) == "199999\n200000\n");
  CHECK(out.stderr_tail.substr(out.stderr_tail.size() - 7) == "100000\n");
}

TEST_CASE("exec: missing command is reported at the section", "[actions][exec]") {
  CHECK(ConfigError({}) ==
        "test.ini:1: [action t] needs 'command' (the program and its arguments)");
}
