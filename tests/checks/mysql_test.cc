// MysqlReads and the mysql_* checks against a real MariaDB started by the
// test in a temporary directory (mariadb-install-db, as scripts/mariadb-sandbox
// does), plus the replica status
// normalization on rows shaped like each server version's.
#include "daemon/io/mysql.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "checks/mysql_replica.h"
#include "checks/mysql_status.h"
#include "daemon/config/config.h"
#include "tests/support/check_harness.h"
#include "tests/support/fake_time.h"
#include "tests/support/local_socket.h"
#include "tests/support/scheduler_rig.h"

using warden::Duration;
using warden::Expected;
using warden::Measurement;
using warden::MysqlConnConfig;
using warden::MysqlMap;
using warden::MysqlReads;
using warden::MysqlRows;
using warden::testing::CheckHarness;
using warden::testing::FreeLoopbackPort;
using warden::testing::LocalSocket;
using warden::testing::MakeCheck;
using warden::testing::PumpUntil;
using warden::testing::Show;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr const char* kUser = "warden_t";
constexpr const char* kPassword = "t3st-Pa55";
constexpr int kMaxConnections = 77;  // set on the server's command line, read back by a check

bool HaveProgram(const char* name) {
  return std::system(("command -v " + std::string(name) + " >/dev/null 2>&1").c_str()) == 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool SocketAnswers(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// A TCP proxy on 127.0.0.1 to a port there that stops passing the server's
// bytes on while `stalled` (the server goes silent in the middle of a
// connection, after the login). One thread, poll().
class StallingProxy {
 public:
  explicit StallingProxy(int target) : target_(target) {
    thread_ = std::thread([this] { Run(); });
  }
  ~StallingProxy() {
    stop_ = true;
    thread_.join();
    for (auto [c, s] : pairs_) {
      close(c);
      close(s);
    }
  }
  StallingProxy(const StallingProxy&) = delete;
  StallingProxy& operator=(const StallingProxy&) = delete;

  int port() const { return listen_.port; }
  std::atomic<bool> stalled{false};
  std::atomic<int> accepted{0};
  // Set: the proxy closes every connection, as a server going away does
  // (and clears it). The client's port of the last one accepted.
  std::atomic<bool> hang_up{false};
  std::atomic<int> client_port{0};

 private:
  void Run() {
    while (!stop_) {
      std::vector<pollfd> fds{{listen_.fd, POLLIN, 0}};
      const bool quiet = stalled;
      for (auto [c, s] : pairs_) {
        fds.push_back({c, POLLIN, 0});
        fds.push_back({s, static_cast<short>(quiet ? 0 : POLLIN), 0});
      }
      if (hang_up) {
        for (auto [c, s] : pairs_) {
          close(c);
          close(s);
        }
        pairs_.clear();
        hang_up = false;
        continue;
      }
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      std::vector<std::pair<int, int>> open;
      for (size_t i = 0; i < pairs_.size(); ++i) {
        auto [c, s] = pairs_[i];
        bool ok = true;
        if (fds[1 + 2 * i].revents) ok = Pass(c, s);
        if (ok && fds[2 + 2 * i].revents) ok = Pass(s, c);
        if (ok) {
          open.emplace_back(c, s);
        } else {
          close(c);
          close(s);
        }
      }
      pairs_ = std::move(open);
      if (fds[0].revents & POLLIN) {
        int c = accept4(listen_.fd, nullptr, nullptr, SOCK_CLOEXEC);
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        to.sin_port = htons(static_cast<uint16_t>(target_));
        if (c >= 0 && connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
          pairs_.emplace_back(c, s);
          sockaddr_in peer{};
          socklen_t len = sizeof peer;
          if (getpeername(c, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
            client_port = ntohs(peer.sin_port);
          }
          ++accepted;
        } else {
          if (c >= 0) close(c);
          close(s);
        }
      }
    }
  }
  // Whatever `from` has, to `to` (small amounts on loopback: one write).
  static bool Pass(int from, int to) {
    char buf[65536];
    ssize_t n = read(from, buf, sizeof buf);
    return n > 0 && write(to, buf, static_cast<size_t>(n)) == n;
  }

  int target_;
  LocalSocket listen_{16};
  std::atomic<bool> stop_{false};
  std::vector<std::pair<int, int>> pairs_;   // (client, server), the thread's own
  std::thread thread_;
};

// One MariaDB server per test process, started on first use and stopped
// (SIGTERM, then the directory removed) at exit. PR_SET_PDEATHSIG kills it
// if the test process dies first.
class Sandbox {
 public:
  // nullptr (after a WARN) when MariaDB is not installed.
  static Sandbox* Get() {
    static std::unique_ptr<Sandbox> instance = Start();
    return instance.get();
  }

  ~Sandbox() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      // The libev default loop may reap it for us (it waits for any child).
      auto deadline = Clock::now() + 30s;
      bool gone = false;
      while (!gone && Clock::now() < deadline) {
        pid_t r = waitpid(pid_, nullptr, WNOHANG);
        gone = r == pid_ || (r < 0 && errno == ECHILD);
        if (!gone) std::this_thread::sleep_for(20ms);
      }
      if (!gone) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::string socket() const { return dir_ + "/mysqld.sock"; }
  int port() const { return port_; }

  // The password user over TCP.
  MysqlConnConfig Tcp(const std::string& name = "") const {
    MysqlConnConfig c;
    c.name = name;
    c.host = "127.0.0.1";
    c.port = port_;
    c.user = kUser;
    c.password = kPassword;
    return c;
  }
  // root over the unix socket (unix_socket authentication).
  MysqlConnConfig RootSocket(const std::string& name) const {
    MysqlConnConfig c;
    c.name = name;
    c.socket = socket();
    c.user = "root";
    return c;
  }

  // Runs SQL as root with the mariadb client; returns its exit status.
  int Client(const std::string& sql) const {
    std::string cmd = "mariadb --no-defaults --socket=" + socket() + " -uroot -e \"" + sql +
                      "\" >>" + dir_ + "/client.log 2>&1";
    return std::system(cmd.c_str());
  }

 private:
  static std::unique_ptr<Sandbox> Start() {
    if (!HaveProgram("mariadbd") || !HaveProgram("mariadb-install-db") || !HaveProgram("mariadb")) {
      WARN("mariadbd / mariadb-install-db / mariadb not installed: MySQL tests skipped");
      return nullptr;
    }
    auto sb = std::unique_ptr<Sandbox>(new Sandbox);
    char tmpl[] = "/tmp/warden-mysql-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    sb->dir_ = tmpl;
    const std::string& d = sb->dir_;
    // Each server gets its own tmpdir: bootstrap servers sharing /tmp clash
    // on their temporary table names when tests run in parallel.
    std::filesystem::create_directory(d + "/tmp");
    int rc = std::system(("TMPDIR=" + d + "/tmp mariadb-install-db --no-defaults --skip-test-db " +
                          "--user=root --datadir=" + d + "/db >" + d + "/install.log 2>&1")
                             .c_str());
    INFO(ReadFile(d + "/install.log"));
    REQUIRE(rc == 0);

    sb->port_ = FreeLoopbackPort();
    std::vector<std::string> args = {
        "mariadbd",
        "--no-defaults",
        "--datadir=" + d + "/db",
        "--socket=" + sb->socket(),
        "--port=" + std::to_string(sb->port_),
        "--bind-address=127.0.0.1",
        "--user=root",
        "--pid-file=" + d + "/mysqld.pid",
        "--log-error=" + d + "/error.log",
        "--tmpdir=" + d + "/tmp",
        "--skip-name-resolve",
        "--max-connections=" + std::to_string(kMaxConnections),
        "--innodb-buffer-pool-size=32M",
    };
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string out = d + "/stdout.log";
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execvp("mariadbd", argv.data());
      _exit(127);
    }
    sb->pid_ = pid;

    auto deadline = Clock::now() + 60s;
    bool up = false;
    while (!up && Clock::now() < deadline) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) {
        sb->pid_ = -1;
        FAIL("mariadbd exited at start:\n" << ReadFile(d + "/error.log") << ReadFile(out));
      }
      up = SocketAnswers(sb->socket());
      if (!up) std::this_thread::sleep_for(50ms);
    }
    INFO(ReadFile(d + "/error.log"));
    REQUIRE(up);
    std::string create = std::string("CREATE USER '") + kUser + "'@'%' IDENTIFIED BY '" +
                         kPassword + "'; GRANT ALL ON *.* TO '" + kUser + "'@'%';";
    REQUIRE(sb->Client(create) == 0);
    return sb;
  }

  Sandbox() = default;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// A loop with workers and MysqlReads over the given connections.
struct MysqlHarness : CheckHarness {
  std::unique_ptr<MysqlReads> reads;
  explicit MysqlHarness(std::map<std::string, MysqlConnConfig> conns) {
    reads = std::make_unique<MysqlReads>(workers, std::move(conns));
    rt.mysql = reads.get();
  }

  Measurement RunCheck(const std::string& type,
                       const std::vector<std::pair<std::string, std::string>>& keys,
                       const std::string& connection = "") {
    warden::CheckCommon common;
    common.connection = connection;
    auto built = MakeCheck(type, keys, common);
    INFO(type);
    REQUIRE(built.errors.empty());
    return Run(*built.check);
  }

  Expected<MysqlRows> Query(const std::string& conn, const std::string& sql) {
    std::optional<Expected<MysqlRows>> got;
    reads->Query(conn, sql, [&got](Expected<MysqlRows> r) { got = std::move(r); });
    REQUIRE(PumpUntil(loop, [&] { return got.has_value(); }));
    return std::move(*got);
  }

  warden::Status Execute(const std::string& conn, std::vector<std::string> statements) {
    std::optional<warden::Status> got;
    reads->Execute(conn, std::move(statements), [&got](warden::Status s) { got = std::move(s); });
    REQUIRE(PumpUntil(loop, [&] { return got.has_value(); }));
    return *got;
  }

  Expected<double> Ping(const std::string& conn) {
    std::optional<Expected<double>> got;
    reads->Ping(conn, [&got](Expected<double> r) { got = std::move(r); });
    REQUIRE(PumpUntil(loop, [&] { return got.has_value(); }));
    return std::move(*got);
  }

  Expected<std::shared_ptr<const MysqlMap>> Status(const std::string& conn) {
    return Snapshot(&MysqlReads::GlobalStatus, conn);
  }
  Expected<std::shared_ptr<const MysqlMap>> Variables(const std::string& conn) {
    return Snapshot(&MysqlReads::GlobalVariables, conn);
  }

 private:
  using Read = void (MysqlReads::*)(const std::string&, MysqlReads::SharedDone<MysqlMap>);
  Expected<std::shared_ptr<const MysqlMap>> Snapshot(Read read, const std::string& conn) {
    std::optional<Expected<std::shared_ptr<const MysqlMap>>> got;
    ((*reads).*read)(
        conn, [&got](Expected<std::shared_ptr<const MysqlMap>> r) { got = std::move(r); });
    REQUIRE(PumpUntil(loop, [&] { return got.has_value(); }));
    return std::move(*got);
  }
};

std::string Scalar(const Expected<MysqlRows>& r) {
  REQUIRE(r.ok());
  REQUIRE(!r->rows.empty());
  REQUIRE(r->rows[0][0].has_value());
  return *r->rows[0][0];
}

long long StatusNumber(const std::shared_ptr<const MysqlMap>& m, const std::string& name) {
  auto value = m->get(name);
  REQUIRE(value);
  auto n = warden::ParseNumber(*value);
  REQUIRE(n);
  return static_cast<long long>(*n);
}

}  // namespace

TEST_CASE("mysql checks measure a real MariaDB", "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlHarness h({{"", sb->Tcp()}, {"root", sb->RootSocket("root")}});

  Measurement ping = h.RunCheck("mysql_ping", {});
  INFO(Show(ping));
  REQUIRE(ping.kind == Measurement::Kind::kValue);
  REQUIRE(warden::ParseNumber(ping.value));
  CHECK(*warden::ParseNumber(ping.value) >= 0);
  CHECK(*warden::ParseNumber(ping.value) < 1000);

  // root over the socket works too.
  Measurement root_ping = h.RunCheck("mysql_ping", {}, "root");
  CHECK(root_ping.kind == Measurement::Kind::kValue);

  Measurement uptime = h.RunCheck("mysql_status", {{"variable", "Uptime"}});
  INFO(Show(uptime));
  REQUIRE(uptime.kind == Measurement::Kind::kValue);
  auto uptime_s = warden::ParseNumber(uptime.value);
  REQUIRE(uptime_s);
  CHECK(*uptime_s >= 0);
  CHECK(*uptime_s < 3600);

  // Any case works for the name.
  CHECK(h.RunCheck("mysql_status", {{"variable", "UPTIME"}}).kind == Measurement::Kind::kValue);
  Measurement unknown = h.RunCheck("mysql_status", {{"variable", "No_such_status"}});
  CHECK(Show(unknown) == "error no status variable 'No_such_status' in SHOW GLOBAL STATUS");

  Measurement max_conn = h.RunCheck("mysql_variable", {{"variable", "max_connections"}});
  CHECK(Show(max_conn) == "value " + std::to_string(kMaxConnections));
  Measurement ver = h.RunCheck("mysql_variable", {{"variable", "version"}});
  CHECK_THAT(ver.value, Catch::Contains("MariaDB"));

  CHECK(Show(h.RunCheck("mysql_query", {{"sql", "SELECT 6 * 7"}})) == "value 42");
  CHECK(Show(h.RunCheck("mysql_query", {{"sql", "SELECT 'x', 2;"}})) == "value x");
  CHECK(Show(h.RunCheck("mysql_query", {{"sql", "SELECT 1 FROM DUAL WHERE 1 = 0"}})) ==
        "error query returned no rows");
  CHECK(Show(h.RunCheck("mysql_query", {{"sql", "SELECT NULL"}})) == "error query returned NULL");
  Measurement sql_error = h.RunCheck("mysql_query", {{"sql", "SELECT * FROM mysql.no_such_table"}});
  CHECK(Show(sql_error) == "error ERROR 1146 (42S02): Table 'mysql.no_such_table' doesn't exist");
  // The error's number and code travel as fields (ER_NO_SUCH_TABLE).
  CHECK(sql_error.peer_code == 1146);
  CHECK(sql_error.code == warden::StatusCode::kNotFound);
  // An error the check makes itself has no number.
  Measurement no_rows = h.RunCheck("mysql_query", {{"sql", "SELECT 1 FROM DUAL WHERE 1 = 0"}});
  CHECK(no_rows.peer_code == -1);
  CHECK(no_rows.code == warden::StatusCode::kInternal);
  // The connection is usable after the error.
  CHECK(Show(h.RunCheck("mysql_query", {{"sql", "SELECT CURRENT_USER()"}})) ==
        std::string("value ") + kUser + "@%");

  Measurement replica = h.RunCheck("mysql_replica", {{"field", "lag"}});
  CHECK(replica.kind == Measurement::Kind::kError);
  CHECK_THAT(replica.error, Catch::StartsWith("not a replica: SHOW ") &&
                                Catch::EndsWith("STATUS returned no rows"));

  // Made a replica of a source that refuses connections: the IO thread
  // fails, lag is NULL and must be an error carrying the IO error.
  REQUIRE(h.Execute("root", {"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=" +
                                 std::to_string(FreeLoopbackPort()) +
                                 ", MASTER_USER='nobody', MASTER_CONNECT_RETRY=1",
                             "START SLAVE"})
              .ok());
  Measurement errno_now;
  for (int i = 0; i < 50; ++i) {
    errno_now = h.RunCheck("mysql_replica", {{"field", "last_errno"}});
    if (errno_now.kind == Measurement::Kind::kValue && errno_now.value != "0") break;
    std::this_thread::sleep_for(200ms);
  }
  CHECK(Show(errno_now) == "value 2003");
  Measurement lag = h.RunCheck("mysql_replica", {{"field", "lag"}});
  CHECK(lag.kind == Measurement::Kind::kError);
  CHECK_THAT(lag.error, Catch::Contains("Seconds_Behind_Master is NULL") &&
                            Catch::Contains("Last_IO_Error (2003): ") &&
                            Catch::Contains("nobody@127.0.0.1"));
  Measurement io = h.RunCheck("mysql_replica", {{"field", "io_running"}});
  CHECK((io.value == "Connecting" || io.value == "No"));
  CHECK(Show(h.RunCheck("mysql_replica", {{"field", "sql_running"}})) == "value Yes");
  CHECK_THAT(h.RunCheck("mysql_replica", {{"field", "last_error"}}).value,
             Catch::Contains("error connecting to master"));
  REQUIRE(h.Execute("root", {"STOP SLAVE", "RESET SLAVE ALL"}).ok());

  Measurement nope = h.RunCheck("mysql_ping", {}, "nope");
  CHECK(Show(nope) == "error unknown mysql connection 'nope' (no [mysql nope] section)");
}

TEST_CASE("mysql_status rate = yes needs two samples", "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlHarness h({{"", sb->Tcp()}});
  warden::CheckCommon common;
  // Com_show_status grows by one with each snapshot the check itself takes.
  auto built =
      MakeCheck("mysql_status", {{"variable", "Com_show_status"}, {"rate", "yes"}}, common);
  REQUIRE(built.errors.empty());
  Measurement first = h.Run(*built.check);
  CHECK(first.kind == Measurement::Kind::kNotYet);
  std::this_thread::sleep_for(300ms);  // beyond the share window
  Measurement second = h.Run(*built.check);
  INFO(Show(second));
  REQUIRE(second.kind == Measurement::Kind::kValue);
  auto rate = warden::ParseNumber(second.value);
  REQUIRE(rate);
  CHECK(*rate > 0.5);  // one per ~0.3 s
  CHECK(*rate < 10);

  // A text status with rate = yes is an error, not a 0.
  auto text = MakeCheck("mysql_status", {{"variable", "Ssl_cipher"}, {"rate", "yes"}});
  REQUIRE(text.errors.empty());
  Measurement m = h.Run(*text.check);
  CHECK(m.kind == Measurement::Kind::kError);
}

TEST_CASE("CounterRate divides the difference and refuses a counter that went down",
          "[checks][mysql]") {
  CHECK(warden::CounterRate("10", "20", 2.0) == 5.0);
  CHECK(warden::CounterRate("10", "10", 1.0) == 0.0);
  CHECK_FALSE(warden::CounterRate("10", "5", 1.0).has_value());  // server restarted
  // Exact above 2^53, where doubles would lose the difference.
  CHECK(warden::CounterRate("18446744073709551000", "18446744073709551610", 1.0) == 610.0);
  CHECK(warden::CounterRate("1.5", "4.5", 1.5) == 2.0);
  CHECK_FALSE(warden::CounterRate("ON", "OFF", 1.0).has_value());
}

TEST_CASE("mysql errors carry the server's answer and name the connection", "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlConnConfig bad = sb->Tcp("bad");
  bad.password = "Wr0ng-Secret";
  MysqlConnConfig down = sb->Tcp("down");
  down.port = FreeLoopbackPort();
  MysqlHarness h({{"bad", bad}, {"down", down}});

  Measurement denied = h.RunCheck("mysql_ping", {}, "bad");
  CHECK(denied.kind == Measurement::Kind::kError);
  CHECK_THAT(
      denied.error,
      Catch::StartsWith("cannot connect to [mysql bad] 127.0.0.1:" + std::to_string(sb->port()) +
                        ": ERROR 1045 (28000): Access denied for user '" + kUser + "'@"));
  CHECK_THAT(denied.error, !Catch::Contains("Wr0ng-Secret"));
  CHECK(denied.peer_code == 1045);   // ER_ACCESS_DENIED_ERROR, through the connect
  CHECK(denied.code == warden::StatusCode::kRefused);

  Measurement refused = h.RunCheck("mysql_status", {{"variable", "Uptime"}}, "down");
  CHECK(refused.kind == Measurement::Kind::kError);
  CHECK_THAT(refused.error,
             Catch::StartsWith("cannot connect to [mysql down] 127.0.0.1:" +
                               std::to_string(down.port) + ": ERROR 2002 (HY000): "));
  // A shared read's failure (the loop connection) carries its number too.
  CHECK(refused.peer_code == 2002);
  CHECK(refused.code == warden::StatusCode::kTransient);
}

TEST_CASE("mysql failures carry their code: the pool's lane health and callers read it",
          "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlConnConfig bad = sb->Tcp("bad");
  bad.password = "Wr0ng-Secret";
  MysqlConnConfig down = sb->Tcp("down");
  down.port = FreeLoopbackPort();
  struct ev_loop* loop = EV_DEFAULT;
  warden::WorkerPool pool(loop, 2);
  MysqlReads reads(pool, {{"ok", sb->Tcp("ok")}, {"bad", bad}, {"down", down}});
  auto query = [&](const std::string& conn, const std::string& sql) {
    std::optional<Expected<MysqlRows>> got;
    reads.Query(conn, sql, [&got](Expected<MysqlRows> r) { got = std::move(r); });
    REQUIRE(PumpUntil(loop, [&] { return got.has_value(); }));
    return std::move(*got);
  };
  auto denied = query("bad", "SELECT 1");
  REQUIRE_FALSE(denied.ok());
  CHECK(denied.code() == warden::StatusCode::kRefused);   // ER_ACCESS_DENIED_ERROR
  CHECK(denied.peer_code() == 1045);
  auto unreachable = query("down", "SELECT 1");
  REQUIRE_FALSE(unreachable.ok());
  CHECK(unreachable.code() == warden::StatusCode::kTransient);   // CR_CONNECTION_ERROR
  auto syntax = query("ok", "SELEC 1");
  REQUIRE_FALSE(syntax.ok());
  CHECK(syntax.code() == warden::StatusCode::kInvalid);   // ER_PARSE_ERROR
  CHECK(syntax.peer_code() == 1064);
  auto missing = query("ok", "SELECT no_such_column_here");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.code() == warden::StatusCode::kNotFound);   // ER_BAD_FIELD_ERROR
  auto unknown = query("nowhere", "SELECT 1");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.code() == warden::StatusCode::kNotFound);
  CHECK(unknown.peer_code() == -1);   // warden's own: no MySQL number
  CHECK(Scalar(query("ok", "SELECT 3")) == "3");
}

TEST_CASE("a query longer than query_timeout fails once, after the timeout", "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlConnConfig slow = sb->Tcp("slow");
  slow.query_timeout = 1s;
  struct ev_loop* loop = EV_DEFAULT;
  warden::WorkerPool one(loop, 1);  // one worker: the second query reuses the connection
  MysqlReads reads(one, {{"slow", slow}});
  auto query = [&](const std::string& sql) {
    std::optional<Expected<MysqlRows>> got;
    reads.Query("slow", sql, [&got](Expected<MysqlRows> r) { got = std::move(r); });
    REQUIRE(PumpUntil(loop, [&] { return got.has_value(); }));
    return std::move(*got);
  };
  REQUIRE(query("SELECT 1").ok());
  auto start = Clock::now();
  auto r = query("SELECT SLEEP(4)");
  double took = std::chrono::duration<double>(Clock::now() - start).count();
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::StartsWith("[mysql slow] 127.0.0.1:" + std::to_string(sb->port()) +
                                          ": ERROR 2013 (HY000): "));
  CHECK(took >= 0.9);
  CHECK(took < 1.9);  // not sent a second time
  // The next query reconnects.
  CHECK(Scalar(query("SELECT 2")) == "2");
}

TEST_CASE("Execute runs statements in order, stops at the first error, consumes CALL results",
          "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlHarness h({{"", sb->Tcp()}});
  REQUIRE(h.Execute("", {"DROP DATABASE IF EXISTS wt", "CREATE DATABASE wt",
                         "CREATE TABLE wt.t (id INT PRIMARY KEY, v VARCHAR(20))",
                         "INSERT INTO wt.t VALUES (1, 'a'), (2, NULL)",
                         "CREATE PROCEDURE wt.two() BEGIN SELECT 'first'; SELECT 'second'; END"})
              .ok());
  // A CALL returns two result sets and a status: all read, the connection
  // stays in sync for the next statement.
  CHECK(Scalar(h.Query("", "CALL wt.two()")) == "first");
  CHECK(Scalar(h.Query("", "SELECT COUNT(*) FROM wt.t")) == "2");
  REQUIRE(h.Execute("", {"CALL wt.two()", "INSERT INTO wt.t VALUES (5, 'e')"}).ok());

  warden::Status dup =
      h.Execute("", {"INSERT INTO wt.t VALUES (3, 'c')", "INSERT INTO wt.t VALUES (3, 'again')",
                     "INSERT INTO wt.t VALUES (4, 'never')"});
  CHECK_FALSE(dup.ok());
  CHECK(dup.message() ==
        "ERROR 1062 (23000): Duplicate entry '3' for key 'PRIMARY' (statement 2 of 3)");
  CHECK(Scalar(h.Query("", "SELECT GROUP_CONCAT(id ORDER BY id) FROM wt.t")) == "1,2,3,5");

  // Multi-line SQL as the config gives it, NULL and values through the check.
  CHECK(Show(h.RunCheck("mysql_query", {{"sql", "SELECT v\n  FROM wt.t\n  WHERE id = 1"}})) ==
        "value a");
  CHECK(Show(h.RunCheck("mysql_query", {{"sql", "SELECT v FROM wt.t WHERE id = 2"}})) ==
        "error query returned NULL");
}

TEST_CASE("a connection killed on the server is replaced without an error", "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlHarness h({{"", sb->Tcp()}, {"root", sb->RootSocket("root")}});
  // Both workers get a cached connection.
  std::set<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.insert(Scalar(h.Query("", "SELECT CONNECTION_ID()")));
  REQUIRE(!ids.empty());
  std::vector<std::string> kills;
  for (const auto& id : ids) kills.push_back("KILL CONNECTION " + id);
  REQUIRE(h.Execute("root", kills).ok());
  for (int i = 0; i < 4; ++i) {
    auto r = h.Query("", "SELECT CONNECTION_ID()");
    INFO((r.ok() ? std::string("ok") : r.error()));
    REQUIRE(r.ok());
    CHECK(ids.count(Scalar(r)) == 0);
  }
}

TEST_CASE("a status read on a connection killed on the server reconnects without an error",
          "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlConnConfig mine = sb->Tcp();
  mine.user = "warden_kill";
  REQUIRE(sb->Client(std::string("CREATE USER IF NOT EXISTS 'warden_kill'@'%' IDENTIFIED BY '") +
                     kPassword + "'; GRANT PROCESS ON *.* TO 'warden_kill'@'%';") == 0);
  MysqlHarness h({{"", mine}, {"root", sb->RootSocket("root")}});
  h.reads->share_window = 0ms;
  auto ids = [&] {
    // A killed thread may still be listed for a moment, as Killed.
    auto r = h.Query("root", "SELECT ID FROM information_schema.PROCESSLIST "
                             "WHERE USER = 'warden_kill' AND COMMAND <> 'Killed' ORDER BY ID");
    REQUIRE(r.ok());
    std::vector<std::string> out;
    for (const auto& row : r->rows) out.push_back(*row[0]);
    return out;
  };
  REQUIRE(h.Status("").ok());
  auto before = ids();
  REQUIRE(before.size() == 1);   // the status reads' one connection
  REQUIRE(h.Execute("root", {"KILL CONNECTION " + before[0]}).ok());
  auto r = h.Status("");
  INFO((r.ok() ? std::string("ok") : r.error()));
  REQUIRE(r.ok());
  CHECK(StatusNumber(*r, "connections") > 1);   // ours, counted since the server started
  auto after = ids();
  REQUIRE(after.size() == 1);
  CHECK(after[0] != before[0]);
}

namespace {

// Connection "proxied": the sandbox over TCP, through `proxy`.
MysqlConnConfig Proxied(Sandbox* sb, const StallingProxy& proxy) {
  MysqlConnConfig c = sb->Tcp("proxied");
  c.port = proxy.port();
  return c;
}

}  // namespace

TEST_CASE("a status read the server stops answering fails at query_timeout, the loop goes on",
          "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  StallingProxy proxy(sb->port());
  MysqlConnConfig c = Proxied(sb, proxy);
  c.query_timeout = 1s;
  MysqlHarness h({{"proxied", c}});
  h.reads->share_window = 0ms;
  REQUIRE(h.Status("proxied").ok());
  // Variables go over the same connection, one statement after the other.
  std::optional<Expected<std::shared_ptr<const MysqlMap>>> vars;
  h.reads->GlobalVariables("proxied", [&vars](Expected<std::shared_ptr<const MysqlMap>> v) {
    vars = std::move(v);
  });
  REQUIRE(h.Status("proxied").ok());
  REQUIRE(PumpUntil(h.loop, [&] { return vars.has_value(); }));
  REQUIRE(vars->ok());
  CHECK((**vars)->count("max_connections") == 1);
  CHECK(proxy.accepted == 1);

  proxy.stalled = true;
  // A timer on the same loop keeps its cadence while the read waits.
  int ticks = 0;
  ev_timer tick;
  ev_timer_init(
      &tick, [](struct ev_loop*, ev_timer* w, int) { ++*static_cast<int*>(w->data); }, 0.05, 0.05);
  tick.data = &ticks;
  ev_timer_start(h.loop, &tick);
  auto start = Clock::now();
  auto r = h.Status("proxied");
  double took = std::chrono::duration<double>(Clock::now() - start).count();
  ev_timer_stop(h.loop, &tick);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::StartsWith("[mysql proxied] 127.0.0.1:" +
                                          std::to_string(proxy.port()) + ": ERROR 2013 (HY000): "));
  CHECK(took >= 0.9);
  CHECK(took < 3.0);
  CHECK(ticks >= 10);

  // Answering again: the next read makes a new connection.
  proxy.stalled = false;
  int accepted = proxy.accepted;
  auto again = h.Status("proxied");
  INFO((again.ok() ? std::string("ok") : again.error()));
  CHECK(again.ok());
  CHECK(proxy.accepted == accepted + 1);
}

namespace {

// Whether this host has a TCP socket from local port `port` to `peer_port`
// in CLOSE_WAIT: its peer closed, and its owner has not (/proc/net/tcp,
// state 08). Both ports: a local port may be in use to several peers (an
// earlier test's socket left in CLOSE_WAIT to another one is not ours).
bool InCloseWait(int port, int peer_port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);   // the header
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    auto colon = local.find(':'), peer_colon = remote.find(':');
    if (colon == std::string::npos || peer_colon == std::string::npos) continue;
    if (std::stoi(local.substr(colon + 1), nullptr, 16) == port &&
        std::stoi(remote.substr(peer_colon + 1), nullptr, 16) == peer_port && state == "08") {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("a loop connection the server closes between reads is closed at once",
          "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  StallingProxy proxy(sb->port());
  MysqlHarness h({{"proxied", Proxied(sb, proxy)}});
  h.reads->share_window = 0ms;
  REQUIRE(h.Status("proxied").ok());
  REQUIRE(proxy.accepted == 1);
  const int port = proxy.client_port;
  REQUIRE(port > 0);

  // The server goes away while no read is running. Our end is closed
  // within a turn of the loop, not left in CLOSE_WAIT for the next read
  // (or the idle close, 5 minutes later) to find.
  proxy.hang_up = true;
  REQUIRE(PumpUntil(h.loop, [&] { return !proxy.hang_up; }));
  CHECK(PumpUntil(h.loop, [&] { return !InCloseWait(port, proxy.port()); }, 3s));

  // The next read connects anew, without an error.
  auto again = h.Status("proxied");
  INFO((again.ok() ? std::string("ok") : again.error()));
  CHECK(again.ok());
  CHECK(proxy.accepted == 2);
}

TEST_CASE("GlobalStatus asked for within the window runs one SHOW GLOBAL STATUS",
          "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlHarness h({{"", sb->Tcp()}});
  h.reads->share_window = 100ms;

  auto before = h.Status("");
  REQUIRE(before.ok());
  std::this_thread::sleep_for(150ms);

  std::vector<Expected<std::shared_ptr<const MysqlMap>>> got;
  for (int i = 0; i < 50; ++i) {
    h.reads->GlobalStatus(
        "", [&got](Expected<std::shared_ptr<const MysqlMap>> r) { got.push_back(r); });
  }
  REQUIRE(PumpUntil(h.loop, [&] { return got.size() == 50; }));
  for (const auto& r : got) {
    REQUIRE(r.ok());
    CHECK(r->get() == got[0]->get());  // one snapshot for all
  }
  std::this_thread::sleep_for(150ms);
  auto after = h.Status("");
  REQUIRE(after.ok());
  CHECK(after->get() != got[0]->get());
  // On the server: the batch and `after` itself, not 51 statements.
  CHECK(StatusNumber(*after, "com_show_status") - StatusNumber(*before, "com_show_status") == 2);

  // The next 100 ms tick of the run grid reads anew, even a little early:
  // a read serves for 90% of the window.
  auto tick = h.Status("");
  REQUIRE(tick.ok());
  std::this_thread::sleep_for(95ms);
  auto next_tick = h.Status("");
  REQUIRE(next_tick.ok());
  CHECK(next_tick->get() != tick->get());
  auto same_tick = h.Status("");
  REQUIRE(same_tick.ok());
  CHECK(same_tick->get() == next_tick->get());

  // A finished read is reused while it is younger than the window ...
  h.reads->share_window = 10s;
  auto reused = h.Status("");
  REQUIRE(reused.ok());
  CHECK(reused->get() == next_tick->get());
  // ... and not once the window is over.
  h.reads->share_window = 0ms;
  auto fresh = h.Status("");
  REQUIRE(fresh.ok());
  CHECK(fresh->get() != next_tick->get());

  // Variables are shared the same way, and keyed lower-case.
  h.reads->share_window = 10s;
  std::vector<std::shared_ptr<const MysqlMap>> vars;
  for (int i = 0; i < 3; ++i) {
    h.reads->GlobalVariables("", [&vars](Expected<std::shared_ptr<const MysqlMap>> r) {
      REQUIRE(r.ok());
      vars.push_back(*r);
    });
  }
  REQUIRE(PumpUntil(h.loop, [&] { return vars.size() == 3; }));
  CHECK(vars[0] == vars[2]);
  CHECK(vars[0]->count("max_connections") == 1);
  CHECK(vars[0]->count("MAX_CONNECTIONS") == 0);
}

TEST_CASE("a shared read asks the server for the names it needs, every row past 128",
          "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlHarness h({{"", sb->Tcp()}});
  h.reads->share_window = 0ms;
  auto all = h.Status("");
  REQUIRE(all.ok());
  REQUIRE((*all)->size() > 300);
  using warden::NameSet;
  auto read = [&h](std::shared_ptr<const NameSet> names, bool variables = false) {
    std::optional<Expected<std::shared_ptr<const MysqlMap>>> got;
    auto done = [&got](Expected<std::shared_ptr<const MysqlMap>> r) { got = std::move(r); };
    if (variables) {
      h.reads->GlobalVariables("", std::move(names), done);
    } else {
      h.reads->GlobalStatus("", std::move(names), done);
    }
    REQUIRE(PumpUntil(h.loop, [&] { return got.has_value(); }));
    REQUIRE(got->ok());
    return **got;
  };

  // Only the names asked for, in any case; one that is no status name is
  // simply absent, and one that could not be a name is not sent at all.
  auto some = read(NameSet::Of({"Uptime", "threads_connected", "No_such_status",
                                "x') OR ('1'='1", "Com_select"}));
  CHECK(some->size() == 3);
  CHECK(some->count("uptime") == 1);
  CHECK(some->count("threads_connected") == 1);
  CHECK(some->count("com_select") == 1);
  auto vars = read(NameSet::Of({"max_connections", "read_only"}), true);
  CHECK(vars->size() == 2);
  CHECK(vars->count("max_connections") == 1);

  // Past 128 names every row is cheaper for the server than the filter.
  std::vector<std::string> many;
  for (size_t i = 0; i < 129; ++i) many.emplace_back((*all)->row(i).first);
  CHECK(read(NameSet::Of(many))->size() == (*all)->size());
  many.pop_back();
  CHECK(read(NameSet::Of(many))->size() == 128);

  // Reads in flight and in the window serve every later call whose names
  // they hold, and only those.
  h.reads->share_window = 10s;
  auto wide = NameSet::Of({"uptime", "questions", "com_select"});
  auto narrow = NameSet::Of({"questions"});
  auto other = NameSet::Of({"bytes_sent"});
  std::vector<std::pair<std::string, std::shared_ptr<const MysqlMap>>> got;
  auto keep = [&got](std::string what) {
    return [&got, what](Expected<std::shared_ptr<const MysqlMap>> r) {
      REQUIRE(r.ok());
      got.emplace_back(what, *r);
    };
  };
  h.reads->GlobalStatus("", wide, keep("wide"));
  h.reads->GlobalStatus("", narrow, keep("narrow"));   // joins wide's read
  h.reads->GlobalStatus("", other, keep("other"));     // a read of its own
  REQUIRE(PumpUntil(h.loop, [&] { return got.size() == 3; }));
  std::map<std::string, std::shared_ptr<const MysqlMap>> by;
  for (auto& [what, map] : got) by[what] = map;
  CHECK(by["narrow"] == by["wide"]);
  CHECK(by["other"] != by["wide"]);
  CHECK(by["other"]->count("bytes_sent") == 1);
  // From the window: the last read holds `questions`, not `uptime` too.
  auto again = read(narrow);
  CHECK(again->count("questions") == 1);
  auto full = read(nullptr);
  CHECK(full->size() == (*all)->size());
  CHECK(read(wide) == full);   // a full read holds every name
}

TEST_CASE("a snapshot's arrival time is its checks' result time and a rate's sample time",
          "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlHarness h({{"", sb->Tcp()}});
  h.reads->share_window = 10s;
  const auto before = std::chrono::steady_clock::now();
  auto snapshot = h.Status("");
  REQUIRE(snapshot.ok());
  const auto taken = (*snapshot)->taken;
  CHECK(taken >= before);
  CHECK(taken <= std::chrono::steady_clock::now());

  // Served later from the window: the snapshot's time, not the run's.
  std::this_thread::sleep_for(50ms);
  Measurement value = h.RunCheck("mysql_status", {{"variable", "Uptime"}});
  REQUIRE(value.kind == Measurement::Kind::kValue);
  CHECK(value.at == taken);
  Measurement variable = h.RunCheck("mysql_variable", {{"variable", "max_connections"}});
  REQUIRE(variable.kind == Measurement::Kind::kValue);
  CHECK(variable.at > taken);   // its own snapshot (SHOW GLOBAL VARIABLES)

  // Two runs served the same snapshot have no time between their samples
  // (before, each took its own: a rate of 0 over the 20 ms between them).
  warden::CheckCommon common;
  auto built =
      MakeCheck("mysql_status", {{"variable", "Com_show_status"}, {"rate", "yes"}}, common);
  REQUIRE(built.errors.empty());
  CHECK(h.Run(*built.check).kind == Measurement::Kind::kNotYet);
  std::this_thread::sleep_for(20ms);
  Measurement again = h.Run(*built.check);
  CHECK(Show(again) == "not-yet no time passed since the previous sample");
}

TEST_CASE("a hung server holds one worker for its timeout while other connections go on",
          "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  // Accepts (the kernel completes the handshake) and never says a word.
  LocalSocket hung(64);
  MysqlConnConfig stuck = sb->Tcp("stuck");
  stuck.port = hung.port;
  stuck.connect_timeout = 1s;
  stuck.query_timeout = 1s;

  MysqlHarness h({{"", sb->Tcp()}, {"stuck", stuck}});
  auto start = Clock::now();
  std::optional<Expected<double>> stuck_result;
  Clock::time_point stuck_at;
  h.reads->Ping("stuck", [&](Expected<double> r) {
    stuck_result = std::move(r);
    stuck_at = Clock::now();
  });
  // Meanwhile the healthy connection answers, one query after another.
  int healthy_done = 0;
  Clock::time_point last_healthy_at;
  std::function<void()> next = [&] {
    h.reads->Query("", "SELECT 1", [&](Expected<MysqlRows> r) {
      REQUIRE(r.ok());
      ++healthy_done;
      last_healthy_at = Clock::now();
      if (healthy_done < 20) next();
    });
  };
  next();
  REQUIRE(PumpUntil(
      h.loop, [&] { return stuck_result.has_value() && healthy_done == 20; }, 15s));
  double stuck_s = std::chrono::duration<double>(stuck_at - start).count();
  INFO("stuck after " << stuck_s << " s");
  REQUIRE_FALSE(stuck_result->ok());
  CHECK_THAT(stuck_result->error(),
             Catch::StartsWith("cannot connect to [mysql stuck] 127.0.0.1:" +
                               std::to_string(stuck.port) + ": ERROR 2013 (HY000): "));
  CHECK(stuck_s >= 0.8);
  CHECK(stuck_s < 3.5);
  CHECK(last_healthy_at < stuck_at);
}

TEST_CASE("a read that cannot start before its deadline says the workers are busy",
          "[checks][mysql]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  LocalSocket hung(64);
  MysqlConnConfig stuck = sb->Tcp("stuck");
  stuck.port = hung.port;
  stuck.connect_timeout = 1s;
  MysqlConnConfig quick = sb->Tcp("quick");
  quick.connect_timeout = 100ms;
  quick.query_timeout = 100ms;

  // One worker, held by the hung peer for a second.
  struct ev_loop* loop = EV_DEFAULT;
  warden::WorkerPool one(loop, 1);
  MysqlReads reads(one, {{"stuck", stuck}, {"quick", quick}});
  std::optional<Expected<double>> stuck_result, quick_result;
  reads.Ping("stuck", [&](Expected<double> r) { stuck_result = std::move(r); });
  std::this_thread::sleep_for(50ms);  // the worker has picked the stuck job
  reads.Ping("quick", [&](Expected<double> r) { quick_result = std::move(r); });
  REQUIRE(PumpUntil(
      loop, [&] { return stuck_result && quick_result; }, 15s));
  REQUIRE_FALSE(quick_result->ok());
  CHECK(quick_result->error() == "not started within 200ms: all workers busy");
  CHECK(quick_result->code() == warden::StatusCode::kTransient);   // a retry may find a worker
  CHECK(quick_result->peer_code() == -1);
}

// ---------------------------------------------------------------------------
// Replica status normalization, on rows shaped as each server returns them.

namespace {

MysqlRows Rows(std::vector<std::string> columns,
               std::vector<std::vector<std::optional<std::string>>> rows) {
  MysqlRows r;
  r.columns = std::move(columns);
  r.rows = std::move(rows);
  return r;
}

const std::vector<std::string> kMysql57 = {
    "Slave_IO_State", "Slave_IO_Running",      "Slave_SQL_Running", "Last_Errno",
    "Last_Error",     "Seconds_Behind_Master", "Last_IO_Errno",     "Last_IO_Error",
    "Last_SQL_Errno", "Last_SQL_Error",        "Channel_Name"};
const std::vector<std::string> kMysql80 = {
    "Replica_IO_State", "Replica_IO_Running",    "Replica_SQL_Running", "Last_Errno",
    "Last_Error",       "Seconds_Behind_Source", "Last_IO_Errno",       "Last_IO_Error",
    "Last_SQL_Errno",   "Last_SQL_Error",        "Channel_Name"};
const std::vector<std::string> kMariaDbAll = {
    "Connection_name",   "Slave_SQL_State", "Slave_IO_State", "Slave_IO_Running",
    "Slave_SQL_Running", "Last_Errno",      "Last_Error",     "Seconds_Behind_Master",
    "Last_IO_Errno",     "Last_IO_Error",   "Last_SQL_Errno", "Last_SQL_Error"};

}  // namespace

TEST_CASE("replica fields read the same from MySQL 5.7, 8.0.22+ and MariaDB rows",
          "[checks][mysql]") {
  auto healthy57 = Rows(kMysql57, {{"Waiting", "Yes", "Yes", "0", "", "17", "0", "", "0", "", ""}});
  auto healthy80 = Rows(kMysql80, {{"Waiting", "Yes", "Yes", "0", "", "17", "0", "", "0", "", ""}});
  auto healthy_maria =
      Rows(kMariaDbAll,
           {{"", "Slave has read all", "Waiting", "Yes", "Yes", "0", "", "17", "0", "", "0", ""}});
  for (const auto* rows : {&healthy57, &healthy80, &healthy_maria}) {
    CHECK(Show(warden::ReplicaField(*rows, "lag", "")) == "value 17");
    CHECK(Show(warden::ReplicaField(*rows, "io_running", "")) == "value Yes");
    CHECK(Show(warden::ReplicaField(*rows, "sql_running", "")) == "value Yes");
    CHECK(Show(warden::ReplicaField(*rows, "last_errno", "")) == "value 0");
    CHECK(Show(warden::ReplicaField(*rows, "last_error", "")) == "value ");
  }
}

TEST_CASE("replica lag NULL is an error carrying the replication errors", "[checks][mysql]") {
  auto broken = Rows(kMysql80, {{"", "No", "Yes", "0", "", std::nullopt, "1045",
                                 "error connecting to master 'repl@10.0.0.5:3306'", "0", "", ""}});
  Measurement lag = warden::ReplicaField(broken, "lag", "");
  CHECK(lag.kind == Measurement::Kind::kError);
  CHECK_THAT(lag.error, Catch::Contains("Seconds_Behind_Source is NULL") &&
                            Catch::Contains("IO thread No, SQL thread Yes") &&
                            Catch::Contains("Last_IO_Error (1045): error connecting to master"));
  CHECK(Show(warden::ReplicaField(broken, "io_running", "")) == "value No");
  CHECK(Show(warden::ReplicaField(broken, "last_errno", "")) == "value 1045");
  CHECK(Show(warden::ReplicaField(broken, "last_error", "")) ==
        "value error connecting to master 'repl@10.0.0.5:3306'");

  auto sql_broken = Rows(kMariaDbAll, {{"", "", "", "Yes", "No", "1062", "Duplicate entry '3'",
                                        std::nullopt, "0", "", "1062", "Duplicate entry '3'"}});
  Measurement lag2 = warden::ReplicaField(sql_broken, "lag", "");
  CHECK(lag2.kind == Measurement::Kind::kError);
  CHECK_THAT(lag2.error, Catch::Contains("Seconds_Behind_Master is NULL") &&
                             Catch::Contains("Last_SQL_Error (1062): Duplicate entry '3'"));
  CHECK(Show(warden::ReplicaField(sql_broken, "last_errno", "")) == "value 1062");

  auto stopped = Rows(kMysql57, {{"", "No", "No", "0", "", std::nullopt, "0", "", "0", "", ""}});
  Measurement lag3 = warden::ReplicaField(stopped, "lag", "");
  CHECK(lag3.kind == Measurement::Kind::kError);
  CHECK_THAT(lag3.error, Catch::Contains("no error reported"));
}

TEST_CASE("replica channel picks a row of a multi-source replica", "[checks][mysql]") {
  auto multi =
      Rows(kMysql80,
           {{"", "Yes", "Yes", "0", "", "3", "0", "", "0", "", "east"},
            {"", "Connecting", "Yes", "0", "", "900", "2003", "cannot reach", "0", "", "west"}});
  CHECK(Show(warden::ReplicaField(multi, "lag", "")) == "value 3");
  CHECK(Show(warden::ReplicaField(multi, "lag", "west")) == "value 900");
  CHECK(Show(warden::ReplicaField(multi, "io_running", "WEST")) == "value Connecting");
  CHECK(Show(warden::ReplicaField(multi, "lag", "north")) ==
        "error no replication channel 'north' (there are 'east', 'west')");

  auto maria =
      Rows(kMariaDbAll, {{"", "", "", "Yes", "Yes", "0", "", "1", "0", "", "0", ""},
                         {"src2", "", "", "No", "Yes", "0", "", std::nullopt, "0", "", "0", ""}});
  CHECK(Show(warden::ReplicaField(maria, "io_running", "src2")) == "value No");
  CHECK(warden::ReplicaField(maria, "lag", "src2").kind == Measurement::Kind::kError);

  auto odd = Rows({"Something_else"}, {{"x"}});
  CHECK(Show(warden::ReplicaField(odd, "lag", "")) ==
        "error replica status has no column Seconds_Behind_Source or Seconds_Behind_Master");
}

namespace {

using NameValues = std::vector<std::pair<std::string, std::string>>;

MysqlMap BuildMap(const NameValues& rows) {
  MysqlMap m;
  m.Reserve(rows.size());
  for (const auto& [name, value] : rows) m.Add(name, value);
  return m;
}

std::string Got(const std::optional<std::string_view>& v) {
  return v ? "'" + std::string(*v) + "'" : "absent";
}

}  // namespace

TEST_CASE("MysqlMap looks names up in any case, the last of a repeated one",
          "[checks][mysql]") {
  // As MariaDB 10.11 sends them (not in byte order once lower-cased), and
  // a name twice.
  const MysqlMap m = BuildMap({{"Binlog_snapshot_position", "1"},
                               {"Binlog_bytes_written", "2"},
                               {"Uptime", "3"},
                               {"Aborted_clients", "4"},
                               {"uptime", "5"}});
  REQUIRE(m.size() == 5);
  CHECK(m.row(0) == MysqlMap::value_type{"Binlog_snapshot_position", "1"});
  CHECK(Got(m.get("binlog_bytes_written")) == "'2'");
  CHECK(Got(m.get("aborted_clients")) == "'4'");
  CHECK(Got(m.get("uptime")) == "'5'");
  // The key is lower case: anything else is no name the server sends.
  CHECK(Got(m.get("Uptime")) == "absent");
  CHECK(m.count("UPTIME") == 0);
  CHECK(m.count("uptime") == 1);
  // A prefix, or a name with more after it, is another name.
  CHECK(Got(m.get("uptim")) == "absent");
  CHECK(Got(m.get("uptimes")) == "absent");
  CHECK(Got(m.get("")) == "absent");
  CHECK(MysqlMap().empty());
  CHECK(Got(MysqlMap().get("uptime")) == "absent");

  // A NULL value reads as empty.
  MysqlMap with_null;
  const char* name = "Rpl_status";
  with_null.AddRow(name, nullptr);
  CHECK(Got(with_null.get("rpl_status")) == "''");
  CHECK(with_null.row(0).second.empty());
}

TEST_CASE("MysqlMap finds a name again through a hint, and follows it when rows move",
          "[checks][mysql]") {
  const NameValues server = {{"Uptime", "3"}, {"Aborted_clients", "4"}, {"Threads_running", "1"}};
  MysqlMap first = BuildMap(server);
  MysqlMap::Hint hint;
  CHECK(Got(first.get("threads_running", &hint)) == "'1'");
  CHECK(hint.index == 2);   // the server's order
  NameValues later = server;
  later[2].second = "7";
  MysqlMap second = BuildMap(later);
  CHECK(Got(second.get("threads_running", &hint)) == "'7'");
  // Moving a snapshot keeps its rows.
  MysqlMap moved = std::move(second);
  CHECK(Got(moved.get("threads_running", &hint)) == "'7'");
  CHECK(Got(moved.get("uptime")) == "'3'");

  // A row added before it (a plugin loaded): the hint's row has another
  // name now, so the name is looked up and the hint follows it.
  MysqlMap third = BuildMap({{"Aaa_first", "0"},
                             {"Uptime", "5"},
                             {"Aborted_clients", "4"},
                             {"Threads_running", "9"}});
  CHECK(Got(third.get("threads_running", &hint)) == "'9'");
  CHECK(hint.index == 3);
  // Fewer rows than the hint's index, and the name gone: absent, and the
  // hint stays as it was.
  MysqlMap fourth = BuildMap({{"Uptime", "6"}});
  CHECK(Got(fourth.get("threads_running", &hint)) == "absent");
  CHECK(hint.index == 3);
  CHECK(Got(third.get("threads_running", &hint)) == "'9'");
  // The hint's row is a name that only starts like the key: not taken.
  MysqlMap::Hint h;
  MysqlMap ab = BuildMap({{"c", "1"}, {"cd", "2"}});
  CHECK(Got(ab.get("cd", &h)) == "'2'");
  CHECK(h.index == 1);
  MysqlMap swapped = BuildMap({{"cd", "3"}, {"c", "4"}});
  CHECK(Got(swapped.get("cd", &h)) == "'3'");
  CHECK(h.index == 0);
  MysqlMap::Hint hc;   // a hint is for one key
  CHECK(Got(swapped.get("c", &hc)) == "'4'");
  CHECK(hc.index == 1);
  // The same name spelt otherwise at the hint's row: looked up again, and
  // the hint takes the new spelling.
  MysqlMap::Hint t;
  CHECK(Got(BuildMap({{"UPTIME", "1"}}).get("uptime", &t)) == "'1'");
  CHECK(std::string_view(t.name) == "UPTIME");
  CHECK(Got(BuildMap({{"Uptime", "2"}}).get("uptime", &t)) == "'2'");
  CHECK(std::string_view(t.name) == "Uptime");
  CHECK(t.index == 0);
  // Of a repeated name, the hint is the last row's.
  MysqlMap twice = BuildMap({{"Uptime", "1"}, {"Other", "x"}, {"UPTIME", "2"}});
  MysqlMap::Hint u;
  CHECK(Got(twice.get("uptime", &u)) == "'2'");
  CHECK(u.index == 2);

  // A name longer than a hint keeps (a few of SHOW GLOBAL VARIABLES'):
  // only its row is kept, and that row is compared with the key, in any
  // spelling; another name there is not taken.
  const std::string longest = "PERFORMANCE_SCHEMA_EVENTS_TRANSACTIONS_HISTORY_LONG_SIZE";
  REQUIRE(longest.size() > MysqlMap::Hint::kMaxName);
  std::string key = longest;
  for (auto& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  MysqlMap::Hint l;
  CHECK(Got(BuildMap({{"Uptime", "1"}, {longest, "10000"}}).get(key, &l)) == "'10000'");
  CHECK(l.index == 1);
  CHECK(std::string_view(l.name).empty());
  CHECK(Got(BuildMap({{"Uptime", "1"}, {key, "20"}}).get(key, &l)) == "'20'");
  CHECK(l.index == 1);
  MysqlMap moved_away = BuildMap({{longest, "30"}, {longest.substr(0, 55), "5"}});
  CHECK(Got(moved_away.get(key, &l)) == "'30'");
  CHECK(l.index == 0);
  // The longest name a hint keeps is kept whole.
  const std::string kept(MysqlMap::Hint::kMaxName, 'x');
  MysqlMap::Hint k;
  CHECK(Got(BuildMap({{kept, "1"}}).get(kept, &k)) == "'1'");
  CHECK(std::string_view(k.name) == kept);
  CHECK(Got(BuildMap({{"y", "0"}, {kept + "y", "2"}, {kept, "3"}}).get(kept, &k)) == "'3'");
  CHECK(k.index == 2);
}

namespace {

// A check as the config loader makes it: run once at start (jitter 0),
// then not for an hour.
warden::CheckConfig SchedCheck(const std::string& name, const std::string& type,
                               const std::vector<std::pair<std::string, std::string>>& keys,
                               const std::string& connection = "", const std::string& crit = "") {
  warden::CheckCommon common;
  common.connection = connection;
  auto built = MakeCheck(type, keys, common);
  INFO(name);
  REQUIRE(built.errors.empty());
  warden::CheckConfig c;
  c.common = common;
  c.common.name = name;
  c.common.type = type;
  c.common.every = Duration(3'600'000);
  c.impl = std::move(built.check);
  c.digest = name;
  if (!crit.empty()) {
    auto t = warden::ParseThreshold(crit);
    REQUIRE(t.ok());
    c.rules.crit = *t;
  }
  return c;
}

// Pumps `loop` until every check of `rig` has run `n` times and none is in
// flight.
bool AllRan(struct ev_loop* loop, warden::testing::SchedulerRig& rig, std::uint64_t n) {
  bool ran = PumpUntil(loop, [&] {
    for (const auto& s : rig.scheduler->Status()) {
      if (s.runs != n || s.in_flight) return false;
    }
    return true;
  });
  if (!ran) {
    for (const auto& s : rig.scheduler->Status()) {
      UNSCOPED_INFO(s.name << ": runs " << s.runs << ", overruns " << s.overruns
                           << (s.in_flight ? ", in flight" : ""));
    }
  }
  return ran;
}

}  // namespace

TEST_CASE("status and variable checks due together are measured from one read each",
          "[checks][mysql][scheduler]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlHarness h({{"", sb->Tcp()}});
  h.reads->share_window = 0ms;
  auto before = h.Status("");
  REQUIRE(before.ok());
  const long long shows = StatusNumber(*before, "com_show_status");
  const long long uptime = StatusNumber(*before, "uptime");

  auto config = std::make_shared<warden::Config>();
  config->daemon.jitter = 0;
  config->checks.push_back(SchedCheck("uptime", "mysql_status", {{"variable", "Uptime"}}));
  config->checks.push_back(
      SchedCheck("threads", "mysql_status", {{"variable", "threads_connected"}}, "", "> 1000"));
  config->checks.push_back(SchedCheck("missing", "mysql_status", {{"variable", "No_such_status"}}));
  config->checks.push_back(
      SchedCheck("questions", "mysql_status", {{"variable", "Questions"}, {"rate", "yes"}}));
  config->checks.push_back(
      SchedCheck("maxconn", "mysql_variable", {{"variable", "max_connections"}}, "", "> 50"));
  config->checks.push_back(
      SchedCheck("novar", "mysql_variable", {{"variable", "no_such_variable"}}));
  config->checks.push_back(
      SchedCheck("elsewhere", "mysql_status", {{"variable", "Uptime"}}, "nowhere"));
  warden::testing::SchedulerRig rig(h.rt);
  rig.scheduler->Start(config);
  REQUIRE(AllRan(h.loop, rig, 1));

  auto up = rig.Get("uptime");
  CHECK(up.state == warden::CheckState::kOk);
  CHECK(std::stoll(up.value) >= uptime);
  CHECK(rig.Get("threads").state == warden::CheckState::kOk);
  CHECK(std::stoll(rig.Get("threads").value) >= 1);
  auto missing = rig.Get("missing");
  CHECK(missing.state == warden::CheckState::kError);
  CHECK(missing.error == "no status variable 'No_such_status' in SHOW GLOBAL STATUS");
  CHECK(rig.Get("questions").state == warden::CheckState::kPending);   // a rate needs two
  auto maxconn = rig.Get("maxconn");
  CHECK(maxconn.state == warden::CheckState::kCrit);
  CHECK(maxconn.value == std::to_string(kMaxConnections));
  CHECK(rig.Get("novar").error == "no variable 'no_such_variable' in SHOW GLOBAL VARIABLES");
  auto elsewhere = rig.Get("elsewhere");
  CHECK(elsewhere.state == warden::CheckState::kError);
  CHECK(elsewhere.error == "unknown mysql connection 'nowhere' (no [mysql nowhere] section)");
  // Every result has its snapshot's time.
  CHECK(up.last_run == rig.Get("threads").last_run);
  CHECK(rig.scheduler->runs() == 7);

  // Four status checks, one SHOW GLOBAL STATUS (and this one).
  auto after = h.Status("");
  REQUIRE(after.ok());
  CHECK(StatusNumber(*after, "com_show_status") == shows + 2);

  // wardenctl check: a run of its own, through Run.
  std::optional<Measurement> now;
  REQUIRE(rig.scheduler->RunNow("questions", [&](const Measurement& m, const warden::Verdict&) {
    now = m;
  }));
  REQUIRE(PumpUntil(h.loop, [&] { return now.has_value(); }));
  CHECK(now->kind == Measurement::Kind::kValue);
  CHECK(rig.Get("questions").state == warden::CheckState::kOk);
}

TEST_CASE("a shared read's result that changes nothing is recorded in place, one that trips "
          "is not",
          "[checks][mysql][scheduler]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  // Through a proxy that can hold the server's answers: the test decides
  // when a read is in flight. A read on loopback can otherwise complete
  // inside its launch, before the loop's next pass (the server answers
  // before the client asks for the answer, as on a busy machine), and the
  // test would never see it in flight.
  StallingProxy proxy(sb->port());
  MysqlHarness h({{"proxied", Proxied(sb, proxy)}});
  h.reads->share_window = 0ms;
  auto before = h.Status("proxied");
  REQUIRE(before.ok());
  // Every SHOW GLOBAL STATUS counts itself: the scheduler's first read
  // says shows + 1, its second shows + 2.
  const long long shows = StatusNumber(*before, "com_show_status");

  auto config = std::make_shared<warden::Config>();
  config->daemon.jitter = 0;
  // Ok, then a new value that changes nothing (recorded in place).
  config->checks.push_back(
      SchedCheck("plain", "mysql_status", {{"variable", "Com_show_status"}}, "proxied"));
  // The same with a threshold the value stays under.
  config->checks.push_back(SchedCheck("under", "mysql_status", {{"variable", "Com_show_status"}},
                                      "proxied", "> " + std::to_string(shows + 100)));
  // Ok at the first read, crit at the second.
  config->checks.push_back(SchedCheck("trips", "mysql_status", {{"variable", "Com_show_status"}},
                                      "proxied", "> " + std::to_string(shows + 1)));
  // Error, then error again (not ok: never in place).
  config->checks.push_back(
      SchedCheck("missing", "mysql_status", {{"variable", "No_such_status"}}, "proxied"));
  // A variable that does not change: in place from the second read on.
  config->checks.push_back(
      SchedCheck("maxconn", "mysql_variable", {{"variable", "max_connections"}}, "proxied"));
  // One whose name is longer than a hint keeps (MysqlMap::Hint).
  const std::string longest = "performance_schema_events_transactions_history_long_size";
  config->checks.push_back(
      SchedCheck("long", "mysql_variable", {{"variable", longest}}, "proxied"));
  for (auto& c : config->checks) c.common.every = 1s;
  // The test says when the checks are due again: with the real clock, a
  // third tick could come before the test has looked (a loop stalled on a
  // busy machine, as below), and no moment would show every check at
  // exactly two runs.
  warden::testing::FakeTime time;
  h.rt.time = &time;
  warden::testing::SchedulerRig rig(h.rt);
  std::vector<std::string> changes;
  rig.events.Subscribe([&](const nlohmann::json& ev) {
    if (ev["event"] == "check.state") {
      changes.push_back(ev["check"].get<std::string>() + ":" + ev["state"].get<std::string>());
    }
  });
  rig.scheduler->Start(config);
  REQUIRE(AllRan(h.loop, rig, 1));
  CHECK(rig.Get("plain").value == std::to_string(shows + 1));
  CHECK(rig.Get("trips").state == warden::CheckState::kOk);
  const auto first = rig.Get("plain").last_run;
  const auto vars_first = rig.Get("maxconn").last_run;
  REQUIRE(first);
  REQUIRE(vars_first);
  auto vars = h.Variables("proxied");
  REQUIRE(vars.ok());
  const auto long_value = (*vars)->get(longest);
  REQUIRE(long_value);
  CHECK(rig.Get("long").state == warden::CheckState::kOk);
  CHECK(rig.Get("long").value == *long_value);

  // wardenctl check while the second read is in flight: it waits for that
  // read, so the result is delivered (never only recorded in place).
  proxy.stalled = true;
  time.Advance(1s);
  REQUIRE(PumpUntil(h.loop, [&] { return rig.Get("plain").in_flight; }));
  std::optional<std::string> waited;
  REQUIRE(rig.scheduler->RunNow("plain", [&](const Measurement& m, const warden::Verdict& v) {
    waited = m.value + " " + warden::StateName(v.state);
  }));
  // The loop stalls (this thread is the loop's) past the real time of the
  // next tick, then the answers come: their ends and the wheel's timer are
  // handled in one pass, and the checks are not due again.
  std::this_thread::sleep_for(1200ms);
  proxy.stalled = false;
  REQUIRE(AllRan(h.loop, rig, 2));
  // Not due again at the stalled tick: no run of theirs was skipped.
  for (const auto& s : rig.scheduler->Status()) {
    INFO(s.name);
    CHECK(s.overruns == 0);
  }
  auto plain = rig.Get("plain");
  CHECK(plain.state == warden::CheckState::kOk);
  CHECK(plain.value == std::to_string(shows + 2));
  REQUIRE(plain.last_run);
  CHECK(*plain.last_run > *first);
  auto under = rig.Get("under");
  CHECK(under.state == warden::CheckState::kOk);
  CHECK(under.value == plain.value);
  CHECK(under.last_run == plain.last_run);
  auto trips = rig.Get("trips");
  CHECK(trips.state == warden::CheckState::kCrit);
  CHECK(trips.value == plain.value);
  CHECK(rig.Get("missing").state == warden::CheckState::kError);
  CHECK(rig.Get("missing").error == "no status variable 'No_such_status' in SHOW GLOBAL STATUS");
  CHECK(rig.Get("maxconn").value == std::to_string(kMaxConnections));
  REQUIRE(rig.Get("maxconn").last_run);
  CHECK(*rig.Get("maxconn").last_run > *vars_first);   // its own snapshot's time
  CHECK(rig.Get("long").value == *long_value);
  CHECK(rig.Get("long").last_run == rig.Get("maxconn").last_run);
  REQUIRE(waited);
  CHECK(*waited == std::to_string(shows + 2) + " ok");
  CHECK(rig.scheduler->runs() == 12);
  // Only the changes were events: pending -> ok for the four that were
  // ok, pending -> error, then ok -> crit.
  std::sort(changes.begin(), changes.end());
  CHECK(changes == std::vector<std::string>{"long:ok", "maxconn:ok", "missing:error", "plain:ok",
                                            "trips:crit", "trips:ok", "under:ok"});
}

TEST_CASE("a shared read that completes inside its launch counts one run and answers its "
          "waiter",
          "[checks][mysql][scheduler]") {
  // A read served from the share window completes before the call that
  // asked for it returns, as a loop read on loopback does when the server
  // answers before the client waits: the checks must not count it twice,
  // stay in flight, or lose a wardenctl check's answer.
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  MysqlHarness h({{"", sb->Tcp()}});
  h.reads->share_window = 3'600'000ms;
  auto snapshot = h.Status("");   // every read from here on is served from it
  REQUIRE(snapshot.ok());
  const std::string uptime(*(*snapshot)->get("uptime"));

  auto config = std::make_shared<warden::Config>();
  config->daemon.jitter = 0;
  config->checks.push_back(SchedCheck("uptime", "mysql_status", {{"variable", "Uptime"}}));
  config->checks.push_back(SchedCheck("missing", "mysql_status", {{"variable", "No_such_status"}}));
  for (auto& c : config->checks) c.common.every = 1s;
  warden::testing::FakeTime time;
  h.rt.time = &time;
  warden::testing::SchedulerRig rig(h.rt);
  rig.scheduler->Start(config);
  REQUIRE(AllRan(h.loop, rig, 1));
  CHECK(rig.Get("uptime").value == uptime);
  CHECK(rig.Get("uptime").last_run == (*snapshot)->taken);
  CHECK(rig.Get("missing").state == warden::CheckState::kError);

  // wardenctl check: answered before RunNow returns, one run more.
  std::optional<std::string> waited;
  REQUIRE(rig.scheduler->RunNow("uptime", [&](const Measurement& m, const warden::Verdict& v) {
    waited = m.value + " " + warden::StateName(v.state);
  }));
  REQUIRE(waited);
  CHECK(*waited == uptime + " ok");
  CHECK(rig.Get("uptime").runs == 2);
  CHECK_FALSE(rig.Get("uptime").in_flight);

  // The next tick, the same: one run each, nothing left in flight.
  time.Advance(1s);
  REQUIRE(PumpUntil(h.loop, [&] { return rig.Get("missing").runs == 2; }));
  CHECK_FALSE(rig.Get("missing").in_flight);
  CHECK(rig.Get("uptime").runs == 3);
  CHECK_FALSE(rig.Get("uptime").in_flight);
  CHECK(rig.scheduler->runs() == 5);
  for (const auto& s : rig.scheduler->Status()) CHECK(s.overruns == 0);
}

TEST_CASE("a shared read in flight reports to the reloaded check, and to nothing once its "
          "scheduler is gone",
          "[checks][mysql][scheduler]") {
  Sandbox* sb = Sandbox::Get();
  if (!sb) return;
  StallingProxy proxy(sb->port());
  MysqlConnConfig c = Proxied(sb, proxy);
  c.query_timeout = 1s;
  c.connect_timeout = 1s;
  MysqlHarness h({{"proxied", c}});
  h.reads->share_window = 0ms;
  REQUIRE(h.Status("proxied").ok());   // the loop's connection is made
  proxy.stalled = true;

  auto three = [] {
    auto config = std::make_shared<warden::Config>();
    config->daemon.jitter = 0;
    for (const char* v : {"Uptime", "Threads_connected", "Questions"}) {
      config->checks.push_back(SchedCheck(v, "mysql_status", {{"variable", v}}, "proxied"));
    }
    return config;
  };
  {
    warden::testing::SchedulerRig rig(h.rt);
    auto first = three();
    std::weak_ptr<const warden::Config> first_weak = first;
    rig.scheduler->Start(first);
    REQUIRE(PumpUntil(h.loop, [&] { return rig.scheduler->in_flight() == 3; }));
    rig.scheduler->Reload(three());   // the same checks, new objects
    first.reset();
    CHECK_FALSE(first_weak.expired());   // the read in flight keeps them
    CHECK(rig.scheduler->in_flight() == 3);
    REQUIRE(PumpUntil(h.loop, [&] { return rig.scheduler->in_flight() == 0; }));
    for (const char* v : {"Uptime", "Threads_connected", "Questions"}) {
      auto s = rig.Get(v);
      INFO(v << ": " << s.error);
      CHECK(s.state == warden::CheckState::kError);
      CHECK_THAT(s.error, Catch::Contains("[mysql proxied] 127.0.0.1:"));
      CHECK(s.runs == 1);
    }
  }
  // Gone with its checks while their read waits: the read's end finds
  // entries with no owner and leaves them (ASan would see a check used
  // after it was freed).
  {
    auto rig = std::make_unique<warden::testing::SchedulerRig>(h.rt);
    auto config = three();
    rig->scheduler->Start(config);
    REQUIRE(PumpUntil(h.loop, [&] { return rig->scheduler->in_flight() == 3; }));
    rig.reset();
    config.reset();
  }
  auto r = h.Status("proxied");   // waits for the same read
  CHECK_FALSE(r.ok());
  proxy.stalled = false;
  CHECK(h.Status("proxied").ok());
}
