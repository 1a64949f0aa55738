#include "daemon/config/fluentd_config.h"

#include <cctype>

#include "daemon/base/options.h"
#include "daemon/config/section_common.h"

namespace warden {
namespace {

bool ValidTag(const std::string& tag) {
  if (tag.empty() || tag.front() == '.' || tag.back() == '.') return false;
  for (char c : tag) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return tag.find("..") == std::string::npos;
}

}  // namespace

void LoadFluentdSection(const RawSection& s, FluentdConfig& c, Diagnostics& diag) {
  OptionReader r(s, diag);
  c.enabled = true;
  if (auto v = r.Text("address")) {
    c.address = *v;
    const ConfigEntry& e = *r.Find("address");
    if (v->rfind("unix:", 0) == 0) {
      c.unix_path = v->substr(5);
      if (c.unix_path.empty() || c.unix_path[0] != '/') {
        r.Error(e, "address: unix: needs an absolute path (unix:/run/fluentd/fluentd.sock)");
      } else if (c.unix_path.size() >= 108) {
        r.Error(e, "address: the unix socket path is longer than 107 bytes");
      }
    } else {
      auto hp = ParseHostPort(*v, "host:port or unix:/path");
      if (!hp) {
        r.Error(e, "address: " + hp.error());
      } else {
        c.host = hp->host;
        c.port = hp->port;
      }
    }
  } else if (!r.Has("address")) {
    r.Required("address", "host:port or unix:/path");
  }
  if (auto v = r.Text("tag")) {
    if (!ValidTag(*v)) {
      r.Error(*r.Find("tag"), "tag: '" + *v + "' is not a fluentd tag prefix (letters, digits, "
                              "_ - and inner dots)");
    } else {
      c.tag = *v;
    }
  }
  if (auto v = r.GetBool("ack")) c.ack = *v;
  if (auto v = r.GetSize("chunk_limit")) {
    if (*v < (16u << 10) || *v > (64u << 20)) {
      r.Error(*r.Find("chunk_limit"), "chunk_limit must be between 16KB and 64MB");
    } else {
      c.chunk_limit = *v;
    }
  }
  if (auto v = r.GetSize("buffer_limit")) {
    if (*v < (64u << 10)) {
      r.Error(*r.Find("buffer_limit"), "buffer_limit must be at least 64KB");
    } else {
      c.buffer_limit = *v;
    }
  }
  if (auto v = r.GetDuration("ack_timeout")) {
    if (v->count() < 100) r.Error(*r.Find("ack_timeout"), "ack_timeout must be at least 100ms");
    else c.ack_timeout = *v;
  }
  // Bounded well below the unit's TimeoutStopSec (15min, which must also
  // cover the longest action timeout): what is not shipped stays buffered.
  if (auto v = r.GetDuration("stop_flush")) {
    if (v->count() > 60'000) {
      r.Error(*r.Find("stop_flush"), "stop_flush must be at most 1m (0: no wait at stop)");
    } else {
      c.stop_flush = *v;
    }
  }
  if (c.buffer_limit < 2 * c.chunk_limit && r.Has("buffer_limit")) {
    r.Error(*r.Find("buffer_limit"), "buffer_limit must be at least twice chunk_limit");
  }
  if (c.ack && !c.unix_path.empty()) {
    const ConfigEntry* e = r.Has("ack") ? r.Find("ack") : r.Find("address");
    r.Error(*e, "ack = yes (the default) with a unix: address: fluentd never acks on a unix "
                "socket, so every chunk would be resent forever; set ack = no or use host:port");
  }
  r.Finish("[fluentd]");
}

}  // namespace warden
