// The worker side of MySQL access: blocking C API calls on a connection
// that each worker thread keeps per [mysql] section and reuses,
// reconnecting after an error; connect with TLS and the fallback port;
// queries, statements, pings and replica status.
//
// Everything here runs on worker threads only and touches nothing but the
// thread's own connection cache and the copy of the connection's settings
// that came with the job.
#include <mysql.h>

#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "daemon/io/mysql.h"
#include "daemon/io/mysql_internal.h"

namespace warden::mysql_internal {

namespace {

constexpr unsigned kErConCountError = 1040;       // ER_CON_COUNT_ERROR: max_connections
constexpr unsigned kErDbAccessDenied = 1044;      // ER_DBACCESS_DENIED_ERROR
constexpr unsigned kErAccessDenied = 1045;        // ER_ACCESS_DENIED_ERROR
constexpr unsigned kErBadDb = 1049;               // ER_BAD_DB_ERROR
constexpr unsigned kErServerShutdown = 1053;      // ER_SERVER_SHUTDOWN
constexpr unsigned kErBadField = 1054;            // ER_BAD_FIELD_ERROR
constexpr unsigned kErNoSuchTable = 1146;         // ER_NO_SUCH_TABLE
constexpr unsigned kErUnknownSystemVariable = 1193;  // ER_UNKNOWN_SYSTEM_VARIABLE
constexpr unsigned kErSpDoesNotExist = 1305;      // ER_SP_DOES_NOT_EXIST
constexpr unsigned kCrErrorFirst = 2000;          // CR_*: the client library's own errors
constexpr unsigned kCrErrorLast = 2999;
constexpr unsigned kCrServerGoneError = 2006;     // CR_SERVER_GONE_ERROR
constexpr unsigned kCrServerLost = 2013;          // CR_SERVER_LOST
constexpr unsigned kCrServerLostExtended = 2055;  // CR_SERVER_LOST_EXTENDED
constexpr unsigned kErConnectionKilled = 1927;    // MariaDB: KILL, or the server's idle timeout
constexpr unsigned kErClientInteractionTimeout = 4031;  // MySQL 8.0.24+: wait_timeout

std::once_flag g_library_once;

}  // namespace

void InitLibrary() {
  std::call_once(g_library_once, [] { mysql_library_init(0, nullptr, nullptr); });
}

namespace {

unsigned TimeoutSeconds(Duration d) {
  long long ms = d.count();
  if (ms <= 1000) return 1;
  return static_cast<unsigned>((ms + 999) / 1000);
}

}  // namespace

std::string ServerError(MYSQL* m) {
  return "ERROR " + std::to_string(mysql_errno(m)) + " (" + mysql_sqlstate(m) +
         "): " + mysql_error(m);
}

// The connection is gone (the server restarted, killed it or timed it out).
bool IsConnectionLoss(unsigned err) {
  return err == kCrServerGoneError || err == kCrServerLost || err == kCrServerLostExtended ||
         err == kErConnectionKilled || err == kErClientInteractionTimeout;
}

StatusCode MysqlErrorCode(unsigned err) {
  if (err == 0) return StatusCode::kInternal;
  // Client-side: unreachable (CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR),
  // gone (CR_SERVER_GONE_ERROR, CR_SERVER_LOST), read timeouts, handshakes.
  if (err >= kCrErrorFirst && err <= kCrErrorLast) return StatusCode::kTransient;
  if (IsConnectionLoss(err) || err == kErConCountError || err == kErServerShutdown) {
    return StatusCode::kTransient;
  }
  switch (err) {
    case kErParseError: return StatusCode::kInvalid;
    case kErBadDb: case kErBadField: case kErNoSuchTable: case kErUnknownSystemVariable:
    case kErSpDoesNotExist:
      return StatusCode::kNotFound;
    case kErAccessDenied: case kErDbAccessDenied: default: return StatusCode::kRefused;
  }
}

Failure MysqlFailure(unsigned err, std::string message) {
  return Status::WithCode(MysqlErrorCode(err), std::move(message))
      .WithPeerCode(err == 0 ? -1 : static_cast<int>(err));
}

Failure MysqlFailure(MYSQL* m) { return MysqlFailure(mysql_errno(m), ServerError(m)); }

namespace {

// The server refused a new connection because max_connections is reached
// (ERROR 1040). A client that asked for TLS may see it wrapped as ERROR 2002
// "... before completion of TLS handshake ... 1040 - Too many connections".
bool IsTooManyConnections(MYSQL* m) {
  return mysql_errno(m) == kErConCountError ||
         std::strstr(mysql_error(m), "1040 - Too many connections") != nullptr;
}

// One connection attempt with `cfg`'s settings to `host`:`port` (or the
// socket): nullptr and `m` kept for its error, or the connection.
MYSQL* TryConnect(MYSQL* m, const MysqlConnConfig& cfg, bool nonblocking, bool socket,
                  const char* host, unsigned port) {
  unsigned connect_s = TimeoutSeconds(cfg.connect_timeout);
  unsigned query_s = TimeoutSeconds(cfg.query_timeout);
  my_bool no = 0;
  unsigned int no_infile = 0;
  mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
  mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &query_s);
  mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &query_s);
  mysql_optionsv(m, MYSQL_OPT_RECONNECT, &no);  // we reconnect ourselves
  mysql_optionsv(m, MYSQL_OPT_LOCAL_INFILE, &no_infile);
  unsigned int protocol = socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
  mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);
  mysql_optionsv(m, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", ProgramName().c_str());
  // TLS, as libmariadb does it: asking for it at all (mysql_ssl_set) uses it
  // when the server offers it (preferred); ENFORCE makes it a must; a CA
  // makes OpenSSL verify the chain; VERIFY_SERVER_CERT adds the host name.
  const SslMode mode = cfg.EffectiveSslMode();
  if (mode != SslMode::kDisabled) {
    const bool verify = mode == SslMode::kVerifyCa || mode == SslMode::kVerifyIdentity;
    auto opt = [](const std::string& v) { return v.empty() ? nullptr : v.c_str(); };
    mysql_ssl_set(m, opt(cfg.ssl_key), opt(cfg.ssl_cert), verify ? opt(cfg.ssl_ca) : nullptr,
                  verify ? opt(cfg.ssl_capath) : nullptr, nullptr);
    if (!cfg.tls_version.empty()) mysql_optionsv(m, MYSQL_OPT_TLS_VERSION, cfg.tls_version.c_str());
    // Set only to turn them on: setting ENFORCE to 0 turns TLS off again.
    my_bool yes = 1;
    if (mode != SslMode::kPreferred) mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &yes);
    if (mode == SslMode::kVerifyIdentity) {
      mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes);
    }
  }
  if (nonblocking && mysql_options(m, MYSQL_OPT_NONBLOCK, nullptr) != 0) return nullptr;
  const char* user = cfg.user.empty() ? nullptr : cfg.user.c_str();
  const char* password = cfg.password.empty() ? nullptr : cfg.password.c_str();
  const char* db = cfg.database.empty() ? nullptr : cfg.database.c_str();
  const char* sock = socket && !cfg.socket.empty() ? cfg.socket.c_str() : nullptr;
  return mysql_real_connect(m, host, user, password, db, socket ? 0 : port, sock,
                            CLIENT_MULTI_RESULTS);
}

// Fail closed: a mode that requires TLS never goes on over a plain
// connection, whatever the client library did.
Expected<MYSQL*> RequireTls(const MysqlConnConfig& cfg, MYSQL* m) {
  const SslMode mode = cfg.EffectiveSslMode();
  if (mode == SslMode::kDisabled || mode == SslMode::kPreferred || mysql_get_ssl_cipher(m)) {
    return m;
  }
  mysql_close(m);
  return Status::Refused("cannot connect to " + cfg.Describe() + ": ssl_mode = " +
                         SslModeName(mode) + " but the connection is not encrypted");
}

// A new connection with `cfg`'s settings (blocking: a worker's call).
// `nonblocking`: libmariadb's non-blocking API may be used on it as well
// (LoopConn). When the server refuses for max_connections and the section
// has a fallback_port, that port is tried once (docs/behaviour.md).
Expected<MYSQL*> ConnectMysql(const MysqlConnConfig& cfg, bool nonblocking) {
  MYSQL* m = mysql_init(nullptr);
  if (!m)
    return Expected<MYSQL*>::Error("cannot connect to " + cfg.Describe() + ": out of memory");
  const bool socket = UsesSocket(cfg);
  if (TryConnect(m, cfg, nonblocking, socket, socket ? "localhost" : cfg.host.c_str(),
                 static_cast<unsigned>(cfg.port))) {
    return RequireTls(cfg, m);
  }
  std::string error = "cannot connect to " + cfg.Describe() + ": " +
                      (mysql_errno(m) == 0 ? std::string("out of memory") : ServerError(m));
  unsigned err = mysql_errno(m);
  if (err == kErAccessDenied && !socket &&
      cfg.EffectiveSslMode() == SslMode::kDisabled) {
    // MariaDB refuses a plain connection this way too, without saying why.
    error += " (ssl_mode = disabled: a server with require_secure_transport = ON, or a user "
             "that REQUIREs SSL, refuses a plain connection so)";
  }
  if (cfg.fallback_port == 0 || !IsTooManyConnections(m)) {
    mysql_close(m);
    return MysqlFailure(err, std::move(error));
  }
  mysql_close(m);
  const std::string host = socket ? "127.0.0.1" : cfg.host;
  const std::string where = (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                            ":" + std::to_string(cfg.fallback_port);
  m = mysql_init(nullptr);
  if (!m) return Expected<MYSQL*>::Error(error + "; fallback_port: out of memory");
  if (TryConnect(m, cfg, nonblocking, false, host.c_str(),
                 static_cast<unsigned>(cfg.fallback_port))) {
    spdlog::warn("{}; connected through fallback_port {} instead", error, where);
    return RequireTls(cfg, m);
  }
  error += "; and through fallback_port " + where + ": " +
           (mysql_errno(m) == 0 ? std::string("out of memory") : ServerError(m));
  err = mysql_errno(m);
  mysql_close(m);
  return MysqlFailure(err, std::move(error));
}

struct CachedConn {
  MYSQL* mysql = nullptr;
  std::chrono::steady_clock::time_point last_used{};
  std::string replica_statement;  // the one this server understood
};

// One per worker thread (thread_local): connections by MysqlConnConfig::Key(),
// and the per-thread init/end of the client library.
class WorkerConnections {
 public:
  WorkerConnections() = default;
  ~WorkerConnections() {
    for (auto& entry : conns_) mysql_close(entry.second.mysql);
    conns_.clear();
    if (thread_ready_) mysql_thread_end();
  }
  WorkerConnections(const WorkerConnections&) = delete;
  WorkerConnections& operator=(const WorkerConnections&) = delete;

  // The client library's per-thread set-up, once per worker thread.
  void Ready() {
    if (thread_ready_) return;
    InitLibrary();
    mysql_thread_init();
    thread_ready_ = true;
  }

  // The cached connection for `cfg`, connecting when there is none.
  // `reused` tells whether it was cached (it may have gone stale).
  Expected<CachedConn*> Get(const MysqlConnConfig& cfg, bool* reused) {
    Ready();
    auto now = std::chrono::steady_clock::now();
    CloseIdle(now);
    std::string key = cfg.Key();
    auto it = conns_.find(key);
    if (it != conns_.end()) {
      *reused = true;
      it->second.last_used = now;
      return &it->second;
    }
    *reused = false;
    auto m = ConnectMysql(cfg, false);
    if (!m) return m.failure();
    CachedConn& c = conns_[key];
    c.mysql = *m;
    c.last_used = now;
    return &c;
  }

  void Drop(const MysqlConnConfig& cfg) {
    auto it = conns_.find(cfg.Key());
    if (it == conns_.end()) return;
    mysql_close(it->second.mysql);
    conns_.erase(it);
  }

 private:
  void CloseIdle(std::chrono::steady_clock::time_point now) {
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (now - it->second.last_used > kIdleClose) {
        mysql_close(it->second.mysql);
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::map<std::string, CachedConn> conns_;
  bool thread_ready_ = false;
};

thread_local WorkerConnections t_connections;

// Runs `sql` and reads every result it produces (CALL returns several);
// the first result set with columns is returned. On error, mysql_errno(m)
// is set and the message carries the server's answer.
Expected<MysqlRows> RunQuery(MYSQL* m, const std::string& sql) {
  if (mysql_real_query(m, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
    return MysqlFailure(m);
  }
  MysqlRows out;
  bool have = false;
  for (;;) {
    MYSQL_RES* res = mysql_store_result(m);
    if (res) {
      if (!have) {
        have = true;
        unsigned n = mysql_num_fields(res);
        MYSQL_FIELD* fields = mysql_fetch_fields(res);
        for (unsigned i = 0; i < n; ++i) out.columns.emplace_back(fields[i].name);
        while (MYSQL_ROW row = mysql_fetch_row(res)) {
          unsigned long* lengths = mysql_fetch_lengths(res);
          std::vector<std::optional<std::string>> values;
          values.reserve(n);
          for (unsigned i = 0; i < n; ++i) {
            if (row[i]) {
              values.emplace_back(std::string(row[i], lengths[i]));
            } else {
              values.emplace_back(std::nullopt);
            }
          }
          out.rows.push_back(std::move(values));
        }
      }
      mysql_free_result(res);
    } else if (mysql_field_count(m) != 0) {
      return MysqlFailure(m);
    }
    int next = mysql_next_result(m);  // 0: more, -1: done, >0: error
    if (next > 0) return MysqlFailure(m);
    if (next < 0) break;
  }
  return out;
}

// What an operation on one connection does.
template <typename T>
using Op = std::function<Expected<T>(CachedConn& conn)>;

// Runs `op` on this thread's connection for `cfg`. After a MySQL error the
// connection is closed so that the next call reconnects. A cached
// connection found dead (server restarted, killed) is replaced once. An op
// that is not `repeatable` (statements that change things) is never sent
// twice: a cached connection is pinged before it instead, and only a
// failed ping is retried. The failure is transient when the server could
// not be reached or stopped answering (the worker pool then limits its
// lane).
template <typename T>
Expected<T> WithConnection(const MysqlConnConfig& cfg, const Op<T>& op, bool repeatable) {
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    auto conn = t_connections.Get(cfg, &reused);
    if (!conn) return conn.failure();
    bool sent = false;
    auto start = std::chrono::steady_clock::now();
    auto run = [&]() -> Expected<T> {
      if (!repeatable && reused && mysql_ping((*conn)->mysql) != 0) {
        return MysqlFailure((*conn)->mysql);
      }
      sent = true;
      return op(**conn);
    };
    Expected<T> result = run();
    if (result) return result;
    unsigned err = mysql_errno((*conn)->mysql);
    if (err == 0) return result;  // not a MySQL error ("not a replica"): keep the connection
    t_connections.Drop(cfg);
    // A dead cached connection fails at once (EOF, or the server's "killed"
    // packet). A read timeout also says "lost connection" but only after a
    // second or more: that query is not sent again.
    bool at_once = std::chrono::steady_clock::now() - start < std::chrono::milliseconds(500);
    const bool retryable = repeatable || !sent;
    if (IsConnectionLoss(err) && reused && retryable && at_once && attempt == 0) continue;
    if (err >= kCrErrorFirst) {
      // Client-side errors (lost connection, read timeout): the server is
      // not answering. Name the connection, the server's text does not.
      return result.failure().Prefixed(cfg.Describe() + ": ");
    }
    return result;
  }
}

}  // namespace

Expected<std::shared_ptr<MYSQL>> WorkerConnectNonblocking(const MysqlConnConfig& c) {
  t_connections.Ready();
  auto m = ConnectMysql(c, true);
  if (!m) return m.failure();
  return std::shared_ptr<MYSQL>(*m, mysql_close);
}

Expected<double> WorkerPing(const MysqlConnConfig& cfg) {
  return WithConnection<double>(
      cfg,
      [](CachedConn& c) -> Expected<double> {
        auto start = Clock::now();
        if (mysql_ping(c.mysql) != 0) return MysqlFailure(c.mysql);
        std::chrono::duration<double, std::milli> ms = Clock::now() - start;
        return ms.count();
      },
      /*repeatable=*/true);
}

Expected<MysqlRows> WorkerQuery(const MysqlConnConfig& cfg, const std::string& sql) {
  return WithConnection<MysqlRows>(
      cfg, [&sql](CachedConn& c) { return RunQuery(c.mysql, sql); }, /*repeatable=*/true);
}

Expected<bool> WorkerExecute(const MysqlConnConfig& cfg, const std::vector<std::string>& statements,
                             MysqlStatementControl* control) {
  // Statements change things: never resend one (WithConnection pings a
  // cached connection before sending anything instead).
  return WithConnection<bool>(
      cfg,
      [&statements, control](CachedConn& c) -> Expected<bool> {
        struct Clear {   // no statement runs once this returns
          MysqlStatementControl* target;
          ~Clear() {
            if (target) target->connection_id = 0;
          }
        } clear{control};
        for (size_t i = 0; i < statements.size(); ++i) {
          if (control) {
            // The id first, then the stop: a KillQuery that set stop after
            // we looked finds the id (seq_cst), one that set it before is
            // seen here.
            control->connection_id = mysql_thread_id(c.mysql);
            ++control->statement;
            if (control->stop) {
              return Expected<bool>::Error("stopped before statement " + std::to_string(i + 1) +
                                           " of " + std::to_string(statements.size()));
            }
          }
          auto r = RunQuery(c.mysql, statements[i]);
          if (!r) {
            std::string where = statements.size() > 1
                                    ? " (statement " + std::to_string(i + 1) + " of " +
                                          std::to_string(statements.size()) + ")"
                                    : "";
            return Status::WithCode(r.code(), r.error() + where).WithPeerCode(r.peer_code());
          }
        }
        return true;
      },
      /*repeatable=*/false);
}

Expected<bool> WorkerKillQuery(const MysqlConnConfig& cfg, MysqlStatementControl& control) {
  return WithConnection<bool>(
      cfg,
      [&control](CachedConn& c) -> Expected<bool> {
        for (int attempt = 0; attempt < 3; ++attempt) {
          const unsigned long id = control.connection_id;
          const std::uint64_t seq = control.statement;
          if (id == 0) return true;   // nothing runs
          auto r = RunQuery(c.mysql, "KILL QUERY " + std::to_string(id));
          // 1094: unknown thread id (the connection is gone): nothing to kill.
          if (!r && mysql_errno(c.mysql) != 1094) return r.failure();
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          if (control.connection_id != id || control.statement != seq) return true;
        }
        return true;
      },
      /*repeatable=*/true);
}

Expected<std::shared_ptr<const MysqlRows>> WorkerReplicaStatus(const MysqlConnConfig& cfg) {
  using Result = Expected<std::shared_ptr<const MysqlRows>>;
  return WithConnection<std::shared_ptr<const MysqlRows>>(
      cfg,
      [](CachedConn& c) -> Result {
        // MariaDB lists all its replication connections (multi-source, with
        // Connection_name) only with SHOW ALL ...; MySQL lists every channel
        // in SHOW REPLICA STATUS. Servers older than MySQL 8.0.22 / MariaDB
        // 10.5 know only the SLAVE spelling (a syntax error otherwise);
        // MySQL 8.4 only the REPLICA one. What worked is remembered per
        // connection.
        std::string stmt = c.replica_statement;
        bool mariadb = std::string_view(mysql_get_server_info(c.mysql)).find("MariaDB") !=
                       std::string_view::npos;
        if (stmt.empty()) stmt = mariadb ? "SHOW ALL REPLICAS STATUS" : "SHOW REPLICA STATUS";
        auto rows = RunQuery(c.mysql, stmt);
        if (!rows && mysql_errno(c.mysql) == kErParseError &&
            stmt.find("REPLICAS") != std::string::npos) {
          stmt = "SHOW ALL SLAVES STATUS";
          rows = RunQuery(c.mysql, stmt);
        } else if (!rows && mysql_errno(c.mysql) == kErParseError &&
                   stmt == "SHOW REPLICA STATUS") {
          stmt = "SHOW SLAVE STATUS";
          rows = RunQuery(c.mysql, stmt);
        }
        if (!rows) return rows.failure();
        c.replica_statement = stmt;
        if (rows->rows.empty())
          return Status::NotFound("not a replica: " + stmt + " returned no rows");
        return std::shared_ptr<const MysqlRows>(std::make_shared<MysqlRows>(std::move(*rows)));
      },
      /*repeatable=*/true);
}

}  // namespace warden::mysql_internal
