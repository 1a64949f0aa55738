// type = mysql_sql: runs SQL statements on a MySQL/MariaDB connection.
//
//   sql = STOP REPLICA; START REPLICA
//                     statements separated by ';' (a ';' inside quotes,
//                     backticks or comments does not separate); may continue
//                     on indented lines. Split when the config is loaded.
//   file = PATH       or: a file of such statements, read (on a worker, at
//                     most 16 MB) each time the action runs; relative to the
//                     directory of the config file that names it.
//   connection = NAME a [mysql NAME] section (the executor's common key).
//
// Exactly one of sql and file. The statements run one after another on
// one connection and stop at the first error, whose message (the server's,
// with its number) is the outcome's error. Each statement is bounded by the
// connection's query_timeout, not by the action's timeout (a statement the
// server is executing cannot be abandoned halfway). extra = {"statements": N}.
// DELIMITER (a mysql client command) is refused: stored program bodies
// need the mysql client, run by an exec action. Terminate (wardenctl abort,
// a terminating halt): no further statement starts, and the one running is
// ended with KILL QUERY <its connection id> from a second connection; the
// outcome fails with "terminated: ..." and extra terminated.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "actions/action.h"

namespace warden {

extern const ActionType kMysqlSqlActionType;

// Splits SQL text into statements on ';' outside '...', "...", `...`,
// -- and # line comments and /* */ comments (backslash escapes inside
// quotes, as MySQL's default sql_mode has them). Statements are trimmed;
// empty ones (nothing but blanks and comments) are dropped. Errors: an
// unterminated quote or comment, DELIMITER, no statement at all.
Expected<std::vector<std::string>> SplitSqlStatements(std::string_view sql);

}  // namespace warden
