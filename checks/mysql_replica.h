// type = mysql_replica: one field of the replica status, read by column
// name and normalized across MySQL < 8.0.22 (Slave_*/..._Master names),
// MySQL >= 8.0.22 and 8.4 (Replica_*/..._Source names) and MariaDB:
//
//   field = lag          Seconds_Behind_Source / Seconds_Behind_Master.
//                        NULL (replication stopped or broken) is an error
//                        carrying Last_IO_Error / Last_SQL_Error, never 0.
//         = io_running   Replica_IO_Running / Slave_IO_Running (Yes, No,
//         = sql_running  Connecting, ...) and the SQL thread's equivalent.
//         = last_errno   max of Last_IO_Errno and Last_SQL_Errno (Last_Errno).
//         = last_error   the first non-empty of Last_IO_Error,
//                        Last_SQL_Error, Last_Error ("" when none).
//         = heartbeat_lag  seconds since the newest heartbeat the replica
//                        applied, from a pt-heartbeat table: the truth when
//                        Seconds_Behind_Master reads 0 (a stalled IO thread)
//                        or NULL (a stopped one). Keys: heartbeat_table
//                        (default percona.heartbeat), heartbeat_server_id
//                        (default the status's Master_Server_Id),
//                        heartbeat_utc (default yes: pt-heartbeat --utc).
//   channel = NAME       optional: the row whose Channel_Name (MySQL) or
//                        Connection_name (MariaDB) is NAME; without it the
//                        first row (the default connection on MariaDB).
//
// The read is shared with other mysql_replica checks on the connection
// (see MysqlReads::ReplicaStatus); a server that is not a replica gives
// the error "not a replica: ...".
#pragma once

#include <string_view>

#include "checks/check.h"
#include "daemon/io/mysql.h"

namespace warden {

extern const CheckType kMysqlReplicaCheckType;

// Pure: the measurement for `field` from replica status rows.
Measurement ReplicaField(const MysqlRows& rows, std::string_view field, std::string_view channel);

// Pure, for heartbeat_lag: the source's server id from the status row (or
// an error), and the lag from the heartbeat query's rows.
Expected<long long> ReplicaSourceId(const MysqlRows& rows, std::string_view channel);
std::string HeartbeatSql(const std::string& table, long long server_id, bool utc);
Measurement HeartbeatLag(const Expected<MysqlRows>& rows, const std::string& table,
                         long long server_id);

}  // namespace warden
