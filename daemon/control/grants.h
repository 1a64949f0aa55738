// `wardenctl validate --grants`: which MySQL privileges each check and
// action needs, and whether the configured connections have them.
//
// Two sources, the server being the judge:
//  * SHOW GRANTS of each connection that checks or actions use (parsed
//    here: global privileges, ALL PRIVILEGES, roles), against a table of
//    what each check type and each mysql_sql statement kind needs;
//  * for checks, one run of the check itself, the way wardend runs it (the
//    same MysqlReads, the check's own timeout): the server's answer decides,
//    so a grant this parser cannot see (a nested role, a MySQL 8 partial
//    revoke) is not reported missing when the server allowed the read.
// An action's SQL is never run: statements whose need is known (KILL,
// STOP/START REPLICA, FLUSH, ...) are checked against SHOW GRANTS; the rest
// (SELECT/UPDATE on named tables, SET GLOBAL) are reported as not verified.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace warden {

struct Config;

// One line of SHOW GRANTS.
struct GrantLine {
  enum class Kind {
    kPrivileges,  // GRANT privs ON object TO grantee
    kRoles,       // GRANT role[, role] TO grantee
    kProxy,       // GRANT PROXY ON ... TO ...
  };
  Kind kind = Kind::kPrivileges;
  // kPrivileges: upper case, '_' as ' ' (MySQL's dynamic privileges are
  // spelled REPLICATION_SLAVE_ADMIN, MariaDB's REPLICATION SLAVE ADMIN),
  // column lists dropped ("SELECT (a, b)" -> "SELECT"); ALL is "ALL PRIVILEGES".
  std::vector<std::string> privileges;
  bool global = false;           // ON *.*
  std::string database;          // unquoted; "" when global
  std::string table;             // unquoted; "*" for db.*
  bool routine = false;          // ON PROCEDURE / FUNCTION / PACKAGE
  bool with_grant_option = false;
  std::vector<std::string> roles;  // kRoles: unquoted role names ("r" of `r`@`%`)
};

// Parses one SHOW GRANTS row. An error names what it could not read.
Expected<GrantLine> ParseGrantLine(std::string_view line);

// "replica_monitor" -> "REPLICA MONITOR".
std::string NormalizePrivilege(std::string_view name);

// What the server granted, from its SHOW GRANTS rows.
class GrantSet {
 public:
  void Add(const GrantLine& line);
  // Granted on *.* (directly or by ALL PRIVILEGES on *.*). Aliases count:
  // REPLICA MONITOR = SLAVE MONITOR, REPLICATION CLIENT = BINLOG MONITOR.
  bool HasGlobal(std::string_view privilege) const;
  // The first of `any_of` held globally, or "" when none is.
  std::string FirstHeld(const std::vector<std::string>& any_of) const;
  // Privileges on *.* as listed ("USAGE" when none).
  std::string GlobalList() const;
  // Roles granted to the user (active or not).
  const std::vector<std::string>& roles() const { return roles_; }

 private:
  std::vector<std::string> global_;
  bool global_all_ = false;
  std::vector<std::string> roles_;
};

// The server, from SELECT VERSION() ("10.11.19-MariaDB-0+deb12u1", "8.0.36").
struct ServerVersion {
  bool mariadb = false;
  int major = 0, minor = 0, patch = 0;
  bool AtLeast(int ma, int mi, int pa) const;
};
ServerVersion ParseServerVersion(std::string_view version);

// Global privileges of which any one allows SHOW REPLICA STATUS.
std::vector<std::string> ReplicaStatusNeeds(const ServerVersion& server);

// What one statement of a mysql_sql action needs, from its first words.
struct StatementNeed {
  std::string what;                   // "KILL", "STOP REPLICA", "SELECT", ...
  std::vector<std::string> any_of;    // global privileges; empty: see `unverified`
  std::string unverified;             // why it cannot be known without running it
};
StatementNeed NeedOfStatement(std::string_view sql, const ServerVersion& server);

// MySQL error numbers (a failure's peer code) that mean "not allowed"
// (1044, 1045, 1095, 1142, 1143, 1227, 1370, ...).
bool IsPrivilegeError(int peer_code);

// Connects with every [mysql] section that checks or actions use and
// prints one line per check and action that uses MySQL to stdout, each
// problem as `check NAME (connection X): missing PRIV — server said: ...`.
// Returns 0 when everything needed is granted (or cannot be known without
// running an action), 1 when something is missing or a connection fails.
// With `lines`, the report's lines go there instead (validate --json).
int ReportGrants(const Config& config, std::vector<std::string>* lines = nullptr);

}  // namespace warden
