// type = haproxy: puts one server of an HAProxy backend in a state through
// HAProxy's runtime API (its stats socket), and checks that it took.
//
//   socket = /run/haproxy/admin.sock   the stats socket (an absolute path), or
//   address = 127.0.0.1:9999           a `stats socket ipv4@...` (HOST:PORT,
//                                      [IPv6]:PORT); exactly one of the two
//   backend = mysql                    letters, digits and _ - . :
//   server = db1                       the same
//   state = drain                      ready, drain or maint
//   drain_wait = 60s                   optional, drain and maint only: then
//                                      wait until the server has no sessions
//
// A run, one runtime-API exchange (connect, one command, read to EOF) at a
// time on the worker pool, lane "haproxy:<socket or address>":
//   1. `show servers state BE`: the backend and the server must exist;
//   2. `set server BE/SRV state X`: HAProxy answers an empty line on
//      success; any text is its refusal ("Permission denied" from a socket at
//      `level user`, "No such server."), quoted in the error;
//   3. `show servers state BE` again: srv_admin_state must have the forced
//      bit of X (0x01 maint, 0x08 drain; neither for ready);
//   4. with drain_wait: `show stat BE_ID 4 SRV_ID` right away and then every
//      500 ms (an ev_timer on the loop between polls) until scur is 0; still
//      sessions when drain_wait has passed fails the action with their count.
// Each exchange is bounded by the action's `timeout` (connect, send and the
// whole answer); drain_wait bounds the wait on its own, so a run lasts at
// most about drain_wait plus a few timeouts. Errors name the socket path or
// address, e.g. "haproxy: cannot connect to /run/haproxy/admin.sock: No such
// file or directory".
//
// action.finish extra: backend, server, state (the one asked for; for a run
// triggered by a check the event's `state` is the check's, which wins),
// admin_state (srv_admin_state read back, when it was read), and with
// drain_wait: sessions (when the wait began), sessions_left, waited_ms.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "actions/action.h"

namespace warden {

extern const ActionType kHaproxyActionType;

// The part of HAProxy's answer that is a table: column names and one map
// (column -> value) per row. Rows shorter than the header lack the missing
// columns; longer rows keep only the named ones.
struct HaproxyTable {
  std::vector<std::string> columns;
  std::vector<std::map<std::string, std::string>> rows;
};

// Parses the answer to `show servers state [BE]`: a format version line
// ("1"), a "# be_id be_name ..." header and space-separated rows, then an
// empty line. An answer without the version and header is HAProxy's error
// text (e.g. "Can't find backend."): returned trimmed, as the error. An
// unknown format version is an error.
Expected<HaproxyTable> ParseServersState(std::string_view reply);

// Parses the CSV answer to `show stat ...` ("# pxname,svname,qcur,...").
// An answer without that header is HAProxy's error text, returned trimmed.
Expected<HaproxyTable> ParseStatCsv(std::string_view reply);

// HAProxy's answer to `set server BE/SRV state X`: ok when it is empty
// (blank lines only); otherwise HAProxy's text, trimmed, as the error.
Status InterpretSetServerReply(std::string_view reply);

// One server from a `show servers state` table.
struct HaproxyServer {
  std::string backend;
  std::string server;
  std::string be_id;  // as HAProxy prints them, for `show stat`
  std::string srv_id;
  int op_state = 0;          // 0 stopped, 1 starting, 2 running, 3 stopping
  unsigned admin_state = 0;  // SRV_ADMF_* bits
};

// Finds BE/SRV in the table. Errors: no such backend in the table, no such
// server (the error lists the backend's servers), a row without a numeric
// srv_admin_state.
Expected<HaproxyServer> FindHaproxyServer(const HaproxyTable& servers_state,
                                          const std::string& backend, const std::string& server);

// Current sessions (scur) of `server` in a `show stat` table.
Expected<long long> HaproxySessions(const HaproxyTable& stat, const std::string& server);

// Whether srv_admin_state shows `state` ("ready", "drain", "maint"), by its
// forced bits: maint = 0x01 set; drain = 0x08 set and 0x01 clear; ready =
// 0x01 and 0x08 clear (bits HAProxy keeps for other reasons, such as 0x04
// for a server `disabled` in its config, do not matter).
bool HaproxyAdminStateIs(unsigned admin_state, std::string_view state);

// "0x9 (maint, drain)", "0 (ready)": for errors.
std::string DescribeHaproxyAdminState(unsigned admin_state);

}  // namespace warden
