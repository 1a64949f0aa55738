#include "checks/mysql_replica.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <cctype>
#include <initializer_list>
#include <optional>

namespace warden {
namespace {

using Rows = Expected<std::shared_ptr<const MysqlRows>>;

bool SameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A column of one row under any of its names. Outer nullopt: no such
// column; inner nullopt: NULL.
struct Cell {
  bool present = false;
  std::optional<std::string> value;
  std::string column;  // the name found
};

Cell Get(const MysqlRows& rows, size_t row, std::initializer_list<std::string_view> names) {
  for (auto name : names) {
    int i = rows.Column(name);
    if (i >= 0 && static_cast<size_t>(i) < rows.rows[row].size()) {
      return Cell{true, rows.rows[row][static_cast<size_t>(i)],
                  rows.columns[static_cast<size_t>(i)]};
    }
  }
  return Cell{};
}

std::string Text(const Cell& c) { return c.present && c.value ? *c.value : std::string(); }

Measurement Missing(std::initializer_list<std::string_view> names) {
  std::string list;
  for (auto n : names) list += (list.empty() ? "" : " or ") + std::string(n);
  return Measurement::Error("replica status has no column " + list);
}

Measurement FieldOfRow(const MysqlRows& rows, size_t r, std::string_view field) {
  if (field == "io_running" || field == "sql_running") {
    bool io = field == "io_running";
    std::string_view current = io ? "Replica_IO_Running" : "Replica_SQL_Running";
    std::string_view old = io ? "Slave_IO_Running" : "Slave_SQL_Running";
    Cell c = Get(rows, r, {current, old});
    if (!c.present) return Missing({current, old});
    if (!c.value) return Measurement::Error(c.column + " is NULL");
    return Measurement::Value(*c.value);
  }
  if (field == "last_errno") {
    long long best = -1;
    for (auto name : {"Last_IO_Errno", "Last_SQL_Errno", "Last_Errno"}) {
      Cell c = Get(rows, r, {name});
      if (!c.present || !c.value) continue;
      auto n = ParseNumber(*c.value);
      if (!n) return Measurement::Error(c.column + " is not a number: '" + *c.value + "'");
      best = std::max(best, static_cast<long long>(*n));
    }
    if (best < 0) return Missing({"Last_IO_Errno", "Last_SQL_Errno", "Last_Errno"});
    return Measurement::Number(static_cast<double>(best));
  }
  if (field == "last_error") {
    bool any = false;
    for (auto name : {"Last_IO_Error", "Last_SQL_Error", "Last_Error"}) {
      Cell c = Get(rows, r, {name});
      any = any || c.present;
      if (c.present && c.value && !Trim(*c.value).empty()) return Measurement::Value(*c.value);
    }
    if (!any) return Missing({"Last_IO_Error", "Last_SQL_Error", "Last_Error"});
    return Measurement::Value("");
  }
  if (field == "lag") {
    Cell c = Get(rows, r, {"Seconds_Behind_Source", "Seconds_Behind_Master"});
    if (!c.present) return Missing({"Seconds_Behind_Source", "Seconds_Behind_Master"});
    if (c.value) {
      if (!ParseNumber(*c.value)) {
        return Measurement::Error(c.column + " is not a number: '" + *c.value + "'");
      }
      return Measurement::Value(*c.value);
    }
    // NULL: the SQL thread is stopped, or the IO thread is not connected.
    std::string why = "replication lag unknown (" + c.column + " is NULL)";
    std::string io = Text(Get(rows, r, {"Replica_IO_Running", "Slave_IO_Running"}));
    std::string sql = Text(Get(rows, r, {"Replica_SQL_Running", "Slave_SQL_Running"}));
    if (!io.empty() || !sql.empty()) why += ": IO thread " + io + ", SQL thread " + sql;
    std::string io_error = Text(Get(rows, r, {"Last_IO_Error"}));
    std::string sql_error = Text(Get(rows, r, {"Last_SQL_Error"}));
    if (sql_error.empty()) sql_error = Text(Get(rows, r, {"Last_Error"}));
    std::string io_errno = Text(Get(rows, r, {"Last_IO_Errno"}));
    std::string sql_errno = Text(Get(rows, r, {"Last_SQL_Errno"}));
    if (!io_error.empty()) why += "; Last_IO_Error (" + io_errno + "): " + io_error;
    if (!sql_error.empty()) why += "; Last_SQL_Error (" + sql_errno + "): " + sql_error;
    if (io_error.empty() && sql_error.empty()) why += "; no error reported (stopped?)";
    return Measurement::Error(why);
  }
  return Measurement::Error("unknown replica field '" + std::string(field) + "'");
}

// The row `channel` names (the first without one), or an error.
Expected<size_t> ChannelRow(const MysqlRows& rows, std::string_view channel) {
  if (rows.rows.empty()) return Expected<size_t>::Error("not a replica: replica status has no rows");
  if (channel.empty()) return size_t{0};
  std::string known;
  for (size_t r = 0; r < rows.rows.size(); ++r) {
    Cell c = Get(rows, r, {"Channel_Name", "Connection_name"});
    if (c.present && c.value && SameName(*c.value, channel)) return r;
    if (c.present && c.value) known += (known.empty() ? "'" : ", '") + *c.value + "'";
  }
  return Expected<size_t>::Error("no replication channel '" + std::string(channel) + "'" +
                                 (known.empty() ? "" : " (there are " + known + ")"));
}

class HeartbeatCheck final : public Check {
 public:
  HeartbeatCheck(std::string connection, std::string channel, std::string table,
                 long long server_id, bool utc)
      : connection_(std::move(connection)),
        channel_(std::move(channel)),
        table_(std::move(table)),
        server_id_(server_id),
        utc_(utc) {}

  void Run(Runtime& rt, Done done) override {
    if (!rt.mysql) {
      done(Measurement::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    MysqlReads* mysql = rt.mysql;
    auto query = [mysql, connection = connection_, table = table_, utc = utc_](
                     long long id, Done then) {
      mysql->Query(connection, HeartbeatSql(table, id, utc),
                   [table, id, then = std::move(then)](Expected<MysqlRows> rows) {
                     then(HeartbeatLag(rows, table, id));
                   });
    };
    if (server_id_ > 0) {
      query(server_id_, std::move(done));
      return;
    }
    // The source's id from the replica status (shared with other checks).
    auto shared = std::make_shared<Done>(std::move(done));
    mysql->ReplicaStatus(connection_, [channel = channel_, query, shared](const Rows& rows) {
      if (!rows) {
        (*shared)(Measurement::Error(rows.failure()));
        return;
      }
      auto id = ReplicaSourceId(**rows, channel);
      if (!id) {
        (*shared)(Measurement::Error(id.failure()));
        return;
      }
      query(*id, std::move(*shared));
    });
  }

 private:
  const std::string connection_, channel_, table_;
  const long long server_id_;
  const bool utc_;
};

class MysqlReplicaCheck final : public Check {
 public:
  MysqlReplicaCheck(std::string connection, std::string field, std::string channel)
      : connection_(std::move(connection)),
        field_(std::move(field)),
        channel_(std::move(channel)) {}

  void Run(Runtime& rt, Done done) override {
    if (!rt.mysql) {
      done(Measurement::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    rt.mysql->ReplicaStatus(connection_, [field = field_, channel = channel_,
                                          done = std::move(done)](const Rows& rows) {
      if (!rows) {
        done(Measurement::Error(rows.failure()));
        return;
      }
      done(ReplicaField(**rows, field, channel));
    });
  }

 private:
  const std::string connection_;
  const std::string field_;
  const std::string channel_;
};

constexpr const char* kFields[] = {"lag",        "io_running", "sql_running",
                                   "last_errno", "last_error", "heartbeat_lag"};
constexpr OptionSpec kOptions[] = {
    opt::Choice("field", kFields,
                "lag, io_running, sql_running, last_errno, last_error or heartbeat_lag")
        .Required(),
    opt::Text("channel", "the replication channel (MySQL) or connection name (MariaDB) to read")
        .DefaultNote("the only channel"),
    opt::Text("heartbeat_table", "field = heartbeat_lag: the pt-heartbeat table, DATABASE.TABLE")
        .Default("percona.heartbeat"),
    opt::Integer("heartbeat_server_id", 1, 4294967295LL,
                 "field = heartbeat_lag: the server_id of the source whose row to read")
        .DefaultNote("the source's, from the replica status"),
    opt::Bool("heartbeat_utc",
              "field = heartbeat_lag: the table's ts is UTC (pt-heartbeat --utc); no: local time")
        .Default("yes"),
};

constexpr const char* kExample = R"([check replica_lag]
type    = mysql_replica
field   = heartbeat_lag
every   = 10s
warn    = > 60
crit    = > 600
trip    = 3 of 5
recover = 2
)";

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  std::optional<std::string> field = opts.GetChoice("field");
  std::string channel = opts.Text("channel", "");
  const bool heartbeat = field && *field == "heartbeat_lag";
  std::string table = opts.Text("heartbeat_table").value_or("");
  long long server_id = opts.GetInteger("heartbeat_server_id").value_or(0);
  bool utc = opts.GetBool("heartbeat_utc").value_or(true);
  if (!heartbeat) {
    for (const char* key : {"heartbeat_table", "heartbeat_server_id", "heartbeat_utc"}) {
      if (const ConfigEntry* e = opts.Find(key)) {
        opts.Error(*e, std::string(key) + " is for field = heartbeat_lag");
      }
    }
  }
  // Goes into SQL: db.table of plain identifier characters only.
  const auto dot = table.find('.');
  const bool plain = std::all_of(table.begin(), table.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '$' || c == '.';
  });
  if (heartbeat && (!plain || dot == std::string::npos || dot == 0 || dot + 1 == table.size() ||
                    table.find('.', dot + 1) != std::string::npos)) {
    opts.Error(*opts.Find("heartbeat_table"),
               "heartbeat_table must be DATABASE.TABLE (letters, digits, _ and $), e.g. "
               "percona.heartbeat");
  }
  if (!field) return nullptr;
  if (heartbeat) {
    return std::make_unique<HeartbeatCheck>(common.connection, channel, table, server_id, utc);
  }
  return std::make_unique<MysqlReplicaCheck>(common.connection, *field, channel);
}

}  // namespace

Expected<long long> ReplicaSourceId(const MysqlRows& rows, std::string_view channel) {
  auto row = ChannelRow(rows, channel);
  if (!row) return row.failure();
  Cell c = Get(rows, *row, {"Source_Server_Id", "Master_Server_Id"});
  if (!c.present) {
    return Expected<long long>::Error(
        "replica status has no column Source_Server_Id or Master_Server_Id: set "
        "heartbeat_server_id");
  }
  auto n = c.value ? ParseNumber(*c.value) : std::nullopt;
  if (!n || *n < 1) {
    return Expected<long long>::Error(
        c.column + " is '" + (c.value ? *c.value : "NULL") +
        "': the replica has not connected to its source yet (set heartbeat_server_id to read "
        "the heartbeat regardless)");
  }
  return static_cast<long long>(*n);
}

std::string HeartbeatSql(const std::string& table, long long server_id, bool utc) {
  // The replica's own clock against the source's stamp: pt-heartbeat's
  // way too (clocks in sync, NTP). ts is "YYYY-MM-DDTHH:MM:SS.ffffff".
  return "SELECT TIMESTAMPDIFF(MICROSECOND, ts, " +
         std::string(utc ? "UTC_TIMESTAMP(6)" : "NOW(6)") + ") FROM " + table +
         " WHERE server_id = " + std::to_string(server_id);
}

Measurement HeartbeatLag(const Expected<MysqlRows>& rows, const std::string& table,
                         long long server_id) {
  if (!rows) return Measurement::Error(rows.failure().Prefixed("heartbeat table " + table + ": "));
  if (rows->rows.empty() || rows->rows[0].empty()) {
    return Measurement::Error("no heartbeat in " + table + " for server_id " +
                              std::to_string(server_id) +
                              ": is pt-heartbeat --update running on the source (and is this "
                              "its server_id)?");
  }
  const auto& cell = rows->rows[0][0];
  auto micros = cell ? ParseNumber(*cell) : std::nullopt;
  if (!micros) {
    return Measurement::Error("heartbeat in " + table + " for server_id " +
                              std::to_string(server_id) + " has no readable ts (" +
                              (cell ? "'" + *cell + "'" : std::string("NULL")) + ")");
  }
  // A heartbeat from the future (clocks apart, or a local-time table read
  // as UTC) is not a negative lag.
  const double seconds = std::max(0.0, *micros / 1e6);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", seconds);
  return Measurement::Value(buf);
}

Measurement ReplicaField(const MysqlRows& rows, std::string_view field, std::string_view channel) {
  if (rows.rows.empty()) return Measurement::Error("not a replica: replica status has no rows");
  size_t row = 0;
  if (!channel.empty()) {
    bool found = false;
    std::string known;
    for (size_t r = 0; r < rows.rows.size() && !found; ++r) {
      Cell c = Get(rows, r, {"Channel_Name", "Connection_name"});
      if (c.present && c.value && SameName(*c.value, channel)) {
        row = r;
        found = true;
      } else if (c.present && c.value) {
        known += (known.empty() ? "'" : ", '") + *c.value + "'";
      }
    }
    if (!found) {
      return Measurement::Error("no replication channel '" + std::string(channel) + "'" +
                                (known.empty() ? "" : " (there are " + known + ")"));
    }
  }
  return FieldOfRow(rows, row, field);
}

const CheckType kMysqlReplicaCheckType = {
    "mysql_replica",
    "a replica status field: lag, io_running, sql_running, last_errno, last_error, or "
    "heartbeat_lag from a pt-heartbeat table",
    true, kOptions, kExample, &Make};

}  // namespace warden
