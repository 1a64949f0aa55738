// MySQL/MariaDB access. Two halves:
//
//  * Worker threads: blocking C API calls on a connection that each worker
//    keeps per [mysql] section and reuses, reconnecting after an error.
//    Connect and read timeouts come from the section.
//  * MysqlReads (loop thread): what checks and actions call. Queries,
//    statements, pings and replica status are submitted to the WorkerPool
//    on lane "mysql:<name>" and call back on the loop. SHOW GLOBAL STATUS
//    and SHOW GLOBAL VARIABLES, the reads most checks share, run on the
//    loop itself through libmariadb's non-blocking API, on one connection
//    per section that a worker makes (mysql_loop_conn.cc). Reads of one
//    kind on one connection asked for within `share_window` (100 ms) of
//    each other are served by one snapshot.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/base/inline_function.h"
#include "daemon/base/named_values.h"
#include "daemon/base/status.h"
#include "daemon/base/units.h"

namespace warden {

class WorkerPool;

// TLS to the server, with the mysql client's names (docs/behaviour.md).
enum class SslMode { kDefault, kDisabled, kPreferred, kRequired, kVerifyCa, kVerifyIdentity };
const char* SslModeName(SslMode mode);

struct MysqlConnConfig {
  std::string name;               // "" for [mysql]
  std::string host;               // empty: use socket
  int port = 3306;
  std::string socket;
  std::string user;
  std::string password;           // read from password_file; never logged
  std::string database;
  // MariaDB's extra_port / MySQL's admin port: tried (over TCP, on `host`
  // or 127.0.0.1 for a socket section) when the normal path refuses with
  // "Too many connections" (ERROR 1040). 0: none.
  int fallback_port = 0;
  // kDefault: preferred over TCP, disabled on the unix socket.
  SslMode ssl_mode = SslMode::kDefault;
  std::string ssl_ca, ssl_capath, ssl_cert, ssl_key, tls_version;
  SslMode EffectiveSslMode() const;
  // Where each setting came from ("file:line" of the config or of the
  // defaults_file), for wardenctl validate; not part of Key().
  std::map<std::string, std::string> origin;
  Duration connect_timeout{2000};
  Duration query_timeout{5000};

  std::string Describe() const;   // "[mysql replica_src] 10.0.0.5:3306" (no password)
  std::string Key() const;        // changes when any setting changes
};

// The connect attribute program_name every connection sets ("wardend";
// wardenctl sets its own), so that DBAs see who is connected. Before any
// connection is made.
void SetMysqlProgramName(std::string name);

// A result set read by column name. NULL is nullopt.
struct MysqlRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  // Index of the column with this name (case-insensitive), or -1.
  int Column(std::string_view name) const;
};

// SHOW GLOBAL STATUS and SHOW GLOBAL VARIABLES results are NamedValues
// (daemon/base/named_values.h); the name they have here.
using MysqlMap = NamedValues;

// How the loop stops the statements of one Execute that a worker runs
// (mysql_sql's Terminate): while a statement runs, `connection_id` is the
// server's id of its connection (0 otherwise) and `statement` counts the
// statements sent; `stop` set, no further statement starts. Shared by the
// loop and one worker: atomics only.
struct MysqlStatementControl {
  std::atomic<unsigned long> connection_id{0};
  std::atomic<std::uint64_t> statement{0};
  std::atomic<bool> stop{false};
};

class MysqlReads {
 public:
  using Clock = std::chrono::steady_clock;
  MysqlReads(WorkerPool& workers, std::map<std::string, MysqlConnConfig> connections);

  // Loop thread only. Each callback runs on the loop thread exactly once:
  // later, from a worker's completion, or before the call returns when the
  // connection name is unknown or a shared read is served from the window.
  // Errors carry the server's message and number ("ERROR 1045 (28000):
  // Access denied ..."); a failed connect says "cannot connect to
  // <Describe()>: ..."; client-side failures (lost connection, read
  // timeout) are prefixed with Describe(). A job that could not start
  // within connect_timeout + query_timeout (workers busy) is the error
  // "not started within Ns: all workers busy".
  void Query(const std::string& connection, const std::string& sql,
             std::function<void(Expected<MysqlRows>)> done);
  // Runs statements one after another, stopping at the first error.
  // With `control`, the statements can be stopped by KillQuery; a stop
  // before a statement starts ends them with "stopped before statement N".
  void Execute(const std::string& connection, std::vector<std::string> statements,
               std::function<void(Status)> done,
               std::shared_ptr<MysqlStatementControl> control = nullptr);
  // Sets control->stop, then sends `KILL QUERY <connection id>` for the
  // statement running under `control`, on another connection of the same
  // section (lane "mysql:kill:<name>", so that it does not queue behind the
  // statement); sent again (at most 3 times, 200 ms apart) while the same
  // statement still runs, since a KILL that reaches the server just before
  // the statement does finds nothing to kill. `done`: ok when nothing runs
  // any more or the KILL was sent, else why not.
  void KillQuery(const std::string& connection, std::shared_ptr<MysqlStatementControl> control,
                 std::function<void(Status)> done);
  // Round trip of mysql_ping in ms (connects first if needed).
  void Ping(const std::string& connection, std::function<void(Expected<double>)> done);
  // A shared read's completion: one is queued per check due in a window,
  // kept in place (no allocation) when its capture fits 48 bytes.
  template <typename T>
  using SharedDone = InlineFunction<void(const Expected<std::shared_ptr<const T>>&)>;
  //
  // SHOW GLOBAL STATUS / VARIABLES of at least `names` (null: every row):
  // filtered (WHERE Variable_name IN (...)) unless there are too many
  // names for that to be cheaper, or the server refused it once. A read
  // in flight or served within the window is shared by every call whose
  // names it holds.
  void GlobalStatus(const std::string& connection, std::shared_ptr<const NameSet> names,
                    SharedDone<MysqlMap> done);
  void GlobalVariables(const std::string& connection, std::shared_ptr<const NameSet> names,
                       SharedDone<MysqlMap> done);
  // Every row.
  void GlobalStatus(const std::string& connection, SharedDone<MysqlMap> done) {
    GlobalStatus(connection, nullptr, std::move(done));
  }
  void GlobalVariables(const std::string& connection, SharedDone<MysqlMap> done) {
    GlobalVariables(connection, nullptr, std::move(done));
  }
  // SHOW REPLICA STATUS, falling back to SHOW SLAVE STATUS on a syntax
  // error (1064: MySQL < 8.0.22, MariaDB < 10.5); on MariaDB the ALL form
  // (SHOW ALL REPLICAS STATUS / SHOW ALL SLAVES STATUS), so that every
  // multi-source connection is listed with its Connection_name. An empty
  // result is an error "not a replica: <statement> returned no rows".
  void ReplicaStatus(const std::string& connection, SharedDone<MysqlRows> done);

  const MysqlConnConfig* Find(const std::string& connection) const;
  // A status or variables read is in flight on a loop connection. A stop
  // waits for it (each is bounded by query_timeout): closing a connection
  // mid-read is an aborted client to the server (Aborted_clients and an
  // "Aborted connection" warning in its error log).
  bool Busy() const;
  Duration share_window{100};

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace warden
