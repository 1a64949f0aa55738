// MySQL/MariaDB access. Two halves:
//
//  * MysqlSession (worker threads): blocking C API calls on a connection
//    that each worker keeps per [mysql] section and reuses, reconnecting
//    after an error. Connect and read timeouts come from the section.
//  * MysqlReads (loop thread): what checks and actions call. Submits work
//    to the WorkerPool on lane "mysql:<name>" and calls back on the loop.
//    SHOW GLOBAL STATUS / SHOW GLOBAL VARIABLES / replica status reads on
//    one connection that are asked for within `share_window` (100 ms) of
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
// -> value, read-only once built. Stored flat (a sorted vector, looked up by
// binary search): a snapshot of ~600 rows is built for every share window
// and read by many checks, and a node-based map spent most of a check's
// CPU on allocating, comparing and freeing its nodes. The read interface is
// the subset of std::map's that callers use.
class MysqlMap {
 public:
  using value_type = std::pair<std::string, std::string>;
  using const_iterator = std::vector<value_type>::const_iterator;

  // `key` as stored: lower case. end() when absent.
  const_iterator find(std::string_view key) const;
  size_t count(std::string_view key) const { return find(key) == end() ? 0 : 1; }
  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // Where a snapshot's rows go once sorted. A reader keeps the last one per
  // statement: the server sends the same names in the same order every
  // time, and a snapshot that matches it (one comparison per row) is then
  // placed without sorting.
  struct Layout {
    static constexpr std::uint32_t kDrop = UINT32_MAX;   // an earlier row of a repeated name
    std::vector<std::string> names;     // lower-cased, in the server's order
    std::vector<std::uint32_t> slot;    // row -> index in the map, or kDrop
    size_t size = 0;                    // rows kept
  };

  // Building (before the map is shared): Add lower-cases `name`; Finish
  // sorts by name and of several rows with the same name keeps the last
  // one, reusing (and updating) `layout` when given.
  void Reserve(size_t n) { entries_.reserve(n); }
  void Add(std::string_view name, std::string_view value);
  void Finish(Layout* layout = nullptr);

 private:
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
  void GlobalStatus(const std::string& connection,
                    std::function<void(Expected<std::shared_ptr<const MysqlMap>>)> done);
  void GlobalVariables(const std::string& connection,
                       std::function<void(Expected<std::shared_ptr<const MysqlMap>>)> done);
  // SHOW REPLICA STATUS, falling back to SHOW SLAVE STATUS on a syntax
  // error (1064: MySQL < 8.0.22, MariaDB < 10.5); on MariaDB the ALL form
  // (SHOW ALL REPLICAS STATUS / SHOW ALL SLAVES STATUS), so that every
  // multi-source connection is listed with its Connection_name. An empty
  // result is an error "not a replica: <statement> returned no rows".
  void ReplicaStatus(const std::string& connection,
                     std::function<void(Expected<std::shared_ptr<const MysqlRows>>)> done);

  const MysqlConnConfig* Find(const std::string& connection) const;
  Duration share_window{100};

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace warden
