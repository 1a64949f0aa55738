#include "daemon/config/mysql_config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "daemon/base/options.h"
#include "daemon/config/option_file.h"
#include "daemon/config/section_common.h"

namespace warden {
namespace {

// An ssl_mode value, in any case (docs/behaviour.md).
std::optional<SslMode> ParseSslMode(std::string v) {
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (v == "disabled") return SslMode::kDisabled;
  if (v == "preferred") return SslMode::kPreferred;
  if (v == "required") return SslMode::kRequired;
  if (v == "verify_ca") return SslMode::kVerifyCa;
  if (v == "verify_identity") return SslMode::kVerifyIdentity;
  return std::nullopt;
}

// The TLS files of a [mysql] section: key and field.
std::vector<std::pair<const char*, std::string*>> MysqlTlsFiles(MysqlConnConfig& m) {
  return {{"ssl_ca", &m.ssl_ca}, {"ssl_capath", &m.ssl_capath}, {"ssl_cert", &m.ssl_cert},
          {"ssl_key", &m.ssl_key}};
}

// ssl_mode and the TLS files of a [mysql] section, as written in it.
void ReadMysqlTls(OptionReader& r, MysqlConnConfig& m) {
  if (auto v = r.GetChoice("ssl_mode", {"disabled", "preferred", "required", "verify_ca",
                                        "verify_identity"})) {
    m.ssl_mode = *ParseSslMode(*v);
  }
  for (auto [key, field] : MysqlTlsFiles(m)) {
    if (auto v = r.Text(key)) *field = *v;
  }
  if (r.Has("tls_version")) {
    for (const auto& t : r.GetList("tls_version")) {
      m.tls_version += (m.tls_version.empty() ? "" : ",") + t;
    }
  }
}

// An error about `key`: at its line in the section, or at the section
// naming the option file line it came from.
void ErrorAt(OptionReader& r, const MysqlConnConfig& m, const std::string& key,
             const std::string& message) {
  if (const ConfigEntry* e = r.Find(key)) {
    r.Error(*e, message);
  } else if (auto it = m.origin.find(key); it != m.origin.end()) {
    r.Error(message + " (" + key + " from " + it->second + ")");
  } else {
    r.Error(message);
  }
}

// defaults_file: what the [mysql] section does not set, from the option
// file's defaults_group, as the mysql client would take it.
void ApplyOptionFile(OptionReader& r, MysqlConnConfig& m, const LoadOptions& options,
                     std::vector<std::string>& secrets) {
  const ConfigEntry* file = r.Find("defaults_file");
  std::string group = r.Text("defaults_group", "client");
  if (!file) {
    if (r.Has("defaults_group")) {
      r.Error(*r.Find("defaults_group"), "defaults_group without defaults_file");
    }
    return;
  }
  for (const auto& key : {"socket", "host", "port", "user", "password_file", "ssl_mode",
                          "ssl_ca", "ssl_capath", "ssl_cert", "ssl_key", "tls_version"}) {
    if (const ConfigEntry* e = r.Find(key)) m.origin[key] = e->where.str();
  }
  if (!options.read_secrets) return;
  auto read = ReadOptionGroup(std::string(Trim(file->value)), group);
  if (!read) {
    r.Error(*file, "defaults_file: " + read.error());
    return;
  }
  auto& opts = *read;
  auto take = [&](const char* opt, const std::string& key, std::string* field) {
    auto it = opts.find(opt);
    if (it == opts.end() || r.Has(key)) return false;
    *field = it->second.value;
    m.origin[key] = it->second.where;
    return true;
  };
  take("user", "user", &m.user);
  if (!r.Has("password_file") && opts.count("password")) {
    m.password = opts["password"].value;
    m.origin["password"] = opts["password"].where;
    if (!m.password.empty()) secrets.push_back(m.password);
  }
  // Where to connect: the section's choice (host or socket) wins whole.
  if (!r.Has("host") && !r.Has("socket")) {
    auto host = opts.find("host");
    if (host != opts.end() && host->second.value != "localhost") {
      take("host", "host", &m.host);
    } else {
      take("socket", "socket", &m.socket);
    }
  }
  if (!m.host.empty() && !r.Has("port")) {
    if (auto it = opts.find("port"); it != opts.end()) {
      char* end = nullptr;
      long port = std::strtol(it->second.value.c_str(), &end, 10);
      if (!end || *end || port < 1 || port > 65535) {
        r.Error(*file, "defaults_file: " + it->second.where + ": port '" + it->second.value +
                           "' is not a port");
      } else {
        m.port = static_cast<int>(port);
        m.origin["port"] = it->second.where;
      }
    }
  }
  for (auto [key, field] : MysqlTlsFiles(m)) take(key, key, field);
  if (!r.Has("tls_version")) take("tls_version", "tls_version", &m.tls_version);
  if (!r.Has("ssl_mode")) {
    if (auto it = opts.find("ssl_mode"); it != opts.end()) {
      if (auto mode = ParseSslMode(it->second.value)) {
        m.ssl_mode = *mode;
        m.origin["ssl_mode"] = it->second.where;
      } else {
        r.Error(*file, "defaults_file: " + it->second.where + ": ssl-mode '" +
                           it->second.value + "' is not one warden knows");
      }
    } else if (auto v = opts.find("ssl_verify_server_cert");
               v != opts.end() && v->second.value != "0") {
      m.ssl_mode = SslMode::kVerifyIdentity;   // MariaDB's client option
      m.origin["ssl_mode"] = v->second.where;
    }
  }
}

// The TLS settings, wherever they came from, make sense together.
void CheckMysqlTls(OptionReader& r, MysqlConnConfig& m, const LoadOptions& options) {
  if (!m.tls_version.empty()) {
    std::string list = m.tls_version;
    m.tls_version.clear();
    std::size_t at = 0;
    while (at <= list.size()) {
      std::size_t comma = std::min(list.find(',', at), list.size());
      std::string t(Trim(std::string_view(list).substr(at, comma - at)));
      if (t != "TLSv1.2" && t != "TLSv1.3") {
        ErrorAt(r, m, "tls_version", "tls_version: '" + t + "' is not TLSv1.2 or TLSv1.3 "
                                     "(a comma-separated list of them)");
      }
      m.tls_version += (m.tls_version.empty() ? "" : ",") + t;
      at = comma + 1;
    }
  }
  const bool any_file = !m.ssl_ca.empty() || !m.ssl_capath.empty() || !m.ssl_cert.empty() ||
                        !m.ssl_key.empty() || !m.tls_version.empty();
  if (m.ssl_mode == SslMode::kDisabled && any_file) {
    ErrorAt(r, m, "ssl_mode", "ssl_mode = disabled, but TLS settings are given: drop "
                              "them or choose another ssl_mode");
  }
  if ((m.ssl_mode == SslMode::kVerifyCa || m.ssl_mode == SslMode::kVerifyIdentity) &&
      m.ssl_ca.empty() && m.ssl_capath.empty()) {
    ErrorAt(r, m, "ssl_mode", std::string("ssl_mode = ") + SslModeName(m.ssl_mode) +
                                  " needs ssl_ca or ssl_capath (the CA that signed the "
                                  "server's certificate)");
  }
  if (m.ssl_cert.empty() != m.ssl_key.empty()) {
    ErrorAt(r, m, m.ssl_cert.empty() ? "ssl_key" : "ssl_cert",
            "ssl_cert and ssl_key go together (the client certificate and its key)");
  }
  if (!options.read_secrets) return;
  for (auto [key, field] : MysqlTlsFiles(m)) {
    if (field->empty()) continue;
    if (::access(field->c_str(), R_OK) != 0) {
      ErrorAt(r, m, key, std::string(key) + ": cannot read " + *field + ": " +
                             std::strerror(errno));
    } else if (std::string(key) == "ssl_key") {
      if (Status s = SecretFileIsPrivate(*field); !s.ok()) {
        ErrorAt(r, m, key, "ssl_key: " + s.message());
      }
    }
  }
}

}  // namespace

void LoadMysqlSection(const RawSection& s, const LoadOptions& options,
                      std::map<std::string, MysqlConnConfig>& out,
                      std::vector<std::string>& secrets, Diagnostics& diag) {
  OptionReader r(s, diag);
  MysqlConnConfig m;
  m.name = s.name;
  if (auto v = r.Text("socket")) m.socket = *v;
  if (auto v = r.Text("host")) m.host = *v;
  if (auto v = r.GetInteger("port", 1, 65535)) m.port = static_cast<int>(*v);
  if (auto v = r.GetInteger("fallback_port", 1, 65535)) m.fallback_port = static_cast<int>(*v);
  if (auto v = r.Text("user")) m.user = *v;
  if (auto v = r.Text("database")) m.database = *v;
  if (auto v = r.GetDuration("connect_timeout")) m.connect_timeout = *v;
  if (auto v = r.GetDuration("query_timeout")) m.query_timeout = *v;
  if (const ConfigEntry* e = r.Find("password_file")) {
    if (options.read_secrets) {
      const std::string path(Trim(e->value));
      Status st = SecretFileIsPrivate(path);
      if (st.ok()) {
        auto password = ReadSecretFile(path);
        if (password) m.password = std::move(*password);
        st = password.status();
      }
      if (!st.ok()) r.Error(*e, "password_file: " + st.message());
    }
    if (!m.password.empty()) secrets.push_back(m.password);
  }
  ReadMysqlTls(r, m);
  ApplyOptionFile(r, m, options, secrets);
  CheckMysqlTls(r, m, options);
  if (const ConfigEntry* e = r.Find("password")) {
    r.Error(*e, "passwords are read from a file: use password_file = PATH (mode 0600)");
  }
  if (m.user.empty()) {
    r.Error(s.title() + " needs 'user'" +
            (r.Has("defaults_file") ? " (not in the defaults_file's group either)" : ""));
  }
  if (m.socket.empty() && m.host.empty()) {
    r.Error(s.title() + " needs 'socket' or 'host'");
  } else if (!m.socket.empty() && !m.host.empty()) {
    r.Error(s.title() + " sets both 'socket' and 'host': choose one");
  }
  if (m.fallback_port != 0 && m.socket.empty() && m.fallback_port == m.port) {
    r.Error(*r.Find("fallback_port"), "fallback_port is the same as port: it must be the "
                                      "server's other port (MariaDB extra_port, MySQL "
                                      "admin_port)");
  }
  if (m.host == "localhost") {
    r.Error(*r.Find("host"), "host = localhost means the default unix socket to the MySQL "
                             "client library: use host = 127.0.0.1 or socket = PATH");
  }
  if (!s.name.empty() && !ValidName(s.name)) {
    r.Error("invalid connection name '" + s.name + "' (letters, digits, _ - .)");
  }
  r.Finish(s.title());
  out[m.name] = std::move(m);
}

}  // namespace warden
