// Errors as values. A Status is ok or a Failure: a code that says what a
// caller may do about it, and a message meant for an operator. Expected<T>
// is a T or a Failure. Neither throws.
//
// The codes, and what a caller does with each:
//   transient  retry may help: a timeout, a refused or reset connection, a
//              server that went away or is out of connections. The
//              connection it happened on is dropped and made again.
//   refused    the peer understood and said no: access denied, a held
//              mutex, a permission. Asking again the same way will not help.
//   invalid    bad input: a configuration value, an argument, what a peer
//              sent that cannot be read.
//   not_found  what was named does not exist (a file, a backend, a key).
//   internal   none of those, or a bug: a caller can only report it.
//
// A failure may also carry the peer's own number for it (peer_code): a
// MySQL error number, etcd's gRPC code. Callers decide on the code; the
// peer code is for the rare one that must tell one refusal from another
// (which MySQL refusals are missing privileges), never parsed from text.
//
// An Expected<T> is made from a T or a Failure, never from a Status: a
// Failure comes only from the named constructors below (never ok) or from
// failure() of a Status or Expected that failed, so an ok Status cannot be
// passed off as an error by the type system; failure() of an ok one is a
// bug (see there).
#pragma once

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace warden {

enum class StatusCode { kOk, kTransient, kRefused, kInvalid, kNotFound, kInternal };

// "ok", "transient", "refused", "invalid", "not_found", "internal": the
// word logs and events use.
constexpr const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kTransient: return "transient";
    case StatusCode::kRefused: return "refused";
    case StatusCode::kInvalid: return "invalid";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kInternal: return "internal";
  }
  return "internal";
}

// The code of an errno value: ENOENT not_found; EACCES, EPERM, EROFS
// refused; timeouts, refused, reset or unreachable connections, EAGAIN and
// EINTR transient; EINVAL invalid; any other internal.
constexpr StatusCode ErrnoCode(int err) {
  switch (err) {
    case 0: return StatusCode::kInternal;
    case ENOENT: case ENOTDIR: return StatusCode::kNotFound;
    case EACCES: case EPERM: case EROFS: return StatusCode::kRefused;
    case ETIMEDOUT: case ECONNREFUSED: case ECONNRESET: case ECONNABORTED: case EPIPE:
    case EHOSTUNREACH: case ENETUNREACH: case ENETDOWN: case EAGAIN: case EINTR:
    case EINPROGRESS: case EALREADY: case ENOTCONN: case ESHUTDOWN:
      return StatusCode::kTransient;
    case EINVAL: return StatusCode::kInvalid;
    default: return StatusCode::kInternal;
  }
}

// A failed status. Its code is never kOk: only Status's named constructors
// and failure() make one.
class [[nodiscard]] Failure {
 public:
  StatusCode code() const { return code_; }
  const char* code_name() const { return StatusCodeName(code_); }
  const std::string& message() const { return message_; }
  // The peer's own number for the failure when it gave one (a MySQL error
  // number, the server's or its client library's: 1045, 2003; etcd's gRPC
  // code: 14); -1 when none.
  int peer_code() const { return peer_code_; }
  // The same failure with "`prefix`" before its message (the codes kept):
  // Failure::Prefixed("reading x: ").
  Failure Prefixed(const std::string& prefix) const {
    return Failure(code_, prefix + message_, peer_code_);
  }
  // The same failure carrying the peer's number `peer_code` (-1: none).
  Failure WithPeerCode(int peer_code) const { return Failure(code_, message_, peer_code); }

 private:
  friend class Status;
  Failure(StatusCode code, std::string message, int peer_code = -1)
      : code_(code), message_(std::move(message)), peer_code_(peer_code) {}
  StatusCode code_;
  std::string message_;
  int peer_code_;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Failure failure)  // NOLINT: implicit on purpose, a failure is a status
      : code_(failure.code_), message_(std::move(failure.message_)), peer_code_(failure.peer_code_) {}

  static Status Ok() { return Status(); }
  static Failure Transient(std::string message) {
    return Failure(StatusCode::kTransient, std::move(message));
  }
  static Failure Refused(std::string message) {
    return Failure(StatusCode::kRefused, std::move(message));
  }
  static Failure Invalid(std::string message) {
    return Failure(StatusCode::kInvalid, std::move(message));
  }
  static Failure NotFound(std::string message) {
    return Failure(StatusCode::kNotFound, std::move(message));
  }
  static Failure Internal(std::string message) {
    return Failure(StatusCode::kInternal, std::move(message));
  }
  // The same as Internal: an error no caller tells apart from others.
  // Where a caller's choice depends on it, say which it is instead.
  static Failure Error(std::string message) { return Internal(std::move(message)); }
  // A failure with `code`; kOk is a bug and is taken as kInternal.
  static Failure WithCode(StatusCode code, std::string message) {
    assert(code != StatusCode::kOk);
    return Failure(code == StatusCode::kOk ? StatusCode::kInternal : code, std::move(message));
  }

  // "`what`: <strerror(err)>", with ErrnoCode(err).
  static Failure FromErrno(int err, const std::string& what) {
    return Failure(ErrnoCode(err), what + ": " + std::strerror(err));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const char* code_name() const { return StatusCodeName(code_); }
  bool transient() const { return code_ == StatusCode::kTransient; }
  const std::string& message() const { return message_; }
  // The peer's own number for the failure (Failure::peer_code); -1 when ok or none.
  int peer_code() const { return peer_code_; }

  // This status as a Failure, to return it from a function that returns an
  // Expected. Only for a status that failed: on an ok one it is a bug, which
  // aborts a debug build and gives an internal failure otherwise.
  Failure failure() const {
    assert(!ok() && "failure() of an ok Status");
    if (ok()) return Failure(StatusCode::kInternal, "internal error: an ok status taken for a failure");
    return Failure(code_, message_, peer_code_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  int peer_code_ = -1;
};

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Expected(Failure failure) : v_(std::move(failure)) {}  // NOLINT: implicit on purpose

  // An internal failure (Status::Error).
  static Expected Error(std::string message) { return Expected(Status::Error(std::move(message))); }

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The failure's message; only when !ok().
  const std::string& error() const { return std::get<1>(v_).message(); }
  // The failure's code; kOk when ok().
  StatusCode code() const { return ok() ? StatusCode::kOk : std::get<1>(v_).code(); }
  // The failure's peer code (Failure::peer_code); -1 when ok or none.
  int peer_code() const { return ok() ? -1 : std::get<1>(v_).peer_code(); }
  // The failure, to pass it on. Only when !ok(): as Status::failure().
  Failure failure() const { return status().failure(); }
  Status status() const { return ok() ? Status::Ok() : Status(std::get<1>(v_)); }

  // As std::expected: equal to a value when it holds one equal to it.
  friend bool operator==(const Expected& e, const T& v) { return e.ok() && e.value() == v; }

 private:
  std::variant<T, Failure> v_;
};

}  // namespace warden
