#include "daemon/io/mysql_loop_conn.h"

#include <ev.h>
#include <mysql.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "daemon/io/mysql.h"
#include "daemon/io/worker_pool.h"

namespace warden::mysql_internal {

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
  // The statements are shared, not copied: a filtered one is a few kB,
  // made once per set of names and sent every second.
  using Sql = std::shared_ptr<const std::string>;
  void Read(Sql sql, Sql fallback, Done done) {
    queue_.push_back(Op{std::move(sql), std::move(fallback), std::move(done)});
    Next();
  }
  // Whether the server takes a WHERE on SHOW GLOBAL STATUS / VARIABLES
  // (every MySQL and MariaDB does; a proxy in between may not).
  bool filters() const { return filters_; }
  // A statement is in flight (or queued behind one).
  bool busy() const { return busy_ || !queue_.empty(); }

 private:
  enum class Stage { kQuery, kStore, kNext };
  struct Op {
    Sql sql;
    Sql fallback;   // null: none
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
    if (!filters_ && first.fallback) first.sql = std::exchange(first.fallback, nullptr);
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
        owner, name_, cfg_, WorkerConnectNonblocking,
        [this, alive](Expected<std::shared_ptr<MYSQL>> m) {
          if (alive.expired()) return;   // the connection, if any, closes with `m`
          if (!m) {
            FailAll(m.failure());
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
    const std::string& sql = *queue_.front().sql;
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
    Complete(builder_.Finish(*op.sql));
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
    if (err == kErParseError && op.fallback) {
      spdlog::info("{}: the server refuses '{:.60}...': reading every row from now on ({})",
                   cfg_->Describe(), *op.sql, error);
      filters_ = false;
      op.sql = std::exchange(op.fallback, nullptr);
      Start();
      return;
    }
    // Client-side errors (lost connection, read timeout): name the
    // connection, the library's text does not.
    if (err >= 2000) error = cfg_->Describe() + ": " + error;
    Complete(MysqlFailure(err, std::move(error)));
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
  void FailAll(const Failure& error) {
    std::deque<Op> ops;
    ops.swap(queue_);
    busy_ = false;
    std::weak_ptr<bool> alive = alive_;
    for (auto& op : ops) {
      op.done(error);
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

// Here, where LoopConn is complete.
ReadsState::ReadsState(WorkerPool& w, std::map<std::string, MysqlConnConfig> c) : workers(w) {
  for (auto& [name, config] : c) {
    connections.emplace(name, std::make_shared<const MysqlConnConfig>(std::move(config)));
  }
}

ReadsState::~ReadsState() = default;

bool ReadsState::Busy() const {
  for (const auto& [name, conn] : loop_conns) {
    if (conn && conn->busy()) return true;
  }
  return false;
}

namespace {

// The loop connection for `name` (a known connection), made on first use.
LoopConn& LoopConnOf(const std::shared_ptr<ReadsState>& impl, const std::string& name) {
  auto& slot = impl->loop_conns[name];
  if (!slot) slot = std::make_unique<LoopConn>(impl, impl->workers, name, impl->Shared(name));
  return *slot;
}

// The filtered statement for `names`, `full` WHERE Variable_name IN
// ('a','b',...), from the names a status or variable name can be
// (letters, digits, _); null when a full read is the better one (no
// names, or so many that the server spends less on every row than on
// the filter: docs/performance.md). Made once per set and kept in it
// (NameSet::prepared; a set is made for one kind of read, and one asked
// for by another kind gets its own statement each time): a read a second
// neither builds nor copies a statement of a few kB.
LoopConn::Sql FilteredSql(const std::shared_ptr<const NameSet>& names, const std::string& full) {
  constexpr size_t kMaxFiltered = 128;
  if (names->names.size() > kMaxFiltered) return nullptr;
  std::string& kept = names->prepared;
  const auto ours = [&full](const std::string& sql) {
    return sql.size() > full.size() && sql.compare(0, full.size(), full) == 0 &&
           sql[full.size()] == ' ';
  };
  // Aliasing: the statement lives as long as the set.
  if (ours(kept)) return LoopConn::Sql(names, &kept);
  std::string list;
  for (const auto& n : names->names) {
    const bool plain = !n.empty() && std::all_of(n.begin(), n.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!plain) continue;   // no such variable: it is reported missing
    list += list.empty() ? "('" : ",'";
    list += n;
    list += '\'';
  }
  if (list.empty()) return nullptr;
  std::string sql = full + " WHERE Variable_name IN " + list + ")";
  if (!kept.empty()) return std::make_shared<const std::string>(std::move(sql));
  kept = std::move(sql);
  return LoopConn::Sql(names, &kept);
}

}  // namespace

// SHOW GLOBAL STATUS or VARIABLES (`what`) of `names` on `connection`'s
// loop connection: filtered where it pays and the server takes it.
void ReadNamed(const std::shared_ptr<ReadsState>& impl, const std::string& connection,
               const char* what, const std::shared_ptr<const NameSet>& names, LoopConn::Done cb) {
  LoopConn& conn = LoopConnOf(impl, connection);
  static const auto kStatus = std::make_shared<const std::string>("SHOW GLOBAL STATUS");
  static const auto kVariables = std::make_shared<const std::string>("SHOW GLOBAL VARIABLES");
  LoopConn::Sql full = kStatus;
  if (std::strcmp(what, "VARIABLES") == 0) {
    full = kVariables;
  } else if (std::strcmp(what, "STATUS") != 0) {
    full = std::make_shared<const std::string>(std::string("SHOW GLOBAL ") + what);
  }
  LoopConn::Sql sql = names && conn.filters() ? FilteredSql(names, *full) : nullptr;
  if (!sql) {
    conn.Read(std::move(full), nullptr, std::move(cb));
    return;
  }
  conn.Read(std::move(sql), std::move(full), std::move(cb));
}

}  // namespace warden::mysql_internal
