#include "daemon/control/grants.h"

#include <ev.h>

#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "actions/mysql_sql.h"
#include "daemon/base/atomic_file.h"
#include "daemon/config/config.h"
#include "daemon/io/mysql.h"
#include "daemon/io/worker_pool.h"

namespace warden {

namespace {

char Upper(char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); }
bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string UpperCopy(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = Upper(c);
  return out;
}

// Positions in `text` outside quotes (` ' ") and parentheses.
class TopLevel {
 public:
  explicit TopLevel(std::string_view text) : text_(text) {
    top_.resize(text.size(), false);
    char quote = 0;
    int depth = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      char c = text[i];
      if (quote) {
        if (c == quote) {
          if (i + 1 < text.size() && text[i + 1] == quote) {
            ++i;  // doubled quote inside the quoted name
          } else {
            quote = 0;
          }
        } else if (c == '\\' && quote != '`') {
          ++i;
        }
        continue;
      }
      if (c == '`' || c == '\'' || c == '"') {
        quote = c;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')') {
        if (depth > 0) --depth;
      } else if (depth == 0) {
        top_[i] = true;
      }
    }
  }

  // The first ` WORD ` (case-insensitive, blank on both sides) at or after
  // `from` outside quotes and parentheses; npos when none.
  size_t FindWord(std::string_view word, size_t from = 0) const {
    for (size_t i = from; i + word.size() + 2 <= text_.size(); ++i) {
      if (!IsSpace(text_[i]) || !top_[i + 1]) continue;
      bool same = true;
      for (size_t j = 0; j < word.size() && same; ++j) same = Upper(text_[i + 1 + j]) == word[j];
      if (same && IsSpace(text_[i + 1 + word.size()])) return i;
    }
    return std::string_view::npos;
  }

  // Splits [begin, end) at top-level `sep`.
  std::vector<std::string_view> Split(size_t begin, size_t end, char sep) const {
    std::vector<std::string_view> out;
    size_t start = begin;
    for (size_t i = begin; i < end; ++i) {
      if (text_[i] == sep && top_[i]) {
        out.push_back(text_.substr(start, i - start));
        start = i + 1;
      }
    }
    out.push_back(text_.substr(start, end - start));
    return out;
  }

 private:
  std::string_view text_;
  std::vector<bool> top_;
};

// `a``b` -> a`b, 'x' -> x, "x" -> x; anything else as written.
std::string Unquote(std::string_view s) {
  s = Trim(s);
  if (s.size() >= 2 && (s[0] == '`' || s[0] == '\'' || s[0] == '"') && s.back() == s[0]) {
    char q = s[0];
    std::string out;
    for (size_t i = 1; i + 1 < s.size(); ++i) {
      out += s[i];
      if (s[i] == q && i + 2 < s.size() && s[i + 1] == q) ++i;
    }
    return out;
  }
  return std::string(s);
}

// `name`@`host` -> name (a role has no host on MariaDB, `%` on MySQL).
std::string RoleName(std::string_view s) {
  TopLevel top(s);
  auto parts = top.Split(0, s.size(), '@');
  return Unquote(parts.front());
}

// One spelling for privileges with several.
std::string Canonical(std::string name) {
  if (name == "REPLICA MONITOR") return "SLAVE MONITOR";
  if (name == "BINLOG MONITOR") return "REPLICATION CLIENT";  // MariaDB 10.5+ renamed it
  if (name == "ALL") return "ALL PRIVILEGES";
  return name;
}

}  // namespace

std::string NormalizePrivilege(std::string_view name) {
  std::string out;
  bool blank = false;
  for (char c : Trim(name)) {
    if (c == '_' || IsSpace(c)) {
      blank = true;
      continue;
    }
    if (blank && !out.empty()) out += ' ';
    blank = false;
    out += Upper(c);
  }
  return out;
}

Expected<GrantLine> ParseGrantLine(std::string_view line) {
  using Result = Expected<GrantLine>;
  std::string_view text = Trim(line);
  if (text.size() < 6 || UpperCopy(text.substr(0, 6)) != "GRANT ") {
    return Result::Error("not a GRANT line: " + std::string(text));
  }
  TopLevel top(text);
  size_t to = top.FindWord("TO", 5);
  if (to == std::string_view::npos) {
    return Result::Error("no TO in GRANT line: " + std::string(text));
  }
  size_t on = top.FindWord("ON", 5);
  GrantLine g;
  std::string tail = UpperCopy(text.substr(to));
  g.with_grant_option = tail.find(" WITH GRANT OPTION") != std::string::npos ||
                        tail.find(" WITH ADMIN OPTION") != std::string::npos;
  if (on == std::string_view::npos || on > to) {
    // GRANT `role1`,`role2` TO `user`@`host`
    g.kind = GrantLine::Kind::kRoles;
    for (auto part : top.Split(6, to, ',')) {
      std::string name = RoleName(part);
      if (name.empty()) return Result::Error("empty role name in GRANT line: " + std::string(text));
      g.roles.push_back(std::move(name));
    }
    return g;
  }
  for (auto part : top.Split(6, on, ',')) {
    // "SELECT (a, b)": the column list is dropped.
    std::string_view p = Trim(part);
    size_t paren = p.find('(');
    if (paren != std::string_view::npos) p = Trim(p.substr(0, paren));
    std::string name = Canonical(NormalizePrivilege(p));
    if (name.empty()) return Result::Error("empty privilege in GRANT line: " + std::string(text));
    g.privileges.push_back(std::move(name));
  }
  if (g.privileges.size() == 1 && g.privileges[0] == "PROXY") g.kind = GrantLine::Kind::kProxy;
  std::string_view object = Trim(text.substr(on + 4, to - on - 4));
  for (const char* kind : {"PROCEDURE ", "FUNCTION ", "PACKAGE BODY ", "PACKAGE "}) {
    std::string_view k(kind);
    if (object.size() > k.size() && UpperCopy(object.substr(0, k.size())) == k) {
      g.routine = true;
      object = Trim(object.substr(k.size()));
      break;
    }
  }
  if (object.empty()) return Result::Error("no object after ON in GRANT line: " + std::string(text));
  TopLevel otop(object);
  auto parts = otop.Split(0, object.size(), '.');
  if (parts.size() == 2) {
    g.database = Unquote(parts[0]);
    g.table = Unquote(parts[1]);
  } else {
    g.table = Unquote(object);
  }
  g.global = g.database == "*" && g.table == "*" && Trim(parts[0]) == "*";
  if (g.global) {
    g.database.clear();
  }
  return g;
}

void GrantSet::Add(const GrantLine& line) {
  if (line.kind == GrantLine::Kind::kRoles) {
    for (const auto& r : line.roles) {
      if (std::find(roles_.begin(), roles_.end(), r) == roles_.end()) roles_.push_back(r);
    }
    return;
  }
  if (line.kind != GrantLine::Kind::kPrivileges || !line.global) return;
  for (const auto& p : line.privileges) {
    if (p == "ALL PRIVILEGES") global_all_ = true;
    if (p == "USAGE") continue;
    if (std::find(global_.begin(), global_.end(), p) == global_.end()) global_.push_back(p);
  }
}

bool GrantSet::HasGlobal(std::string_view privilege) const {
  if (global_all_) return true;
  std::string want = Canonical(NormalizePrivilege(privilege));
  return std::find(global_.begin(), global_.end(), want) != global_.end();
}

std::string GrantSet::FirstHeld(const std::vector<std::string>& any_of) const {
  for (const auto& p : any_of) {
    if (HasGlobal(p)) return p;
  }
  return {};
}

std::string GrantSet::GlobalList() const {
  if (global_.empty()) return "USAGE";
  std::string out;
  for (const auto& p : global_) out += (out.empty() ? "" : ", ") + p;
  return out;
}

bool ServerVersion::AtLeast(int ma, int mi, int pa) const {
  if (major != ma) return major > ma;
  if (minor != mi) return minor > mi;
  return patch >= pa;
}

ServerVersion ParseServerVersion(std::string_view version) {
  ServerVersion v;
  v.mariadb = version.find("MariaDB") != std::string_view::npos;
  // MariaDB 10 behind a MySQL 5.5 compatibility prefix: "5.5.5-10.11.6-MariaDB".
  if (v.mariadb && version.substr(0, 6) == "5.5.5-") version.remove_prefix(6);
  int* parts[] = {&v.major, &v.minor, &v.patch};
  size_t i = 0;
  for (int* part : parts) {
    int n = 0;
    bool any = false;
    while (i < version.size() && std::isdigit(static_cast<unsigned char>(version[i]))) {
      n = n * 10 + (version[i] - '0');
      any = true;
      ++i;
    }
    if (!any) break;
    *part = n;
    if (i < version.size() && version[i] == '.') {
      ++i;
    } else {
      break;
    }
  }
  return v;
}

std::vector<std::string> ReplicaStatusNeeds(const ServerVersion& server) {
  if (server.mariadb) {
    // Tried on MariaDB 10.11: REPLICATION CLIENT (shown as BINLOG MONITOR)
    // is refused; "you need (at least one of) the SUPER, SLAVE MONITOR".
    if (server.AtLeast(10, 5, 9)) return {"SLAVE MONITOR", "SUPER"};
    if (server.AtLeast(10, 5, 2)) return {"REPLICATION SLAVE ADMIN", "SUPER"};
  }
  return {"REPLICATION CLIENT", "SUPER"};
}

namespace {

// The statement without leading blanks and non-executed comments.
std::string_view SkipComments(std::string_view s) {
  for (;;) {
    s = Trim(s);
    if (s.substr(0, 1) == "#" || (s.substr(0, 2) == "--" && (s.size() == 2 || IsSpace(s[2])))) {
      size_t nl = s.find('\n');
      s = nl == std::string_view::npos ? std::string_view() : s.substr(nl + 1);
    } else if (s.substr(0, 2) == "/*" && s.substr(0, 3) != "/*!" && s.substr(0, 4) != "/*M!") {
      size_t close = s.find("*/", 2);
      s = close == std::string_view::npos ? std::string_view() : s.substr(close + 2);
    } else {
      return s;
    }
  }
}

std::vector<std::string> FirstWords(std::string_view s, size_t n) {
  std::vector<std::string> out;
  size_t i = 0;
  while (out.size() < n && i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' ||
                            s[i] == '@')) {
      ++i;
    }
    if (i == start) break;
    out.push_back(UpperCopy(s.substr(start, i - start)));
  }
  while (out.size() < n) out.emplace_back();
  return out;
}

}  // namespace

StatementNeed NeedOfStatement(std::string_view sql, const ServerVersion& server) {
  StatementNeed need;
  auto w = FirstWords(SkipComments(sql), 3);
  need.what = w[0];
  // MariaDB 10.5.2 split SUPER into narrower privileges; SUPER still works
  // for the statements below (tried on 10.11 for KILL and STOP REPLICA).
  bool split_super = !server.mariadb || server.AtLeast(10, 5, 2);
  bool replica_word = w[1] == "REPLICA" || w[1] == "SLAVE" || w[1] == "ALL";
  if (w[0] == "KILL") {
    need.any_of = split_super ? std::vector<std::string>{"CONNECTION ADMIN", "SUPER"}
                              : std::vector<std::string>{"SUPER"};
  } else if (((w[0] == "STOP" || w[0] == "START") && replica_word) ||
             (w[0] == "RESET" && (w[1] == "REPLICA" || w[1] == "SLAVE")) ||
             (w[0] == "CHANGE" && (w[1] == "MASTER" || w[1] == "REPLICATION"))) {
    need.what = w[0] + " " + w[1];
    need.any_of = split_super ? std::vector<std::string>{"REPLICATION SLAVE ADMIN", "SUPER"}
                              : std::vector<std::string>{"SUPER"};
  } else if (w[0] == "FLUSH") {
    need.any_of = {"RELOAD"};
  } else if (w[0] == "PURGE") {
    need.any_of = split_super ? std::vector<std::string>{"BINLOG ADMIN", "SUPER"}
                              : std::vector<std::string>{"SUPER"};
  } else if (w[0] == "SHUTDOWN") {
    need.any_of = {"SHUTDOWN"};
  } else if (w[0] == "SET" && (w[1] == "GLOBAL" || w[1].rfind("@@GLOBAL", 0) == 0 ||
                               w[1] == "PERSIST")) {
    need.what = "SET GLOBAL";
    need.unverified = "SET GLOBAL needs SUPER or, on MariaDB 10.5+ and MySQL 8, the variable's "
                      "own privilege (read_only: READ_ONLY ADMIN)";
  } else if (w[0] == "SELECT" || w[0] == "INSERT" || w[0] == "UPDATE" || w[0] == "DELETE") {
    need.any_of = {w[0]};
    need.unverified = w[0] + " needs " + w[0] + " on the tables it names";
  } else if (w[0] == "CALL") {
    need.any_of = {"EXECUTE"};
    need.unverified = "CALL needs EXECUTE on the routine and what the routine touches";
  } else if (w[0].empty()) {
    need.what = "?";
    need.unverified = "the statement does not start with a word";
  } else {
    need.unverified = "wardenctl does not know what " + w[0] + " needs";
  }
  return need;
}

bool IsPrivilegeError(int peer_code) {
  switch (peer_code) {
    case 1044:  // ER_DBACCESS_DENIED_ERROR
    case 1045:  // ER_ACCESS_DENIED_ERROR
    case 1095:  // ER_KILL_DENIED_ERROR
    case 1142:  // ER_TABLEACCESS_DENIED_ERROR
    case 1143:  // ER_COLUMNACCESS_DENIED_ERROR
    case 1227:  // ER_SPECIFIC_ACCESS_DENIED_ERROR
    case 1370:  // ER_PROCACCESS_DENIED_ERROR
    case 1698:  // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// The report

namespace {

std::string AnyOf(const std::vector<std::string>& any_of) {
  std::string out;
  for (size_t i = 0; i < any_of.size(); ++i) {
    if (i == 0) {
      out = any_of[i];
    } else {
      out += (i == 1 ? " (or " : ", ") + any_of[i];
    }
  }
  if (any_of.size() > 1) out += ")";
  return out;
}

std::string ConnectionLabel(const std::string& name) { return name.empty() ? "[mysql]" : name; }

// One run of wardend's own MySQL machinery on a private loop: the calls
// below block until the worker answers (bounded by the connection's
// connect and query timeouts).
class Client {
 public:
  explicit Client(const Config& config)
      : loop_(ev_loop_new(EVFLAG_AUTO)),
        pool_(std::make_unique<WorkerPool>(loop_, 2)),
        reads_(std::make_unique<MysqlReads>(*pool_, config.mysql)) {
    rt_.loop = loop_;
    rt_.workers = pool_.get();
    rt_.mysql = reads_.get();
    rt_.host = config.daemon.host_id;
    rt_.service_command = config.daemon.service_command;
  }
  ~Client() {
    reads_.reset();
    pool_.reset();
    ev_loop_destroy(loop_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Expected<MysqlRows> Query(const std::string& connection, const std::string& sql) {
    auto out = std::make_shared<std::optional<Expected<MysqlRows>>>();
    reads_->Query(connection, sql, [out](Expected<MysqlRows> r) { *out = std::move(r); });
    while (!*out) ev_run(loop_, EVRUN_ONCE);
    return std::move(**out);
  }

  // Runs the check once as the scheduler would; gives up after `limit`.
  Measurement RunCheck(Check& check, Duration limit) {
    auto out = std::make_shared<std::optional<Measurement>>();
    check.Run(rt_, [out](Measurement m) { *out = std::move(m); });
    ev_timer timer;
    bool expired = false;
    ev_timer_init(&timer, [](struct ev_loop*, ev_timer* w, int) { *static_cast<bool*>(w->data) = true; },
                  static_cast<double>(limit.count()) / 1000.0, 0.);
    timer.data = &expired;
    ev_timer_start(loop_, &timer);
    while (!*out && !expired) ev_run(loop_, EVRUN_ONCE);
    ev_timer_stop(loop_, &timer);
    if (!*out) {
      return Measurement::Error(Status::Transient("no answer within " + FormatDuration(limit)));
    }
    return std::move(**out);
  }

 private:
  struct ev_loop* loop_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<MysqlReads> reads_;
  Runtime rt_;
};

struct Use {
  const CheckConfig* check = nullptr;
  const ActionConfig* action = nullptr;
  std::string Name() const { return check ? check->common.name : action->common.name; }
  std::string Kind() const { return check ? "check" : "action"; }
};

// The statements of a mysql_sql action: its `sql`, or its `file` read now.
Expected<std::vector<std::string>> ActionStatements(const Config& config,
                                                    const ActionConfig& action) {
  using Result = Expected<std::vector<std::string>>;
  Diagnostics diag;
  IniOptions options;
  options.check_ownership = false;  // LoadConfig has checked them already
  for (const auto& s : ReadIniFiles(config.path, options, diag)) {
    if (s.kind != "action" || s.name != action.common.name) continue;
    for (const auto& e : s.entries) {
      if (e.key == "sql") return SplitSqlStatements(e.value);
      if (e.key == "file") {
        std::filesystem::path p(std::string(Trim(e.value)));
        if (p.is_relative()) p = std::filesystem::path(e.where.file).parent_path() / p;
        std::string path = p.lexically_normal().string();
        auto text = ReadSmallFile(path, 16u << 20);
        if (!text) return Result::Error(text.error());
        auto split = SplitSqlStatements(*text);
        if (!split) return Result::Error(path + ": " + split.error());
        return split;
      }
    }
  }
  return Result::Error("its section was not found again in " + config.path);
}

class Reporter {
 public:
  Reporter(const Config& config, std::vector<std::string>* lines)
      : config_(config), client_(config), lines_(lines) {}

  int Run() {
    // Connections in the order checks and actions first use them.
    std::vector<std::string> order;
    std::map<std::string, std::vector<Use>> uses;
    auto add = [&](const std::string& connection, Use use) {
      if (!uses.count(connection)) order.push_back(connection);
      uses[connection].push_back(use);
    };
    for (const auto& c : config_.checks) {
      if (c.type && c.type->uses_mysql) add(c.common.connection, Use{&c, nullptr});
    }
    for (const auto& a : config_.actions) {
      if (a.type && a.type->uses_mysql) add(a.common.connection, Use{nullptr, &a});
    }
    if (order.empty()) {
      Print("grants: no check or action uses MySQL\n");
      return 0;
    }
    for (const auto& connection : order) Connection(connection, uses[connection]);
    if (problems_ == 0) {
      Print("grants: ok (%zu connection(s))\n", order.size());
      return 0;
    }
    Print("grants: %d problem(s)\n", problems_);
    return 1;
  }

 private:
  // A line of the report (a format with or without its newline): to
  // stdout, or kept in `lines_` (validate --json).
  __attribute__((format(printf, 2, 3))) void Print(const char* format, ...) {
    va_list args;
    va_start(args, format);
    char* text = nullptr;
    int n = ::vasprintf(&text, format, args);
    va_end(args);
    if (n < 0) return;
    std::string line(text, static_cast<size_t>(n));
    std::free(text);
    if (!lines_) {
      std::fputs(line.c_str(), stdout);
      return;
    }
    size_t start = 0;
    for (size_t nl; (nl = line.find('\n', start)) != std::string::npos; start = nl + 1) {
      lines_->push_back(partial_ + line.substr(start, nl - start));
      partial_.clear();
    }
    partial_ += line.substr(start);
  }

  void Problem(const std::string& line) {
    Print("%s\n", line.c_str());
    ++problems_;
  }

  void Connection(const std::string& connection, const std::vector<Use>& uses) {
    const std::string label = ConnectionLabel(connection);
    std::string users;
    for (const auto& u : uses) users += (users.empty() ? "" : ", ") + u.Kind() + " " + u.Name();

    auto who = client_.Query(connection, "SELECT VERSION(), CURRENT_USER(), CURRENT_ROLE()");
    bool have_role_function = true;
    const int who_error = who.peer_code();
    if (who_error == 1305 || who_error == 1064) {
      // MySQL 5.7 has no CURRENT_ROLE() (1305: FUNCTION does not exist).
      have_role_function = false;
      who = client_.Query(connection, "SELECT VERSION(), CURRENT_USER(), NULL");
    }
    if (!who) {
      Problem("connection " + label + ": " + who.error() + " (used by " + users + ")");
      return;
    }
    auto cell = [&](size_t i) -> std::string {
      if (who->rows.empty() || who->rows[0].size() <= i || !who->rows[0][i]) return {};
      return *who->rows[0][i];
    };
    std::string version = cell(0), user = cell(1), role = cell(2);
    if (role == "NONE") role.clear();
    ServerVersion server = ParseServerVersion(version);

    GrantSet grants;
    std::vector<std::string> statements = {"SHOW GRANTS"};
    if (!server.mariadb && have_role_function && !role.empty()) {
      // MySQL 8 lists a role's privileges only when asked USING it.
      statements.push_back("SHOW GRANTS FOR CURRENT_USER() USING " + role);
    }
    for (const auto& sql : statements) {
      auto rows = client_.Query(connection, sql);
      if (!rows) {
        Problem("connection " + label + ": " + sql + " failed — server said: " + rows.error());
        return;
      }
      for (const auto& row : rows->rows) {
        if (row.empty() || !row[0]) continue;
        auto line = ParseGrantLine(*row[0]);
        if (line) {
          grants.Add(*line);
        } else {
          Print("connection %s: note: %s\n", label.c_str(), line.error().c_str());
        }
      }
    }
    std::string roles;
    for (const auto& r : grants.roles()) roles += (roles.empty() ? "" : ", ") + r;
    Print("connection %s: %s on %s; privileges on *.*: %s%s%s\n", label.c_str(),
                user.c_str(), version.c_str(), grants.GlobalList().c_str(),
                roles.empty() ? "" : ("; roles granted: " + roles).c_str(),
                role.empty() ? "" : ("; active: " + role).c_str());
    std::string inactive_hint;
    if (!grants.roles().empty() && role.empty()) {
      inactive_hint = " (a role is granted but none is active at login: SET DEFAULT ROLE)";
    }

    for (const auto& u : uses) {
      if (u.check) {
        ReportCheck(*u.check, label, server, grants, inactive_hint);
      } else {
        ReportAction(*u.action, label, server, grants, inactive_hint);
      }
    }
  }

  void ReportCheck(const CheckConfig& check, const std::string& label, const ServerVersion& server,
                   const GrantSet& grants, const std::string& hint) {
    const std::string head = "check " + check.common.name + " (connection " + label + "): ";
    std::vector<std::string> needs;
    if (check.common.type == "mysql_replica") needs = ReplicaStatusNeeds(server);
    std::string needs_text = needs.empty() ? "no privilege beyond connecting" : AnyOf(needs);
    if (check.common.type == "mysql_query") needs_text = "what its SQL reads (ran it: allowed)";

    const MysqlConnConfig* conn = FindConnection(check.common.connection);
    Duration limit = check.common.timeout;
    if (conn) limit = Duration(limit.count() + conn->connect_timeout.count() + conn->query_timeout.count());
    Measurement m = check.impl ? client_.RunCheck(*check.impl, limit)
                               : Measurement::Error("internal error: the check was not built");
    if (m.kind == Measurement::Kind::kError) {
      if (IsPrivilegeError(m.peer_code)) {
        std::string missing = needs.empty() ? DeniedPrivilege(m.error) : AnyOf(needs);
        Problem(head + "missing " + missing + hint + " — server said: " + m.error);
        return;
      }
      // Not run in time (no worker free, no answer): no MySQL error to judge.
      if (m.peer_code < 0 && m.code == StatusCode::kTransient) {
        Problem(head + "could not be tried — " + m.error);
        return;
      }
      std::string held = needs.empty() ? "" : grants.FirstHeld(needs);
      Print("%sneeds %s%s; note: the check's run failed for another reason — %s\n",
                  head.c_str(), needs_text.c_str(), held.empty() ? "" : " (granted)",
                  m.error.c_str());
      return;
    }
    Print("%sok — needs %s\n", head.c_str(), needs_text.c_str());
  }

  void ReportAction(const ActionConfig& action, const std::string& label,
                    const ServerVersion& server, const GrantSet& grants, const std::string& hint) {
    const std::string head = "action " + action.common.name + " (connection " + label + "): ";
    auto statements = ActionStatements(config_, action);
    if (!statements) {
      Print("%snot verified: %s\n", head.c_str(), statements.error().c_str());
      return;
    }
    std::vector<std::string> ok, unverified;
    bool missing = false;
    for (size_t i = 0; i < statements->size(); ++i) {
      StatementNeed need = NeedOfStatement((*statements)[i], server);
      std::string where = "statement " + std::to_string(i + 1) + " (" + need.what + ")";
      std::string held = need.any_of.empty() ? "" : grants.FirstHeld(need.any_of);
      if (!held.empty()) {
        ok.push_back(held + " for " + need.what);
      } else if (!need.unverified.empty()) {
        unverified.push_back(where + ": " + need.unverified);
      } else {
        Problem(head + "missing " + AnyOf(need.any_of) + " for " + where + hint +
                " — server grants on *.*: " + grants.GlobalList());
        missing = true;
      }
    }
    for (const auto& u : unverified) {
      Print("%snot verified without running it: %s\n", head.c_str(), u.c_str());
    }
    if (!missing && unverified.empty()) {
      std::string list;
      for (const auto& o : ok) list += (list.empty() ? "" : ", ") + o;
      Print("%sok — %s\n", head.c_str(), list.c_str());
    }
  }

  // "SELECT command denied to user ..." -> "SELECT"; otherwise a general word.
  static std::string DeniedPrivilege(const std::string& error) {
    size_t at = error.find("): ");
    std::string_view msg = at == std::string::npos ? std::string_view(error)
                                                   : std::string_view(error).substr(at + 3);
    size_t cmd = msg.find(" command denied");
    if (cmd != std::string_view::npos && cmd < 40) return std::string(msg.substr(0, cmd));
    return "a privilege";
  }

  const MysqlConnConfig* FindConnection(const std::string& connection) const {
    auto it = config_.mysql.find(connection);
    return it == config_.mysql.end() ? nullptr : &it->second;
  }

  const Config& config_;
  Client client_;
  int problems_ = 0;
  std::vector<std::string>* lines_;   // null: print to stdout
  std::string partial_;               // a line printed in pieces, so far
};

}  // namespace

int ReportGrants(const Config& config, std::vector<std::string>* lines) {
  Reporter reporter(config, lines);
  return reporter.Run();
}

}  // namespace warden
