// MysqlRows, a result set read by column name.
#include <cctype>
#include <string>
#include <string_view>

#include "daemon/io/mysql.h"

namespace warden {

int MysqlRows::Column(std::string_view name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    const std::string& c = columns[i];
    if (c.size() != name.size()) continue;
    bool same = true;
    for (size_t j = 0; j < c.size() && same; ++j) {
      same = std::tolower(static_cast<unsigned char>(c[j])) ==
             std::tolower(static_cast<unsigned char>(name[j]));
    }
    if (same) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace warden
