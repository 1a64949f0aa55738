// The on-disk buffer between the event log and fluentd: every event is
// appended here before it is sent and removed only after fluentd acked it
// (or, without ack, after it was written to the socket).
//
// Layout, under one directory (<state_dir>/buffer):
//   <20-digit id>.seg  append-only segment files of records
//                      [u32 length][u32 FNV-1a of payload][payload]
//                      payload = [u8 n][family, n bytes][msgpack entry]
//                      (entry = [EventTime, record], ready to ship)
//   acked              "SEGMENT OFFSET\n", written atomically: the first
//                      byte not yet acknowledged. Saved at most every
//                      SaveAck() call (the sender throttles it), so a crash
//                      re-sends a little (at-least-once), never loses.
// Segments wholly acknowledged are deleted. On Open() the files are scanned:
// a torn record at the end of a segment (crash mid-write) is cut off.
//
// Bounded: when the bytes of the buffer exceed `limit`, whole segments are
// dropped, oldest first (the segment being written never is); the number of
// unacknowledged events dropped is added to dropped_pending().
//
// Durability: Append() is a write(2) to the page cache (survives the
// process, not the machine); Sync() fdatasyncs what was appended since the
// last Sync. The sender does that off the loop: TakeSync() (on the loop)
// hands over duplicates of the descriptors to sync, RunSync() (on the disk
// thread) syncs and closes them, and records are sent once synced.
//
// Threads: every call on one thread (the loop), but RunSync, which touches
// nothing of the buffer. Costs per event: one write(2); per batch: one
// fdatasync; reads are batched through a cache.
#pragma once

#include <compare>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace warden {

// A byte position in the buffer: segment id and offset within it. Ordered.
struct BufferPos {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  auto operator<=>(const BufferPos&) const = default;
};

struct BufferedRecord {
  std::string family;   // "check", "action", ...
  std::string entry;    // msgpack [EventTime, map]
  BufferPos end;        // the position just after this record
};

class EventBuffer {
 public:
  EventBuffer() = default;
  ~EventBuffer();
  EventBuffer(const EventBuffer&) = delete;
  EventBuffer& operator=(const EventBuffer&) = delete;

  // Creates `dir` (0700) if needed and recovers what it holds. `limit` caps
  // the bytes kept; segments are about `segment_size` bytes (0: derived
  // from limit).
  Status Open(const std::string& dir, std::uint64_t limit, std::uint64_t segment_size = 0);

  // Appends one record. A failed write is returned (the event is then only
  // in the events file); the buffer stays consistent.
  Status Append(std::string_view family, std::string_view entry);
  // fdatasync of the segment(s) appended to since the last Sync.
  Status Sync();
  // The same in two halves, for a sync off the loop.
  struct SyncJob {
    std::vector<int> fds;   // owned: synced and closed by RunSync
    std::string dir;        // fsync'd when a segment was created
    BufferPos end;          // what is durable once it ran
    SyncJob() = default;
    SyncJob(SyncJob&&) noexcept;
    SyncJob& operator=(SyncJob&&) = delete;
    SyncJob(const SyncJob&) = delete;
    ~SyncJob();
  };
  bool needs_sync() const { return dirty_ || dir_dirty_ || !retired_.empty(); }
  SyncJob TakeSync();
  static Status RunSync(SyncJob& job);

  // Reads records from `from` (moved forward to start() if it is behind):
  // at most `max_bytes` of payload (but at least one record), stopping at a
  // change of family and at the end of a segment. Fails on a read error
  // (invalid: a corrupt record); an empty `out` means nothing more to read.
  Status Read(BufferPos from, std::size_t max_bytes, std::vector<BufferedRecord>* out);

  // The records in [begin, end) — `count` of them — were delivered.
  // Acks at or behind start() are ignored.
  void Ack(BufferPos begin, BufferPos end, std::uint64_t count);
  // Writes the acked position if it changed since the last save.
  Status SaveAck();
  // The same in two halves, for a write off the loop: the text of the
  // acked file (empty when it did not change), and AckSaved once written.
  std::string AckText() const;
  std::string ack_path() const { return dir_ + "/acked"; }
  void AckSaved(BufferPos pos) { if (saved_start_ < pos) saved_start_ = pos; }

  BufferPos start() const { return start_; }   // first unacknowledged byte
  BufferPos end() const;                       // where the next record goes
  std::uint64_t backlog_events() const { return total_records_ - acked_in_front_; }
  std::uint64_t backlog_bytes() const { return total_bytes_ - start_.offset; }
  std::uint64_t segments() const { return segments_.size(); }
  // Events dropped for the limit since the last TakeDropped().
  std::uint64_t TakeDropped() { auto n = dropped_pending_; dropped_pending_ = 0; return n; }
  std::uint64_t dropped_total() const { return dropped_total_; }
  // The first position at or after `p` holding a record, across segments.
  BufferPos Normalize(BufferPos p) const;

 private:
  struct Segment {
    std::uint64_t id = 0;
    std::uint64_t size = 0;
    std::uint64_t records = 0;
  };
  std::string SegmentPath(std::uint64_t id) const;
  Status StartSegment(std::uint64_t id);
  void DropFront();
  void RemoveAckedFront();
  void PopFront();
  Status Fill(std::uint64_t segment, std::uint64_t offset, std::size_t want);

  std::string dir_;
  std::uint64_t limit_ = 0;
  std::uint64_t segment_size_ = 0;
  std::deque<Segment> segments_;     // oldest first; back() is written to
  int write_fd_ = -1;
  std::vector<int> retired_;         // earlier segments' fds, still to sync
  bool dirty_ = false;               // appended since the last Sync
  bool dir_dirty_ = false;           // a segment was created since the last Sync
  BufferPos start_;
  BufferPos saved_start_;
  std::uint64_t total_records_ = 0;  // in all segments
  std::uint64_t total_bytes_ = 0;
  std::uint64_t acked_in_front_ = 0; // records of the front segment before start_
  std::uint64_t dropped_pending_ = 0;
  std::uint64_t dropped_total_ = 0;
  // Read cache: bytes [cache_off_, cache_off_ + cache_.size()) of cache_seg_.
  int read_fd_ = -1;
  std::uint64_t read_fd_seg_ = 0;
  std::uint64_t cache_seg_ = 0;
  std::uint64_t cache_off_ = 0;
  std::string cache_;
};

}  // namespace warden
