#include "daemon/config/wait_config.h"

#include <utility>

#include "daemon/base/options.h"
#include "daemon/base/units.h"
#include "daemon/config/section_common.h"

namespace warden {

void LoadWaitSection(const RawSection& s, std::vector<WaitConfig>& out, Diagnostics& diag) {
  OptionReader r(s, diag);
  WaitConfig w;
  w.name = s.name;
  w.where = s.where;
  CheckName(r, "wait");
  w.checks = r.GetList("checks");
  if (w.checks.empty() && !r.Has("checks")) {
    r.Error("missing key 'checks': the checks that must be ok, comma separated");
  }
  if (auto v = r.GetDuration("for")) w.hold = *v;
  ReadTimeout(r, w.timeout);
  if (w.hold >= w.timeout) {
    r.Error(r.Find("for") ? *r.Find("for") : *r.Find("timeout"),
            "for (" + FormatDuration(w.hold) + ") must be shorter than timeout (" +
                FormatDuration(w.timeout) + "), or the wait can never succeed");
  }
  r.Finish("[wait]");
  for (const auto& other : out) {
    if (other.name == s.name) return;
  }
  out.push_back(std::move(w));
}

}  // namespace warden
