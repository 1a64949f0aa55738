#include "daemon/config/log_config.h"

#include <sys/un.h>

#include "daemon/base/options.h"

namespace warden {

void LoadLogSection(const RawSection& s, LogConfig& c, Diagnostics& diag) {
  OptionReader r(s, diag);
  if (auto v = r.GetChoice("level", {"trace", "debug", "info", "warn", "error"})) c.level = *v;
  if (auto v = r.Text("file")) c.file = *v;
  if (auto v = r.Text("events")) c.events = *v;
  if (auto v = r.GetChoice("journal", {"auto", "yes", "no"})) {
    c.journal = *v == "yes"  ? LogConfig::Journal::kYes
                : *v == "no" ? LogConfig::Journal::kNo
                             : LogConfig::Journal::kAuto;
  }
  if (auto v = r.Text("journal_socket")) {
    if (v->empty() || (*v)[0] != '/') {
      r.Error(*r.Find("journal_socket"), "journal_socket must be an absolute path");
    } else if (v->size() >= sizeof(sockaddr_un{}.sun_path)) {
      r.Error(*r.Find("journal_socket"), "journal_socket: the path is longer than " +
                                             std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                                             " bytes (a unix socket address)");
    } else {
      c.journal_socket = *v;
    }
  }
  // The journal and a file are two places for the same lines: one of them.
  if (c.journal == LogConfig::Journal::kYes && !c.file.empty()) {
    r.Error(*r.Find("journal"), "journal = yes and file = " + c.file +
                                    " both say where the log goes: choose one");
  }
  r.Finish("[log]");
}

}  // namespace warden
