#include "checks/mysql_variable.h"

#include <cctype>
#include <memory>

#include "daemon/mysql.h"

namespace warden {
namespace {

class MysqlVariableCheck final : public Check {
 public:
  MysqlVariableCheck(std::string connection, std::string variable)
      : connection_(std::move(connection)) {
    auto names = std::make_shared<Names>();
    names->variable = std::move(variable);
    names->key = names->variable;
    for (auto& ch : names->key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    names_ = std::move(names);
  }

  void Run(Runtime& rt, Done done) override {
    if (!rt.mysql) {
      done(Measurement::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    rt.mysql->GlobalVariables(connection_, [names = names_, done = std::move(done)](
                                               const Snapshot& vars) { done(names->Measure(vars)); });
  }

  SharedMapRead shared_read() const override {
    return {SharedMapRead::Kind::kGlobalVariables, &connection_};
  }
  Measurement MeasureFrom(const Snapshot& vars) override { return names_->Measure(vars); }
  std::optional<std::string_view> ValueIn(const MysqlMap& vars) override {
    return vars.get(names_->key, &names_->hint);
  }

 private:
  // The variable as configured and lower-cased (the snapshot's key), made
  // once: a run only copies this pointer; and where the name was in the
  // last snapshot. Loop thread only.
  struct Names {
    std::string variable;
    std::string key;
    MysqlMap::Hint hint;

    Measurement Measure(const Snapshot& vars) {
      if (!vars) return Measurement::Error(vars.error());
      const auto value = (*vars)->get(key, &hint);
      if (!value) return Measurement::Error("no variable '" + variable + "' in SHOW GLOBAL VARIABLES");
      Measurement m = Measurement::Value(*value);
      m.at = (*vars)->taken;
      return m;
    }
  };
  const std::string connection_;
  std::shared_ptr<Names> names_;
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
