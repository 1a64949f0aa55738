#include "daemon/config/mutex_config.h"

#include "daemon/base/options.h"
#include "daemon/base/units.h"
#include "daemon/config/etcd_keys.h"
#include "daemon/config/section_common.h"

namespace warden {

void LoadMutexSection(const RawSection& s, const LoadOptions& options, MutexConfig& c,
                      std::vector<std::string>& secrets, Diagnostics& diag) {
  OptionReader r(s, diag);
  auto mode = r.GetChoice("mode", {"off", "on"});
  auto url = r.Text("url");
  bool etcd = false;
  if (const ConfigEntry* e = r.Find("backend")) {
    if (Trim(e->value) == "etcd") {
      etcd = true;
    } else if (Trim(e->value) != "http") {
      r.Error(*e, "backend: '" + e->value + "' is not http or etcd");
    }
  }
  if (auto v = r.GetDuration("cache")) c.cache = *v;
  if (auto v = r.GetDuration("poll")) c.poll = *v;
  if (const ConfigEntry* e = r.Find("token_file")) {
    if (etcd) {
      r.Error(*e, "token_file is for url = … (HTTP); with backend = etcd use cert_file and "
                  "key_file");
    } else if (options.read_secrets) {
      const std::string path(Trim(e->value));
      Status st = SecretFileIsPrivate(path);
      if (st.ok()) {
        auto token = ReadSecretFile(path);
        if (token) c.token = std::move(*token);
        st = token.status();
      }
      if (!st.ok()) r.Error(*e, "token_file: " + st.message());
    }
    if (!c.token.empty()) secrets.push_back(c.token);
  }
  // backend = etcd only.
  for (const char* key : {"endpoints", "prefix", "connect_timeout", "cert_file", "key_file",
                          "cluster_id", "watch"}) {
    if (const ConfigEntry* e = r.Find(key); e && !etcd) {
      r.Error(*e, std::string(key) + " is for backend = etcd");
    }
  }
  if (etcd) {
    // timeout and ca_file included: [fleet]'s keys, read by the same code.
    ReadEtcdKeys(r, "backend = etcd", r.Find("backend")->where, options.read_secrets,
                 c.etcd, c.prefix);
    if (auto v = r.GetBool("watch")) c.watch = *v;
  } else {
    ReadTimeout(r, c.timeout);
    if (auto v = r.Text("ca_file")) c.ca_file = *v;
  }
  if (mode && *mode == "off") {
    c.mode = MutexConfig::Mode::kOff;
    if (url) r.Error(*r.Find("url"), "mode = off and a url contradict each other: keep one");
    if (etcd) {
      r.Error(*r.Find("backend"), "mode = off and backend = etcd contradict each other: keep one");
    }
  } else if (etcd) {
    c.mode = MutexConfig::Mode::kEtcd;
    if (url) {
      r.Error(*r.Find("url"), "url and backend = etcd are mutually exclusive: keep one");
    }
  } else if (url) {
    c.url = *url;
    if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0 &&
        url->rfind("file://", 0) != 0) {
      r.Error(*r.Find("url"), "url must start with http://, https:// or file://");
    }
  } else if (!r.Has("backend")) {
    r.Error("[mutex] needs url = …, backend = etcd or mode = off");
  } else {
    r.Error(*r.Find("backend"), "backend = http needs url = …");
  }
  if (c.poll.count() < 100) r.Error("[mutex] poll must be at least 100ms");
  r.Finish("[mutex]");
}

}  // namespace warden
