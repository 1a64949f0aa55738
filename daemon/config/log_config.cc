#include "daemon/config/log_config.h"

#include "daemon/base/options.h"

namespace warden {

void LoadLogSection(const RawSection& s, LogConfig& c, Diagnostics& diag) {
  OptionReader r(s, diag);
  if (auto v = r.GetChoice("level", {"trace", "debug", "info", "warn", "error"})) c.level = *v;
  if (auto v = r.Text("file")) c.file = *v;
  if (auto v = r.Text("events")) c.events = *v;
  r.Finish("[log]");
}

}  // namespace warden
