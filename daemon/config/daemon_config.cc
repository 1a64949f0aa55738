#include "daemon/config/daemon_config.h"

#include "actions/service.h"
#include "daemon/base/options.h"

namespace warden {

void LoadDaemonSection(const RawSection& s, DaemonConfig& c, Diagnostics& diag) {
  OptionReader r(s, diag);
  r.Find("include");  // handled while reading files
  if (auto v = r.Text("host_id")) c.host_id = *v;
  if (auto v = r.Text("state_dir")) c.state_dir = *v;
  if (auto v = r.GetDuration("interval")) {
    if (v->count() < 100) r.Error(*r.Find("interval"), "interval must be at least 100ms");
    else c.interval = *v;
  }
  if (auto v = r.GetPercent("jitter")) c.jitter = *v;
  if (auto v = r.GetBool("spread_shared_reads")) c.spread_shared_reads = *v;
  if (auto v = r.GetInteger("workers", 1, 64)) c.workers = static_cast<int>(*v);
  if (auto v = r.GetDuration("max_pause")) {
    if (v->count() <= 0) r.Error(*r.Find("max_pause"), "max_pause must be longer than 0 (leave it out for no cap)");
    else c.max_pause = *v;
  }
  if (auto v = r.GetDuration("kill_grace")) {
    if (v->count() < 100) r.Error(*r.Find("kill_grace"), "kill_grace must be at least 100ms");
    else c.kill_grace = *v;
  }
  if (auto v = r.Text("service_command")) {
    c.service_command = *v;
    auto argv = ServiceArgv(*v, "start", "unit");
    if (!argv) r.Error(*r.Find("service_command"), "service_command: " + argv.error());
  }
  r.Finish("[daemon]");
}

}  // namespace warden
