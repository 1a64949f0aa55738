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
//    per section that a worker makes (mysql.cc, LoopConn). Reads of one
//    kind on one connection asked for within `share_window` (100 ms) of
//    each other are served by one snapshot.
#pragma once

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

#include "daemon/inline_function.h"
#include "daemon/status.h"
#include "daemon/units.h"

namespace warden {

class WorkerPool;

struct MysqlConnConfig {
  std::string name;               // "" for [mysql]
  std::string host;               // empty: use socket
  int port = 3306;
  std::string socket;
  std::string user;
  std::string password;           // read from password_file; never logged
  std::string database;
  Duration connect_timeout{2000};
  Duration query_timeout{5000};

  std::string Describe() const;   // "[mysql replica_src] 10.0.0.5:3306" (no password)
  std::string Key() const;        // changes when any setting changes
};

// A result set read by column name. NULL is nullopt.
struct MysqlRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  // Index of the column with this name (case-insensitive), or -1.
  int Column(std::string_view name) const;
};

// One SHOW GLOBAL STATUS / SHOW GLOBAL VARIABLES snapshot: lower-cased name
// -> value, read-only once built. A snapshot of ~600 rows is built for every
// share window and read by many checks, so it is flat: the values in one
// buffer, the sorted names in another that is shared with the earlier
// snapshots of the same layout (the server sends the same names every
// time), and one (name, value) pair of views per row, looked up by binary
// search or by an index remembered from an earlier snapshot. Building one
// is three allocations, not two per row. The read interface is the subset
// of std::map's that callers use, with views for strings.
class MysqlMap {
 public:
  using value_type = std::pair<std::string_view, std::string_view>;
  using const_iterator = std::vector<value_type>::const_iterator;

  MysqlMap() = default;
  // The views point into buffers the map owns: moving keeps them valid,
  // copying would not.
  MysqlMap(MysqlMap&&) = default;
  MysqlMap& operator=(MysqlMap&&) = default;
  MysqlMap(const MysqlMap&) = delete;
  MysqlMap& operator=(const MysqlMap&) = delete;

  // `key` as stored: lower case. end() when absent.
  const_iterator find(std::string_view key) const;
  // Where a name was found, for finding it again in a later snapshot of
  // the same layout without a search: a caller that looks up one name in
  // every snapshot keeps one. It holds the layout's names, so a layout
  // seen again is the same one, never another at the same address.
  struct Hint {
    std::shared_ptr<const std::string> names;
    size_t index = 0;
  };
  // The same as find(key) (the caller keeps `key` the same for a hint),
  // using and updating `hint`.
  const_iterator find(std::string_view key, Hint* hint) const;
  size_t count(std::string_view key) const { return find(key) == end() ? 0 : 1; }
  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // When the snapshot reached the loop (set by the reader before sharing
  // it): the time of every value in it, for rates and check results.
  std::chrono::steady_clock::time_point taken{};

  // Where a snapshot's rows go once sorted. A reader keeps the last one per
  // statement: a snapshot whose names match it (one comparison of the
  // names' text) is placed without sorting, and shares its sorted names.
  struct Layout {
    std::string rows;                   // the server's names, lower-cased, length-prefixed
    std::string raw;                    // the same as the server sent them (not lower-cased)
    // Index in the map -> the row kept there: of several rows with the same
    // name, the last.
    std::vector<std::uint32_t> row;
    size_t size() const { return row.size(); }   // rows kept
    // The kept names in sorted order, encoded as `rows` is (shared by the
    // snapshots, and by every layout with the same names), and each one.
    std::shared_ptr<const std::string> names;
    std::vector<std::string_view> sorted;   // into *names
    size_t value_bytes = 0;             // the last snapshot's, to reserve the next one's
  };

  // Building (before the map is shared): Add lower-cases `name`; Finish
  // sorts by name and of several rows with the same name keeps the last
  // one, reusing (and updating) `layout` when given.
  // Reserve: room for `rows` rows, sized after `layout` (the last snapshot),
  // which Finish is then given too: while the rows' names are the ones the
  // layout was made from, as the server sent them, Add only compares them
  // (no copy, no lower-casing).
  void Reserve(size_t rows, const Layout* layout = nullptr);
  void Add(std::string_view name, std::string_view value);
  void Finish(Layout* layout = nullptr);

 private:
  // The rows so far stopped matching `expect_`: their names as the layout
  // has them become rows_ and raw_, and Add goes on copying.
  void Diverge();

  // While building: the rows as Layout::rows and Layout::raw encode them
  // (empty while they match expect_ up to raw_at_), and each row's value as
  // (offset, length) into values_.
  const Layout* expect_ = nullptr;
  size_t raw_at_ = 0;
  std::string rows_;
  std::string raw_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> row_values_;
  // Once finished: the buffers the views of entries_ point into.
  std::shared_ptr<const std::string> names_;
  std::vector<char> values_;
  std::vector<value_type> entries_;
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
  void Execute(const std::string& connection, std::vector<std::string> statements,
               std::function<void(Status)> done);
  // Round trip of mysql_ping in ms (connects first if needed).
  void Ping(const std::string& connection, std::function<void(Expected<double>)> done);
  // A shared read's completion: one is queued per check due in a window,
  // kept in place (no allocation) when its capture fits 48 bytes.
  template <typename T>
  using SharedDone = InlineFunction<void(const Expected<std::shared_ptr<const T>>&)>;
  void GlobalStatus(const std::string& connection, SharedDone<MysqlMap> done);
  void GlobalVariables(const std::string& connection, SharedDone<MysqlMap> done);
  // SHOW REPLICA STATUS, falling back to SHOW SLAVE STATUS on a syntax
  // error (1064: MySQL < 8.0.22, MariaDB < 10.5); on MariaDB the ALL form
  // (SHOW ALL REPLICAS STATUS / SHOW ALL SLAVES STATUS), so that every
  // multi-source connection is listed with its Connection_name. An empty
  // result is an error "not a replica: <statement> returned no rows".
  void ReplicaStatus(const std::string& connection, SharedDone<MysqlRows> done);

  const MysqlConnConfig* Find(const std::string& connection) const;
  Duration share_window{100};

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace warden
