#include "checks/mysql_variable.h"

#include <cctype>
#include <memory>

#include "daemon/io/mysql.h"

namespace warden {
namespace {

// SHOW GLOBAL VARIABLES on a connection, for the scheduler's shared reads.
class VariablesSource final : public SharedSource {
 public:
  void Read(Runtime& rt, const std::string& scope, std::shared_ptr<const NameSet> names,
            Done done) const override {
    if (!rt.mysql) {
      done(Snapshot::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    rt.mysql->GlobalVariables(scope, std::move(names), std::move(done));
  }
};
const VariablesSource kVariablesSource;

class MysqlVariableCheck final : public Check {
 public:
  MysqlVariableCheck(std::string connection, std::string variable)
      : connection_(std::move(connection)) {
    auto names = std::make_shared<Names>();
    names->variable = std::move(variable);
    names->key = names->variable;
    for (auto& ch : names->key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    own_names_ = NameSet::Of({names->key});
    names_ = std::move(names);
  }

  void Run(Runtime& rt, Done done) override {
    if (!rt.mysql) {
      done(Measurement::Error("internal error: no MySQL access in this runtime"));
      return;
    }
    rt.mysql->GlobalVariables(connection_, own_names_, [names = names_, done = std::move(done)](
                                               const Snapshot& vars) {
      done(MeasureSnapshot(vars, [n = names.get()](const MysqlMap& map, Measurement& otherwise) {
        return n->Read(map, otherwise);
      }));
    });
  }

  SharedRead shared_read() const override {
    return {&kVariablesSource, &connection_, std::span<const std::string>(&names_->key, 1),
            &names_->key};
  }
  std::optional<std::string_view> ReadFrom(const NamedValues& vars, Measurement& otherwise) override {
    return names_->Read(vars, otherwise);
  }

 private:
  // The variable as configured and lower-cased (the snapshot's key), made
  // once: a run only copies this pointer; and where the name was in the
  // last snapshot. Loop thread only.
  struct Names {
    std::string variable;
    std::string key;
    MysqlMap::Hint hint;

    // ReadFrom: the value, or the error that names the missing variable.
    std::optional<std::string_view> Read(const MysqlMap& vars, Measurement& otherwise) {
      const auto value = vars.get(key, &hint);
      if (!value) {
        otherwise = Measurement::Error("no variable '" + variable + "' in SHOW GLOBAL VARIABLES");
      }
      return value;
    }
  };
  const std::string connection_;
  std::shared_ptr<Names> names_;
  std::shared_ptr<const NameSet> own_names_;   // a run on its own reads this name only
};

constexpr OptionSpec kOptions[] = {
    opt::Text("variable", "a SHOW GLOBAL VARIABLES name, e.g. max_connections").Required(),
};

constexpr const char* kExample = R"([check read_only]
type     = mysql_variable
variable = read_only
crit     = != OFF
)";

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  auto variable = opts.Text("variable");
  if (!variable) return nullptr;
  return std::make_unique<MysqlVariableCheck>(common.connection, *variable);
}

}  // namespace

const CheckType kMysqlVariableCheckType = {"mysql_variable", "a SHOW GLOBAL VARIABLES value", true,
                                           kOptions, kExample, &Make};

}  // namespace warden
