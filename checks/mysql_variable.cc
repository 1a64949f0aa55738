#include "checks/mysql_variable.h"

#include <cctype>

#include "daemon/mysql.h"

namespace warden {
namespace {

class MysqlVariableCheck final : public Check {
 public:
  MysqlVariableCheck(std::string connection, std::string variable)
      : connection_(std::move(connection)), variable_(std::move(variable)) {}

  void Run(Runtime& rt, Done done) override {
    if (!rt.mysql) {
      done(Measurement::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    std::string key = variable_;
    for (auto& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    rt.mysql->GlobalVariables(connection_, [key, variable = variable_, done = std::move(done)](
                                               Expected<std::shared_ptr<const MysqlMap>> vars) {
      if (!vars) {
        done(Measurement::Error(vars.error()));
        return;
      }
      auto it = (*vars)->find(key);
      if (it == (*vars)->end()) {
        done(Measurement::Error("no variable '" + variable + "' in SHOW GLOBAL VARIABLES"));
        return;
      }
      done(Measurement::Value(it->second));
    });
  }

 private:
  const std::string connection_;
  const std::string variable_;
};

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  std::string variable =
      opts.Required("variable", "a SHOW GLOBAL VARIABLES name, e.g. max_connections");
  if (variable.empty()) return nullptr;
  return std::make_unique<MysqlVariableCheck>(common.connection, variable);
}

}  // namespace

const CheckType kMysqlVariableCheckType = {"mysql_variable", "a SHOW GLOBAL VARIABLES value", true,
                                           &Make};

}  // namespace warden
