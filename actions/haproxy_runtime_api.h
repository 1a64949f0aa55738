// HAProxy's runtime API (its stats socket), as the haproxy action uses it:
// one exchange at a time over a unix socket or TCP (connect, one command,
// read to EOF), and the parsers of the answers it reads (`show servers
// state`, `show stat`, `set server ... state`).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/units.h"

namespace warden {

// Where the runtime API listens: a unix socket path, or host and port.
struct HaproxyEndpoint {
  std::string path;  // unix socket when not empty
  std::string host;
  int port = 0;
  std::string display;  // the path, or HOST:PORT as configured
};

// One runtime-API exchange: connect, send `command` and a newline, read the
// answer until HAProxy closes the connection (it does after one command on
// a non-interactive connection). Connect, send and the whole answer are
// bounded by `timeout`. Blocking: worker threads only. A transient failure
// (refused, no socket, timed out, a name that does not resolve, a reset)
// says the peer looks unhealthy (the worker lane's health).
Expected<std::string> HaproxyExchange(const HaproxyEndpoint& ep, const std::string& command,
                                      Duration timeout);

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
// text (e.g. "Can't find backend."): returned trimmed, as the error
// (not_found for a backend HAProxy does not have, invalid otherwise). An
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
