#include "checks/process.h"

#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/support/check_harness.h"
#include "tests/support/temp_dir.h"

using warden::Measurement;
using warden::testing::CheckHarness;
using warden::testing::MakeCheck;
using warden::testing::Show;
using warden::testing::TempDir;

namespace {

std::string SelfName() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  REQUIRE(n > 0);
  return std::filesystem::path(std::string(buf, static_cast<size_t>(n))).filename();
}

struct Pidfile {
  TempDir dir;
  std::string path;
  explicit Pidfile(const std::string& content) : path(dir.Write("x.pid", content)) {}
};

// A pid that surely does not run now: a child that exited and was reaped.
pid_t DeadPid() {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) _exit(0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return pid;
}

Measurement RunProcess(CheckHarness& h, const std::vector<std::pair<std::string, std::string>>& keys) {
  auto built = MakeCheck("process", keys);
  REQUIRE(built.errors.empty());
  return h.Run(*built.check);
}

}  // namespace

TEST_CASE("process by pidfile: alive, dead, missing, and a pid reused by another program",
          "[checks][process]") {
  CheckHarness h;
  const std::string self = SelfName();
  Pidfile mine(std::to_string(getpid()) + "\n");
  CHECK(Show(RunProcess(h, {{"pidfile", mine.path}})) == "value 1");
  CHECK(Show(RunProcess(h, {{"pidfile", mine.path}, {"name", self}})) == "value 1");
  // Our pid, but the pidfile belongs to mariadbd: a reused pid does not count.
  CHECK(Show(RunProcess(h, {{"pidfile", mine.path}, {"name", "mariadbd"}})) == "value 0");

  Pidfile dead(std::to_string(DeadPid()));
  CHECK(Show(RunProcess(h, {{"pidfile", dead.path}})) == "value 0");

  CHECK(Show(RunProcess(h, {{"pidfile", mine.dir / "none.pid"}})) == "value 0");

  Pidfile garbage("not a pid");
  Measurement bad = RunProcess(h, {{"pidfile", garbage.path}});
  CHECK(bad.kind == Measurement::Kind::kError);
  CHECK_THAT(bad.error, Catch::Contains("holds no process id"));
}

TEST_CASE("process by name finds a running program by comm or argv[0]", "[checks][process]") {
  CheckHarness h;
  // The test binary's name is longer than comm's 15 bytes: found by argv[0].
  const std::string self = SelfName();
  CHECK(Show(RunProcess(h, {{"name", self}})) == "value 1");
  CHECK(Show(RunProcess(h, {{"name", "no-such-program-xq"}})) == "value 0");

  // A child with a distinctive comm (a copy of sleep under another name).
  TempDir tmp;
  std::string prog = tmp / "wdn-sleeper";
  std::filesystem::copy_file("/bin/sleep", prog);
  std::filesystem::permissions(prog, std::filesystem::perms::owner_all);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    execl(prog.c_str(), prog.c_str(), "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until the child has exec'd (comm changes at exec).
  bool execed = false;
  for (int i = 0; i < 200 && !execed; ++i) {
    std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
    std::string name;
    std::getline(comm, name);
    execed = name == "wdn-sleeper";
    if (!execed) usleep(10'000);
  }
  CHECK(execed);
  CHECK(warden::ProcessAlive(child));
  CHECK(warden::ProcessMatches(child, "wdn-sleeper"));
  CHECK_FALSE(warden::ProcessMatches(child, "sleep"));
  CHECK(Show(RunProcess(h, {{"name", "wdn-sleeper"}})) == "value 1");
  Pidfile pf(std::to_string(child));
  CHECK(Show(RunProcess(h, {{"pidfile", pf.path}, {"name", "wdn-sleeper"}})) == "value 1");

  kill(child, SIGKILL);
  // Unreaped, it is a zombie: not alive.
  bool zombie_seen_dead = false;
  for (int i = 0; i < 200 && !zombie_seen_dead; ++i) {
    zombie_seen_dead = !warden::ProcessAlive(child);
    if (!zombie_seen_dead) usleep(10'000);
  }
  CHECK(zombie_seen_dead);
  CHECK(Show(RunProcess(h, {{"pidfile", pf.path}, {"name", "wdn-sleeper"}})) == "value 0");
  CHECK(Show(RunProcess(h, {{"name", "wdn-sleeper"}})) == "value 0");
  int status = 0;
  waitpid(child, &status, 0);
}
