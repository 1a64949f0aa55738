// type = mysql_query: the first column of the first row of `sql` (one
// statement; may span indented continuation lines; a trailing ';' is
// dropped). No rows, a statement without a result set, or NULL are errors:
// a check must not turn "nothing" into a value.
#pragma once

#include "checks/check.h"

namespace warden {

extern const CheckType kMysqlQueryCheckType;

}  // namespace warden
