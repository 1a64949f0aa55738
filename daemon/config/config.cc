#include "daemon/config/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <map>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "actions/service.h"
#include "daemon/base/options.h"
#include "daemon/config/fluentd_config.h"
#include "daemon/config/metrics_config.h"
#include "daemon/config/option_file.h"
#include "daemon/io/etcd_client.h"

namespace warden {
namespace {

// FNV-1a, 64 bit: a stable digest for events and reload comparisons.
class Digest {
 public:
  void Add(std::string_view s) {
    for (unsigned char c : s) {
      h_ ^= c;
      h_ *= 1099511628211ULL;
    }
    h_ ^= 0xff;  // separator
    h_ *= 1099511628211ULL;
  }
  std::string Hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
    return buf;
  }

 private:
  std::uint64_t h_ = 14695981039346656037ULL;
};

std::string SectionDigest(const RawSection& s) {
  Digest d;
  d.Add(s.kind);
  d.Add(s.name);
  for (const auto& e : s.entries) {
    d.Add(e.key);
    d.Add(e.value);
  }
  return d.Hex();
}

bool ReadSecretFile(const std::string& path, std::string* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) {
    line.pop_back();
  }
  *out = line;
  return true;
}

// A secret (a password file, a TLS key) must not be readable by group or
// others: false, with the reason, when it is.
bool SecretFileIsPrivate(const std::string& path, std::string* error) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  if ((sb.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(sb.st_mode & 07777));
    *error = path + " is mode " + mode + ": a secret must not be readable by group or others "
             "(chmod 600 " + path + ")";
    return false;
  }
  return true;
}

bool ValidName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

class Loader {
 public:
  Loader(const LoadOptions& options, Diagnostics& diag) : options_(options), diag_(diag) {}

  std::shared_ptr<const Config> Load(const std::string& path) {
    auto config = std::make_shared<Config>();
    config->path = path;
    IniOptions ini;
    ini.check_ownership = options_.check_ownership;
    ini.follow_includes = options_.follow_includes;
    std::vector<RawSection> sections = ReadIniFiles(path, ini, diag_);
    Digest all;
    for (const auto& s : sections) all.Add(SectionDigest(s));
    config->digest = all.Hex();

    // [daemon] first: its interval is the default `every` of checks.
    for (const auto& s : sections) {
      if (s.kind == "daemon") LoadDaemon(s, *config);
    }
    bool have_mutex = false;
    for (const auto& s : sections) {
      if (s.kind == "daemon") continue;
      if (s.kind == "log") LoadLog(s, *config);
      else if (s.kind == "control") LoadControl(s, *config);
      else if (s.kind == "mysql") LoadMysql(s, *config);
      else if (s.kind == "mutex") { have_mutex = true; LoadMutex(s, *config); }
      else if (s.kind == "check") LoadCheck(s, *config);
      else if (s.kind == "action") LoadAction(s, *config);
      else if (s.kind == "fluentd") { NoName(s); LoadFluentdSection(s, config->fluentd, diag_); }
      else if (s.kind == "job") LoadJob(s, *config);
      else if (s.kind == "wait") LoadWait(s, *config);
      else if (s.kind == "fleet") { NoName(s); LoadFleet(s, *config); }
      else if (s.kind == "metrics") { NoName(s); LoadMetricsSection(s, config->metrics, diag_); }
      else
        diag_.Error(s.where, "unknown section " + s.title() +
                                 " (known: daemon, log, control, mysql, mutex, fluentd, check, "
                                 "action, wait, job, fleet, metrics)");
    }
    if (!have_mutex && !sections.empty()) {
      diag_.Error(path + ": no [mutex] section: set url=…, backend=etcd or mode=off "
                         "(automation without a kill switch must be a decision)");
    }
    CrossCheck(*config);
    if (!diag_.ok()) return nullptr;
    return config;
  }

 private:

  // Names of checks, actions, waits and jobs: letters, digits, _ - .
  static void CheckName(OptionReader& r, const char* kind) {
    const std::string& name = r.section().name;
    if (!ValidName(name)) {
      r.Error(std::string(kind) + " name '" + name + "' is invalid (letters, digits, _ - .)");
    }
  }
  // `timeout`, when set, must be longer than 0; `out` keeps its default otherwise.
  static void ReadTimeout(OptionReader& r, Duration& out) {
    if (auto v = r.GetDuration("timeout")) {
      if (v->count() <= 0) r.Error(*r.Find("timeout"), "timeout must be longer than 0");
      else out = *v;
    }
  }

  void NoName(const RawSection& s) {
    if (!s.name.empty()) diag_.Error(s.where, "[" + s.kind + "] takes no name (got '" + s.name + "')");
  }

  void LoadDaemon(const RawSection& s, Config& c) {
    NoName(s);
    OptionReader r(s, diag_);
    r.Find("include");  // handled while reading files
    if (auto v = r.Text("host_id")) c.daemon.host_id = *v;
    if (auto v = r.Text("state_dir")) c.daemon.state_dir = *v;
    if (auto v = r.GetDuration("interval")) {
      if (v->count() < 100) r.Error(*r.Find("interval"), "interval must be at least 100ms");
      else c.daemon.interval = *v;
    }
    if (auto v = r.GetPercent("jitter")) c.daemon.jitter = *v;
    if (auto v = r.GetInteger("workers", 1, 64)) c.daemon.workers = static_cast<int>(*v);
    if (auto v = r.Text("service_command")) {
      c.daemon.service_command = *v;
      auto argv = ServiceArgv(*v, "start", "unit");
      if (!argv) r.Error(*r.Find("service_command"), "service_command: " + argv.error());
    }
    r.Finish("[daemon]");
  }

  void LoadLog(const RawSection& s, Config& c) {
    NoName(s);
    OptionReader r(s, diag_);
    if (auto v = r.GetChoice("level", {"trace", "debug", "info", "warn", "error"})) c.log.level = *v;
    if (auto v = r.Text("file")) c.log.file = *v;
    if (auto v = r.Text("events")) c.log.events = *v;
    r.Finish("[log]");
  }

  void LoadControl(const RawSection& s, Config& c) {
    NoName(s);
    OptionReader r(s, diag_);
    if (auto v = r.Text("socket")) c.control.socket = *v;
    if (auto v = r.Text("group")) c.control.group = *v;
    r.Finish("[control]");
  }

  void LoadMysql(const RawSection& s, Config& c) {
    OptionReader r(s, diag_);
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
      std::string error;
      if (options_.read_secrets &&
          (!SecretFileIsPrivate(std::string(Trim(e->value)), &error) ||
           !ReadSecretFile(std::string(Trim(e->value)), &m.password, &error))) {
        r.Error(*e, "password_file: " + error);
      }
      if (!m.password.empty()) c.secrets.push_back(m.password);
    }
    ReadMysqlTls(r, m);
    ApplyOptionFile(r, m, c);
    CheckMysqlTls(r, m);
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
    c.mysql[m.name] = std::move(m);
  }

  // ssl_mode and the TLS files of a [mysql] section (docs/behaviour.md).
  static std::optional<SslMode> ParseSslMode(std::string v) {
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (v == "disabled") return SslMode::kDisabled;
    if (v == "preferred") return SslMode::kPreferred;
    if (v == "required") return SslMode::kRequired;
    if (v == "verify_ca") return SslMode::kVerifyCa;
    if (v == "verify_identity") return SslMode::kVerifyIdentity;
    return std::nullopt;
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

  static std::vector<std::pair<const char*, std::string*>> MysqlTlsFiles(MysqlConnConfig& m) {
    return {{"ssl_ca", &m.ssl_ca}, {"ssl_capath", &m.ssl_capath}, {"ssl_cert", &m.ssl_cert},
            {"ssl_key", &m.ssl_key}};
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
  void ApplyOptionFile(OptionReader& r, MysqlConnConfig& m, Config& c) {
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
    if (!options_.read_secrets) return;
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
      if (!m.password.empty()) c.secrets.push_back(m.password);
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
  void CheckMysqlTls(OptionReader& r, MysqlConnConfig& m) {
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
    if (!options_.read_secrets) return;
    for (auto [key, field] : MysqlTlsFiles(m)) {
      if (field->empty()) continue;
      std::string error;
      if (::access(field->c_str(), R_OK) != 0) {
        ErrorAt(r, m, key, std::string(key) + ": cannot read " + *field + ": " +
                               std::strerror(errno));
      } else if (std::string(key) == "ssl_key" && !SecretFileIsPrivate(*field, &error)) {
        ErrorAt(r, m, key, "ssl_key: " + error);
      }
    }
  }

  void LoadMutex(const RawSection& s, Config& c) {
    NoName(s);
    OptionReader r(s, diag_);
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
    if (auto v = r.GetDuration("cache")) c.mutex.cache = *v;
    if (auto v = r.GetDuration("poll")) c.mutex.poll = *v;
    if (const ConfigEntry* e = r.Find("token_file")) {
      std::string error;
      if (etcd) {
        r.Error(*e, "token_file is for url = … (HTTP); with backend = etcd use cert_file and "
                    "key_file");
      } else if (options_.read_secrets &&
                 (!SecretFileIsPrivate(std::string(Trim(e->value)), &error) ||
                  !ReadSecretFile(std::string(Trim(e->value)), &c.mutex.token, &error))) {
        r.Error(*e, "token_file: " + error);
      }
      if (!c.mutex.token.empty()) c.secrets.push_back(c.mutex.token);
    }
    // backend = etcd only.
    for (const char* key :
         {"endpoints", "prefix", "connect_timeout", "cert_file", "key_file", "cluster_id"}) {
      if (const ConfigEntry* e = r.Find(key); e && !etcd) {
        r.Error(*e, std::string(key) + " is for backend = etcd");
      }
    }
    if (etcd) {
      // timeout and ca_file included: [fleet]'s keys, read by the same code.
      ReadEtcdKeys(r, "backend = etcd", r.Find("backend")->where, c.mutex.etcd, c.mutex.prefix);
    } else {
      ReadTimeout(r, c.mutex.timeout);
      if (auto v = r.Text("ca_file")) c.mutex.ca_file = *v;
    }
    if (mode && *mode == "off") {
      c.mutex.mode = MutexConfig::Mode::kOff;
      if (url) r.Error(*r.Find("url"), "mode = off and a url contradict each other: keep one");
      if (etcd) {
        r.Error(*r.Find("backend"), "mode = off and backend = etcd contradict each other: keep one");
      }
    } else if (etcd) {
      c.mutex.mode = MutexConfig::Mode::kEtcd;
      if (url) {
        r.Error(*r.Find("url"), "url and backend = etcd are mutually exclusive: keep one");
      }
    } else if (url) {
      c.mutex.url = *url;
      if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0 &&
          url->rfind("file://", 0) != 0) {
        r.Error(*r.Find("url"), "url must start with http://, https:// or file://");
      }
    } else if (!r.Has("backend")) {
      r.Error("[mutex] needs url = …, backend = etcd or mode = off");
    } else {
      r.Error(*r.Find("backend"), "backend = http needs url = …");
    }
    if (c.mutex.poll.count() < 100) r.Error("[mutex] poll must be at least 100ms");
    r.Finish("[mutex]");
  }

  // The keys of an etcd connection, the same in [mutex] (backend = etcd)
  // and [fleet]: one reader, so a key gets the same check and the same
  // message in both. `needs` is what a missing endpoints list is reported
  // for ("backend = etcd", "[fleet]"), at `where`.
  void ReadEtcdKeys(OptionReader& r, const std::string& needs, const Location& where,
                    EtcdConfig& etcd, std::string& prefix) {
    if (const ConfigEntry* e = r.Find("endpoints")) {
      for (const auto& item : r.GetList("endpoints")) {
        auto endpoint = ParseEtcdEndpoint(item);
        if (!endpoint) r.Error(*e, "endpoints: " + endpoint.error());
        else etcd.endpoints.push_back(*endpoint);
      }
    } else {
      diag_.Error(where, needs + " needs endpoints = http://HOST:PORT,… (the etcd cluster's "
                                 "client URLs)");
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
    if (options_.read_secrets) {
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

  // Keys every check has; fills `common` and the evaluation rules.
  void LoadCheck(const RawSection& s, Config& c) {
    OptionReader r(s, diag_);
    CheckConfig cc;
    cc.where = s.where;
    cc.digest = SectionDigest(s);
    cc.common.name = s.name;
    CheckName(r, "check");
    std::string type = r.Required("type", "one of " + CheckTypeList());
    cc.common.type = type;
    cc.type = type.empty() ? nullptr : FindCheckType(type);
    if (!type.empty() && !cc.type) {
      r.Error(*r.Find("type"), "unknown check type '" + type + "' (known: " + CheckTypeList() + ")");
    }
    cc.common.every = c.daemon.interval;
    if (auto v = r.GetDuration("every")) {
      if (v->count() < 100) r.Error(*r.Find("every"), "every must be at least 100ms");
      else cc.common.every = *v;
    }
    cc.common.timeout = std::min(cc.common.every, Duration(10'000));
    ReadTimeout(r, cc.common.timeout);
    cc.rules.warn = r.GetThreshold("warn");
    cc.rules.crit = r.GetThreshold("crit");
    if (auto v = r.GetTrip("trip")) cc.rules.trip = *v;
    if (auto v = r.GetInteger("recover", 1, 1000)) cc.rules.recover = static_cast<int>(*v);
    cc.rules.repeat = r.GetDuration("repeat");
    if (cc.rules.repeat && cc.rules.repeat->count() <= 0) {
      r.Error(*r.Find("repeat"), "repeat must be longer than 0 (leave it out to fire once)");
      cc.rules.repeat.reset();
    }
    cc.depends = r.GetList("depends");
    cc.on_warn = r.GetList("on_warn");
    cc.on_crit = r.GetList("on_crit");
    cc.on_error = r.GetList("on_error");
    cc.on_recover = r.GetList("on_recover");
    if (!cc.on_warn.empty() && !cc.rules.warn) {
      r.Error(*r.Find("on_warn"), "on_warn can never fire: the check has no warn threshold");
    }
    if (!cc.on_crit.empty() && !cc.rules.crit) {
      r.Error(*r.Find("on_crit"), "on_crit can never fire: the check has no crit threshold");
    }
    if (cc.type && cc.type->uses_mysql) {
      if (auto v = r.Text("connection")) cc.common.connection = *v;
      connection_refs_.push_back({cc.common.connection, r.Find("connection")
                                                            ? r.Find("connection")->where
                                                            : s.where, s.title()});
    }
    if (cc.type) {
      size_t before = diag_.errors().size();
      cc.impl = BuildCheck(*cc.type, r, cc.common);
      if (!cc.impl && diag_.errors().size() == before) {
        r.Error(s.title() + ": the check could not be built from these settings");
      }
      r.Finish("check type " + type);
    }
    for (const auto& other : c.checks) {
      if (other.common.name == s.name) return;  // duplicate already reported by ReadIniFiles
    }
    c.checks.push_back(std::move(cc));
  }

  void LoadAction(const RawSection& s, Config& c) {
    OptionReader r(s, diag_);
    ActionConfig ac;
    ac.where = s.where;
    ac.common.name = s.name;
    CheckName(r, "action");
    std::string type = r.Required("type", "one of " + ActionTypeList());
    ac.common.type = type;
    ac.type = type.empty() ? nullptr : FindActionType(type);
    if (!type.empty() && !ac.type) {
      r.Error(*r.Find("type"), "unknown action type '" + type + "' (known: " + ActionTypeList() + ")");
    }
    ReadTimeout(r, ac.common.timeout);
    ac.common.cooldown = r.GetDuration("cooldown");
    ac.common.budget = r.GetBudget("budget");
    if (auto v = r.GetBool("dry_run")) ac.common.dry_run = *v;
    if (ac.type && ac.type->uses_mysql) {
      if (auto v = r.Text("connection")) ac.common.connection = *v;
      connection_refs_.push_back({ac.common.connection,
                                  r.Find("connection") ? r.Find("connection")->where : s.where,
                                  s.title()});
    }
    if (ac.type) {
      if (!ac.type->guarded && (ac.common.cooldown || ac.common.budget || ac.common.dry_run)) {
        r.Error("action type " + type + " changes nothing and is not guarded: "
                "cooldown, budget and dry_run do not apply");
      }
      size_t before = diag_.errors().size();
      ac.impl = BuildAction(*ac.type, r, ac.common);
      if (!ac.impl && diag_.errors().size() == before) {
        r.Error(s.title() + ": the action could not be built from these settings");
      }
      r.Finish("action type " + type);
    }
    for (const auto& other : c.actions) {
      if (other.common.name == s.name) return;
    }
    c.actions.push_back(std::move(ac));
  }

  void LoadWait(const RawSection& s, Config& c) {
    OptionReader r(s, diag_);
    WaitConfig w;
    w.name = s.name;
    w.where = s.where;
    CheckName(r, "wait");
    w.checks = r.GetList("checks");
    if (w.checks.empty() && !r.Has("checks")) {
      r.Error("missing key 'checks': the checks that must be ok, comma separated");
    }
    if (auto v = r.GetDuration("for")) w.hold = *v;
    ReadTimeout(r, w.timeout);
    if (w.hold >= w.timeout) {
      r.Error(r.Find("for") ? *r.Find("for") : *r.Find("timeout"),
              "for (" + FormatDuration(w.hold) + ") must be shorter than timeout (" +
                  FormatDuration(w.timeout) + "), or the wait can never succeed");
    }
    r.Finish("[wait]");
    for (const auto& other : c.waits) {
      if (other.name == s.name) return;
    }
    c.waits.push_back(std::move(w));
  }

  void LoadJob(const RawSection& s, Config& c) {
    OptionReader r(s, diag_);
    JobConfig j;
    j.name = s.name;
    j.where = s.where;
    CheckName(r, "job");
    j.steps = r.GetList("steps");
    if (j.steps.empty() && !r.Has("steps")) {
      r.Error("missing key 'steps': actions and waits, comma separated, run in order");
    }
    if (auto text = r.Text("schedule")) {
      auto cron = ParseCron(*text);
      if (!cron) {
        r.Error(*r.Find("schedule"), cron.error());
      } else if (!NextCronTime(*cron, static_cast<std::int64_t>(::time(nullptr)))) {
        r.Error(*r.Find("schedule"), "schedule: '" + cron->text + "' never fires (no such date)");
      } else {
        j.schedule = std::move(*cron);
      }
    }
    ReadTimeout(r, j.timeout);
    if (auto v = r.Text("slot")) {
      if (!ValidName(*v)) {
        r.Error(*r.Find("slot"), "slot: '" + *v + "' is not a group name (letters, digits, _ - .)");
      } else {
        j.slot = *v;
      }
    }
    if (auto v = r.GetInteger("slots", 1, 1000)) {
      if (j.slot.empty()) r.Error(*r.Find("slots"), "slots without slot = GROUP means nothing");
      j.slots = static_cast<int>(*v);
    }
    r.Finish("[job]");
    for (const auto& other : c.jobs) {
      if (other.name == s.name) return;
    }
    c.jobs.push_back(std::move(j));
  }

  void LoadFleet(const RawSection& s, Config& c) {
    OptionReader r(s, diag_);
    FleetConfig& f = c.fleet;
    f.enabled = true;
    ReadEtcdKeys(r, "[fleet]", s.where, f.etcd, f.prefix);
    if (auto v = r.GetInteger("slots", 1, 1000)) f.slots = static_cast<int>(*v);
    if (auto v = r.GetDuration("poll")) {
      if (v->count() < 1000) r.Error(*r.Find("poll"), "poll must be at least 1s");
      else f.poll = *v;
    }
    r.Finish("[fleet]");
  }

  // Actions, waits and jobs share one namespace: a check's on_crit and a
  // job's steps name them without saying which kind.
  void CrossCheckJobs(Config& c) {
    std::map<std::string, std::pair<std::string, Location>> names;
    auto claim = [&](const std::string& name, const std::string& kind, const Location& where) {
      auto [it, fresh] = names.emplace(name, std::make_pair(kind, where));
      if (!fresh) {
        diag_.Error(where, "[" + kind + " " + name + "] has the name of [" + it->second.first +
                               " " + name + "] (" + it->second.second.str() +
                               "): actions, waits and jobs share one namespace");
      }
    };
    for (const auto& a : c.actions) claim(a.common.name, "action", a.where);
    for (const auto& w : c.waits) claim(w.name, "wait", w.where);
    for (const auto& j : c.jobs) claim(j.name, "job", j.where);
    for (const auto& w : c.waits) {
      for (const auto& n : w.checks) {
        if (!c.FindCheck(n)) {
          diag_.Error(w.where, "[wait " + w.name + "] checks names '" + n +
                                   "', which is not a check");
        }
      }
    }
    for (const auto& j : c.jobs) {
      if (!j.slot.empty() && !c.fleet.enabled) {
        diag_.Error(j.where, "[job " + j.name + "] slot = " + j.slot +
                                 " needs a [fleet] section (the etcd endpoints that hold the "
                                 "slots)");
      }
      for (const auto& n : j.steps) {
        if (c.FindJob(n)) {
          diag_.Error(j.where, "[job " + j.name + "] step '" + n +
                                   "' is a job; a job's steps are actions and waits");
        } else if (!c.FindAction(n) && !c.FindWait(n)) {
          diag_.Error(j.where, "[job " + j.name + "] step '" + n +
                                   "' is neither an action nor a wait");
        }
      }
    }
  }

  void CrossCheck(Config& c) {
    CrossCheckJobs(c);
    for (const auto& ref : connection_refs_) {
      if (!c.mysql.count(ref.name)) {
        if (ref.name.empty()) {
          diag_.Error(ref.where, ref.owner + " uses the default MySQL connection, but there is "
                                              "no [mysql] section (or set connection = NAME)");
        } else {
          diag_.Error(ref.where, ref.owner + ": connection '" + ref.name +
                                     "' names no [mysql " + ref.name + "] section");
        }
      }
    }
    std::map<std::string, const CheckConfig*> checks;
    for (const auto& cc : c.checks) checks[cc.common.name] = &cc;
    for (const auto& cc : c.checks) {
      for (const auto& d : cc.depends) {
        if (!checks.count(d)) {
          diag_.Error(cc.where, "[check " + cc.common.name + "] depends on '" + d +
                                    "', which is not a check");
        } else if (d == cc.common.name) {
          diag_.Error(cc.where, "[check " + cc.common.name + "] depends on itself");
        }
      }
      auto refs = [&](const std::vector<std::string>& names, const char* key) {
        for (const auto& n : names) {
          if (!c.FindAction(n) && !c.FindJob(n)) {
            diag_.Error(cc.where, "[check " + cc.common.name + "] " + key + " names '" + n +
                                      (c.FindWait(n) ? "', a wait: waits are steps of jobs"
                                                     : "', which is neither an action nor a job"));
          }
        }
      };
      refs(cc.on_warn, "on_warn");
      refs(cc.on_crit, "on_crit");
      refs(cc.on_error, "on_error");
      refs(cc.on_recover, "on_recover");
    }
    // depends cycles: depth-first search with colours.
    std::map<std::string, int> colour;  // 0 white, 1 grey, 2 black
    std::set<std::string> reported;
    std::function<void(const CheckConfig*, std::vector<std::string>&)> visit =
        [&](const CheckConfig* cc, std::vector<std::string>& path) {
          colour[cc->common.name] = 1;
          path.push_back(cc->common.name);
          for (const auto& d : cc->depends) {
            auto it = checks.find(d);
            if (it == checks.end() || d == cc->common.name) continue;
            if (colour[d] == 1) {
              std::string cycle;
              bool in = false;
              for (const auto& p : path) {
                if (p == d) in = true;
                if (in) cycle += p + " -> ";
              }
              cycle += d;
              if (reported.insert(d).second) {
                diag_.Error(it->second->where, "depends cycle: " + cycle);
              }
            } else if (colour[d] == 0) {
              visit(it->second, path);
            }
          }
          path.pop_back();
          colour[cc->common.name] = 2;
        };
    for (const auto& cc : c.checks) {
      if (colour[cc.common.name] == 0) {
        std::vector<std::string> path;
        visit(&cc, path);
      }
    }
    if (c.daemon.host_id.empty()) {
      char buf[256] = {};
      if (::gethostname(buf, sizeof buf - 1) == 0) c.daemon.host_id = buf;
      if (c.daemon.host_id.empty()) c.daemon.host_id = "localhost";
    }
  }

  static std::string CheckTypeList() {
    std::string out;
    for (const auto& t : CheckTypes()) out += (out.empty() ? "" : ", ") + std::string(t.name);
    return out;
  }
  static std::string ActionTypeList() {
    std::string out;
    for (const auto& t : ActionTypes()) out += (out.empty() ? "" : ", ") + std::string(t.name);
    return out;
  }

  struct ConnectionRef {
    std::string name;
    Location where;
    std::string owner;
  };
  const LoadOptions& options_;
  Diagnostics& diag_;
  std::vector<ConnectionRef> connection_refs_;
};

}  // namespace

const CheckConfig* Config::FindCheck(const std::string& name) const {
  for (const auto& c : checks) {
    if (c.common.name == name) return &c;
  }
  return nullptr;
}

const ActionConfig* Config::FindAction(const std::string& name) const {
  for (const auto& a : actions) {
    if (a.common.name == name) return &a;
  }
  return nullptr;
}

const WaitConfig* Config::FindWait(const std::string& name) const {
  for (const auto& w : waits) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

const JobConfig* Config::FindJob(const std::string& name) const {
  for (const auto& j : jobs) {
    if (j.name == name) return &j;
  }
  return nullptr;
}

std::string Config::EventsPath() const {
  return log.events.empty() ? daemon.state_dir + "/events.jsonl" : log.events;
}

std::shared_ptr<const Config> LoadConfig(const std::string& path, const LoadOptions& options,
                                         Diagnostics& diag) {
  Loader loader(options, diag);
  return loader.Load(path);
}

}  // namespace warden
