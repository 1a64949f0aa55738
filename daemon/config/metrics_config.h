// The [metrics] section: the Prometheus endpoint and the node_exporter
// textfile (daemon/control/metrics.h serves and writes them).
// Keys: listen (host:port, a numeric IP or localhost: names are not
// resolved), textfile (an absolute path), interval (how often the textfile
// is written), status_page (yes: GET / and /status.json on listen too).
// At least one of listen and textfile. Every problem goes to
// diag as "file:line: message"; unknown keys are errors.
#pragma once

#include <string>

#include "daemon/base/ini.h"
#include "daemon/base/units.h"

namespace warden {

struct MetricsConfig {
  bool enabled = false;              // a [metrics] section is there
  std::string listen;                // as written; "" = no endpoint
  std::string host;                  // numeric, from listen
  int port = 0;
  std::string textfile;              // "" = none
  Duration interval{15'000};         // the textfile is written this often at most
  bool status_page = true;           // GET / and /status.json beside /metrics
};

void LoadMetricsSection(const RawSection& section, MetricsConfig& out, Diagnostics& diag);

}  // namespace warden
