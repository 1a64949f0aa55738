#include "daemon/io/mysql.h"

#include <ev.h>
#include <mysql.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <deque>
#include <list>
#include <exception>
#include <mutex>
#include <utility>

#include <spdlog/spdlog.h>

#include "daemon/io/worker_pool.h"

namespace warden {

// ---------------------------------------------------------------------------
// Configuration helpers

namespace {

bool UsesSocket(const MysqlConnConfig& c) { return c.host.empty() || c.host == "localhost"; }

}  // namespace

std::string MysqlConnConfig::Describe() const {
  std::string title = name.empty() ? "[mysql]" : "[mysql " + name + "]";
  if (UsesSocket(*this)) {
    // libmariadb treats "localhost" as the unix socket whatever the port.
    return title + " socket " + (socket.empty() ? std::string("(client default)") : socket);
  }
  bool v6 = host.find(':') != std::string::npos;
  return title + " " + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

const char* SslModeName(SslMode mode) {
  switch (mode) {
    case SslMode::kDefault: return "default";
    case SslMode::kDisabled: return "disabled";
    case SslMode::kPreferred: return "preferred";
    case SslMode::kRequired: return "required";
    case SslMode::kVerifyCa: return "verify_ca";
    case SslMode::kVerifyIdentity: return "verify_identity";
  }
  return "?";
}

SslMode MysqlConnConfig::EffectiveSslMode() const {
  if (ssl_mode != SslMode::kDefault) return ssl_mode;
  return UsesSocket(*this) ? SslMode::kDisabled : SslMode::kPreferred;
}

namespace {
std::string& ProgramName() {
  static std::string name = "wardend";
  return name;
}
}  // namespace

void SetMysqlProgramName(std::string name) { ProgramName() = std::move(name); }

std::string MysqlConnConfig::Key() const {
  // The password enters only as a hash: keys are plain strings that might
  // end up in a debugger or a log line.
  const char sep = '\x1f';
  return name + sep + host + sep + std::to_string(port) + sep + socket + sep + user + sep +
         std::to_string(std::hash<std::string>{}(password)) + sep + database + sep +
         std::to_string(connect_timeout.count()) + sep + std::to_string(query_timeout.count()) +
         sep + std::to_string(fallback_port) + sep + SslModeName(ssl_mode) + sep + ssl_ca + sep +
         ssl_capath + sep + ssl_cert + sep + ssl_key + sep + tls_version;
}

int MysqlRows::Column(std::string_view name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    const std::string& c = columns[i];
    if (c.size() != name.size()) continue;
    bool same = true;
    for (size_t j = 0; j < c.size() && same; ++j) {
      same = std::tolower(static_cast<unsigned char>(c[j])) ==
             std::tolower(static_cast<unsigned char>(name[j]));
    }
    if (same) return static_cast<int>(i);
  }
  return -1;
}

// ---------------------------------------------------------------------------
// Worker side. Everything in this section runs on worker threads only and
// touches nothing but the thread's own connection cache and the copy of the
// connection's settings that came with the job.

namespace {

constexpr unsigned kErConCountError = 1040;       // ER_CON_COUNT_ERROR: max_connections
constexpr unsigned kErAccessDenied = 1045;        // ER_ACCESS_DENIED_ERROR
constexpr unsigned kErParseError = 1064;          // ER_PARSE_ERROR
constexpr unsigned kCrServerGoneError = 2006;     // CR_SERVER_GONE_ERROR
constexpr unsigned kCrServerLost = 2013;          // CR_SERVER_LOST
constexpr unsigned kCrServerLostExtended = 2055;  // CR_SERVER_LOST_EXTENDED
constexpr unsigned kErConnectionKilled = 1927;    // MariaDB: KILL, or the server's idle timeout
constexpr unsigned kErClientInteractionTimeout = 4031;  // MySQL 8.0.24+: wait_timeout
// A connection not used for this long is closed (a reload that changed the
// settings leaves the old ones unused).
constexpr std::chrono::minutes kIdleClose{5};

std::once_flag g_library_once;

void InitLibrary() {
  std::call_once(g_library_once, [] { mysql_library_init(0, nullptr, nullptr); });
}

unsigned TimeoutSeconds(Duration d) {
  long long ms = d.count();
  if (ms <= 1000) return 1;
  return static_cast<unsigned>((ms + 999) / 1000);
}

// "ERROR 1045 (28000): Access denied for user ..."
std::string ServerError(MYSQL* m) {
  return "ERROR " + std::to_string(mysql_errno(m)) + " (" + mysql_sqlstate(m) +
         "): " + mysql_error(m);
}

// The connection is gone (the server restarted, killed it or timed it out).
bool IsConnectionLoss(unsigned err) {
  return err == kCrServerGoneError || err == kCrServerLost || err == kCrServerLostExtended ||
         err == kErConnectionKilled || err == kErClientInteractionTimeout;
}

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
  return Expected<MYSQL*>::Error("cannot connect to " + cfg.Describe() + ": ssl_mode = " +
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
  if (mysql_errno(m) == kErAccessDenied && !socket &&
      cfg.EffectiveSslMode() == SslMode::kDisabled) {
    // MariaDB refuses a plain connection this way too, without saying why.
    error += " (ssl_mode = disabled: a server with require_secure_transport = ON, or a user "
             "that REQUIREs SSL, refuses a plain connection so)";
  }
  if (cfg.fallback_port == 0 || !IsTooManyConnections(m)) {
    mysql_close(m);
    return Expected<MYSQL*>::Error(std::move(error));
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
  mysql_close(m);
  return Expected<MYSQL*>::Error(std::move(error));
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
    if (!m) return m.status();
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
    return Expected<MysqlRows>::Error(ServerError(m));
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
      return Expected<MysqlRows>::Error(ServerError(m));
    }
    int next = mysql_next_result(m);  // 0: more, -1: done, >0: error
    if (next > 0) return Expected<MysqlRows>::Error(ServerError(m));
    if (next < 0) break;
  }
  return out;
}

// What an operation on one connection does. `reused` says the connection
// came from the cache; set `*retryable` to false once a retry could repeat
// something that changed the server.
template <typename T>
using Op = std::function<Expected<T>(CachedConn& conn, bool reused, bool* retryable)>;

// Runs `op` on this thread's connection for `cfg`. After a MySQL error the
// connection is closed so that the next call reconnects. A cached
// connection found dead (server restarted, killed) is replaced once, if
// the op allows it. `healthy` becomes false when the server could not be
// reached or stopped answering (the worker pool then limits its lane).
template <typename T>
Expected<T> WithConnection(const MysqlConnConfig& cfg, const Op<T>& op, bool* healthy) {
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    auto conn = t_connections.Get(cfg, &reused);
    if (!conn) {
      *healthy = false;
      return conn.status();
    }
    bool retryable = true;
    auto start = std::chrono::steady_clock::now();
    Expected<T> result = op(**conn, reused, &retryable);
    if (result) return result;
    unsigned err = mysql_errno((*conn)->mysql);
    if (err == 0) return result;  // not a MySQL error ("not a replica"): keep the connection
    t_connections.Drop(cfg);
    // A dead cached connection fails at once (EOF, or the server's "killed"
    // packet). A read timeout also says "lost connection" but only after a
    // second or more: that query is not sent again.
    bool at_once = std::chrono::steady_clock::now() - start < std::chrono::milliseconds(500);
    if (IsConnectionLoss(err) && reused && retryable && at_once && attempt == 0) continue;
    if (err >= 2000) {
      // Client-side errors (lost connection, read timeout): the server is
      // not answering. Name the connection, the server's text does not.
      *healthy = false;
      return Expected<T>::Error(cfg.Describe() + ": " + result.error());
    }
    return result;
  }
}

using Clock = std::chrono::steady_clock;

Expected<double> WorkerPing(const MysqlConnConfig& cfg, bool* healthy) {
  return WithConnection<double>(
      cfg,
      [](CachedConn& c, bool, bool*) -> Expected<double> {
        auto start = Clock::now();
        if (mysql_ping(c.mysql) != 0) return Expected<double>::Error(ServerError(c.mysql));
        std::chrono::duration<double, std::milli> ms = Clock::now() - start;
        return ms.count();
      },
      healthy);
}

Expected<MysqlRows> WorkerQuery(const MysqlConnConfig& cfg, const std::string& sql, bool* healthy) {
  return WithConnection<MysqlRows>(
      cfg, [&sql](CachedConn& c, bool, bool*) { return RunQuery(c.mysql, sql); }, healthy);
}

Expected<bool> WorkerExecute(const MysqlConnConfig& cfg, const std::vector<std::string>& statements,
                             bool* healthy) {
  return WithConnection<bool>(
      cfg,
      [&statements](CachedConn& c, bool reused, bool* retryable) -> Expected<bool> {
        // Statements change things: never resend one. Find a dead cached
        // connection before sending anything instead.
        if (reused && mysql_ping(c.mysql) != 0) return Expected<bool>::Error(ServerError(c.mysql));
        *retryable = false;
        for (size_t i = 0; i < statements.size(); ++i) {
          auto r = RunQuery(c.mysql, statements[i]);
          if (!r) {
            std::string where = statements.size() > 1
                                    ? " (statement " + std::to_string(i + 1) + " of " +
                                          std::to_string(statements.size()) + ")"
                                    : "";
            return Expected<bool>::Error(r.error() + where);
          }
        }
        return true;
      },
      healthy);
}

Expected<std::shared_ptr<const MysqlRows>> WorkerReplicaStatus(const MysqlConnConfig& cfg,
                                                               bool* healthy) {
  using Result = Expected<std::shared_ptr<const MysqlRows>>;
  return WithConnection<std::shared_ptr<const MysqlRows>>(
      cfg,
      [](CachedConn& c, bool, bool*) -> Result {
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
        if (!rows) return rows.status();
        c.replica_statement = stmt;
        if (rows->rows.empty())
          return Result::Error("not a replica: " + stmt + " returned no rows");
        return std::shared_ptr<const MysqlRows>(std::make_shared<MysqlRows>(std::move(*rows)));
      },
      healthy);
}

// SHOW GLOBAL STATUS / VARIABLES as a MysqlMap: the stored result itself,
// kept by the map (a stored result holds every row and no reference to
// its connection, so it may outlive it), with its rows' pointers. The
// first result set is the map; any later one is dropped.
struct MapBuilder {
  std::shared_ptr<MysqlMap> map;
  unsigned columns = 0;

  // Takes `res` (stored), freeing it when it is not the map's.
  void Take(MYSQL_RES* res) {
    std::shared_ptr<MYSQL_RES> keep(res, mysql_free_result);
    if (map) return;
    map = std::make_shared<MysqlMap>();
    columns = mysql_num_fields(res);
    if (columns < 2) return;
    map->Reserve(static_cast<size_t>(mysql_num_rows(res)));
    while (MYSQL_ROW row = mysql_fetch_row(res)) {
      if (row[0]) map->AddRow(row[0], row[1]);
    }
    map->Keep(std::move(keep));
  }

  Expected<std::shared_ptr<const MysqlMap>> Finish(const std::string& sql) {
    using Result = Expected<std::shared_ptr<const MysqlMap>>;
    if (!map || columns < 2) {
      return Result::Error(sql + " returned " + std::to_string(columns) + " columns, expected 2");
    }
    map->taken = Clock::now();
    return std::shared_ptr<const MysqlMap>(std::move(map));
  }
};

}  // namespace

// ---------------------------------------------------------------------------
// Loop side

namespace {

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

}  // namespace

namespace {

class LoopConn;

// The loop-side state of MysqlReads (its Impl), shared with completions.
struct ReadsState {
  ReadsState(WorkerPool& w, std::map<std::string, MysqlConnConfig> c) : workers(w) {
    for (auto& [name, config] : c) {
      connections.emplace(name, std::make_shared<const MysqlConnConfig>(std::move(config)));
    }
  }
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

}  // namespace

struct MysqlReads::Impl : ReadsState {
  using ReadsState::ReadsState;
};

namespace {

template <typename T>
using WorkerFn = std::function<Expected<T>(const MysqlConnConfig&, bool* healthy)>;

std::string UnknownConnection(const std::string& name) {
  return name.empty() ? "no [mysql] section configured"
                      : "unknown mysql connection '" + name + "' (no [mysql " + name + "] section)";
}

// Submits `work` on lane mysql:<name> with the connection's timeouts as its
// deadline. The worker reads the connection's settings, never changed.
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
          result->emplace(work(*config, &healthy));
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
          done(Expected<T>::Error("not started within " + FormatDuration(budget) +
                                  ": all workers busy"));
        } else if (!*result) {
          done(Expected<T>::Error("internal error: MySQL call ended without a result"));
        } else {
          done(std::move(**result));
        }
      });
}

// SHOW GLOBAL STATUS / SHOW GLOBAL VARIABLES on the loop thread.
//
// Every check due in a share window waits for one such read, so it runs
// about ten times a second. On a worker it cost two thread hand-offs per
// read (a futex wake-up there, an ev_async back), more CPU on a small VM
// than the read itself. Here the statement and its rows go through
// libmariadb's non-blocking API, woken by ev_io on the connection's
// socket. A worker still makes the connection (a blocking connect: name
// resolution, connect_timeout, and the lane's health, as for any MySQL
// job).
//
// query_timeout bounds each wait for the server, as it does for a
// blocking read (the library asks for it with MYSQL_WAIT_TIMEOUT; an
// ev_timer here), and the read then fails as a blocking one would ("Lost
// connection to server during query"). One statement at a time: the
// others queue. After a MySQL error the connection is closed and the next
// statement reconnects; a reused connection found dead at once (a restart,
// KILL) is replaced and the statement sent again, once. A connection
// unused for kIdleClose is closed.
class LoopConn {
 public:
  using Result = Expected<std::shared_ptr<const MysqlMap>>;
  using Done = std::function<void(Result)>;

  LoopConn(std::weak_ptr<ReadsState> owner, WorkerPool& workers, std::string name,
           std::shared_ptr<const MysqlConnConfig> cfg)
      : owner_(std::move(owner)),
        loop_(workers.loop()),
        name_(std::move(name)),
        cfg_(std::move(cfg)) {
    ev_io_init(&io_, &LoopConn::OnIo, -1, 0);
    io_.data = this;
    ev_timer_init(&timeout_, &LoopConn::OnTimeout, 0, 0);
    timeout_.data = this;
    ev_timer_init(&idle_, &LoopConn::OnIdle, 0, 0);
    idle_.data = this;
  }
  // Statements in flight end here; their callbacks are dropped, not called
  // (the loop is going away).
  ~LoopConn() {
    StopWaiting();
    DisarmIdle();
    Unwind();
    conn_.reset();
  }
  LoopConn(const LoopConn&) = delete;
  LoopConn& operator=(const LoopConn&) = delete;

  // Runs `sql` (a statement returning name/value rows) and builds the map.
  // `done` runs on the loop, later. When the server refuses `sql` as a
  // syntax error and there is a `fallback`, that runs instead, and
  // filters() is false from then on.
  void Read(std::string sql, std::string fallback, Done done) {
    queue_.push_back(Op{std::move(sql), std::move(fallback), std::move(done)});
    Next();
  }
  // Whether the server takes a WHERE on SHOW GLOBAL STATUS / VARIABLES
  // (every MySQL and MariaDB does; a proxy in between may not).
  bool filters() const { return filters_; }

 private:
  enum class Stage { kQuery, kStore, kNext };
  struct Op {
    std::string sql;
    std::string fallback;
    Done done;
    int attempt = 0;
  };

  void Next() {
    if (busy_ || queue_.empty()) return;
    busy_ = true;
    Start();
  }

  // Runs the first queued statement, connecting first if needed.
  void Start() {
    Op& first = queue_.front();
    if (!filters_ && !first.fallback.empty()) first.sql = std::exchange(first.fallback, {});
    if (!conn_) {
      Connect();
      return;
    }
    stage_ = Stage::kQuery;
    waiting_ = false;
    builder_ = MapBuilder{};
    started_ = Clock::now();
    Unpark();
    Advance(0);
  }

  void Connect() {
    auto owner = owner_.lock();
    if (!owner) return;   // only while the reader is destroyed
    std::weak_ptr<bool> alive = alive_;
    SubmitWork<std::shared_ptr<MYSQL>>(
        owner, name_, cfg_,
        [](const MysqlConnConfig& c, bool* healthy) -> Expected<std::shared_ptr<MYSQL>> {
          t_connections.Ready();
          auto m = ConnectMysql(c, true);
          if (!m) {
            *healthy = false;
            return m.status();
          }
          return std::shared_ptr<MYSQL>(*m, mysql_close);
        },
        [this, alive](Expected<std::shared_ptr<MYSQL>> m) {
          if (alive.expired()) return;   // the connection, if any, closes with `m`
          if (!m) {
            FailAll(m.error());
            return;
          }
          conn_ = std::move(*m);
          reused_ = false;
          Start();
        });
  }

  // Calls the library for the current stage until it must wait (then
  // arms the watchers and returns) or the statement is done. `ready`: what
  // the last wait saw (MYSQL_WAIT_*), 0 to start a stage.
  void Advance(int ready) {
    MYSQL* m = conn_.get();
    const std::string& sql = queue_.front().sql;
    for (;;) {
      int status = 0;
      switch (stage_) {
        case Stage::kQuery:
          status = waiting_ ? mysql_real_query_cont(&rc_, m, ready)
                            : mysql_real_query_start(&rc_, m, sql.data(),
                                                     static_cast<unsigned long>(sql.size()));
          break;
        case Stage::kStore:
          status = waiting_ ? mysql_store_result_cont(&res_, m, ready)
                            : mysql_store_result_start(&res_, m);
          break;
        case Stage::kNext:
          status = waiting_ ? mysql_next_result_cont(&rc_, m, ready)
                            : mysql_next_result_start(&rc_, m);
          break;
      }
      if (status != 0) {
        waiting_ = true;
        Wait(status);
        return;
      }
      waiting_ = false;
      ready = 0;
      switch (stage_) {
        case Stage::kQuery:
          if (rc_ != 0) return Fail();
          stage_ = Stage::kStore;
          break;
        case Stage::kStore:
          if (res_) {
            // Stored: every row is in memory, nothing here waits.
            builder_.Take(res_);
            res_ = nullptr;
          } else if (mysql_field_count(m) != 0) {
            return Fail();
          }
          if (!mysql_more_results(m)) return Finished();
          stage_ = Stage::kNext;
          break;
        case Stage::kNext:
          if (rc_ > 0) return Fail();
          if (rc_ < 0) return Finished();
          stage_ = Stage::kStore;
          break;
      }
    }
  }

  void Wait(int status) {
    const int events = ((status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT)) ? EV_READ : 0) |
                       ((status & MYSQL_WAIT_WRITE) ? EV_WRITE : 0);
    const int fd = static_cast<int>(mysql_get_socket(conn_.get()));
    if (!ev_is_active(&io_) || io_.fd != fd || (io_.events & (EV_READ | EV_WRITE)) != events) {
      ev_io_stop(loop_, &io_);
      if (events != 0) {
        ev_io_set(&io_, fd, events);
        ev_io_start(loop_, &io_);
      }
    }
    // Without a timeout asked for (no read timeout set), query_timeout all
    // the same: a read on the loop must end.
    double seconds = (status & MYSQL_WAIT_TIMEOUT)
                         ? mysql_get_timeout_value_ms(conn_.get()) / 1000.0
                         : static_cast<double>(cfg_->query_timeout.count()) / 1000.0;
    ev_timer_stop(loop_, &timeout_);
    ev_timer_set(&timeout_, seconds, 0);
    ev_timer_start(loop_, &timeout_);
  }

  void StopWaiting() {
    Unpark();
    ev_io_stop(loop_, &io_);
    ev_timer_stop(loop_, &timeout_);
  }

  // Between statements the read watcher stays on the connection's socket
  // (unreferenced: it does not keep the loop alive), so that the next
  // statement's wait is no epoll_ctl, one system call fewer per share
  // window; and a connection the server closes meanwhile is seen closed.
  void Park() {
    ev_timer_stop(loop_, &timeout_);
    if (!ev_is_active(&io_) || (io_.events & EV_WRITE) != 0) {
      ev_io_stop(loop_, &io_);
      return;
    }
    if (!parked_) ev_unref(loop_);
    parked_ = true;
  }
  void Unpark() {
    if (parked_) ev_ref(loop_);   // before any ev_io_stop (libev: ref, then stop)
    parked_ = false;
  }

  static void OnIo(struct ev_loop*, ev_io* w, int revents) {
    auto* self = static_cast<LoopConn*>(w->data);
    if (!self->waiting_) {
      // Readable between statements: the server closed the connection
      // (a restart, KILL, wait_timeout) or said why it will. The next
      // statement connects anew.
      self->StopWaiting();
      if (!self->busy_) self->conn_.reset();
      return;
    }
    self->Advance(((revents & EV_READ) ? MYSQL_WAIT_READ : 0) |
                  ((revents & EV_WRITE) ? MYSQL_WAIT_WRITE : 0));
  }

  static void OnTimeout(struct ev_loop*, ev_timer* w, int) {
    static_cast<LoopConn*>(w->data)->Advance(MYSQL_WAIT_TIMEOUT);
  }

  static void OnIdle(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<LoopConn*>(w->data);
    if (self->busy_) return;   // the next read re-arms it
    self->DisarmIdle();
    self->StopWaiting();
    self->conn_.reset();
  }

  void Finished() {
    Park();
    Op& op = queue_.front();
    reused_ = true;
    ArmIdle();
    // Not a MySQL error when it fails (too few columns): the connection stays.
    Complete(builder_.Finish(op.sql));
  }

  void Fail() {
    StopWaiting();
    MYSQL* m = conn_.get();
    const unsigned err = mysql_errno(m);
    std::string error = ServerError(m);
    Op& op = queue_.front();
    // A dead cached connection fails at once (EOF, or the server's "killed"
    // packet); a read timeout says "lost connection" too, but only after
    // query_timeout: that statement is not sent again.
    const bool retry = IsConnectionLoss(err) && reused_ && op.attempt == 0 &&
                       Clock::now() - started_ < std::chrono::milliseconds(500);
    if (res_) {
      mysql_free_result(res_);
      res_ = nullptr;
    }
    conn_.reset();   // the next statement reconnects
    if (retry) {
      ++op.attempt;
      Start();
      return;
    }
    if (err == kErParseError && !op.fallback.empty()) {
      spdlog::info("{}: the server refuses '{:.60}...': reading every row from now on ({})",
                   cfg_->Describe(), op.sql, error);
      filters_ = false;
      op.sql = std::exchange(op.fallback, std::string());
      Start();
      return;
    }
    // Client-side errors (lost connection, read timeout): name the
    // connection, the library's text does not.
    if (err >= 2000) error = cfg_->Describe() + ": " + error;
    Complete(Result::Error(std::move(error)));
  }

  void Complete(Result r) {
    Op op = std::move(queue_.front());
    queue_.pop_front();
    busy_ = false;
    builder_ = MapBuilder{};
    std::weak_ptr<bool> alive = alive_;
    op.done(std::move(r));
    if (alive.expired()) return;
    Next();
  }

  // The connection could not be made: every statement waiting for it gets
  // that error.
  void FailAll(const std::string& error) {
    std::deque<Op> ops;
    ops.swap(queue_);
    busy_ = false;
    std::weak_ptr<bool> alive = alive_;
    for (auto& op : ops) {
      op.done(Result::Error(error));
      if (alive.expired()) return;
    }
    Next();
  }

  void ArmIdle() {
    idle_.repeat = std::chrono::duration<double>(kIdleClose).count();
    ev_timer_again(loop_, &idle_);
    if (!idle_armed_) {
      ev_unref(loop_);   // an idle connection does not keep the loop alive
      idle_armed_ = true;
    }
  }

  void DisarmIdle() {
    if (!idle_armed_) return;
    ev_ref(loop_);
    ev_timer_stop(loop_, &idle_);
    idle_armed_ = false;
  }

  // A statement suspended in the library (only when destroyed mid-read):
  // told that its wait timed out, it fails and ends, so that the
  // connection can be closed.
  void Unwind() {
    MYSQL* m = conn_.get();
    for (int i = 0; waiting_ && m && i < 8; ++i) {
      int status = 0;
      switch (stage_) {
        case Stage::kQuery: status = mysql_real_query_cont(&rc_, m, MYSQL_WAIT_TIMEOUT); break;
        case Stage::kStore: status = mysql_store_result_cont(&res_, m, MYSQL_WAIT_TIMEOUT); break;
        case Stage::kNext: status = mysql_next_result_cont(&rc_, m, MYSQL_WAIT_TIMEOUT); break;
      }
      waiting_ = status != 0;
    }
    if (res_) mysql_free_result(res_);
    res_ = nullptr;
  }

  std::weak_ptr<ReadsState> owner_;
  struct ev_loop* loop_;
  std::string name_;
  std::shared_ptr<const MysqlConnConfig> cfg_;
  std::shared_ptr<MYSQL> conn_;   // closed (mysql_close) with its last owner
  bool reused_ = false;           // conn_ has served a statement before
  std::deque<Op> queue_;          // the first one runs while busy_
  bool busy_ = false;
  bool filters_ = true;           // see filters()
  // The running statement: its stage, whether the library waits in it
  // (the next call is a _cont), what the calls returned, and when it began.
  Stage stage_ = Stage::kQuery;
  bool waiting_ = false;
  int rc_ = 0;
  MYSQL_RES* res_ = nullptr;
  MapBuilder builder_;
  Clock::time_point started_{};
  ev_io io_{};
  ev_timer timeout_{};
  ev_timer idle_{};
  bool idle_armed_ = false;
  bool parked_ = false;   // io_ left on the socket between statements (Park)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

ReadsState::~ReadsState() = default;

// The loop connection for `name` (a known connection), made on first use.
LoopConn& LoopConnOf(const std::shared_ptr<ReadsState>& impl, const std::string& name) {
  auto& slot = impl->loop_conns[name];
  if (!slot) slot = std::make_unique<LoopConn>(impl, impl->workers, name, impl->Shared(name));
  return *slot;
}

// `start(names, callback)` starts a read of `names`, which calls
// `callback` on the loop once; it runs only when no read in flight or
// fresh enough holds every name asked for (NameSet::Covers).
template <typename T, typename Start>
void SharedReadOf(const std::shared_ptr<ReadsState>& impl,
                  std::map<std::string, SharedRead<T>>& table, const std::string& name,
                  Duration window, const std::shared_ptr<const NameSet>& names, Start&& start,
                  MysqlReads::SharedDone<T> done) {
  // One lookup per run: a table has entries for known connections only.
  auto it = table.find(name);
  if (it == table.end()) {
    if (!impl->Find(name)) {
      done(Expected<std::shared_ptr<const T>>::Error(UnknownConnection(name)));
      return;
    }
    it = table.try_emplace(name).first;
  }
  SharedRead<T>* shared = &it->second;
  for (auto& flight : shared->flights) {
    if (NameSet::Covers(flight.names.get(), names.get())) {
      flight.waiters.push_back(std::move(done));
      return;
    }
  }
  // Served from the last read while it is younger than 90% of the window:
  // checks on the next 100 ms tick of the run grid get a fresh one even
  // when the tick's timer fires a millisecond early (docs/behaviour.md, "Sharing window": checks due
  // within the same window share a read, not those of the next one).
  Clock::time_point now = Clock::now();
  if (shared->last && now - shared->started < window * 9 / 10 &&
      NameSet::Covers(shared->last_names.get(), names.get())) {
    done(*shared->last);
    return;
  }
  auto flight = shared->flights.emplace(shared->flights.end());
  flight->names = names;
  flight->started = now;
  flight->waiters.swap(shared->spare);   // its capacity
  flight->waiters.clear();
  flight->waiters.push_back(std::move(done));
  start(names, [shared, flight](Expected<std::shared_ptr<const T>> r) {
    // The waiters get this copy: `last` may be replaced while they run
    // (one asks again, the read is stale, the next one fails at once).
    const Expected<std::shared_ptr<const T>> result = std::move(r);
    shared->last = result;
    shared->last_names = std::move(flight->names);
    shared->started = flight->started;
    // A waiter may ask again from inside its callback: it is then served
    // from `last` or a flight of its own, not added to the list being
    // walked.
    auto waiters = std::move(flight->waiters);
    shared->flights.erase(flight);
    for (auto& w : waiters) w(result);
    waiters.clear();
    shared->spare = std::move(waiters);
  });
}

// What a filtered read asks for: `('a','b',...)` for SQL's IN, from the
// names a status or variable name can be (letters, digits, _); empty when
// a full read is the better one (no names, or so many that the server
// spends less on every row than on the filter: docs/performance.md).
const std::string& InList(const NameSet& names) {
  constexpr size_t kMaxFiltered = 128;
  if (!names.prepared.empty() || names.names.size() > kMaxFiltered) return names.prepared;
  std::string list;
  for (const auto& n : names.names) {
    const bool plain = !n.empty() && std::all_of(n.begin(), n.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!plain) continue;   // no such variable: it is reported missing
    list += list.empty() ? "('" : ",'";
    list += n;
    list += '\'';
  }
  if (!list.empty()) list += ')';
  names.prepared = std::move(list);
  return names.prepared;
}

// SHOW GLOBAL STATUS or VARIABLES (`what`) of `names` on `connection`'s
// loop connection: filtered where it pays and the server takes it.
void ReadNamed(const std::shared_ptr<ReadsState>& impl, const std::string& connection,
               const char* what, const NameSet* names, LoopConn::Done cb) {
  LoopConn& conn = LoopConnOf(impl, connection);
  std::string full = std::string("SHOW GLOBAL ") + what;
  const std::string* in = names && conn.filters() ? &InList(*names) : nullptr;
  if (!in || in->empty()) {
    conn.Read(std::move(full), {}, std::move(cb));
    return;
  }
  conn.Read(full + " WHERE Variable_name IN " + *in, full, std::move(cb));
}

}  // namespace

MysqlReads::MysqlReads(WorkerPool& workers, std::map<std::string, MysqlConnConfig> connections)
    : impl_(std::make_shared<Impl>(workers, std::move(connections))) {
  // Before any worker thread uses the client library.
  InitLibrary();
}

const MysqlConnConfig* MysqlReads::Find(const std::string& connection) const {
  return impl_->Find(connection);
}

void MysqlReads::Query(const std::string& connection, const std::string& sql,
                       std::function<void(Expected<MysqlRows>)> done) {
  auto cfg = impl_->Shared(connection);
  if (!cfg) {
    done(Expected<MysqlRows>::Error(UnknownConnection(connection)));
    return;
  }
  SubmitWork<MysqlRows>(
      impl_, connection, std::move(cfg),
      [sql](const MysqlConnConfig& c, bool* healthy) { return WorkerQuery(c, sql, healthy); },
      std::move(done));
}

void MysqlReads::Execute(const std::string& connection, std::vector<std::string> statements,
                         std::function<void(Status)> done) {
  auto cfg = impl_->Shared(connection);
  if (!cfg) {
    done(Status::Error(UnknownConnection(connection)));
    return;
  }
  SubmitWork<bool>(
      impl_, connection, std::move(cfg),
      [statements = std::move(statements)](const MysqlConnConfig& c, bool* healthy) {
        return WorkerExecute(c, statements, healthy);
      },
      [done = std::move(done)](Expected<bool> r) { done(r.status()); });
}

void MysqlReads::Ping(const std::string& connection, std::function<void(Expected<double>)> done) {
  auto cfg = impl_->Shared(connection);
  if (!cfg) {
    done(Expected<double>::Error(UnknownConnection(connection)));
    return;
  }
  SubmitWork<double>(impl_, connection, std::move(cfg), WorkerPing, std::move(done));
}

void MysqlReads::GlobalStatus(const std::string& connection,
                              std::shared_ptr<const NameSet> names, SharedDone<MysqlMap> done) {
  SharedReadOf<MysqlMap>(
      impl_, impl_->status, connection, share_window, names,
      [this, &connection](const std::shared_ptr<const NameSet>& n, LoopConn::Done cb) {
        ReadNamed(impl_, connection, "STATUS", n.get(), std::move(cb));
      },
      std::move(done));
}

void MysqlReads::GlobalVariables(const std::string& connection,
                                 std::shared_ptr<const NameSet> names, SharedDone<MysqlMap> done) {
  SharedReadOf<MysqlMap>(
      impl_, impl_->variables, connection, share_window, names,
      [this, &connection](const std::shared_ptr<const NameSet>& n, LoopConn::Done cb) {
        ReadNamed(impl_, connection, "VARIABLES", n.get(), std::move(cb));
      },
      std::move(done));
}

void MysqlReads::ReplicaStatus(const std::string& connection, SharedDone<MysqlRows> done) {
  SharedReadOf<MysqlRows>(
      impl_, impl_->replica, connection, share_window, nullptr,
      [this, &connection](const std::shared_ptr<const NameSet>&,
                          std::function<void(Expected<std::shared_ptr<const MysqlRows>>)> cb) {
        SubmitWork<std::shared_ptr<const MysqlRows>>(impl_, connection, impl_->Shared(connection),
                                                     WorkerReplicaStatus, std::move(cb));
      },
      std::move(done));
}

}  // namespace warden
