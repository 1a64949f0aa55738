// journald's native protocol, spoken directly (no libsystemd: its sender
// blocks when the journal is slow, and its socket path is fixed).
//
// An entry is one datagram to journald's socket (/run/systemd/journal/socket,
// or `[log] journal_socket`) made of fields: `NAME=value\n`, or, for a value
// that holds a newline, `NAME\n` + the value's length as 64-bit
// little-endian + the value + `\n`. Names are A-Z, 0-9 and `_`, start with
// a letter, at most 64 bytes (journald drops others; fields starting with
// `_` are its own, trusted ones).
//
// Large entries: libsystemd falls back to passing a memfd when a datagram is
// too large. wardend does not: MESSAGE is cut to kMaxMessage bytes (on a
// UTF-8 boundary, with a marker saying how much was cut), which keeps every
// entry far below the socket's datagram limit; an entry refused anyway
// (EMSGSIZE) counts as failed.
//
// Never blocking: the socket is non-blocking. When journald is behind and
// its socket is full (EAGAIN), the entry is dropped and counted; the next
// entry that gets through is preceded by one saying how many were dropped.
// Any other failure (no journald, the socket path gone) is counted as
// failed and returned, so that the caller can write the line elsewhere
// (JournalSink writes it to stderr).
//
// Threads: Send may be called from any thread (the human log is written
// from the loop, the disk thread and the workers).
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace warden {

// syslog(3) priorities, as journald's PRIORITY field wants them.
enum class JournalPriority { kCrit = 2, kErr = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

struct JournalField {
  std::string name;
  std::string value;
};

// A valid field name for a client to send (see above).
bool ValidJournalFieldName(std::string_view name);
// Appends one field in the native format (the binary form when the value
// holds a newline). The name must be valid (ValidJournalFieldName).
void AppendJournalField(std::string& out, std::string_view name, std::string_view value);
// MESSAGE cut to `limit` bytes (never inside a UTF-8 sequence), with
// " [... N bytes cut]" after it; unchanged when short enough.
std::string CutJournalMessage(std::string_view message, std::size_t limit);
// A whole entry: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, then `fields` (those
// with invalid names are left out).
std::string EncodeJournalEntry(JournalPriority priority, std::string_view identifier,
                               std::string_view message, const std::vector<JournalField>& fields);

// True when JOURNAL_STREAM ("DEV:INODE", as systemd sets it for a service
// whose stderr is the journal) names the file `fd` is open on. Null or
// unparsable: false.
bool FdIsJournalStream(const char* journal_stream, int fd);

class JournalSender {
 public:
  static constexpr std::size_t kMaxMessage = 32 * 1024;

  // How an entry that did not fail went: kDropped when journald's socket
  // was full.
  enum class Result { kSent, kDropped };
  struct Stats {
    std::uint64_t sent = 0;
    std::uint64_t dropped = 0;   // journald's socket was full (EAGAIN)
    std::uint64_t failed = 0;    // any other error
    std::string last_error;      // of the last failure, "" before any
  };

  // identifier: SYSLOG_IDENTIFIER of every entry ("wardend").
  JournalSender(std::string socket_path, std::string identifier);
  ~JournalSender();
  JournalSender(const JournalSender&) = delete;
  JournalSender& operator=(const JournalSender&) = delete;

  // Sends one entry, never waiting; fails (no journald, the path gone...)
  // with the reason.
  Expected<Result> Send(JournalPriority priority, std::string_view message,
                        const std::vector<JournalField>& fields = {});

  Stats stats() const;
  const std::string& socket_path() const { return path_; }

 private:
  // count: in the stats (not for the note about drops).
  Expected<Result> SendEncoded(const std::string& datagram, bool count);

  const std::string path_;
  const std::string identifier_;
  int fd_ = -1;                      // constant after construction (-1: socket(2) failed)
  std::atomic<std::uint64_t> sent_{0}, dropped_{0}, failed_{0};
  std::atomic<std::uint64_t> dropped_unreported_{0};
  mutable std::mutex mu_;            // last_error_
  std::string last_error_;
};

// wardend's human log as journal entries: the line's text as MESSAGE (no
// timestamp or level: journald has both), PRIORITY from its level. A line
// the journal did not take for any reason but a full socket is written to
// stderr instead (with the usual pattern), so that nothing is lost silently.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JournalSink(std::shared_ptr<JournalSender> sender);
  static JournalPriority PriorityOf(spdlog::level::level_enum level);

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override;

 private:
  std::shared_ptr<JournalSender> sender_;
};

}  // namespace warden
