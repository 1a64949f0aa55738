#include "daemon/io/process.h"

#include <dirent.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

using warden::ProcessResult;
using warden::ProcessRunner;
using warden::ProcessSpec;
using warden::testing::TempDir;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// Runs the default loop until `pred` holds or `limit` passes.
template <typename Pred>
bool RunUntil(struct ev_loop* loop, Pred pred, std::chrono::milliseconds limit = 20s) {
  ev_timer tick;
  ev_timer_init(
      &tick, [](struct ev_loop*, ev_timer*, int) {}, 0.02, 0.02);
  ev_timer_start(loop, &tick);
  auto deadline = Clock::now() + limit;
  while (!pred() && Clock::now() < deadline) ev_run(loop, EVRUN_ONCE);
  ev_timer_stop(loop, &tick);
  return pred();
}

ProcessSpec Argv(std::vector<std::string> argv) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = 10s;
  return spec;
}

ProcessSpec Sh(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.timeout = 10s;
  return spec;
}

ProcessResult RunOne(ProcessRunner& runner, ProcessSpec spec) {
  std::optional<ProcessResult> result;
  runner.Spawn(std::move(spec), [&](ProcessResult r) { result = std::move(r); });
  REQUIRE(RunUntil(EV_DEFAULT, [&] { return result.has_value(); }));
  return std::move(*result);
}

// Alive and not a zombie (a zombie reparented to an init that does not
// reap is gone for our purposes).
bool Alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  return line[paren + 2] != 'Z' && line[paren + 2] != 'X';
}

// Our children as (pid, state) from /proc.
std::vector<std::pair<pid_t, char>> OurChildren() {
  std::vector<std::pair<pid_t, char>> out;
  DIR* dir = opendir("/proc");
  if (!dir) return out;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    auto paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(line.substr(paren + 2));
    char state = 0;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid == getpid()) out.emplace_back(static_cast<pid_t>(pid), state);
  }
  closedir(dir);
  return out;
}

size_t Zombies() {
  size_t n = 0;
  for (auto [pid, state] : OurChildren()) n += state == 'Z';
  return n;
}

std::string Seq(int n) {
  std::string s;
  for (int i = 1; i <= n; ++i) s += std::to_string(i) + "\n";
  return s;
}

}  // namespace

TEST_CASE("process: exit status", "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  auto ok = RunOne(runner, Argv({"true"}));
  CHECK(ok.started);
  CHECK(ok.exit_code == 0);
  CHECK(ok.success());
  CHECK(ok.Describe() == "exit status 0");

  auto three = RunOne(runner, Sh("exit 3"));
  CHECK(three.started);
  CHECK(three.exit_code == 3);
  CHECK(three.signal == 0);
  CHECK_FALSE(three.success());
  CHECK(three.Describe() == "exit status 3");
  CHECK(runner.running() == 0);
}

TEST_CASE("process: killed by a signal", "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  auto r = RunOne(runner, Sh("kill -KILL $$"));
  CHECK(r.started);
  CHECK(r.signal == SIGKILL);
  CHECK_FALSE(r.success());
  CHECK(r.Describe() == "killed by signal 9 (SIGKILL)");
}

TEST_CASE("process: timeout kills the whole process group", "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  ProcessSpec spec = Sh("sleep 100 & echo $!; sleep 100");
  spec.timeout = 300ms;
  spec.kill_grace = 2s;
  auto start = Clock::now();
  auto r = RunOne(runner, spec);
  auto took = Clock::now() - start;
  CHECK(r.started);
  CHECK(r.timed_out);
  CHECK(r.signal == SIGTERM);
  CHECK(r.error == "timed out after 300ms");
  CHECK(r.Describe() == "timed out after 300ms");
  CHECK_FALSE(r.success());
  CHECK(took >= 300ms);
  CHECK(took < 2s);
  pid_t grandchild = std::atoi(r.stdout_head.c_str());
  REQUIRE(grandchild > 0);
  CHECK(RunUntil(
      EV_DEFAULT, [&] { return !Alive(grandchild); }, 3s));
}

TEST_CASE("process: SIGKILL after the grace when SIGTERM is ignored", "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  ProcessSpec spec = Sh("trap '' TERM; sleep 100 & echo $!; sleep 100");
  spec.timeout = 200ms;
  spec.kill_grace = 300ms;
  auto start = Clock::now();
  auto r = RunOne(runner, spec);
  auto took = Clock::now() - start;
  CHECK(r.timed_out);
  CHECK(r.signal == SIGKILL);
  CHECK(took >= 500ms);
  CHECK(took < 3s);
  pid_t grandchild = std::atoi(r.stdout_head.c_str());
  REQUIRE(grandchild > 0);
  CHECK(RunUntil(
      EV_DEFAULT, [&] { return !Alive(grandchild); }, 3s));
}

TEST_CASE("process: big output keeps only head and tail", "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  const std::string all = Seq(200000);  // about 1.2 MB
  REQUIRE(all.size() > 1'000'000);
  auto out = RunOne(runner, Argv({"seq", "1", "200000"}));
  CHECK(out.exit_code == 0);
  CHECK(out.stdout_head == all.substr(0, 4096));
  CHECK(out.stdout_tail == all.substr(all.size() - 4096));
  CHECK(out.stderr_tail.empty());

  auto err = RunOne(runner, Sh("seq 1 200000 >&2; echo done"));
  CHECK(err.stderr_tail == all.substr(all.size() - 4096));
  CHECK(err.stdout_head == "done\n");
  CHECK(err.stdout_tail == "done\n");

  ProcessSpec small = Sh("printf 0123456789");
  small.capture_limit = 4;
  auto s = RunOne(runner, small);
  CHECK(s.stdout_head == "0123");
  CHECK(s.stdout_tail == "6789");
}

TEST_CASE("process: environment is ours plus spec.env", "[process]") {
  ::setenv("WARDEN_TEST_INHERITED", "inherited", 1);
  ::setenv("WARDEN_TEST_REPLACED", "old", 1);
  ProcessRunner runner(EV_DEFAULT);
  ProcessSpec spec =
      Sh("printf '%s|%s|%s' \"$WARDEN_TEST_INHERITED\" \"$WARDEN_TEST_REPLACED\" \"$WARDEN_NEW\"");
  spec.env = {"WARDEN_TEST_REPLACED=new", "WARDEN_NEW=a b=c"};
  auto r = RunOne(runner, spec);
  CHECK(r.stdout_head == "inherited|new|a b=c");
  ::unsetenv("WARDEN_TEST_INHERITED");
  ::unsetenv("WARDEN_TEST_REPLACED");

  ProcessSpec bad_env = Argv({"true"});
  bad_env.env = {"NOEQUALS"};
  auto bad = RunOne(runner, bad_env);
  CHECK_FALSE(bad.started);
  CHECK(bad.error == "environment entry 'NOEQUALS' is not KEY=VALUE");
}

TEST_CASE("process: PATH lookup uses the child's PATH", "[process]") {
  TempDir tmp;
  const std::string& dir = tmp.path();
  std::string script = tmp / "warden-hello";
  {
    std::ofstream f(script);
    f << "#!/bin/sh\necho hello from \"$0\"\n";
  }
  REQUIRE(chmod(script.c_str(), 0755) == 0);
  ProcessRunner runner(EV_DEFAULT);
  ProcessSpec spec = Argv({"warden-hello"});
  spec.env = {"PATH=/nonexistent:" + dir + ":/usr/bin:/bin"};
  auto r = RunOne(runner, spec);
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_head == "hello from " + script + "\n");

  REQUIRE(chmod(script.c_str(), 0644) == 0);
  auto denied = RunOne(runner, spec);
  CHECK_FALSE(denied.started);
  CHECK(denied.error == "permission denied: " + script);
  auto direct = RunOne(runner, Argv({script}));
  CHECK_FALSE(direct.started);
  CHECK(direct.error == "cannot run " + script + ": Permission denied");
  // Executable, but neither a program nor a script with a #! line.
  {
    std::ofstream f(script);
    f << "echo no interpreter named\n";
  }
  REQUIRE(chmod(script.c_str(), 0755) == 0);
  auto no_interpreter = RunOne(runner, Argv({script}));
  CHECK_FALSE(no_interpreter.started);
  CHECK(no_interpreter.error ==
        "cannot run " + script + ": Exec format error (a script needs a #! line)");
}

TEST_CASE("process: command not found is reported on the next iteration", "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  std::optional<ProcessResult> result;
  runner.Spawn(Argv({"warden-no-such-command", "x"}),
               [&](ProcessResult r) { result = std::move(r); });
  CHECK_FALSE(result.has_value());  // never from inside Spawn
  REQUIRE(RunUntil(EV_DEFAULT, [&] { return result.has_value(); }));
  CHECK_FALSE(result->started);
  CHECK(result->error == "command not found: warden-no-such-command");
  CHECK(result->Describe() == "command not found: warden-no-such-command");
  CHECK_FALSE(result->success());

  auto abs = RunOne(runner, Argv({"/nonexistent/warden-x"}));
  CHECK_FALSE(abs.started);
  CHECK(abs.error == "command not found: /nonexistent/warden-x");

  auto empty = RunOne(runner, ProcessSpec{});
  CHECK_FALSE(empty.started);
  CHECK(empty.error == "empty command");
}

TEST_CASE("process: a background grandchild holding the pipe does not delay completion",
          "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  auto start = Clock::now();
  auto r = RunOne(runner, Sh("(sleep 5) & echo $$; exit 0"));
  CHECK(Clock::now() - start < 2s);
  CHECK(r.exit_code == 0);
  pid_t group = std::atoi(r.stdout_head.c_str());
  REQUIRE(group > 0);
  // The subshell is still around in the child's group; end it.
  CHECK(::kill(-group, SIGKILL) == 0);
}

TEST_CASE("process: child environment of descriptors, group and signals", "[process]") {
  // A descriptor without O_CLOEXEC must not leak into the child.
  int leaked = ::open("/dev/null", O_RDONLY);
  REQUIRE(leaked >= 0);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  REQUIRE(pthread_sigmask(SIG_BLOCK, &block, &old_mask) == 0);
  struct sigaction ignore {
  }, old_action{};
  ignore.sa_handler = SIG_IGN;
  REQUIRE(sigaction(SIGUSR2, &ignore, &old_action) == 0);

  ProcessRunner runner(EV_DEFAULT);
  // ls lists the shell's descriptors (a glob in the shell would open one).
  auto r = RunOne(runner, Sh("ls -m /proc/$$/fd; readlink /proc/$$/fd/0; "
                             "cut -d' ' -f5 /proc/$$/stat; echo $$; "
                             "exec grep -E '^Sig(Blk|Ign)' /proc/self/status"));
  sigaction(SIGUSR2, &old_action, nullptr);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::close(leaked);

  std::istringstream lines(r.stdout_head);
  std::string fds, stdin_target, pgid, pid, blocked, ignored;
  std::getline(lines, fds);
  std::getline(lines, stdin_target);
  std::getline(lines, pgid);
  std::getline(lines, pid);
  std::getline(lines, blocked);
  std::getline(lines, ignored);
  CHECK(fds == "0, 1, 2");
  CHECK(stdin_target == "/dev/null");
  CHECK(pgid == pid);
  CHECK(blocked == "SigBlk:\t0000000000000000");
  // SIGUSR2 is signal 12: bit 11 must be clear.
  REQUIRE(ignored.rfind("SigIgn:\t", 0) == 0);
  unsigned long long mask = std::stoull(ignored.substr(8), nullptr, 16);
  CHECK((mask & (1ULL << (SIGUSR2 - 1))) == 0);
}

TEST_CASE("process: many concurrent children", "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  constexpr int kChildren = 60;
  std::vector<std::optional<ProcessResult>> results(kChildren);
  for (int i = 0; i < kChildren; ++i) {
    ProcessSpec spec = Sh("echo $N; echo err$N >&2; exit $((N % 7))");
    spec.env = {"N=" + std::to_string(i)};
    runner.Spawn(spec, [&results, i](ProcessResult r) { results[i] = std::move(r); });
  }
  CHECK(runner.running() == kChildren);
  REQUIRE(RunUntil(EV_DEFAULT, [&] {
    for (auto& r : results)
      if (!r) return false;
    return true;
  }));
  for (int i = 0; i < kChildren; ++i) {
    CHECK(results[i]->stdout_tail == std::to_string(i) + "\n");
    CHECK(results[i]->stderr_tail == "err" + std::to_string(i) + "\n");
    CHECK(results[i]->exit_code == i % 7);
  }
  CHECK(runner.running() == 0);
  CHECK(Zombies() == 0);
}

TEST_CASE("process: done may spawn again", "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  int remaining = 5;
  int finished = 0;
  std::function<void(ProcessResult)> again = [&](ProcessResult r) {
    CHECK(r.exit_code == 0);
    ++finished;
    if (--remaining > 0) runner.Spawn(Argv({"true"}), again);
  };
  runner.Spawn(Argv({"true"}), again);
  REQUIRE(RunUntil(EV_DEFAULT, [&] { return finished == 5; }));
}

TEST_CASE("process: TerminateAll sends SIGTERM to every group", "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  std::vector<ProcessResult> results;
  for (int i = 0; i < 3; ++i) {
    runner.Spawn(Sh("sleep 100"), [&](ProcessResult r) { results.push_back(std::move(r)); });
  }
  runner.TerminateAll();
  REQUIRE(RunUntil(
      EV_DEFAULT, [&] { return results.size() == 3; }, 5s));
  for (auto& r : results) {
    CHECK(r.signal == SIGTERM);
    CHECK_FALSE(r.timed_out);
  }
}

TEST_CASE("process: the destructor kills and reaps, leaving no zombies", "[process]") {
  bool called = false;
  {
    ProcessRunner runner(EV_DEFAULT);
    for (int i = 0; i < 4; ++i) {
      runner.Spawn(Sh("sleep 100 & sleep 100"), [&](ProcessResult) { called = true; });
    }
    CHECK(runner.running() == 4);
    runner.Spawn(Argv({"warden-no-such-command"}), [&](ProcessResult) { called = true; });
  }
  CHECK_FALSE(called);
  // Let libev's SIGCHLD handler run: it must not trip over the reaped pids.
  ev_run(EV_DEFAULT, EVRUN_NOWAIT);
  for (auto [pid, state] : OurChildren()) {
    INFO("child " << pid << " state " << state);
    CHECK(state != 'Z');
  }
  CHECK(Zombies() == 0);
}

TEST_CASE("process: Terminate sends SIGTERM now and SIGKILL to the group after the grace",
          "[process]") {
  ProcessRunner runner(EV_DEFAULT);
  std::optional<ProcessResult> r;
  std::uint64_t id = runner.Spawn(Sh("exec sleep 100"), [&](ProcessResult p) { r = std::move(p); });
  (void)RunUntil(EV_DEFAULT, [] { return false; }, 200ms);
  auto start = Clock::now();
  CHECK(runner.Terminate(id, 5s));
  REQUIRE(RunUntil(EV_DEFAULT, [&] { return r.has_value(); }, 3s));
  CHECK(Clock::now() - start < 2s);   // SIGTERM ended it: no grace waited for
  CHECK(r->terminated);
  CHECK_FALSE(r->timed_out);
  CHECK(r->signal == SIGTERM);
  CHECK(r->Describe() == "terminated: killed by signal 15 (SIGTERM)");
  CHECK_FALSE(runner.Terminate(id, 1s));   // gone

  // SIGTERM ignored by the child and its background grandchild.
  r.reset();
  ProcessSpec spec = Sh("trap '' TERM; sleep 100 & echo $!; sleep 100");
  spec.timeout = 60s;
  id = runner.Spawn(std::move(spec), [&](ProcessResult p) { r = std::move(p); });
  (void)RunUntil(EV_DEFAULT, [] { return false; }, 300ms);
  start = Clock::now();
  CHECK(runner.Terminate(id, 400ms));
  CHECK(runner.Terminate(id, 30s));   // asked again: the first grace stands
  REQUIRE(RunUntil(EV_DEFAULT, [&] { return r.has_value(); }, 5s));
  auto took = Clock::now() - start;
  CHECK(took >= 400ms);
  CHECK(took < 3s);
  CHECK(r->terminated);
  CHECK(r->signal == SIGKILL);
  CHECK(r->Describe() == "terminated: killed by signal 9 (SIGKILL)");
  pid_t grandchild = std::atoi(r->stdout_head.c_str());
  REQUIRE(grandchild > 0);
  CHECK(RunUntil(EV_DEFAULT, [&] { return !Alive(grandchild); }, 3s));
  CHECK_FALSE(runner.Terminate(12345678, 1s));   // no such child
}
