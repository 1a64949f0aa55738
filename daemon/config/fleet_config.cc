#include "daemon/config/fleet_config.h"

#include "daemon/base/options.h"
#include "daemon/config/etcd_keys.h"

namespace warden {

void LoadFleetSection(const RawSection& s, const LoadOptions& options, FleetConfig& f,
                      Diagnostics& diag) {
  OptionReader r(s, diag);
  f.enabled = true;
  ReadEtcdKeys(r, "[fleet]", s.where, options.read_secrets, f.etcd, f.prefix);
  if (auto v = r.GetInteger("slots", 1, 1000)) f.slots = static_cast<int>(*v);
  if (auto v = r.GetDuration("poll")) {
    if (v->count() < 1000) r.Error(*r.Find("poll"), "poll must be at least 1s");
    else f.poll = *v;
  }
  {
    for (const auto& g : r.GetList("groups")) {
      if (g.empty() || g.find_first_of("/ \t") != std::string::npos) {
        r.Error(*r.Find("groups"), "groups: '" + g + "' is not a group name (no '/' or spaces)");
      } else {
        f.groups.push_back(g);
      }
    }
  }
  if (auto v = r.GetInteger("order", -1'000'000, 1'000'000)) f.order = static_cast<int>(*v);
  if (auto v = r.GetDuration("lease")) {
    if (v->count() < 2000 || v->count() % 1000 != 0) {
      r.Error(*r.Find("lease"), "lease must be whole seconds, at least 2s (etcd's shortest TTL)");
    } else {
      f.lease = *v;
    }
  }
  r.Finish("[fleet]");
}

}  // namespace warden
