#include "daemon/config/check_config.h"

#include <algorithm>
#include <string>
#include <utility>

#include "checks/check.h"
#include "daemon/base/options.h"

namespace warden {
namespace {

std::string CheckTypeList() {
  std::string out;
  for (const auto& t : CheckTypes()) out += (out.empty() ? "" : ", ") + std::string(t.name);
  return out;
}

}  // namespace

void LoadCheckSection(const RawSection& s, Duration default_every,
                      std::vector<CheckConfig>& out, std::vector<ConnectionRef>& connections,
                      Diagnostics& diag) {
  OptionReader r(s, diag);
  CheckConfig cc;
  cc.where = s.where;
  cc.digest = SectionDigest(s);
  cc.common.name = s.name;
  CheckName(r, "check");
  std::string type = r.Required("type", "one of " + CheckTypeList());
  cc.common.type = type;
  cc.type = type.empty() ? nullptr : FindCheckType(type);
  if (!type.empty() && !cc.type) {
    r.Error(*r.Find("type"), "unknown check type '" + type + "' (known: " + CheckTypeList() + ")");
  }
  cc.common.every = default_every;
  if (auto v = r.GetDuration("every")) {
    if (v->count() < 100) r.Error(*r.Find("every"), "every must be at least 100ms");
    else cc.common.every = *v;
  }
  cc.common.timeout = std::min(cc.common.every, Duration(10'000));
  ReadTimeout(r, cc.common.timeout);
  cc.rules.warn = r.GetThreshold("warn");
  cc.rules.crit = r.GetThreshold("crit");
  if (auto v = r.GetTrip("trip")) cc.rules.trip = *v;
  if (auto v = r.GetInteger("recover", 1, 1000)) cc.rules.recover = static_cast<int>(*v);
  cc.rules.repeat = r.GetDuration("repeat");
  if (cc.rules.repeat && cc.rules.repeat->count() <= 0) {
    r.Error(*r.Find("repeat"), "repeat must be longer than 0 (leave it out to fire once)");
    cc.rules.repeat.reset();
  }
  cc.depends = r.GetList("depends");
  cc.groups = ReadGroups(r);
  cc.on_warn = r.GetList("on_warn");
  cc.on_crit = r.GetList("on_crit");
  cc.on_error = r.GetList("on_error");
  cc.on_recover = r.GetList("on_recover");
  cc.common.has_thresholds = cc.rules.warn || cc.rules.crit;
  const bool own_verdict = cc.type && cc.type->own_verdict;
  if (!cc.on_warn.empty() && !cc.rules.warn && !own_verdict) {
    r.Error(*r.Find("on_warn"), "on_warn can never fire: the check has no warn threshold");
  }
  if (!cc.on_crit.empty() && !cc.rules.crit && !own_verdict) {
    r.Error(*r.Find("on_crit"), "on_crit can never fire: the check has no crit threshold");
  }
  if (cc.type && cc.type->uses_mysql) {
    if (auto v = r.Text("connection")) cc.common.connection = *v;
    connections.push_back({cc.common.connection, r.Find("connection")
                                                          ? r.Find("connection")->where
                                                          : s.where, s.title()});
  }
  if (cc.type) {
    size_t before = diag.errors().size();
    cc.impl = BuildCheck(*cc.type, r, cc.common);
    if (!cc.impl && diag.errors().size() == before) {
      r.Error(s.title() + ": the check could not be built from these settings");
    }
    r.Finish("check type " + type);
  }
  for (const auto& other : out) {
    if (other.common.name == s.name) return;  // duplicate already reported by ReadIniFiles
  }
  out.push_back(std::move(cc));
}

}  // namespace warden
