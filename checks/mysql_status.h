// type = mysql_status: one SHOW GLOBAL STATUS value (variable = NAME, any
// case), or with rate = yes its per-second rate between this run's snapshot
// and the previous run's.
//
// Snapshots are shared between checks on the same connection (see
// MysqlReads). A rate needs two samples: the first run, and a run after the
// counter went down (server restart, FLUSH STATUS), return NotYet. Each
// sample's time is its snapshot's (MysqlMap::taken: when it reached the
// loop), also when a run is served a snapshot from the share window, so
// sharing does not skew a rate. That time is also the run's result time.
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
