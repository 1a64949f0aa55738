#include "checks/mysql_replica.h"

#include <algorithm>
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
        done(Measurement::Error(rows.error()));
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

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  static const std::vector<std::string> kFields = {"lag", "io_running", "sql_running", "last_errno",
                                                   "last_error"};
  std::optional<std::string> field;
  if (!opts.Has("field")) {
    opts.Required("field", "lag, io_running, sql_running, last_errno or last_error");
  } else {
    field = opts.GetChoice("field", kFields);
  }
  std::string channel = opts.Text("channel", "");
  if (!field) return nullptr;
  return std::make_unique<MysqlReplicaCheck>(common.connection, *field, channel);
}

}  // namespace

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
    "mysql_replica", "a replica status field: lag, io_running, sql_running, last_errno, last_error",
    true, &Make};

}  // namespace warden
