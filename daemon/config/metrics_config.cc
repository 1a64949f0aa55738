#include "daemon/config/metrics_config.h"

#include "daemon/base/options.h"
#include "daemon/config/section_common.h"

namespace warden {

void LoadMetricsSection(const RawSection& s, MetricsConfig& c, Diagnostics& diag) {
  OptionReader r(s, diag);
  c.enabled = true;
  if (auto v = r.Text("listen")) {
    const ConfigEntry& e = *r.Find("listen");
    c.listen = *v;
    auto hp = ParseHostPort(*v, "host:port (127.0.0.1:9187, [::1]:9187)");
    if (!hp) {
      r.Error(e, "listen: " + hp.error());
    } else {
      c.host = hp->host;
      c.port = hp->port;
    }
  }
  if (auto v = r.Text("textfile")) {
    if (v->empty() || (*v)[0] != '/') {
      r.Error(*r.Find("textfile"), "textfile: '" + *v + "' is not an absolute path");
    } else if (v->back() == '/') {
      r.Error(*r.Find("textfile"), "textfile: '" + *v + "' names a directory, not a file");
    } else {
      c.textfile = *v;
    }
  }
  if (auto v = r.GetDuration("interval")) {
    if (v->count() < 1000) r.Error(*r.Find("interval"), "interval must be at least 1s");
    else c.interval = *v;
  }
  if (auto v = r.GetBool("status_page")) c.status_page = *v;
  if (!r.Has("listen") && !r.Has("textfile")) {
    r.Error("[metrics] needs listen = host:port, textfile = /path, or both");
  }
  r.Finish("[metrics]");
}

}  // namespace warden
