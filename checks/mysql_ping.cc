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
        done(Measurement::Error(ms.failure()));
        return;
      }
      done(Measurement::Number(std::round(*ms * 1000) / 1000));  // microseconds are enough
    });
  }

 private:
  const std::string connection_;
};

// No keys of its own: the connection is a common key.
constexpr std::span<const OptionSpec> kOptions{};

constexpr const char* kExample = R"([check mysql_alive]
type  = mysql_ping
every = 5s
crit  = > 1000
trip  = 3
)";

std::unique_ptr<Check> Make(OptionReader&, const CheckCommon& common) {
  return std::make_unique<MysqlPingCheck>(common.connection);
}

}  // namespace

const CheckType kMysqlPingCheckType = {"mysql_ping", "round trip of mysql_ping in ms", true,
                                       kOptions, kExample, &Make};

}  // namespace warden
