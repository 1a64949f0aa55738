#include "actions/haproxy.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "tests/support/action_harness.h"
#include "tests/support/local_socket.h"
#include "tests/support/temp_dir.h"

using namespace warden;
using namespace warden::testing;

namespace {

ActionOutcome RunHaproxy(ActionHarness& h, const Keys& keys, Duration timeout = Duration(5000)) {
  BuiltAction b = MakeAction("haproxy", keys);
  INFO(b.error());
  REQUIRE(b.errors.empty());
  REQUIRE(b.action);
  ActionCommon common = Common("haproxy");
  common.timeout = timeout;
  return h.Run(*b.action, common);
}

}  // namespace

TEST_CASE("haproxy: config", "[actions][haproxy]") {
  const Keys base = {{"socket", "/run/haproxy/admin.sock"},
                     {"backend", "mysql"},
                     {"server", "db-1.a:b_c"},
                     {"state", "drain"}};
  CHECK(MakeAction("haproxy", base).errors.empty());
  Keys waiting = base;
  waiting.emplace_back("drain_wait", "60s");
  CHECK(MakeAction("haproxy", waiting).errors.empty());
  CHECK(MakeAction("haproxy", {{"address", "127.0.0.1:9999"},
                               {"backend", "mysql"},
                               {"server", "db1"},
                               {"state", "maint"},
                               {"drain_wait", "500ms"}})
            .errors.empty());
  CHECK(
      MakeAction(
          "haproxy",
          {{"address", "[::1]:9999"}, {"backend", "mysql"}, {"server", "db1"}, {"state", "ready"}})
          .errors.empty());
  CHECK(MakeAction("haproxy", {{"address", "lb.example.com:9999"},
                               {"backend", "mysql"},
                               {"server", "db1"},
                               {"state", "ready"}})
            .errors.empty());

  const ActionType* t = FindActionType("haproxy");
  REQUIRE(t);
  CHECK(t->guarded);
  CHECK_FALSE(t->uses_mysql);
}

TEST_CASE("haproxy: config errors name file:line", "[actions][haproxy]") {
  auto error = [](const Keys& keys) { return MakeAction("haproxy", keys).error(); };
  CHECK(error({{"backend", "mysql"}, {"server", "db1"}, {"state", "drain"}}) ==
        "test.ini:1: [action t] needs 'socket' (HAProxy's stats socket, e.g. "
        "/run/haproxy/admin.sock) or 'address' (a stats socket on HOST:PORT)");
  CHECK(error({{"socket", "/run/haproxy/admin.sock"},
               {"address", "127.0.0.1:9999"},
               {"backend", "mysql"},
               {"server", "db1"},
               {"state", "drain"}}) == "test.ini:3: set either socket or address, not both");
  CHECK(error({{"socket", "admin.sock"},
               {"backend", "mysql"},
               {"server", "db1"},
               {"state", "drain"}}) == "test.ini:2: socket: 'admin.sock' is not an absolute path");
  CHECK(error({{"socket", "/" + std::string(120, 'x')},
               {"backend", "mysql"},
               {"server", "db1"},
               {"state", "drain"}}) ==
        "test.ini:2: socket: '/" + std::string(120, 'x') +
            "' is longer than 107 bytes, the limit of a unix socket path");
  CHECK(error({{"address", "127.0.0.1"},
               {"backend", "mysql"},
               {"server", "db1"},
               {"state", "drain"}}) ==
        "test.ini:2: address: '127.0.0.1' is not HOST:PORT (an IPv6 address in [])");
  CHECK(
      error(
          {{"address", "::1:9999"}, {"backend", "mysql"}, {"server", "db1"}, {"state", "drain"}}) ==
      "test.ini:2: address: '::1:9999' is not HOST:PORT (an IPv6 address in [])");
  CHECK(
      error(
          {{"address", "127.0.0.1:0"}, {"backend", "mysql"}, {"server", "db1"}, {"state", "drain"}})
          .rfind("test.ini:2: address: '127.0.0.1:0': port ", 0) == 0);

  const Keys sock = {{"socket", "/run/haproxy/admin.sock"}};
  auto with = [&](const Keys& more) {
    Keys k = sock;
    k.insert(k.end(), more.begin(), more.end());
    return error(k);
  };
  CHECK(with({{"server", "db1"}, {"state", "drain"}}) ==
        "test.ini:1: [action t] needs 'backend' (the HAProxy backend, e.g. mysql)");
  CHECK(with({{"backend", "mysql"}, {"state", "drain"}}) ==
        "test.ini:1: [action t] needs 'server' (the server in that backend, e.g. db1)");
  CHECK(with({{"backend", "mysql"}, {"server", "db1"}}) ==
        "test.ini:1: [action t] needs 'state' (ready, drain or maint)");
  CHECK(with({{"backend", "my sql"}, {"server", "db1"}, {"state", "drain"}}) ==
        "test.ini:3: backend: 'my sql' is not a HAProxy name (letters, digits and _ - . :)");
  CHECK(with({{"backend", "mysql"}, {"server", "db1;shutdown"}, {"state", "drain"}}) ==
        "test.ini:4: server: 'db1;shutdown' is not a HAProxy name (letters, digits and _ - . :)");
  CHECK(with({{"backend", "mysql/x"}, {"server", "db1"}, {"state", "drain"}}) ==
        "test.ini:3: backend: 'mysql/x' is not a HAProxy name (letters, digits and _ - . :)");
  CHECK(with({{"backend", "mysql"}, {"server", "db1"}, {"state", "down"}}) ==
        "test.ini:5: state: 'down' is not one of ready, drain, maint");
  CHECK(with({{"backend", "mysql"}, {"server", "db1"}, {"state", "drain"}, {"drain_wait", "60"}})
            .rfind("test.ini:6: drain_wait: ", 0) == 0);
  CHECK(with({{"backend", "mysql"}, {"server", "db1"}, {"state", "drain"}, {"drain_wait", "0s"}}) ==
        "test.ini:6: drain_wait: must be longer than 0");
  CHECK(
      with({{"backend", "mysql"}, {"server", "db1"}, {"state", "ready"}, {"drain_wait", "30s"}}) ==
      "test.ini:6: drain_wait: only with state = drain or maint (a server made ready has no "
      "sessions to wait for)");
  CHECK(
      with({{"backend", "mysql"}, {"server", "db1"}, {"state", "drain"}, {"drain_wiat", "30s"}}) ==
      "test.ini:6: unknown key 'drain_wiat' for action type haproxy");
  // Every problem in one pass.
  CHECK(MakeAction("haproxy", {{"backend", "a b"}, {"server", "c d"}, {"state", "x"}})
            .errors.size() == 4);
}

TEST_CASE("haproxy: transport errors name the socket or address", "[actions][haproxy]") {
  warden::testing::TempDir dir;
  ActionHarness h;
  const Keys target = {{"backend", "mysql"}, {"server", "db1"}, {"state", "drain"}};
  auto keys = [&](const std::string& key, const std::string& value) {
    Keys k = {{key, value}};
    k.insert(k.end(), target.begin(), target.end());
    return k;
  };

  auto missing = RunHaproxy(h, keys("socket", dir / "admin.sock"));
  CHECK_FALSE(missing.ok);
  CHECK(missing.error ==
        "haproxy: cannot connect to " + (dir / "admin.sock") + ": No such file or directory");
  CHECK(missing.extra["backend"] == "mysql");
  CHECK(missing.extra["server"] == "db1");
  CHECK(missing.extra["state"] == "drain");
  CHECK_FALSE(missing.extra.contains("admin_state"));

  // A socket file nobody listens on.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::string path = dir / "stale.sock";
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    ::close(fd);
  }
  auto stale = RunHaproxy(h, keys("socket", dir / "stale.sock"));
  CHECK(stale.error ==
        "haproxy: cannot connect to " + (dir / "stale.sock") + ": Connection refused");

  const std::string refused_at = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  auto refused = RunHaproxy(h, keys("address", refused_at));
  CHECK(refused.error == "haproxy: cannot connect to " + refused_at + ": Connection refused");

  // A listener that accepts (the backlog does) and never answers.
  int hung = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::string path = dir / "hung.sock";
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    REQUIRE(::bind(hung, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(hung, 8) == 0);
  }
  auto begin = std::chrono::steady_clock::now();
  auto slow = RunHaproxy(h, keys("socket", dir / "hung.sock"), Duration(300));
  auto took = std::chrono::steady_clock::now() - begin;
  ::close(hung);
  CHECK(slow.error == "haproxy: " + (dir / "hung.sock") +
                          " did not answer 'show servers state mysql' within 300ms");
  CHECK(took >= std::chrono::milliseconds(250));
  CHECK(took < std::chrono::seconds(5));
}

namespace {

// A real HAProxy in a temporary directory: an admin and a user-level stats
// socket, backend `mysql` with servers db1 and db2 (nothing listens on their
// ports; no health checks).
class RealHaproxy {
 public:
  explicit RealHaproxy(const warden::testing::TempDir& dir) : dir_(dir) {
    dir.Write("haproxy.cfg",
              "global\n"
              "  stats socket " +
                  (dir / "admin.sock") +
                  " mode 600 level admin\n"
                  "  stats socket " +
                  (dir / "user.sock") +
                  " mode 600 level user\n"
                  "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 10s\n"
                  "  timeout server 10s\n"
                  "frontend fe\n  bind 127.0.0.1:" +
                  std::to_string(FreeLoopbackPort()) +
                  "\n"
                  "  default_backend mysql\n"
                  "backend mysql\n"
                  "  server db1 127.0.0.1:" +
                  std::to_string(FreeLoopbackPort()) +
                  "\n"
                  "  server db2 127.0.0.1:" +
                  std::to_string(FreeLoopbackPort()) + "\n");
    std::string cmd = "/usr/sbin/haproxy -q -D -p " + (dir / "haproxy.pid") + " -f " +
                      (dir / "haproxy.cfg") + " >" + (dir / "haproxy.out") + " 2>&1";
    started_ = std::system(cmd.c_str()) == 0;
    for (int i = 0; started_ && i < 100 && pid_ <= 0; ++i) {
      std::ifstream in(dir / "haproxy.pid");
      in >> pid_;
      if (pid_ <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~RealHaproxy() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }
  RealHaproxy(const RealHaproxy&) = delete;
  RealHaproxy& operator=(const RealHaproxy&) = delete;

  bool ok() const {
    return started_ && pid_ > 0 && ::access((dir_ / "admin.sock").c_str(), F_OK) == 0;
  }

 private:
  const warden::testing::TempDir& dir_;
  bool started_ = false;
  pid_t pid_ = 0;
};

}  // namespace

TEST_CASE("haproxy: sets and verifies a server's state on a real HAProxy",
          "[actions][haproxy][real]") {
  if (::access("/usr/sbin/haproxy", X_OK) != 0) {
    WARN("haproxy is not installed: skipped");
    return;
  }
  warden::testing::TempDir dir;
  RealHaproxy haproxy(dir);
  REQUIRE(haproxy.ok());
  ActionHarness h;
  const std::string admin = dir / "admin.sock";
  auto keys = [&](const std::string& server, const std::string& state, const Keys& more = {}) {
    Keys k = {{"socket", admin}, {"backend", "mysql"}, {"server", server}, {"state", state}};
    k.insert(k.end(), more.begin(), more.end());
    return k;
  };

  auto drain = RunHaproxy(h, keys("db1", "drain"));
  INFO(drain.error);
  CHECK(drain.ok);
  CHECK(drain.extra["admin_state_before"] == 0);
  CHECK(drain.extra["admin_state"] == 8);
  CHECK(drain.extra["state"] == "drain");

  auto maint = RunHaproxy(h, keys("db1", "maint", {{"drain_wait", "5s"}}));
  INFO(maint.error);
  CHECK(maint.ok);
  CHECK(maint.extra["admin_state"] == 1);
  CHECK(maint.extra["sessions"] == 0);
  CHECK(maint.extra["sessions_left"] == 0);
  CHECK(maint.extra["waited_ms"].get<long long>() < 1000);

  auto ready = RunHaproxy(h, keys("db1", "ready"));
  INFO(ready.error);
  CHECK(ready.ok);
  CHECK(ready.extra["admin_state_before"] == 1);
  CHECK(ready.extra["admin_state"] == 0);

  auto unknown_server = RunHaproxy(h, keys("db9", "drain"));
  CHECK(unknown_server.error ==
        "haproxy: no server 'db9' in backend 'mysql' (its servers: db1, db2) on " + admin);
  Keys other_backend = keys("db1", "drain");
  other_backend[1].second = "web";
  auto unknown_backend = RunHaproxy(h, other_backend);
  CHECK(unknown_backend.error == "haproxy: no backend 'web' (for server web/db1) on " + admin +
                                     ": HAProxy says \"Can't find backend.\"");

  Keys user = keys("db2", "maint");
  user[0].second = dir / "user.sock";
  auto denied = RunHaproxy(h, user);
  CHECK(denied.error == "haproxy: HAProxy refused 'set server mysql/db2 state maint' on " +
                            (dir / "user.sock") + ": Permission denied");
  CHECK(denied.extra["admin_state_before"] == 0);
  CHECK_FALSE(denied.extra.contains("admin_state"));
}
