#include "checks/mysql_ping.h"

#include <cmath>

#include "daemon/io/mysql.h"

namespace warden {
namespace {

class MysqlPingCheck final : public Check {
 public:
  explicit MysqlPingCheck(std::string connection) : connection_(std::move(connection)) {}

  void Run(Runtime& rt, Done done) override {
    if (!rt.mysql) {
      done(Measurement::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    rt.mysql->Ping(connection_, [done = std::move(done)](Expected<double> ms) {
      if (!ms) {
        done(Measurement::Error(ms.error()));
        return;
      }
      done(Measurement::Number(std::round(*ms * 1000) / 1000));  // microseconds are enough
    });
  }

 private:
  const std::string connection_;
};

std::unique_ptr<Check> Make(OptionReader&, const CheckCommon& common) {
  return std::make_unique<MysqlPingCheck>(common.connection);
}

}  // namespace

const CheckType kMysqlPingCheckType = {"mysql_ping", "round trip of mysql_ping in ms", true, &Make};

}  // namespace warden
