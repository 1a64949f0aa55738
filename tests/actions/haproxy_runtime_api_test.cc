#include "actions/haproxy_runtime_api.h"

#include <catch2/catch.hpp>
#include <string>

using namespace warden;

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
  CHECK(unknown.code() == StatusCode::kNotFound);
  CHECK(ParseServersState("Permission denied\n\n").error() == "Permission denied");
  CHECK(ParseServersState("Permission denied\n\n").code() == StatusCode::kInvalid);
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

