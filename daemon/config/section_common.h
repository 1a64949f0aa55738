// What the section loaders (daemon/config/*_config.cc) share: the name and
// timeout rules every named section follows, the digest that tells a
// reload which sections changed, secret files, and the references to
// [mysql NAME] connections that config.cc resolves once every section is
// read.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "daemon/base/ini.h"
#include "daemon/base/options.h"
#include "daemon/base/status.h"
#include "daemon/base/units.h"

namespace warden {

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

// The digest of one section: its kind, name, keys and values.
std::string SectionDigest(const RawSection& s);

// Names of checks, actions, waits, jobs, connections and slot groups:
// letters, digits, _ - .
bool ValidName(const std::string& name);

// The section's name is one (ValidName); else an error naming `kind`.
void CheckName(OptionReader& r, const char* kind);

// [daemon], [log], [mutex] ... take no name; an error when `s` has one.
void NoName(const RawSection& s, Diagnostics& diag);

// `group = NAME, NAME` (checks, actions, jobs): each a ValidName, none twice.
std::vector<std::string> ReadGroups(OptionReader& r);

// `timeout`, when set, must be longer than 0; `out` keeps its default otherwise.
void ReadTimeout(OptionReader& r, Duration& out);

// The first line of `path` without trailing blanks, or why it cannot be
// read.
Expected<std::string> ReadSecretFile(const std::string& path);

// A secret (a password file, a TLS key) must not be readable by group or
// others: the reason when it is (or cannot be looked at).
Status SecretFileIsPrivate(const std::string& path);

// An address wardend connects to or listens on: "host:port" or
// "[v6]:port" whose host is an IP address ("localhost" is 127.0.0.1);
// names are not resolved, a lookup would block wardend's loop. The error
// says what is wrong; `form` is what the key takes, for the message when
// `text` is not host:port at all ("host:port or unix:/path").
struct HostPort {
  std::string host;
  int port = 0;
};
Expected<HostPort> ParseHostPort(const std::string& text, const std::string& form);

// A check's or action's use of a MySQL connection ("" = [mysql]), checked
// against the [mysql NAME] sections once all are read.
struct ConnectionRef {
  std::string name;
  Location where;
  std::string owner;   // the section's title, for the message
};

}  // namespace warden
