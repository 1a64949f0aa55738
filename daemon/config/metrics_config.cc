#include "daemon/config/metrics_config.h"

#include <arpa/inet.h>

#include "daemon/base/options.h"

namespace warden {

void LoadMetricsSection(const RawSection& s, MetricsConfig& c, Diagnostics& diag) {
  OptionReader r(s, diag);
  c.enabled = true;
  if (auto v = r.Text("listen")) {
    const ConfigEntry& e = *r.Find("listen");
    c.listen = *v;
    // host:port or [v6]:port. The host must be an IP address (or
    // localhost): a name lookup would block the loop.
    std::string host, port;
    if (!v->empty() && (*v)[0] == '[') {
      size_t close = v->find(']');
      if (close != std::string::npos && close + 1 < v->size() && (*v)[close + 1] == ':') {
        host = v->substr(1, close - 1);
        port = v->substr(close + 2);
      }
    } else if (size_t colon = v->rfind(':'); colon != std::string::npos &&
                                               v->find(':') == colon) {
      host = v->substr(0, colon);
      port = v->substr(colon + 1);
    }
    if (host.empty() || port.empty()) {
      r.Error(e, "listen: '" + *v + "' is not host:port (127.0.0.1:9187, [::1]:9187)");
    } else {
      if (host == "localhost") host = "127.0.0.1";
      unsigned char buf[16];
      if (::inet_pton(AF_INET, host.c_str(), buf) != 1 &&
          ::inet_pton(AF_INET6, host.c_str(), buf) != 1) {
        r.Error(e, "listen: '" + host + "' is not an IP address (names are not resolved: "
                   "a lookup would block wardend's loop)");
      }
      auto p = ParseInteger(port, 1, 65535);
      if (!p) r.Error(e, "listen: port: " + p.error());
      else c.port = static_cast<int>(*p);
      c.host = host;
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
