#include "daemon/config/control_config.h"

#include "daemon/base/options.h"

namespace warden {

void LoadControlSection(const RawSection& s, ControlConfig& c, Diagnostics& diag) {
  OptionReader r(s, diag);
  if (auto v = r.Text("socket")) c.socket = *v;
  if (auto v = r.Text("group")) c.group = *v;
  r.Finish("[control]");
}

}  // namespace warden
