#include "daemon/mysql.h"

#include <mysql.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <exception>
#include <mutex>
#include <utility>

#include "daemon/worker_pool.h"

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

std::string MysqlConnConfig::Key() const {
  // The password enters only as a hash: keys are plain strings that might
  // end up in a debugger or a log line.
  const char sep = '\x1f';
  return name + sep + host + sep + std::to_string(port) + sep + socket + sep + user + sep +
         std::to_string(std::hash<std::string>{}(password)) + sep + database + sep +
         std::to_string(connect_timeout.count()) + sep + std::to_string(query_timeout.count());
}

MysqlMap::const_iterator MysqlMap::find(std::string_view key) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const value_type& e, std::string_view k) { return e.first < k; });
  if (it != entries_.end() && it->first == key) return it;
  return entries_.end();
}

MysqlMap::const_iterator MysqlMap::find(std::string_view key, Hint* hint) const {
  if (hint->names == names_ && hint->index < entries_.size()) {
    return entries_.begin() + static_cast<std::ptrdiff_t>(hint->index);
  }
  auto it = find(key);
  if (it != entries_.end()) {
    hint->names = names_;
    hint->index = static_cast<size_t>(it - entries_.begin());
  }
  return it;
}

void MysqlMap::Reserve(size_t rows, const Layout* layout) {
  row_values_.reserve(rows);
  if (layout) {
    rows_.reserve(layout->rows.size());
    values_.reserve(layout->value_bytes);
  }
}

void MysqlMap::Add(std::string_view name, std::string_view value) {
  // Each name is its length (4 bytes) then its text, so that two lists of
  // names are the same exactly when their encodings are. ASCII lower case
  // only (server variable names are), without std::tolower's locale lookup
  // per character: ~600 names per read.
  const auto length = static_cast<std::uint32_t>(name.size());
  rows_.append(reinterpret_cast<const char*>(&length), sizeof length);
  const size_t at = rows_.size();
  rows_.append(name);
  for (size_t i = at; i < rows_.size(); ++i) {
    char& ch = rows_[i];
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  row_values_.emplace_back(static_cast<std::uint32_t>(values_.size()),
                           static_cast<std::uint32_t>(value.size()));
  values_.insert(values_.end(), value.begin(), value.end());
}

namespace {

// Each worker keeps its own layouts; their sorted names are shared through
// this table so that snapshots read by any worker have the same names
// buffer, and a Hint taken on one is good for all (a lookup is then one
// pointer comparison). Called only when a layout is made anew.
std::shared_ptr<const std::string> InternNames(std::shared_ptr<const std::string> names) {
  static std::mutex mu;
  static std::vector<std::weak_ptr<const std::string>> known;   // GUARDED_BY(mu)
  std::lock_guard<std::mutex> lock(mu);
  std::erase_if(known, [](const std::weak_ptr<const std::string>& w) { return w.expired(); });
  for (const auto& w : known) {
    auto same = w.lock();
    if (same && *same == *names) return same;
  }
  known.push_back(names);
  return names;
}

}  // namespace

void MysqlMap::Finish(Layout* layout) {
  const size_t n = row_values_.size();
  Layout local;   // no layout kept by the caller
  if (!layout) layout = &local;
  if (!layout->names || layout->rows != rows_) {
    // The rows' names, decoded from rows_.
    std::vector<std::string_view> row_names;
    row_names.reserve(n);
    for (size_t at = 0; at < rows_.size();) {
      std::uint32_t length = 0;
      std::memcpy(&length, rows_.data() + at, sizeof length);
      at += sizeof length;
      row_names.emplace_back(rows_.data() + at, length);
      at += length;
    }
    // Where each row goes: sorted by name (stable), and of equal names the
    // last one kept (as `map[name] = value` did); kDrop for the others.
    std::vector<std::uint32_t> by_name(n);
    for (size_t i = 0; i < n; ++i) by_name[i] = static_cast<std::uint32_t>(i);
    std::stable_sort(by_name.begin(), by_name.end(), [&](std::uint32_t a, std::uint32_t b) {
      return row_names[a] < row_names[b];
    });
    Layout fresh;
    fresh.slot.assign(n, Layout::kDrop);
    // The kept names in sorted order, encoded as rows_ is: equal buffers
    // are equal lists of names.
    auto names = std::make_shared<std::string>();
    for (size_t k = 0; k < n; ++k) {
      bool last_of_name = k + 1 == n || row_names[by_name[k + 1]] != row_names[by_name[k]];
      if (!last_of_name) continue;
      fresh.slot[by_name[k]] = static_cast<std::uint32_t>(fresh.size++);
      const std::string_view name = row_names[by_name[k]];
      const auto length = static_cast<std::uint32_t>(name.size());
      names->append(reinterpret_cast<const char*>(&length), sizeof length);
      names->append(name);
    }
    fresh.names = InternNames(std::move(names));
    fresh.sorted.reserve(fresh.size);
    const std::string& text = *fresh.names;
    for (size_t at = 0; at < text.size();) {
      std::uint32_t length = 0;
      std::memcpy(&length, text.data() + at, sizeof length);
      at += sizeof length;
      fresh.sorted.emplace_back(text.data() + at, length);
      at += length;
    }
    fresh.rows = std::move(rows_);
    *layout = std::move(fresh);
  }
  layout->value_bytes = values_.size();
  names_ = layout->names;
  entries_.resize(layout->size);
  const char* values_text = values_.data();
  for (size_t i = 0; i < n; ++i) {
    const std::uint32_t slot = layout->slot[i];
    if (slot == Layout::kDrop) continue;
    entries_[slot] = {layout->sorted[slot],
                      std::string_view(values_text + row_values_[i].first, row_values_[i].second)};
  }
  // Only what the views point into stays.
  std::string().swap(rows_);
  std::vector<std::pair<std::uint32_t, std::uint32_t>>().swap(row_values_);
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

struct CachedConn {
  MYSQL* mysql = nullptr;
  std::chrono::steady_clock::time_point last_used{};
  std::string replica_statement;  // the one this server understood
  // Row order of the last SHOW GLOBAL STATUS / VARIABLES: the next snapshot
  // with the same names (the usual case) is placed without sorting.
  std::map<std::string, MysqlMap::Layout> layouts;
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

  // The cached connection for `cfg`, connecting when there is none.
  // `reused` tells whether it was cached (it may have gone stale).
  Expected<CachedConn*> Get(const MysqlConnConfig& cfg, bool* reused) {
    if (!thread_ready_) {
      InitLibrary();
      mysql_thread_init();
      thread_ready_ = true;
    }
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
    auto m = Connect(cfg);
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
  static Expected<MYSQL*> Connect(const MysqlConnConfig& cfg) {
    MYSQL* m = mysql_init(nullptr);
    if (!m)
      return Expected<MYSQL*>::Error("cannot connect to " + cfg.Describe() + ": out of memory");
    unsigned connect_s = TimeoutSeconds(cfg.connect_timeout);
    unsigned query_s = TimeoutSeconds(cfg.query_timeout);
    my_bool no = 0;
    unsigned int no_infile = 0;
    mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
    mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &query_s);
    mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &query_s);
    mysql_optionsv(m, MYSQL_OPT_RECONNECT, &no);  // we reconnect ourselves
    mysql_optionsv(m, MYSQL_OPT_LOCAL_INFILE, &no_infile);
    unsigned int protocol = UsesSocket(cfg) ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
    mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);

    const char* host = UsesSocket(cfg) ? "localhost" : cfg.host.c_str();
    const char* user = cfg.user.empty() ? nullptr : cfg.user.c_str();
    const char* password = cfg.password.empty() ? nullptr : cfg.password.c_str();
    const char* db = cfg.database.empty() ? nullptr : cfg.database.c_str();
    const char* sock = cfg.socket.empty() ? nullptr : cfg.socket.c_str();
    unsigned port = UsesSocket(cfg) ? 0 : static_cast<unsigned>(cfg.port);
    if (!mysql_real_connect(m, host, user, password, db, port, sock, CLIENT_MULTI_RESULTS)) {
      std::string error = "cannot connect to " + cfg.Describe() + ": " + ServerError(m);
      mysql_close(m);
      return Expected<MYSQL*>::Error(std::move(error));
    }
    return m;
  }

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

// SHOW GLOBAL STATUS / VARIABLES straight from the client library's rows
// into a MysqlMap (no MysqlRows copy in between: this runs once per share
// window with ~600 rows). Errors as RunQuery reports them.
Expected<std::shared_ptr<const MysqlMap>> ReadMap(MYSQL* m, const std::string& sql,
                                                  MysqlMap::Layout* layout) {
  using Result = Expected<std::shared_ptr<const MysqlMap>>;
  if (mysql_real_query(m, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
    return Result::Error(ServerError(m));
  }
  std::shared_ptr<MysqlMap> map;
  unsigned columns = 0;
  for (;;) {
    MYSQL_RES* res = mysql_store_result(m);
    if (res) {
      if (!map) {
        map = std::make_shared<MysqlMap>();
        columns = mysql_num_fields(res);
        if (columns >= 2) {
          map->Reserve(static_cast<size_t>(mysql_num_rows(res)), layout);
          while (MYSQL_ROW row = mysql_fetch_row(res)) {
            if (!row[0]) continue;
            unsigned long* lengths = mysql_fetch_lengths(res);
            map->Add(std::string_view(row[0], lengths[0]),
                     row[1] ? std::string_view(row[1], lengths[1]) : std::string_view());
          }
        }
      }
      mysql_free_result(res);
    } else if (mysql_field_count(m) != 0) {
      return Result::Error(ServerError(m));
    }
    int next = mysql_next_result(m);  // 0: more, -1: done, >0: error
    if (next > 0) return Result::Error(ServerError(m));
    if (next < 0) break;
  }
  if (columns < 2) {
    return Result::Error(sql + " returned " + std::to_string(columns) + " columns, expected 2");
  }
  map->Finish(layout);
  return std::shared_ptr<const MysqlMap>(std::move(map));
}

Expected<std::shared_ptr<const MysqlMap>> WorkerShowMap(const MysqlConnConfig& cfg,
                                                        const std::string& sql, bool* healthy) {
  return WithConnection<std::shared_ptr<const MysqlMap>>(
      cfg,
      [&sql](CachedConn& c, bool, bool*) { return ReadMap(c.mysql, sql, &c.layouts[sql]); },
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

}  // namespace

// ---------------------------------------------------------------------------
// Loop side

namespace {

// One shared read per connection: callbacks waiting for the read in flight,
// and the last result with the time its read was started (its age: the
// data is as old as the query, not as its arrival).
template <typename T>
struct SharedRead {
  using Result = Expected<std::shared_ptr<const T>>;
  bool in_flight = false;
  std::vector<std::function<void(Result)>> waiters;
  std::vector<std::function<void(Result)>> spare;   // the last list walked, for its capacity
  std::optional<Result> last;
  Clock::time_point started{};
};

}  // namespace

namespace {

// The loop-side state of MysqlReads (its Impl), shared with completions.
struct ReadsState {
  ReadsState(WorkerPool& w, std::map<std::string, MysqlConnConfig> c) : workers(w) {
    for (auto& [name, config] : c) {
      connections.emplace(name, std::make_shared<const MysqlConnConfig>(std::move(config)));
    }
  }

  // Constant after construction. The settings are shared, read-only, with
  // the jobs that use them.
  WorkerPool& workers;
  std::map<std::string, std::shared_ptr<const MysqlConnConfig>> connections;

  // Loop thread only. Entries are never erased: completions keep pointers.
  std::map<std::string, SharedRead<MysqlMap>> status;
  std::map<std::string, SharedRead<MysqlMap>> variables;
  std::map<std::string, SharedRead<MysqlRows>> replica;

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

template <typename T>
void SharedReadOf(const std::shared_ptr<ReadsState>& impl,
                  std::map<std::string, SharedRead<T>>& table, const std::string& name,
                  Duration window, WorkerFn<std::shared_ptr<const T>> work,
                  std::function<void(Expected<std::shared_ptr<const T>>)> done) {
  const MysqlConnConfig* cfg = impl->Find(name);
  if (!cfg) {
    done(Expected<std::shared_ptr<const T>>::Error(UnknownConnection(name)));
    return;
  }
  SharedRead<T>* shared = &table[name];
  if (shared->in_flight) {
    shared->waiters.push_back(std::move(done));
    return;
  }
  Clock::time_point now = Clock::now();
  if (shared->last && now - shared->started < window) {
    done(*shared->last);
    return;
  }
  shared->in_flight = true;
  shared->started = now;
  shared->waiters.push_back(std::move(done));
  SubmitWork<std::shared_ptr<const T>>(impl, name, impl->Shared(name), std::move(work),
                                       [shared](Expected<std::shared_ptr<const T>> r) {
                                         shared->in_flight = false;
                                         shared->last = r;
                                         // A waiter may ask again from inside its callback: it is
                                         // then served from `last`, not added to the list being
                                         // walked.
                                         auto waiters = std::move(shared->waiters);
                                         shared->waiters = std::move(shared->spare);
                                         shared->waiters.clear();
                                         for (auto& w : waiters) w(r);
                                         waiters.clear();
                                         shared->spare = std::move(waiters);
                                       });
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
                              std::function<void(Expected<std::shared_ptr<const MysqlMap>>)> done) {
  SharedReadOf<MysqlMap>(
      impl_, impl_->status, connection, share_window,
      [](const MysqlConnConfig& c, bool* healthy) {
        return WorkerShowMap(c, "SHOW GLOBAL STATUS", healthy);
      },
      std::move(done));
}

void MysqlReads::GlobalVariables(
    const std::string& connection,
    std::function<void(Expected<std::shared_ptr<const MysqlMap>>)> done) {
  SharedReadOf<MysqlMap>(
      impl_, impl_->variables, connection, share_window,
      [](const MysqlConnConfig& c, bool* healthy) {
        return WorkerShowMap(c, "SHOW GLOBAL VARIABLES", healthy);
      },
      std::move(done));
}

void MysqlReads::ReplicaStatus(
    const std::string& connection,
    std::function<void(Expected<std::shared_ptr<const MysqlRows>>)> done) {
  SharedReadOf<MysqlRows>(impl_, impl_->replica, connection, share_window, WorkerReplicaStatus,
                          std::move(done));
}

}  // namespace warden
