// The one list of built-in check types. Adding a type: a file pair in
// checks/ (its factory, its option table and an example), one line here,
// its tests, its row in docs/configuration.md and a commented example in
// etc/. The registry test walks this list: each table against its factory,
// each example through the loader, each table against the docs.
#include "checks/check.h"
#include "checks/disk.h"
#include "checks/file.h"
#include "checks/mysql_ping.h"
#include "checks/mysql_query.h"
#include "checks/mysql_replica.h"
#include "checks/mysql_status.h"
#include "checks/mysql_variable.h"
#include "checks/nagios.h"
#include "checks/process.h"
#include "checks/program.h"
#include "checks/tcp.h"

namespace warden {

const std::vector<CheckType>& CheckTypes() {
  // One line per type, in the order of docs/configuration.md's table.
  // clang-format off
  static const std::vector<CheckType> types = {
      kMysqlPingCheckType,
      kMysqlStatusCheckType,
      kMysqlVariableCheckType,
      kMysqlQueryCheckType,
      kMysqlReplicaCheckType,
      kProcessCheckType,
      kTcpCheckType,
      kDiskCheckType,
      kProgramCheckType,
      kNagiosCheckType,
      kFileCheckType,
  };
  // clang-format on
  return types;
}

std::span<const OptionSpec> CheckCommonOptions() {
  static constexpr OptionSpec kCommon[] = {
      opt::Text("type", "the check type").Required(),
      opt::Duration("every", "how often; at least 100ms").DefaultNote("[daemon] interval"),
      opt::Duration("timeout",
                    "longer than 0; for mysql checks the longest wait for a free worker")
          .DefaultNote("the smaller of every and 10s"),
      opt::Threshold("warn", "the warn threshold, e.g. > 60"),
      opt::Threshold("crit", "the crit threshold; a value past both is crit"),
      opt::Trip("trip", "bad results that enter warn, crit or error: N in a row, or N of M")
          .Default("1"),
      opt::Integer("recover", 1, 1000, "ok results in a row that return to ok").Default("1"),
      opt::Duration("repeat", "fire on_<state> again this often while the state lasts")
          .DefaultNote("once"),
      opt::List("depends", "checks that must be ok, else this one is skipped"),
      opt::List("on_warn", "actions or jobs to run when warn is entered"),
      opt::List("on_crit", "actions or jobs to run when crit is entered"),
      opt::List("on_error", "actions or jobs to run when error is entered"),
      opt::List("on_recover", "actions or jobs to run when ok is entered again"),
      opt::Text("connection", "mysql types only: a [mysql NAME] section").DefaultNote("[mysql]"),
      opt::List("group", "groups this check is in: wardenctl status --group, check --group"),
  };
  return kCommon;
}

std::unique_ptr<Check> BuildCheck(const CheckType& type, OptionReader& opts,
                                  const CheckCommon& common) {
  const size_t before = opts.diag().errors().size();
  opts.Declare(type.options, "check type " + std::string(type.name));
  auto check = type.make(opts, common);   // its own errors too, even after the table's
  if (opts.diag().errors().size() != before) return nullptr;
  return check;
}

const CheckType* FindCheckType(std::string_view name) {
  for (const auto& t : CheckTypes()) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

}  // namespace warden
