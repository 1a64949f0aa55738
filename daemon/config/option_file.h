// MySQL option files (/root/.my.cnf, /etc/mysql/debian.cnf), read the way
// the mysql client reads them, for [mysql] defaults_file / defaults_group.
//
//   [client]                 groups; keys of the asked group are kept
//   user = warden            "key = value", "key=value"; a bare "key" is "1"
//   password = "s3 cret"     values may be quoted ('' or ""), with \\ \" \' \n \t
//   ssl-ca = /etc/ca.pem     '-' and '_' are the same in names; "loose-" is dropped
//   # comment, ; comment     whole-line comments; " #" after a value too
//   !include /path/x.cnf     another file, read at this point
//   !includedir /path/dir    its *.cnf files, in name order
//
// A later value of a key wins over an earlier one, as for the client.
#pragma once

#include <map>
#include <string>

#include "daemon/base/status.h"

namespace warden {

struct OptionValue {
  std::string value;
  std::string where;   // "file:line"
};

// The keys of `group` in `path` (and what it includes), names normalised
// to lower case with '_' ("ssl_ca"). An unreadable file, a line that is
// not an option and a group that is not there are errors naming file:line
// (or the file). Every file read must be private (no group/other bits):
// it holds a password.
Expected<std::map<std::string, OptionValue>> ReadOptionGroup(const std::string& path,
                                                             const std::string& group);

}  // namespace warden
