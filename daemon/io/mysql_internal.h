// What the MySQL files of daemon/io share, and nothing outside daemon/io
// includes: the configuration helpers (mysql_conn_config.cc), the worker
// side's calls (mysql_worker.cc), and the loop-side state of MysqlReads
// with the job submission every MySQL call goes through (mysql_reads.cc,
// mysql_loop_conn.cc).
#pragma once

#include <mysql.h>

#include <chrono>
#include <exception>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/units.h"
#include "daemon/io/mysql.h"
#include "daemon/io/worker_pool.h"

namespace warden::mysql_internal {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Configuration (mysql_conn_config.cc)

// The section connects over the unix socket (no host, or "localhost").
bool UsesSocket(const MysqlConnConfig& c);
// The connect attribute program_name (SetMysqlProgramName).
std::string& ProgramName();

// ---------------------------------------------------------------------------
// Worker side (mysql_worker.cc)

constexpr unsigned kErParseError = 1064;          // ER_PARSE_ERROR
// A connection not used for this long is closed (a reload that changed the
// settings leaves the old ones unused).
constexpr std::chrono::minutes kIdleClose{5};

// The client library's process-wide set-up, once.
void InitLibrary();
// "ERROR 1045 (28000): Access denied for user ..."
std::string ServerError(MYSQL* m);
// The connection is gone (the server restarted, killed it or timed it out).
bool IsConnectionLoss(unsigned err);
// The code of a MySQL error number: transient when the server could not be
// reached, stopped answering or is out of connections (every client-side
// error, CR_*; connection loss, ER_CON_COUNT_ERROR, shutdown); refused for
// access denied and any other no of the server's; not_found for an unknown
// database, table, column, routine or variable; invalid for a syntax error;
// internal for 0 (not a MySQL error).
StatusCode MysqlErrorCode(unsigned err);
// `message` with MysqlErrorCode(err), and err as its peer code (none when 0).
Failure MysqlFailure(unsigned err, std::string message);
// ServerError(m) with MysqlErrorCode(mysql_errno(m)), mysql_errno(m) its peer code.
Failure MysqlFailure(MYSQL* m);

// Worker jobs. A transient failure means the server could not be reached
// or stopped answering: the connection was dropped (the next call makes a
// new one) and the worker pool limits the lane (SubmitWork).
//
// A new connection on which libmariadb's non-blocking API may be used
// (LoopConn).
Expected<std::shared_ptr<MYSQL>> WorkerConnectNonblocking(const MysqlConnConfig& cfg);
// On the thread's cached connection for `cfg` (MysqlReads' Ping, Query,
// Execute, ReplicaStatus).
Expected<double> WorkerPing(const MysqlConnConfig& cfg);
Expected<MysqlRows> WorkerQuery(const MysqlConnConfig& cfg, const std::string& sql);
Expected<bool> WorkerExecute(const MysqlConnConfig& cfg, const std::vector<std::string>& statements,
                             MysqlStatementControl* control = nullptr);
// KILL QUERY for the statement `control` shows running (MysqlReads::KillQuery).
Expected<bool> WorkerKillQuery(const MysqlConnConfig& cfg, MysqlStatementControl& control);
Expected<std::shared_ptr<const MysqlRows>> WorkerReplicaStatus(const MysqlConnConfig& cfg);

// ---------------------------------------------------------------------------
// Loop side (mysql_reads.cc, mysql_loop_conn.cc)

// The shared reads of one kind on one connection: those in flight (each
// for a set of names, with the callbacks waiting for it), and the last
// result with its names and the time its read was started (its age: the
// data is as old as the query, not as its arrival).
template <typename T>
struct SharedRead {
  using Result = Expected<std::shared_ptr<const T>>;
  struct Flight {
    std::shared_ptr<const NameSet> names;   // null: every name
    std::vector<MysqlReads::SharedDone<T>> waiters;
    Clock::time_point started{};
  };
  std::list<Flight> flights;   // oldest first; a completion keeps its own
  std::vector<MysqlReads::SharedDone<T>> spare;   // the last list walked, for its capacity
  std::optional<Result> last;
  std::shared_ptr<const NameSet> last_names;
  Clock::time_point started{};
};

class LoopConn;

// The loop-side state of MysqlReads (its Impl), shared with completions.
struct ReadsState {
  // Both in mysql_loop_conn.cc, where LoopConn is complete.
  ReadsState(WorkerPool& w, std::map<std::string, MysqlConnConfig> c);
  ~ReadsState();
  ReadsState(const ReadsState&) = delete;
  ReadsState& operator=(const ReadsState&) = delete;

  // Constant after construction. The settings are shared, read-only, with
  // the jobs that use them.
  WorkerPool& workers;
  std::map<std::string, std::shared_ptr<const MysqlConnConfig>> connections;

  // Loop thread only. Entries are never erased: completions keep pointers.
  std::map<std::string, SharedRead<MysqlMap>> status;
  std::map<std::string, SharedRead<MysqlMap>> variables;
  std::map<std::string, SharedRead<MysqlRows>> replica;
  // The connection the status and variables reads run on, per name
  // (LoopConn), made on first use.
  std::map<std::string, std::unique_ptr<LoopConn>> loop_conns;
  // A read is in flight or queued on one of them (in mysql_loop_conn.cc).
  bool Busy() const;

  const MysqlConnConfig* Find(const std::string& name) const {
    auto it = connections.find(name);
    return it == connections.end() ? nullptr : it->second.get();
  }
  // The same, shared; nullptr when unknown.
  std::shared_ptr<const MysqlConnConfig> Shared(const std::string& name) const {
    auto it = connections.find(name);
    return it == connections.end() ? nullptr : it->second;
  }
};

template <typename T>
using WorkerFn = std::function<Expected<T>(const MysqlConnConfig&)>;

// Submits `work` on lane mysql:<name> with the connection's timeouts as its
// deadline. The worker reads the connection's settings, never changed. A
// transient failure, or an exception, tells the pool the lane's server
// looks unhealthy.
template <typename T>
void SubmitWork(const std::shared_ptr<ReadsState>& impl, const std::string& name,
                std::shared_ptr<const MysqlConnConfig> config, WorkerFn<T> work,
                std::function<void(Expected<T>)> done) {
  Duration budget = config->connect_timeout + config->query_timeout;
  auto result = std::make_shared<std::optional<Expected<T>>>();
  impl->workers.Submit(
      "mysql:" + name, Clock::now() + budget,
      [config, work = std::move(work), result]() -> bool {
        bool healthy = true;
        try {
          result->emplace(work(*config));
          healthy = (*result)->code() != StatusCode::kTransient;
        } catch (const std::exception& e) {
          result->emplace(Expected<T>::Error(std::string("internal error: ") + e.what()));
          healthy = false;
        } catch (...) {
          result->emplace(Expected<T>::Error("internal error: unknown exception"));
          healthy = false;
        }
        return healthy;
      },
      [impl, result, budget, done = std::move(done)](bool ran) {
        if (!ran) {
          done(Status::Transient("not started within " + FormatDuration(budget) +
                                 ": all workers busy"));
        } else if (!*result) {
          done(Expected<T>::Error("internal error: MySQL call ended without a result"));
        } else {
          done(std::move(**result));
        }
      });
}

}  // namespace warden::mysql_internal
