// MysqlConnConfig: how a [mysql] section is described, keyed and
// secured, and the program name every connection announces.
#include <string>
#include <utility>

#include "daemon/io/mysql.h"
#include "daemon/io/mysql_internal.h"

namespace warden {

namespace mysql_internal {

bool UsesSocket(const MysqlConnConfig& c) { return c.host.empty() || c.host == "localhost"; }

std::string& ProgramName() {
  static std::string name = "wardend";
  return name;
}

}  // namespace mysql_internal

using mysql_internal::ProgramName;
using mysql_internal::UsesSocket;

std::string MysqlConnConfig::Describe() const {
  std::string title = name.empty() ? "[mysql]" : "[mysql " + name + "]";
  if (UsesSocket(*this)) {
    // libmariadb treats "localhost" as the unix socket whatever the port.
    return title + " socket " + (socket.empty() ? std::string("(client default)") : socket);
  }
  bool v6 = host.find(':') != std::string::npos;
  return title + " " + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

const char* SslModeName(SslMode mode) {
  switch (mode) {
    case SslMode::kDefault: return "default";
    case SslMode::kDisabled: return "disabled";
    case SslMode::kPreferred: return "preferred";
    case SslMode::kRequired: return "required";
    case SslMode::kVerifyCa: return "verify_ca";
    case SslMode::kVerifyIdentity: return "verify_identity";
  }
  return "?";
}

SslMode MysqlConnConfig::EffectiveSslMode() const {
  if (ssl_mode != SslMode::kDefault) return ssl_mode;
  return UsesSocket(*this) ? SslMode::kDisabled : SslMode::kPreferred;
}

void SetMysqlProgramName(std::string name) { ProgramName() = std::move(name); }

std::string MysqlConnConfig::Key() const {
  // The password enters only as a hash: keys are plain strings that might
  // end up in a debugger or a log line.
  const char sep = '\x1f';
  return name + sep + host + sep + std::to_string(port) + sep + socket + sep + user + sep +
         std::to_string(std::hash<std::string>{}(password)) + sep + database + sep +
         std::to_string(connect_timeout.count()) + sep + std::to_string(query_timeout.count()) +
         sep + std::to_string(fallback_port) + sep + SslModeName(ssl_mode) + sep + ssl_ca + sep +
         ssl_capath + sep + ssl_cert + sep + ssl_key + sep + tls_version;
}

}  // namespace warden
