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
  r.Finish("[fleet]");
}

}  // namespace warden
