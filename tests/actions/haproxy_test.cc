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

#include "tests/actions/action_test_util.h"
#include "tests/support/temp_dir.h"

using namespace warden;
using namespace warden::action_test;

namespace {

// Answers captured from HAProxy 2.6.12 (Debian 12): `show servers state
// mysql` right after `set server mysql/db1 state drain`, with db-2.x up.
const std::string kServersState =
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "
    "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "
    "srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
    "3 mysql 1 db1 127.0.0.1 2 8 1 1 0 6 3 4 6 0 0 0 - 19997 - 0 0 - - 0\n"
    "3 mysql 2 db-2.x 127.0.0.1 2 0 1 1 508 1 0 2 0 0 0 0 - 19996 - 0 0 - - 0\n"
    "\n";

// `show servers state empty` for a backend without servers.
const std::string kServersStateEmpty =
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "
    "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "
    "srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
    "\n";

// `show stat 3 4 -1` with one client connected through db1 and db-2.x in maint.
const std::string kStat =
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"
    "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,"
    "cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,"
    "ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,"
    "check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,"
    "conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,"
    "srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,"
    "used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,"
    "agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,"
    "h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,"
    "h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,"
    "h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,"
    "h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,"
    "h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n"
    "mysql,db1,0,0,1,1,,1,0,0,,0,,0,0,0,0,UP,1,1,0,1,1,5,506,,1,3,1,,1,,2,1,,1,L4OK,,0,,,,,,,,,,,"
    "0,0,,,,,1,,,0,0,0,0,,,,Layer4 check passed,,2,3,4,,,,127.0.0.1:19997,,tcp,,,,,,,,0,1,0,,,0,,"
    "0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "mysql,db-2.x,0,0,0,1,,4,0,0,,0,,1,0,3,0,MAINT,1,1,0,,,2,,,1,3,2,,1,,2,0,,1,,,,,,,,,,,,,,0,0,"
    ",,,,3,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:19996,,tcp,,,,,,,,0,4,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,"
    "0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "\n";

HaproxyTable Table(const Expected<HaproxyTable>& t) {
  INFO((t.ok() ? std::string() : t.error()));
  REQUIRE(t.ok());
  return *t;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  socklen_t len = sizeof sa;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  ::close(fd);
  return ntohs(sa.sin_port);
}

ActionOutcome RunHaproxy(Harness& h, const Keys& keys, Duration timeout = Duration(5000)) {
  Built b = MakeAction("haproxy", keys);
  INFO(b.error());
  REQUIRE(b.errors.empty());
  REQUIRE(b.action);
  ActionCommon common = Common("haproxy");
  common.timeout = timeout;
  return h.Run(*b.action, common);
}

}  // namespace

TEST_CASE("haproxy: show servers state is read by its header", "[actions][haproxy]") {
  HaproxyTable t = Table(ParseServersState(kServersState));
  REQUIRE(t.columns.size() == 25);
  CHECK(t.columns.front() == "be_id");
  CHECK(t.columns[6] == "srv_admin_state");
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0].at("srv_name") == "db1");
  CHECK(t.rows[0].at("srv_admin_state") == "8");
  CHECK(t.rows[1].at("srv_name") == "db-2.x");
  CHECK(t.rows[1].at("srv_agent_port") == "0");

  auto db1 = FindHaproxyServer(t, "mysql", "db1");
  REQUIRE(db1.ok());
  CHECK(db1->be_id == "3");
  CHECK(db1->srv_id == "1");
  CHECK(db1->op_state == 2);
  CHECK(db1->admin_state == 8);
  auto db2 = FindHaproxyServer(t, "mysql", "db-2.x");
  REQUIRE(db2.ok());
  CHECK(db2->srv_id == "2");
  CHECK(db2->admin_state == 0);

  auto missing = FindHaproxyServer(t, "mysql", "db9");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error() == "no server 'db9' in backend 'mysql' (its servers: db1, db-2.x)");
  auto other = FindHaproxyServer(t, "web", "db1");
  REQUIRE_FALSE(other.ok());
  CHECK(other.error() ==
        "no server 'db1' in backend 'web' (it has no servers, or there is no such backend)");

  // Columns found by name, not by position: a reordered header still works.
  HaproxyTable moved = Table(ParseServersState(
      "1\n# srv_name be_name srv_admin_state srv_op_state srv_id be_id\ndb1 mysql 1 0 7 4\n"));
  auto m = FindHaproxyServer(moved, "mysql", "db1");
  REQUIRE(m.ok());
  CHECK(m->admin_state == 1);
  CHECK(m->be_id == "4");
  CHECK(m->srv_id == "7");
  // A row without the admin state is an error, not a 0.
  HaproxyTable short_row =
      Table(ParseServersState("1\n# be_id be_name srv_id srv_name srv_op_state srv_admin_state\n"
                              "3 mysql 1 db1 2\n"));
  CHECK(FindHaproxyServer(short_row, "mysql", "db1").error() ==
        "the row of mysql/db1 lacks be_id, srv_id, srv_op_state or srv_admin_state");
}

TEST_CASE("haproxy: show servers state errors and empty backends", "[actions][haproxy]") {
  HaproxyTable empty = Table(ParseServersState(kServersStateEmpty));
  CHECK(empty.columns.size() == 25);
  CHECK(empty.rows.empty());

  auto unknown = ParseServersState("Can't find backend.\n\n");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error() == "Can't find backend.");
  CHECK(ParseServersState("Permission denied\n\n").error() == "Permission denied");
  CHECK(ParseServersState("\n").error() == "an empty answer to show servers state");
  CHECK(ParseServersState("2\n# be_id be_name\n").error() ==
        "show servers state format version 2 (only version 1 is understood)");
  // A number alone is not a table either.
  CHECK(ParseServersState("1\n").error() == "1");
}

TEST_CASE("haproxy: show stat gives the sessions of a server", "[actions][haproxy]") {
  HaproxyTable t = Table(ParseStatCsv(kStat));
  CHECK(t.columns[4] == "scur");
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0].at("status") == "UP");
  CHECK(t.rows[1].at("status") == "MAINT");
  CHECK(t.rows[0].at("check_desc") == "Layer4 check passed");
  auto db1 = HaproxySessions(t, "db1");
  REQUIRE(db1.ok());
  CHECK(*db1 == 1);
  auto db2 = HaproxySessions(t, "db-2.x");
  REQUIRE(db2.ok());
  CHECK(*db2 == 0);
  CHECK(HaproxySessions(t, "db9").error() == "show stat has no row for server db9");

  HaproxyTable no_scur = Table(ParseStatCsv("# pxname,svname,qcur\nmysql,db1,0\n"));
  CHECK(HaproxySessions(no_scur, "db1").error() ==
        "show stat gives no number of sessions (scur) for db1");
  CHECK(ParseStatCsv("No such proxy.\n\n").error() == "No such proxy.");
  CHECK(ParseStatCsv("").error() == "an empty answer to show stat");
}

TEST_CASE("haproxy: the answer to set server", "[actions][haproxy]") {
  CHECK(InterpretSetServerReply("\n").ok());
  CHECK(InterpretSetServerReply("\n\n").ok());
  CHECK(InterpretSetServerReply(" \r\n").ok());
  auto denied = InterpretSetServerReply("Permission denied\n\n");
  REQUIRE_FALSE(denied.ok());
  CHECK(denied.message() == "Permission denied");
  CHECK(InterpretSetServerReply("No such server.\n\n").message() == "No such server.");
  CHECK(InterpretSetServerReply("No such backend.\n\n").message() == "No such backend.");
  CHECK(
      InterpretSetServerReply("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n")
          .message() == "'set server <srv> state' expects 'ready', 'drain' and 'maint'.");
}

TEST_CASE("haproxy: admin state bits", "[actions][haproxy]") {
  CHECK(HaproxyAdminStateIs(0, "ready"));
  CHECK(HaproxyAdminStateIs(8, "drain"));
  CHECK(HaproxyAdminStateIs(1, "maint"));
  CHECK_FALSE(HaproxyAdminStateIs(0, "drain"));
  CHECK_FALSE(HaproxyAdminStateIs(8, "ready"));
  CHECK_FALSE(HaproxyAdminStateIs(1, "ready"));
  CHECK_FALSE(HaproxyAdminStateIs(8, "maint"));
  // Maintenance wins over drain; bits kept for other reasons do not matter:
  // 0x04 is a server `disabled` in the config (5 after start, 4 once ready).
  CHECK(HaproxyAdminStateIs(9, "maint"));
  CHECK_FALSE(HaproxyAdminStateIs(9, "drain"));
  CHECK(HaproxyAdminStateIs(4, "ready"));
  CHECK(HaproxyAdminStateIs(12, "drain"));
  CHECK(HaproxyAdminStateIs(5, "maint"));
  CHECK_FALSE(HaproxyAdminStateIs(5, "ready"));
  CHECK(HaproxyAdminStateIs(0x10, "ready"));  // drain inherited from a tracked server
  CHECK_FALSE(HaproxyAdminStateIs(0, "bogus"));

  CHECK(DescribeHaproxyAdminState(0) == "0 (ready)");
  CHECK(DescribeHaproxyAdminState(8) == "0x8 (drain)");
  CHECK(DescribeHaproxyAdminState(9) == "0x9 (maint, drain)");
  CHECK(DescribeHaproxyAdminState(5) == "0x5 (maint, disabled in config)");
  CHECK(DescribeHaproxyAdminState(0x80) == "0x80 (unknown bits)");
}

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
  Harness h;
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

  const std::string refused_at = "127.0.0.1:" + std::to_string(FreePort());
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
                  std::to_string(FreePort()) +
                  "\n"
                  "  default_backend mysql\n"
                  "backend mysql\n"
                  "  server db1 127.0.0.1:" +
                  std::to_string(FreePort()) +
                  "\n"
                  "  server db2 127.0.0.1:" +
                  std::to_string(FreePort()) + "\n");
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
  Harness h;
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
