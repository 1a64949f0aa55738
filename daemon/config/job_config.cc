#include "daemon/config/job_config.h"

#include <cstdint>
#include <ctime>
#include <utility>

#include "daemon/base/cron.h"
#include "daemon/base/options.h"
#include "daemon/config/section_common.h"

namespace warden {

void LoadJobSection(const RawSection& s, std::vector<JobConfig>& out, Diagnostics& diag) {
  OptionReader r(s, diag);
  JobConfig j;
  j.name = s.name;
  j.where = s.where;
  CheckName(r, "job");
  j.steps = r.GetList("steps");
  if (j.steps.empty() && !r.Has("steps")) {
    r.Error("missing key 'steps': actions and waits, comma separated, run in order");
  }
  if (auto text = r.Text("schedule")) {
    auto cron = ParseCron(*text);
    if (!cron) {
      r.Error(*r.Find("schedule"), cron.error());
    } else if (!NextCronTime(*cron, static_cast<std::int64_t>(::time(nullptr)))) {
      r.Error(*r.Find("schedule"), "schedule: '" + cron->text + "' never fires (no such date)");
    } else {
      j.schedule = std::move(*cron);
    }
  }
  ReadTimeout(r, j.timeout);
  j.groups = ReadGroups(r);
  if (auto v = r.Text("slot")) {
    if (!ValidName(*v)) {
      r.Error(*r.Find("slot"), "slot: '" + *v + "' is not a group name (letters, digits, _ - .)");
    } else {
      j.slot = *v;
    }
  }
  if (auto v = r.GetInteger("slots", 1, 1000)) {
    if (j.slot.empty()) r.Error(*r.Find("slots"), "slots without slot = GROUP means nothing");
    j.slots = static_cast<int>(*v);
  }
  if (auto v = r.Text("on_fail")) {
    if (!ValidName(*v)) {
      r.Error(*r.Find("on_fail"), "on_fail: '" + *v + "' is not a job name (letters, digits, _ - .)");
    } else {
      j.on_fail = *v;
      j.on_fail_where = r.Find("on_fail")->where;
    }
  }
  if (auto v = r.GetBool("rollback_interrupted")) j.rollback_interrupted = *v;
  if (auto v = r.GetBool("rollback_on_terminate")) j.rollback_on_terminate = *v;
  for (const char* key : {"rollback_interrupted", "rollback_on_terminate"}) {
    if (r.Has(key) && !r.Has("on_fail")) {
      r.Error(*r.Find(key), std::string(key) + " without on_fail = JOB means nothing");
    }
  }
  r.Finish("[job]");
  for (const auto& other : out) {
    if (other.name == s.name) return;
  }
  out.push_back(std::move(j));
}

}  // namespace warden
