// Ships every event to fluentd with the Forward protocol (spec v1), on the
// loop, without loss: events go to an on-disk EventBuffer first and leave it
// only when fluentd acknowledged them (ack = yes: the `chunk` option and an
// {"ack": id} answer per chunk) or, with ack = no, when they were written to
// the socket.
//
// Wire format: PackedForward, [tag, bin(entries), {"chunk": id, "size": n}],
// one message per run of consecutive events of one family (tag
// <tag>.<family>), in seq order, under chunk_limit; each entry is
// [EventTime (ext 0: u32 seconds, u32 ns), record map], all encoded by
// nlohmann-json's to_msgpack. Several chunks are in flight at once
// (fluentd acks them in order on a connection).
//
// Faults: a refused or failed connect, a reset, EOF, an ack that does not
// come within ack_timeout, or garbage from fluentd close the connection;
// everything not yet acknowledged is resent on the next one. Reconnects
// back off exponentially (250 ms doubling to 30 s) with jitter (each wait
// drawn from [d/2, d]).
//
// Stop: Drain() keeps shipping for a bounded time (stop_flush) so that
// daemon.stop and the rest of the backlog reach fluentd before wardend
// exits; what is not delivered by then stays in the buffer for the next
// start.
//
// Threads: the loop's only. Nothing blocks: non-blocking connect, ev_io for
// the socket; the address is numeric (fluentd_config.cc refuses names).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/disk_writer.h"
#include "daemon/base/held_queue.h"
#include "daemon/base/status.h"
#include "daemon/base/units.h"
#include "daemon/io/event_buffer.h"

struct ev_loop;
struct ev_io;
struct ev_timer;

namespace warden {

// [fluentd]: ship every event with the forward protocol (ForwardSender, below).
struct FluentdConfig {
  bool enabled = false;              // a [fluentd] section is present
  std::string address;               // as written: "host:port" or "unix:/path"
  std::string host;                  // numeric IP (localhost means 127.0.0.1); "" for unix
  int port = 0;
  std::string unix_path;             // set for unix: addresses
  std::string tag = "warden";        // tag prefix: <tag>.<family>
  bool ack = true;
  std::uint64_t buffer_limit = 256ull << 20;
  std::uint64_t chunk_limit = 1ull << 20;
  Duration ack_timeout{60'000};      // no ack this long: reconnect and resend
  Duration stop_flush{5'000};        // at stop, wait this long for the backlog; 0: no wait
};

// What `wardenctl status` shows about delivery.
struct FluentdStats {
  bool connected = false;
  std::uint64_t backlog_events = 0;   // in the buffer, not yet acknowledged
  std::uint64_t backlog_bytes = 0;
  std::uint64_t in_flight_chunks = 0;
  std::uint64_t chunks_sent = 0;
  std::uint64_t chunks_acked = 0;
  std::uint64_t events_acked = 0;     // since start (resends count again)
  std::uint64_t dropped_total = 0;    // since start: the buffer limit, a full disk
  std::uint64_t held = 0;             // in memory: the buffer could not take them
  std::uint64_t connects = 0;
  std::uint64_t failed_attempts = 0;  // connections failed since the last ack (backoff step)
  std::optional<std::chrono::system_clock::time_point> last_ack;
  std::optional<std::chrono::system_clock::time_point> last_error_time;
  std::string last_error;
  nlohmann::json ToJson() const;
};

// One answer at the front of the bytes fluentd sent (msgpack, normally
// {"ack": id}). kIncomplete: a strict prefix of a msgpack map, wait for more
// bytes. kUnframeable, decided as soon as the bytes show it (more bytes
// never change it): no ack can come from this stream, `text` says why: the
// value is not a map (fluentd answers only with maps: an HTTP or TLS
// answer, a wrong port), not msgpack nlohmann reads (0xc1, a key that is
// not a string), not written in the shortest form (nlohmann does not say
// how many bytes it read, so its length is taken from re-encoding it), or
// nested deeper than 16 levels. kAck ({"ack": id}, `ack` the id) and
// kOther (any other map): the first `length` bytes, `text` the value as
// JSON for messages (invalid UTF-8 replaced, cut at 200 bytes). Pure
// (tests, fuzzer).
struct ForwardAnswer {
  enum class Kind { kIncomplete, kUnframeable, kAck, kOther };
  Kind kind = Kind::kIncomplete;
  nlohmann::json ack;
  std::string text;
  std::size_t length = 0;
};
ForwardAnswer ReadForwardAnswer(std::string_view bytes);

class ForwardSender {
 public:
  ForwardSender(struct ev_loop* loop, FluentdConfig config);
  ~ForwardSender();
  ForwardSender(const ForwardSender&) = delete;
  ForwardSender& operator=(const ForwardSender&) = delete;

  // Opens (recovers) the buffer in `buffer_dir`. Call once, before Start.
  Status Open(const std::string& buffer_dir);
  // The buffer's fdatasync and its acked file are written from here
  // (wardend's disk thread), and a record is sent once synced; the writer
  // must outlive this sender or be stopped first. Default: at once.
  void SetWriter(DiskWriter* writer) { writer_ = writer; }
  // Connects and starts shipping the backlog.
  void Start();
  // Stops the watchers; what is buffered stays for the next start.
  void Stop();
  // The bounded flush at stop: keeps shipping until the buffer holds
  // nothing unacknowledged (nothing unwritten with ack = no) or `within`
  // has passed, then calls done(drained) once and ships on as before until
  // Stop(). A sender waiting out a reconnect backoff connects at once; when
  // a connection fails and its next retry would come after the deadline,
  // the wait ends early. What is left behind is logged and stays in the
  // buffer. `done` runs from the sender's own timer (it may ev_break and
  // Stop(), not destroy the sender), or at once inside Drain() when there
  // is nothing to wait for (not started, empty backlog, `within` of 0).
  void Drain(Duration within, std::function<void(bool drained)> done);

  // An EventLog subscriber: encodes and buffers one event, then schedules a
  // send (on the next loop iteration, so a burst is one fdatasync).
  //
  // An event the buffer cannot take (a full or read-only disk) is held in
  // memory, in order, and appended before any newer one as soon as the
  // buffer takes it again (tried at every event and every tick). At most
  // kHeldEvents events / kHeldBytes bytes are held; beyond that, events
  // are not kept for fluentd until the held ones are appended, and they
  // are counted as dropped (events.dropped). Logged once when it starts
  // and once when it ends; stats().held and last_error show it.
  void OnEvent(const nlohmann::json& event);
  static constexpr std::size_t kHeldEvents = 10000;
  static constexpr std::size_t kHeldBytes = 16 << 20;
  // Called (from the loop, never inside OnEvent) with the number of events
  // the buffer dropped for its limit; the daemon emits events.dropped.
  void SetOnDropped(std::function<void(std::uint64_t)> f) { on_dropped_ = std::move(f); }

  FluentdStats stats() const;
  const EventBuffer& buffer() const { return buffer_; }
  // The [fluentd] settings in effect: those of the start (a reload does
  // not rebuild the sender).
  const FluentdConfig& config() const { return config_; }

  // The msgpack entry [EventTime, record] for an event; the time comes from
  // its `time` field (RFC 3339), else now. Exposed for tests.
  static std::string EncodeEntry(const nlohmann::json& event);
  // "check" for "check.state".
  static std::string Family(const nlohmann::json& event);

 private:
  struct Chunk {
    std::string id;
    BufferPos begin, end;
    std::uint64_t count = 0;
    std::uint64_t stream_end = 0;           // bytes written on this connection when done
    std::chrono::steady_clock::time_point queued;
  };
  enum class State { kIdle, kConnecting, kConnected };

  static void OnIo(struct ev_loop* loop, ev_io* w, int revents);
  static void OnRetry(struct ev_loop* loop, ev_timer* w, int revents);
  static void OnKick(struct ev_loop* loop, ev_timer* w, int revents);
  static void OnTick(struct ev_loop* loop, ev_timer* w, int revents);

  void Connect();
  void Connected();
  void Fail(const std::string& error);
  void Kick();
  void Pump();
  void Flush();
  void ReadAcks();
  void Delivered(const Chunk& c);
  void UpdateIo();
  void SetError(const std::string& error);
  void CheckDrain(std::chrono::steady_clock::time_point now);
  // Appends the held events, oldest first, as far as the buffer takes them.
  void AppendHeld();
  void FinishDrain();

  struct ev_loop* loop_;
  FluentdConfig config_;
  EventBuffer buffer_;
  std::function<void(std::uint64_t)> on_dropped_;
  std::unique_ptr<ev_io> io_;
  std::unique_ptr<ev_timer> retry_, kick_, tick_;
  bool started_ = false;
  State state_ = State::kIdle;
  int fd_ = -1;
  int attempt_ = 0;
  std::chrono::steady_clock::time_point connect_started_;
  BufferPos cursor_;                       // next record to send on this connection
  BufferPos synced_end_;                   // records before it are synced: may be sent
  bool sync_in_flight_ = false;
  DiskWriter own_writer_{nullptr};
  DiskWriter* writer_ = &own_writer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  void SyncOffLoop();
  void SaveAckOffLoop();
  std::deque<Chunk> in_flight_;
  std::string out_;                        // bytes queued, from out_off_
  std::size_t out_off_ = 0;
  std::uint64_t stream_written_ = 0;
  std::uint64_t stream_queued_ = 0;
  std::uint64_t acked_stream_ = 0;         // stream_end of the last delivered chunk
  std::string in_;
  std::string id_prefix_;
  std::uint64_t next_chunk_ = 1;
  std::chrono::steady_clock::time_point last_save_;
  std::mt19937_64 rng_;
  FluentdStats stats_;
  struct Held {
    std::string family, entry;
  };
  HeldQueue<Held> held_{kHeldEvents, kHeldBytes};
  std::uint64_t dropped_unreported_ = 0;   // for on_dropped_, from OnKick
  // Drain(): set while a stop waits for the backlog.
  std::function<void(bool)> drain_done_;
  std::chrono::steady_clock::time_point drain_started_, drain_deadline_;
};

}  // namespace warden
