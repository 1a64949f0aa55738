#include "actions/mysql_sql.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include <spdlog/spdlog.h>

#include "daemon/io/mysql.h"
#include "daemon/io/worker_pool.h"

namespace warden {

namespace {

constexpr size_t kMaxSqlFile = 16 * 1024 * 1024;

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string LineOf(std::string_view text, size_t pos) {
  return std::to_string(1 + std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
}

bool StartsWithWord(std::string_view text, std::string_view word) {
  if (text.size() < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != word[i]) return false;
  }
  return text.size() == word.size() || IsSpace(text[word.size()]);
}

}  // namespace

Expected<std::vector<std::string>> SplitSqlStatements(std::string_view sql) {
  using Result = Expected<std::vector<std::string>>;
  std::vector<std::string> out;
  const size_t n = sql.size();
  size_t start = 0;               // of the current statement
  std::optional<size_t> content;  // first character that is not blank or comment
  auto mark = [&](size_t i) {
    if (!content) content = i;
  };
  auto finish = [&](size_t end) -> Status {
    if (content) {
      if (StartsWithWord(sql.substr(*content), "delimiter")) {
        return Status::Error("DELIMITER (line " + LineOf(sql, *content) +
                             ") is a command of the mysql client, not SQL: run such a script "
                             "with the mysql client from an exec action");
      }
      out.emplace_back(Trim(sql.substr(start, end - start)));
    }
    content.reset();
    start = end + 1;
    return Status::Ok();
  };

  size_t i = 0;
  while (i < n) {
    char c = sql[i];
    if (c == '\'' || c == '"' || c == '`') {
      mark(i);
      size_t open = i++;
      for (;;) {
        if (i >= n) {
          const char* what = c == '\'' ? "single quote" : c == '"' ? "double quote" : "backtick";
          return Result::Error(std::string("unterminated ") + what + " (opened on line " +
                               LineOf(sql, open) + ")");
        }
        char d = sql[i];
        if (d == '\\' && c != '`') {
          i += 2;  // the escaped character, whatever it is
        } else if (d == c) {
          ++i;  // '' and `` are a closing quote and an opening one: same split
          break;
        } else {
          ++i;
        }
      }
    } else if (c == '#' || (c == '-' && i + 1 < n && sql[i + 1] == '-' &&
                            (i + 2 >= n || IsSpace(sql[i + 2]) ||
                             std::iscntrl(static_cast<unsigned char>(sql[i + 2]))))) {
      size_t nl = sql.find('\n', i);
      i = nl == std::string_view::npos ? n : nl + 1;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      // /*! ... */ (MySQL), /*M! ... */ (MariaDB) and /*+ ... */ (optimizer
      // hints) are executed: they count as content.
      if (i + 2 < n && (sql[i + 2] == '!' || sql[i + 2] == '+' ||
                        (sql[i + 2] == 'M' && i + 3 < n && sql[i + 3] == '!'))) {
        mark(i);
      }
      size_t close = sql.find("*/", i + 2);
      if (close == std::string_view::npos) {
        return Result::Error("unterminated /* comment (opened on line " + LineOf(sql, i) + ")");
      }
      i = close + 2;
    } else if (c == ';') {
      if (Status s = finish(i); !s.ok()) return s.failure();
      ++i;
    } else {
      if (!IsSpace(c)) mark(i);
      ++i;
    }
  }
  if (Status s = finish(n); !s.ok()) return s.failure();
  if (out.empty()) return Result::Error("no SQL statement (only blanks, comments or ';')");
  return out;
}

namespace {

// Blocking: worker threads only.
Expected<std::vector<std::string>> ReadStatements(const std::string& path) {
  using Result = Expected<std::vector<std::string>>;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Result::Error("cannot read " + path + ": " + std::strerror(errno));
  struct stat sb {};
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    return Result::Error("cannot read " + path + ": not a regular file");
  }
  if (static_cast<size_t>(sb.st_size) > kMaxSqlFile) {
    ::close(fd);
    return Result::Error(path + " is larger than 16MB");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      std::string e = "cannot read " + path + ": " + std::strerror(errno);
      ::close(fd);
      return Result::Error(e);
    }
    if (got == 0) break;
    text.append(buf, static_cast<size_t>(got));
    if (text.size() > kMaxSqlFile) {
      ::close(fd);
      return Result::Error(path + " is larger than 16MB");
    }
  }
  ::close(fd);
  auto statements = SplitSqlStatements(text);
  if (!statements) return Result::Error(path + ": " + statements.error());
  return statements;
}

ActionOutcome Failed(std::string error) {
  ActionOutcome out;
  out.error = std::move(error);
  return out;
}

void ExecuteStatements(Runtime& rt, const std::string& connection,
                       std::vector<std::string> statements,
                       std::shared_ptr<MysqlStatementControl> control, Action::Done done) {
  size_t count = statements.size();
  rt.mysql->Execute(
      connection, std::move(statements),
      [count, control, done = std::move(done)](Status status) {
        ActionOutcome out;
        out.ok = status.ok();
        if (!status.ok()) out.error = status.message();
        out.extra["statements"] = count;
        if (control->stop) {
          out.ok = false;
          out.error = "terminated: " + (status.ok() ? std::string("completed") : status.message());
          out.extra["terminated"] = true;
        }
        done(std::move(out));
      },
      control);
}

class MysqlSqlAction final : public Action {
 public:
  MysqlSqlAction(std::vector<std::string> statements, std::string file)
      : statements_(std::move(statements)), file_(std::move(file)) {}

  void Run(Runtime& rt, const ActionCommon& common, const Trigger& /*trigger*/,
           Done done) override {
    if (!rt.mysql) {
      done(Failed("internal error: no MySQL client in this runtime"));
      return;
    }
    // One run at a time (the guard): this run's control, until it ends.
    auto control = std::make_shared<MysqlStatementControl>();
    running_ = control;
    connection_ = common.connection;
    Done finish = [this, control, done = std::move(done)](ActionOutcome out) {
      if (running_ == control) running_.reset();
      done(std::move(out));
    };
    if (file_.empty()) {
      ExecuteStatements(rt, common.connection, statements_, control, std::move(finish));
      return;
    }
    if (!rt.workers) {
      finish(Failed("internal error: no worker pool in this runtime"));
      return;
    }
    auto loaded = std::make_shared<Expected<std::vector<std::string>>>(Status::Error("not read"));
    rt.workers->Submit(
        "file", WorkerPool::Clock::now() + common.timeout,
        [loaded, path = file_] {
          *loaded = ReadStatements(path);
          return true;
        },
        [&rt, loaded, path = file_, connection = common.connection, control,
         done = std::move(finish)](bool ran) mutable {
          if (!ran) {
            done(Failed("cannot read " + path + ": no worker was free within the timeout"));
          } else if (!loaded->ok()) {
            done(Failed(loaded->error()));
          } else {
            ExecuteStatements(rt, connection, std::move(loaded->value()), control,
                              std::move(done));
          }
        });
  }

  // KILL QUERY for the statement running now (the kill grace does not
  // apply: the server ends the statement itself); no later one starts.
  bool Terminate(Runtime& rt, Duration /*kill_grace*/) override {
    if (!running_ || !rt.mysql) return false;
    const std::string connection = connection_;
    rt.mysql->KillQuery(connection_, running_, [connection](Status s) {
      if (!s.ok()) spdlog::error("KILL QUERY on connection {} failed: {}", connection, s.message());
    });
    return true;
  }

 private:
  std::shared_ptr<MysqlStatementControl> running_;   // the run in flight, if any
  std::string connection_;                           // its connection
  const std::vector<std::string> statements_;  // when sql = ...
  const std::string file_;                     // when file = ...
};

constexpr OptionSpec kOptions[] = {
    opt::MultiLine("sql", "statements separated by ';' (sql or file)"),
    opt::Text("file",
              "a file of statements, read when the action runs; relative to the config file "
              "naming it (sql or file)"),
};

constexpr const char* kExample = R"([action restart_replication]
type     = mysql_sql
sql      = STOP REPLICA; START REPLICA
cooldown = 10m
budget   = 3 per 1h
)";

std::unique_ptr<Action> MakeMysqlSql(OptionReader& opts, const ActionCommon& /*common*/) {
  const size_t errors_before = opts.diag().errors().size();
  std::vector<std::string> statements;
  std::string file;
  bool has_sql = opts.Has("sql");
  bool has_file = opts.Has("file");
  if (has_sql && has_file) {
    opts.Find("sql");
    opts.Error(*opts.Find("file"), "set either sql or file, not both");
  } else if (!has_sql && !has_file) {
    opts.Find("sql");
    opts.Find("file");
    opts.Error(opts.section().title() + " needs 'sql' (statements separated by ';') or 'file'");
  } else if (has_sql) {
    if (auto text = opts.MultiLineText("sql")) {
      if (auto split = SplitSqlStatements(*text)) {
        statements = std::move(*split);
      } else {
        opts.Error(*opts.Find("sql"), "sql: " + split.error());
      }
    }
  } else if (auto path = opts.Text("file")) {
    std::filesystem::path p(*path);
    if (p.is_relative()) p = std::filesystem::path(opts.Find("file")->where.file).parent_path() / p;
    file = p.lexically_normal().string();
  }
  if (opts.diag().errors().size() != errors_before) return nullptr;
  return std::make_unique<MysqlSqlAction>(std::move(statements), std::move(file));
}

}  // namespace

const ActionType kMysqlSqlActionType = {
    "mysql_sql", "runs SQL statements (sql = ...; or file = PATH) on a MySQL connection",
    /*guarded=*/true, /*uses_mysql=*/true, kOptions, kExample, &MakeMysqlSql};

}  // namespace warden
