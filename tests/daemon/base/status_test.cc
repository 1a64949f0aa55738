#include "daemon/base/status.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <string>
#include <type_traits>

#include <catch2/catch.hpp>

namespace warden {
namespace {

// An Expected is made from a value or a Failure, never from a Status, and
// nobody but Status makes a Failure: an ok status cannot become an error
// without going through failure().
static_assert(std::is_constructible_v<Expected<int>, int>);
static_assert(std::is_constructible_v<Expected<int>, Failure>);
static_assert(!std::is_constructible_v<Expected<int>, Status>);
static_assert(!std::is_convertible_v<Status, Expected<std::string>>);
static_assert(!std::is_constructible_v<Failure, StatusCode, std::string>);
static_assert(!std::is_default_constructible_v<Failure>);
static_assert(std::is_convertible_v<Failure, Status>);

TEST_CASE("Status: ok has code ok and no message") {
  Status s = Status::Ok();
  CHECK(s.ok());
  CHECK(s.code() == StatusCode::kOk);
  CHECK(std::string(s.code_name()) == "ok");
  CHECK(s.message().empty());
  CHECK_FALSE(s.transient());
  CHECK(Status().ok());
}

TEST_CASE("Status: each constructor gives its code, its name and the message") {
  struct Case {
    Failure failure;
    StatusCode code;
    const char* name;
  };
  const Case cases[] = {
      {Status::Transient("m1"), StatusCode::kTransient, "transient"},
      {Status::Refused("m2"), StatusCode::kRefused, "refused"},
      {Status::Invalid("m3"), StatusCode::kInvalid, "invalid"},
      {Status::NotFound("m4"), StatusCode::kNotFound, "not_found"},
      {Status::Internal("m5"), StatusCode::kInternal, "internal"},
      {Status::Error("m6"), StatusCode::kInternal, "internal"},
  };
  int i = 0;
  for (const Case& c : cases) {
    ++i;
    INFO(c.name);
    Status s = c.failure;
    CHECK_FALSE(s.ok());
    CHECK(s.code() == c.code);
    CHECK(std::string(s.code_name()) == c.name);
    CHECK(std::string(c.failure.code_name()) == c.name);
    CHECK(s.message() == "m" + std::to_string(i));
    CHECK(s.transient() == (c.code == StatusCode::kTransient));
  }
}

TEST_CASE("Status: every code has its own name") {
  CHECK(std::string(StatusCodeName(StatusCode::kOk)) == "ok");
  CHECK(std::string(StatusCodeName(StatusCode::kTransient)) == "transient");
  CHECK(std::string(StatusCodeName(StatusCode::kRefused)) == "refused");
  CHECK(std::string(StatusCodeName(StatusCode::kInvalid)) == "invalid");
  CHECK(std::string(StatusCodeName(StatusCode::kNotFound)) == "not_found");
  CHECK(std::string(StatusCodeName(StatusCode::kInternal)) == "internal");
}

TEST_CASE("Status: WithCode keeps the code, and Prefixed keeps it too") {
  Status s = Status::WithCode(StatusCode::kRefused, "no");
  CHECK(s.code() == StatusCode::kRefused);
  Status p = Status::Transient("timed out").Prefixed("db1: ");
  CHECK(p.code() == StatusCode::kTransient);
  CHECK(p.message() == "db1: timed out");
}

TEST_CASE("Status: a peer code travels with the failure, -1 when none") {
  CHECK(Status::Ok().peer_code() == -1);
  Status plain = Status::Refused("no");
  CHECK(plain.peer_code() == -1);

  Failure denied = Status::Refused("ERROR 1045 (28000): Access denied").WithPeerCode(1045);
  CHECK(denied.peer_code() == 1045);
  CHECK(denied.code() == StatusCode::kRefused);
  CHECK(denied.message() == "ERROR 1045 (28000): Access denied");
  // Kept through Prefixed, a Status, its failure() and an Expected.
  Failure prefixed = denied.Prefixed("cannot connect to [mysql]: ");
  CHECK(prefixed.peer_code() == 1045);
  Status status = prefixed;
  CHECK(status.peer_code() == 1045);
  CHECK(status.failure().peer_code() == 1045);
  Expected<int> e = status.failure();
  CHECK(e.peer_code() == 1045);
  CHECK(e.failure().peer_code() == 1045);
  CHECK(e.status().peer_code() == 1045);
  CHECK(Expected<int>(3).peer_code() == -1);
  // WithPeerCode(-1) drops it; the code stays.
  Failure dropped = denied.WithPeerCode(-1);
  CHECK(dropped.peer_code() == -1);
  CHECK(dropped.code() == StatusCode::kRefused);
}

TEST_CASE("Status: errno values map to codes, and FromErrno names the call") {
  CHECK(ErrnoCode(ENOENT) == StatusCode::kNotFound);
  CHECK(ErrnoCode(EACCES) == StatusCode::kRefused);
  CHECK(ErrnoCode(EPERM) == StatusCode::kRefused);
  CHECK(ErrnoCode(ECONNREFUSED) == StatusCode::kTransient);
  CHECK(ErrnoCode(ECONNRESET) == StatusCode::kTransient);
  CHECK(ErrnoCode(ETIMEDOUT) == StatusCode::kTransient);
  CHECK(ErrnoCode(EPIPE) == StatusCode::kTransient);
  CHECK(ErrnoCode(EINVAL) == StatusCode::kInvalid);
  CHECK(ErrnoCode(ENOSPC) == StatusCode::kInternal);
  CHECK(ErrnoCode(0) == StatusCode::kInternal);
  Status s = Status::FromErrno(ENOENT, "cannot open /x");
  CHECK(s.code() == StatusCode::kNotFound);
  CHECK(s.message() == "cannot open /x: No such file or directory");
}

Expected<int> Half(int n) {
  if (n % 2 != 0) return Status::Invalid(std::to_string(n) + " is odd");
  return n / 2;
}

// Passes a failure on through failure(), code and message kept.
Expected<std::string> HalfText(int n) {
  auto h = Half(n);
  if (!h) return h.failure();
  return std::to_string(*h);
}

Status CheckEven(int n) {
  auto h = Half(n);
  if (!h) return h.failure();
  return Status::Ok();
}

Expected<int> QuarterOf(int n) {
  if (Status s = CheckEven(n); !s.ok()) return s.failure().Prefixed("quarter: ");
  return Half(n / 2);
}

TEST_CASE("Expected: a value or a failure with its code") {
  auto ok = Half(8);
  REQUIRE(ok);
  CHECK(*ok == 4);
  CHECK(ok.code() == StatusCode::kOk);
  CHECK(ok.status().ok());

  auto bad = Half(3);
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == "3 is odd");
  CHECK(bad.code() == StatusCode::kInvalid);
  CHECK(bad.status().code() == StatusCode::kInvalid);
  CHECK(bad.failure().message() == "3 is odd");

  auto text = HalfText(5);
  REQUIRE_FALSE(text);
  CHECK(text.code() == StatusCode::kInvalid);
  CHECK(text.error() == "5 is odd");
  CHECK(*HalfText(6) == "3");

  auto q = QuarterOf(7);
  REQUIRE_FALSE(q);
  CHECK(q.code() == StatusCode::kInvalid);
  CHECK(q.error() == "quarter: 7 is odd");
  CHECK(*QuarterOf(8) == 2);

  CHECK(Expected<int>::Error("x").code() == StatusCode::kInternal);
}

// failure() of an ok Status is a bug: a debug build aborts (checked in a
// forked child); a release build gives an internal failure, never ok.
TEST_CASE("Status: failure() of an ok status is never an ok failure") {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    Failure f = Status::Ok().failure();
    _exit(f.code() == StatusCode::kInternal && !f.message().empty() ? 3 : 4);
  }
  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
#ifdef NDEBUG
  REQUIRE(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 3);
#else
  REQUIRE(WIFSIGNALED(wstatus));
  CHECK(WTERMSIG(wstatus) == SIGABRT);
#endif
  Status still_ok = Status::Ok();
  CHECK(still_ok.ok());
}

}  // namespace
}  // namespace warden
