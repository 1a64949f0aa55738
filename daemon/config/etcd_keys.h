// The keys of an etcd connection, the same in [mutex] (backend = etcd)
// and [fleet]: one reader, so a key gets the same check and the same
// message in both. Keys: endpoints, prefix, timeout, connect_timeout,
// ca_file, cert_file, key_file, cluster_id.
#pragma once

#include <string>

#include "daemon/base/ini.h"
#include "daemon/base/options.h"
#include "daemon/io/etcd_client.h"

namespace warden {

// Reads them from `r` into `etcd` and `prefix`. `needs` is what a missing
// endpoints list is reported for ("backend = etcd", "[fleet]"), at `where`;
// with read_secrets, cert_file and key_file must be readable.
void ReadEtcdKeys(OptionReader& r, const std::string& needs, const Location& where,
                  bool read_secrets, EtcdConfig& etcd, std::string& prefix);

}  // namespace warden
