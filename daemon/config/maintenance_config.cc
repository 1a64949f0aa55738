#include "daemon/config/maintenance_config.h"

#include <cstdint>
#include <ctime>
#include <utility>

#include "daemon/base/cron.h"
#include "daemon/base/options.h"
#include "daemon/config/section_common.h"

namespace warden {

void LoadMaintenanceSection(const RawSection& s, std::vector<MaintenanceConfig>& out,
                            Diagnostics& diag) {
  OptionReader r(s, diag);
  MaintenanceConfig m;
  m.name = s.name;
  m.where = s.where;
  CheckName(r, "maintenance");
  std::string schedule = r.Required("schedule", "5-field cron, local time: 0 3 * * sun");
  if (!schedule.empty()) {
    auto cron = ParseCron(schedule);
    if (!cron) {
      r.Error(*r.Find("schedule"), cron.error());
    } else if (!NextCronTime(*cron, static_cast<std::int64_t>(::time(nullptr)))) {
      r.Error(*r.Find("schedule"), "schedule: '" + cron->text + "' never fires (no such date)");
    } else {
      m.schedule = std::move(*cron);
    }
  }
  if (auto v = r.GetDuration("for")) {
    if (v->count() <= 0) r.Error(*r.Find("for"), "for must be longer than 0");
    else m.hold = *v;
  } else if (!r.Has("for")) {
    r.Error(s.title() + " needs 'for' (how long each window lasts: 2h)");
  }
  if (auto v = r.Text("scope")) {
    std::string text(Trim(*v));
    size_t space = text.find_first_of(" \t");
    std::string kind = text.substr(0, space);
    std::string name = space == std::string::npos ? "" : std::string(Trim(text.substr(space)));
    if (kind == "host" && name.empty()) {
      m.scope_kind = "host";
    } else if ((kind == "group" || kind == "action") && ValidName(name)) {
      m.scope_kind = kind;
      m.scope_name = name;
    } else {
      r.Error(*r.Find("scope"), "scope: '" + text + "' is not host, group NAME or action NAME");
    }
  }
  m.reason = r.Required("reason", "why, as a pause's reason");
  r.Finish("[maintenance]");
  for (const auto& other : out) {
    if (other.name == s.name) return;
  }
  out.push_back(std::move(m));
}

}  // namespace warden
