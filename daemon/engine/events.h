// Every decision becomes an event: one flat JSON object with the common
// fields (host, event, seq, time, version) appended as one line to the
// events file, and handed to subscribers (the fluentd shipper later).
//
// seq is per host, strictly increasing and kept across restarts: at open it
// continues from the last line of the events file, or, when that file is
// gone (rotated), from a reservation kept in <state_dir>/seq that is
// advanced in blocks, so a crash can leave a gap but never a repeat.
//
// The writes themselves run on the DiskWriter (SetWriter; wardend's is a
// thread of its own), in seq order: Emit never waits on the disk.
//
// A full or read-only disk: a write that fails or comes up short never
// leaves part of a line behind (the file is cut back to its last complete
// line), and the events that could not be written are held in memory, in
// seq order, and written as soon as the file takes them again (before any
// newer event, and every second from SetLoop's timer). At most kHeldEvents
// events / kHeldBytes bytes are held; beyond that new events are not kept
// for the file until the held ones are written, and one events.dropped
// event then says how many and which seq range (docs/behaviour.md). The
// trouble is logged once when it starts and once when it ends, and shown
// by wardenctl status (write_health()).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/disk_writer.h"
#include "daemon/base/held_queue.h"
#include "daemon/base/status.h"

struct ev_loop;
struct ev_periodic;

namespace warden {

class EventLog {
 public:
  static constexpr std::size_t kHeldEvents = 10000;
  static constexpr std::size_t kHeldBytes = 16 << 20;

  EventLog();
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

  // Retries writing held events every second on `loop` (wardend's; tests
  // without one call Flush themselves).
  void SetLoop(struct ev_loop* loop);
  // Where the file is written from (wardend's disk thread); it must
  // outlive this log or be stopped first. Default: at once, in Emit.
  void SetWriter(DiskWriter* writer) { writer_ = writer; }
  // Writes the held events, oldest first, as far as the file takes them.
  void Flush();

  struct WriteHealth {
    std::string error;             // "" while the file takes every event
    std::int64_t since_ms = 0;     // wall clock, when the trouble began
    std::size_t held = 0;          // events waiting to be written
    std::uint64_t dropped = 0;     // events never written to the file, since start
  };
  WriteHealth write_health() const;
  // Tests: replaces write(2) on the events file (a full disk on demand).
  using WriteFn = std::function<ssize_t(int fd, const void* data, std::size_t size)>;
  void SetWriteForTest(WriteFn write) { write_ = std::move(write); }

  std::uint64_t last_seq() const { return next_seq_ - 1; }
  // The last complete event of the events file when it was opened (none for
  // a new or rotated file). A crash can land between writing an event here
  // and handing it to subscribers; a subscriber that must not lose one (the
  // fluentd buffer) takes this again at start: at worst a duplicate.
  const std::optional<nlohmann::json>& last_event_at_open() const { return last_event_at_open_; }
  const std::string& host() const { return host_; }

 private:
  Status Reserve(std::uint64_t upto);
  // On the writer: the held lines first, then this one (or it is held).
  void WriteOrHold(std::uint64_t seq, std::string line);
  // On the writer: the held lines, as far as the file takes them; a drop
  // range, once all are written, is reported (events.dropped, on the loop).
  bool DrainHeld();
  void PublishHealth();   // for write_health(), under mu_
  // On the writer: a file deleted under us (nlink 0) is made again.
  void ReopenIfRemoved();
  void ReportDrop();      // at the end of a writer task: events.dropped
  // Appends one line; the reason when the file did not take all of it, in
  // which case none of it stays in the file.
  Status WriteLine(const std::string& line);
  // Cuts the last `torn_` bytes (the start of a line that a failed write
  // left) off the file.
  Status CutTorn();
  static void OnRetry(struct ev_loop* loop, ev_periodic* w, int revents);

  struct Held {
    std::uint64_t seq;
    std::string line;
  };
  // Writer side (the disk thread, or Emit's caller without one).
  HeldQueue<Held> held_{kHeldEvents, kHeldBytes};
  std::size_t torn_ = 0;               // bytes of a partial line still in the file
  bool reserve_failing_ = false;
  bool reopen_failing_ = false;
  std::uint64_t next_written_seq_ = 0;   // for the log line of a reopen
  std::chrono::steady_clock::time_point last_link_check_{};
  std::optional<HeldQueue<Held>::Dropped> drop_to_report_;
  // What write_health() reads from the loop.
  mutable std::mutex mu_;
  WriteHealth health_;
  std::atomic<bool> held_any_{false};   // health_.held > 0, read without mu_
  DiskWriter own_writer_{nullptr};
  DiskWriter* writer_ = &own_writer_;
  WriteFn write_;
  struct ev_loop* loop_ = nullptr;
  // Every whole second of the wall clock, so that it wakes the loop
  // together with the daemon's other once-a-second timers (one wake-up).
  std::unique_ptr<ev_periodic> retry_;
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
