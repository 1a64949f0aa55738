#include "checks/mysql_query.h"

#include "daemon/io/mysql.h"

namespace warden {
namespace {

class MysqlQueryCheck final : public Check {
 public:
  MysqlQueryCheck(std::string connection, std::string sql)
      : connection_(std::move(connection)), sql_(std::move(sql)) {}

  void Run(Runtime& rt, Done done) override {
    if (!rt.mysql) {
      done(Measurement::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    rt.mysql->Query(connection_, sql_, [done = std::move(done)](Expected<MysqlRows> rows) {
      if (!rows) {
        done(Measurement::Error(rows.failure()));
      } else if (rows->columns.empty()) {
        done(Measurement::Error("query returned no result set"));
      } else if (rows->rows.empty()) {
        done(Measurement::Error("query returned no rows"));
      } else if (!rows->rows[0][0]) {
        done(Measurement::Error("query returned NULL"));
      } else {
        done(Measurement::Value(*rows->rows[0][0]));
      }
    });
  }

 private:
  const std::string connection_;
  const std::string sql_;
};

constexpr OptionSpec kOptions[] = {
    opt::MultiLine("sql", "the statement whose first column of the first row is the value")
        .Required(),
};

constexpr const char* kExample = R"([check open_orders]
type = mysql_query
sql  = SELECT COUNT(*)
       FROM app.orders WHERE state = 'open'
warn = > 10000
)";

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  auto sql = opts.MultiLineText("sql");
  if (!sql) return nullptr;
  std::string text(Trim(*sql));
  while (!text.empty() && text.back() == ';')
    text = std::string(Trim(text.substr(0, text.size() - 1)));
  if (text.empty()) {
    opts.Error(*opts.Find("sql"), "sql holds no statement");
    return nullptr;
  }
  return std::make_unique<MysqlQueryCheck>(common.connection, std::move(text));
}

}  // namespace

const CheckType kMysqlQueryCheckType = {"mysql_query", "first column of the first row of a query",
                                        true, kOptions, kExample, &Make};

}  // namespace warden
