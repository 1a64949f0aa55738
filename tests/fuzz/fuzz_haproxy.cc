// HAProxy runtime API answers (actions/haproxy.h): `show servers state`,
// `show stat` CSV and the reply to `set server`. Input: a selector byte,
// then HAProxy's answer.
#include <algorithm>
#include <string>

#include "actions/haproxy_runtime_api.h"
#include "daemon/base/units.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

namespace {

void CheckTable(const HaproxyTable& table, std::string_view separators) {
  for (const auto& row : table.rows) {
    for (const auto& [column, value] : row) {
      FUZZ_CHECK(std::find(table.columns.begin(), table.columns.end(), column) !=
                     table.columns.end(),
                 "a row has a column the header lacks: " + column);
      FUZZ_CHECK(value.find_first_of(separators) == std::string::npos &&
                     value.find('\n') == std::string::npos,
                 "a value holds a separator: " + value);
    }
  }
}

void ServersState(std::string_view reply) {
  auto table = ParseServersState(reply);
  if (!table) {
    FUZZ_CHECK(!table.error().empty(), reply);
    return;
  }
  CheckTable(*table, " \t");
  for (const auto& row : table->rows) {
    auto be = row.find("be_name");
    auto srv = row.find("srv_name");
    if (be == row.end() || srv == row.end()) continue;
    auto s = FindHaproxyServer(*table, be->second, srv->second);
    if (!s) continue;  // a row without ids or states
    FUZZ_CHECK(s->backend == be->second && s->server == srv->second, reply);
    FUZZ_CHECK(!s->be_id.empty() && !s->srv_id.empty() && s->op_state >= 0, reply);
    for (const char* state : {"ready", "drain", "maint"}) {
      (void)HaproxyAdminStateIs(s->admin_state, state);
    }
    FUZZ_CHECK(!DescribeHaproxyAdminState(s->admin_state).empty(), reply);
  }
  auto missing = FindHaproxyServer(*table, "no-such-backend\n", "srv");
  FUZZ_CHECK(!missing.ok(), "found a backend that cannot be in the table");
}

void StatCsv(std::string_view reply) {
  auto table = ParseStatCsv(reply);
  if (!table) {
    FUZZ_CHECK(!table.error().empty(), reply);
    return;
  }
  CheckTable(*table, ",");
  for (const auto& row : table->rows) {
    auto name = row.find("svname");
    if (name == row.end()) continue;
    auto sessions = HaproxySessions(*table, name->second);
    if (!sessions) continue;
    FUZZ_CHECK(*sessions >= 0, "a negative number of sessions from " + std::string(reply));
  }
}

void SetServer(std::string_view reply) {
  Status s = InterpretSetServerReply(reply);
  FUZZ_CHECK(s.ok() == Trim(reply).empty(), reply);
  if (!s.ok()) FUZZ_CHECK(Trim(s.message()) == s.message(), reply);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  std::uint8_t which = in.Byte();
  std::string_view reply = in.Rest();
  switch (which % 3) {
    case 0: ServersState(reply); break;
    case 1: StatCsv(reply); break;
    case 2: SetServer(reply); break;
  }
  return 0;
}
