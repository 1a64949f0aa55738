// Every decision becomes an event: one flat JSON object with the common
// fields (host, event, seq, time, version) appended as one line to the
// events file, and handed to subscribers (the fluentd shipper later).
//
// seq is per host, strictly increasing and kept across restarts: at open it
// continues from the last line of the events file, or, when that file is
// gone (rotated), from a reservation kept in <state_dir>/seq that is
// advanced in blocks, so a crash can leave a gap but never a repeat.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/status.h"

namespace warden {

class EventLog {
 public:
  EventLog() = default;
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Opens (creating, mode 0640) the events file and restores seq.
  Status Open(const std::string& events_path, const std::string& state_dir, std::string host);

  // Adds the common fields and writes the event. Loop thread only. Returns
  // the event as written. A write error is logged, never thrown.
  nlohmann::json Emit(const std::string& event, nlohmann::json fields);

  using Subscriber = std::function<void(const nlohmann::json&)>;
  void Subscribe(Subscriber s) { subscribers_.push_back(std::move(s)); }

  std::uint64_t last_seq() const { return next_seq_ - 1; }
  // The last complete event of the events file when it was opened (none for
  // a new or rotated file). A crash can land between writing an event here
  // and handing it to subscribers; a subscriber that must not lose one (the
  // fluentd buffer) takes this again at start: at worst a duplicate.
  const std::optional<nlohmann::json>& last_event_at_open() const { return last_event_at_open_; }
  const std::string& host() const { return host_; }

 private:
  Status Reserve(std::uint64_t upto);
  int fd_ = -1;
  std::string path_;
  std::string seq_path_;
  std::string host_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t reserved_ = 0;
  std::optional<nlohmann::json> last_event_at_open_;   // seq values below this are on disk as reserved
  std::vector<Subscriber> subscribers_;
};

// RFC 3339 UTC with milliseconds: "2026-11-25T16:25:58.123Z".
std::string Rfc3339Now();

// Valid UTF-8 (invalid bytes become U+FFFD), at most `limit` bytes, cut at
// the front so the end of the output is kept, on a character boundary.
std::string Utf8Tail(std::string_view text, size_t limit = 4096);
// Replaces every occurrence of each secret (non-empty) with "****".
std::string Redact(std::string text, const std::vector<std::string>& secrets);

}  // namespace warden
