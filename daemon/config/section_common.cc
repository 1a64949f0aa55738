#include "daemon/config/section_common.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "daemon/base/secret_file.h"

namespace warden {

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

Expected<std::string> ReadSecretFile(const std::string& path) { return ReadSecretLine(path); }

Status SecretFileIsPrivate(const std::string& path) { return CheckSecretFilePrivate(path); }

bool ValidName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

void CheckName(OptionReader& r, const char* kind) {
  const std::string& name = r.section().name;
  if (!ValidName(name)) {
    r.Error(std::string(kind) + " name '" + name + "' is invalid (letters, digits, _ - .)");
  }
}

void NoName(const RawSection& s, Diagnostics& diag) {
  if (!s.name.empty()) diag.Error(s.where, "[" + s.kind + "] takes no name (got '" + s.name + "')");
}

std::vector<std::string> ReadGroups(OptionReader& r) {
  std::vector<std::string> out;
  for (auto& g : r.GetList("group")) {
    if (!ValidName(g)) {
      r.Error(*r.Find("group"), "group: '" + g + "' is not a group name (letters, digits, _ - .)");
    } else if (std::find(out.begin(), out.end(), g) != out.end()) {
      r.Error(*r.Find("group"), "group: '" + g + "' is named twice");
    } else {
      out.push_back(std::move(g));
    }
  }
  return out;
}

void ReadTimeout(OptionReader& r, Duration& out) {
  if (auto v = r.GetDuration("timeout")) {
    if (v->count() <= 0) r.Error(*r.Find("timeout"), "timeout must be longer than 0");
    else out = *v;
  }
}

Expected<HostPort> ParseHostPort(const std::string& text, const std::string& form) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close != std::string::npos && close + 1 < text.size() && text[close + 1] == ':') {
      host = text.substr(1, close - 1);
      port = text.substr(close + 2);
    }
  } else if (size_t colon = text.rfind(':');
             colon != std::string::npos && text.find(':') == colon) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty()) {
    return Expected<HostPort>::Error("'" + text + "' is not " + form);
  }
  if (host == "localhost") host = "127.0.0.1";
  unsigned char buf[16];
  if (::inet_pton(AF_INET, host.c_str(), buf) != 1 && ::inet_pton(AF_INET6, host.c_str(), buf) != 1) {
    return Expected<HostPort>::Error("'" + host + "' is not an IP address (names are not resolved: "
                                     "a lookup would block wardend's loop)");
  }
  auto p = ParseInteger(port, 1, 65535);
  if (!p) return Expected<HostPort>::Error("port: " + p.error());
  return HostPort{host, static_cast<int>(*p)};
}

}  // namespace warden
