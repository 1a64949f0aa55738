#include "daemon/config/etcd_keys.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/base/units.h"
#include "daemon/config/section_common.h"

namespace warden {

void ReadEtcdKeys(OptionReader& r, const std::string& needs, const Location& where,
                  bool read_secrets, EtcdConfig& etcd, std::string& prefix) {
  if (const ConfigEntry* e = r.Find("endpoints")) {
    for (const auto& item : r.GetList("endpoints")) {
      auto endpoint = ParseEtcdEndpoint(item);
      if (!endpoint) r.Error(*e, "endpoints: " + endpoint.error());
      else etcd.endpoints.push_back(*endpoint);
    }
  } else {
    r.diag().Error(where, needs + " needs endpoints = http://HOST:PORT,… (the etcd "
                                  "cluster's client URLs)");
  }
  if (const ConfigEntry* e = r.Find("prefix")) {
    std::string p(Trim(e->value));
    // Keys are built as <prefix>/mutex, <prefix>/slots/...: no space or
    // control byte that etcdctl users would have to quote.
    bool printable = std::all_of(p.begin(), p.end(), [](char ch) {
      auto u = static_cast<unsigned char>(ch);
      return u > 0x20 && u != 0x7f;
    });
    if (p.size() < 2 || p.front() != '/' || p.back() == '/' || !printable) {
      r.Error(*e, "prefix must start with '/', not end with '/' and hold no spaces (e.g. "
                  "/warden)");
    } else {
      prefix = p;
    }
  }
  ReadTimeout(r, etcd.timeout);
  if (auto v = r.GetDuration("connect_timeout")) {
    if (v->count() <= 0) {
      r.Error(*r.Find("connect_timeout"), "connect_timeout must be longer than 0");
    } else {
      etcd.connect_timeout = *v;
    }
  }
  if (auto v = r.Text("ca_file")) etcd.ca_file = *v;
  if (auto v = r.Text("cert_file")) etcd.cert_file = *v;
  if (auto v = r.Text("key_file")) etcd.key_file = *v;
  if (etcd.cert_file.empty() != etcd.key_file.empty()) {
    r.Error(*r.Find(etcd.cert_file.empty() ? "key_file" : "cert_file"),
            "cert_file and key_file go together (they may name the same PEM file)");
  }
  // Checked with the other secrets (password_file, token_file): a file
  // wardend cannot read shows at validation, not at the first handshake.
  if (read_secrets) {
    for (const char* key : {"cert_file", "key_file"}) {
      const ConfigEntry* e = r.Find(key);
      if (e && !Trim(e->value).empty() &&
          ::access(std::string(Trim(e->value)).c_str(), R_OK) != 0) {
        r.Error(*e, std::string(key) + ": cannot read " + std::string(Trim(e->value)) + ": " +
                        std::strerror(errno));
      }
    }
  }
  if (const ConfigEntry* e = r.Find("cluster_id")) {
    auto id = ParseEtcdClusterId(Trim(e->value));
    if (!id) r.Error(*e, id.error());
    else etcd.cluster_id = *id;
  }
}

}  // namespace warden
