// type = mysql_status: one SHOW GLOBAL STATUS value (variable = NAME, any
// case), or with rate = yes its per-second rate between this run's snapshot
// and the previous run's.
//
// Snapshots are shared between checks on the same connection (see
// MysqlReads). A rate needs two samples: the first run, and a run after the
// counter went down (server restart, FLUSH STATUS), return NotYet. The
// time between samples is taken when each snapshot reaches the loop, so a
// snapshot served from the share window (100 ms) skews a rate by at most
// that much over the check's interval.
#pragma once

#include <optional>
#include <string>

#include "checks/check.h"

namespace warden {

extern const CheckType kMysqlStatusCheckType;

// Per-second rate between two samples of a counter as text; nullopt when
// the counter went down. Counters above 2^53 keep their exact difference.
std::optional<double> CounterRate(const std::string& previous, const std::string& current,
                                  double seconds);

}  // namespace warden
