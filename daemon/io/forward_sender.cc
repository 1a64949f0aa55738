#include "daemon/io/forward_sender.h"

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include <spdlog/spdlog.h>

#include "daemon/base/atomic_file.h"
#include "daemon/base/wall_time.h"

namespace warden {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kBackoffBase = 0.25;       // seconds
constexpr double kBackoffCap = 30.0;
constexpr double kConnectTimeout = 5.0;
constexpr double kTick = 0.1;
constexpr auto kSaveEvery = std::chrono::milliseconds(500);
constexpr std::size_t kMaxInFlightChunks = 512;
constexpr std::size_t kChunkOverhead = 512;  // tag, options, framing
constexpr std::size_t kMaxAnswer = 64 * 1024;
constexpr std::size_t kMaxAnswerDepth = 16;

// nlohmann's msgpack reader recurses once per nesting level, so 64 KB of
// nested arrays from the peer would overflow the stack. This SAX pass
// builds nothing and stops at kMaxAnswerDepth (an ack is one flat map).
class DepthLimit : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool too_deep = false;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return Enter(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return Leave(); }
  bool start_array(std::size_t) override { return Enter(); }
  bool end_array() override { return Leave(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error_id = e.id;
    error = e.what();
    return false;
  }
  int error_id = 0;
  std::string error;

 private:
  bool Enter() {
    too_deep = ++depth_ > kMaxAnswerDepth;
    return !too_deep;
  }
  bool Leave() {
    --depth_;
    return true;
  }
  std::size_t depth_ = 0;
};

// "2026-11-25T17:02:44.854Z" -> seconds and nanoseconds since the epoch.
bool ParseTime(const std::string& text, std::uint32_t* sec, std::uint32_t* nsec) {
  std::tm tm{};
  int ms = 0;
  char z = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &z) != 8 ||
      z != 'Z') {
    return false;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t t = ::timegm(&tm);
  if (t < 0) return false;
  *sec = static_cast<std::uint32_t>(t);
  *nsec = static_cast<std::uint32_t>(ms) * 1'000'000u;
  return true;
}

// The first `max` bytes a peer sent, quoted, for a message: printable ASCII
// as it is, the rest escaped (\r \n \t \" \\ \xNN); when cut, "... (N bytes)".
std::string Quoted(std::string_view bytes, std::size_t max) {
  std::string out = "\"";
  for (unsigned char ch : bytes.substr(0, max)) {
    switch (ch) {
      case '\r': out += "\\r"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      default:
        if (ch >= 0x20 && ch < 0x7f) {
          out += static_cast<char>(ch);
        } else {
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\x%02x", ch);
          out += hex;
        }
    }
  }
  out += "\"";
  if (bytes.size() > max) out += "... (" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

}  // namespace

nlohmann::json FluentdStats::ToJson() const {
  auto iso = [](const std::optional<std::chrono::system_clock::time_point>& t) -> nlohmann::json {
    if (!t) return nullptr;
    return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
  };
  return {{"connected", connected},         {"backlog_events", backlog_events},
          {"backlog_bytes", backlog_bytes}, {"in_flight_chunks", in_flight_chunks},
          {"chunks_sent", chunks_sent},     {"chunks_acked", chunks_acked},
          {"events_acked", events_acked},   {"dropped_total", dropped_total}, {"held", held},
          {"connects", connects},           {"failed_attempts", failed_attempts},
          {"last_ack_ms", iso(last_ack)},
          {"last_error", last_error},       {"last_error_ms", iso(last_error_time)}};
}

std::string ForwardSender::Family(const nlohmann::json& event) {
  std::string name = event.value("event", std::string("unknown"));
  return name.substr(0, name.find('.'));
}

std::string ForwardSender::EncodeEntry(const nlohmann::json& event) {
  std::uint32_t sec = 0, nsec = 0;
  auto it = event.find("time");
  if (it == event.end() || !it->is_string() || !ParseTime(it->get<std::string>(), &sec, &nsec)) {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    sec = static_cast<std::uint32_t>(ts.tv_sec);
    nsec = static_cast<std::uint32_t>(ts.tv_nsec);
  }
  std::vector<std::uint8_t> t(8);
  for (int i = 0; i < 4; ++i) {
    t[static_cast<size_t>(i)] = static_cast<std::uint8_t>(sec >> (24 - 8 * i));
    t[static_cast<size_t>(4 + i)] = static_cast<std::uint8_t>(nsec >> (24 - 8 * i));
  }
  // A binary with subtype 0 is written as msgpack ext type 0 (fixext 8):
  // fluentd's EventTime.
  nlohmann::json entry = nlohmann::json::array({nlohmann::json::binary(std::move(t), 0), event});
  std::string out;
  nlohmann::json::to_msgpack(entry, nlohmann::detail::output_adapter<char>(out));
  return out;
}

ForwardSender::ForwardSender(struct ev_loop* loop, FluentdConfig config)
    : loop_(loop), config_(std::move(config)), rng_(std::random_device{}()) {
  char prefix[24];
  std::snprintf(prefix, sizeof prefix, "%016llx", static_cast<unsigned long long>(rng_()));
  id_prefix_ = prefix;
  io_ = std::make_unique<ev_io>();
  ev_init(io_.get(), &ForwardSender::OnIo);
  io_->data = this;
  retry_ = std::make_unique<ev_timer>();
  ev_init(retry_.get(), &ForwardSender::OnRetry);
  retry_->data = this;
  kick_ = std::make_unique<ev_timer>();
  ev_timer_init(kick_.get(), &ForwardSender::OnKick, 0, 0);
  kick_->data = this;
  tick_ = std::make_unique<ev_timer>();
  ev_timer_init(tick_.get(), &ForwardSender::OnTick, kTick, kTick);
  tick_->data = this;
}

ForwardSender::~ForwardSender() {
  Stop();
  if (fd_ >= 0) ::close(fd_);
}

Status ForwardSender::Open(const std::string& buffer_dir) {
  Status s = buffer_.Open(buffer_dir, config_.buffer_limit);
  synced_end_ = buffer_.end();   // what an earlier run left: on disk already
  return s;
}

void ForwardSender::SyncOffLoop() {
  if (sync_in_flight_ || !buffer_.needs_sync()) return;
  sync_in_flight_ = true;
  auto job = std::make_shared<EventBuffer::SyncJob>(buffer_.TakeSync());
  std::weak_ptr<bool> alive = alive_;
  writer_->Post([job] { return EventBuffer::RunSync(*job); },
                [this, alive, job](const Status& s) {
                  if (alive.expired()) return;
                  sync_in_flight_ = false;
                  // Sent even when the sync failed: the records are in the
                  // page cache, and holding them back helps nobody.
                  if (!s.ok()) SetError(s.message());
                  if (synced_end_ < job->end) synced_end_ = job->end;
                  if (buffer_.needs_sync()) Kick();
                  Pump();
                });
}

void ForwardSender::SaveAckOffLoop() {
  std::string text = buffer_.AckText();
  if (text.empty()) return;
  std::weak_ptr<bool> alive = alive_;
  writer_->Post(
      "fluentd-acked",
      [path = buffer_.ack_path(), text] { return WriteFileAtomically(path, text, 0600, 0700); },
      [this, alive, pos = buffer_.start()](const Status& s) {
        if (alive.expired()) return;
        if (s.ok()) buffer_.AckSaved(pos);
        else SetError(s.message());
      });
}

void ForwardSender::Start() {
  started_ = true;
  ev_timer_start(loop_, tick_.get());
  Connect();
}

void ForwardSender::Stop() {
  if (!started_) return;
  started_ = false;
  ev_io_stop(loop_, io_.get());
  ev_timer_stop(loop_, retry_.get());
  ev_timer_stop(loop_, kick_.get());
  ev_timer_stop(loop_, tick_.get());
  if (Status s = buffer_.Sync(); !s.ok()) spdlog::error("fluentd: {}", s.message());
  if (Status s = buffer_.SaveAck(); !s.ok()) spdlog::error("fluentd: {}", s.message());
}

void ForwardSender::Drain(Duration within, std::function<void(bool drained)> done) {
  drain_done_ = std::move(done);
  drain_started_ = Clock::now();
  drain_deadline_ = drain_started_ + within;
  if (!started_ || within.count() <= 0 || buffer_.backlog_events() == 0) {
    FinishDrain();
    return;
  }
  spdlog::info("fluentd: delivering {} buffered events before stopping (at most {})",
               buffer_.backlog_events(), FormatDuration(within));
  if (state_ == State::kIdle) {
    // Backing off: one attempt now rather than sleeping through the deadline.
    ev_timer_stop(loop_, retry_.get());
    Connect();
  }
}

// From OnTick only: never inside an I/O callback, so done() may Stop().
void ForwardSender::CheckDrain(Clock::time_point now) {
  if (!drain_done_) return;
  bool hopeless = state_ == State::kIdle && ev_is_active(retry_.get()) &&
                  now + std::chrono::duration<double>(ev_timer_remaining(loop_, retry_.get())) >=
                      drain_deadline_;
  if (buffer_.backlog_events() == 0 || now >= drain_deadline_ || hopeless) FinishDrain();
}

void ForwardSender::FinishDrain() {
  std::function<void(bool)> done = std::move(drain_done_);
  drain_done_ = nullptr;
  if (!done) return;
  std::uint64_t left = buffer_.backlog_events();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - drain_started_);
  if (left == 0) {
    spdlog::info("fluentd: every event delivered before stopping ({} ms)", took.count());
  } else {
    spdlog::warn("fluentd: stopping with {} events unshipped; they stay in the buffer for the "
                 "next start (waited {} ms{}{})",
                 left, took.count(), stats_.last_error.empty() ? "" : "; last error: ",
                 stats_.last_error);
  }
  done(left == 0);
}

void ForwardSender::OnEvent(const nlohmann::json& event) {
  if (!held_.clear()) AppendHeld();
  std::string family = Family(event);
  std::string entry = EncodeEntry(event);
  if (held_.clear()) {
    Status s = buffer_.Append(family, entry);
    if (s.ok()) {
      Kick();
      return;
    }
    if (held_.Fail(s.message(), WallMsNow())) {
      spdlog::error("fluentd: {}; holding events in memory (up to {}) until the buffer takes them",
                    s.message(), kHeldEvents);
    }
    SetError(s.message());
  }
  const bool was_dropping = held_.dropping();
  const std::size_t size = entry.size();
  const std::uint64_t seq = event.value("seq", 0ull);
  if (!held_.Hold(Held{std::move(family), std::move(entry)}, size, seq) && !was_dropping) {
    spdlog::error("fluentd: {} events held in memory, the most kept; events from seq {} on are "
                  "not kept for fluentd until the held ones are buffered",
                  held_.size(), seq);
  }
  Kick();
}

void ForwardSender::AppendHeld() {
  Status s;
  if (!held_.Drain([&](const Held& h) { return (s = buffer_.Append(h.family, h.entry)).ok(); })) {
    held_.Fail(s.message(), WallMsNow());
    SetError(s.message());
    return;
  }
  if (held_.Recovered(WallMsNow())) {
    spdlog::warn("fluentd: the buffer takes events again; the held ones are buffered");
  }
  if (auto d = held_.TakeDropped()) {
    spdlog::error("fluentd: {} events (seq {} to {}) were not kept for fluentd (memory bound "
                  "reached)",
                  d->count, d->first_seq, d->last_seq);
    stats_.dropped_total += d->count;
    dropped_unreported_ += d->count;
  }
}

void ForwardSender::Kick() {
  if (started_ && !ev_is_active(kick_.get())) ev_timer_start(loop_, kick_.get());
}

void ForwardSender::OnKick(struct ev_loop*, ev_timer* w, int) {
  auto* self = static_cast<ForwardSender*>(w->data);
  self->SyncOffLoop();   // Pump again when it is done
  if (std::uint64_t dropped = self->buffer_.TakeDropped(); dropped > 0) {
    self->stats_.dropped_total += dropped;
    self->dropped_unreported_ += dropped;
  }
  if (std::uint64_t dropped = std::exchange(self->dropped_unreported_, 0); dropped > 0) {
    if (self->on_dropped_) self->on_dropped_(dropped);  // may re-enter OnEvent: fine
  }
  self->Pump();
}

void ForwardSender::SetError(const std::string& error) {
  stats_.last_error = error;
  stats_.last_error_time = std::chrono::system_clock::now();
}

void ForwardSender::Connect() {
  if (!started_ || state_ != State::kIdle) return;
  int family = AF_UNIX;
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!config_.unix_path.empty()) {
    auto* un = reinterpret_cast<sockaddr_un*>(&addr);
    un->sun_family = AF_UNIX;
    std::strncpy(un->sun_path, config_.unix_path.c_str(), sizeof un->sun_path - 1);
    len = sizeof(sockaddr_un);
  } else if (config_.host.find(':') != std::string::npos) {
    family = AF_INET6;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<std::uint16_t>(config_.port));
    ::inet_pton(AF_INET6, config_.host.c_str(), &in6->sin6_addr);
    len = sizeof(sockaddr_in6);
  } else {
    family = AF_INET;
    auto* in4 = reinterpret_cast<sockaddr_in*>(&addr);
    in4->sin_family = AF_INET;
    in4->sin_port = htons(static_cast<std::uint16_t>(config_.port));
    ::inet_pton(AF_INET, config_.host.c_str(), &in4->sin_addr);
    len = sizeof(sockaddr_in);
  }
  fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    Fail(std::string("socket: ") + std::strerror(errno));
    return;
  }
  if (family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  }
  state_ = State::kConnecting;
  connect_started_ = Clock::now();
  int rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), len);
  if (rc == 0) {
    Connected();
    return;
  }
  if (errno != EINPROGRESS && errno != EAGAIN) {
    Fail("connect to " + config_.address + ": " + std::strerror(errno));
    return;
  }
  ev_io_set(io_.get(), fd_, EV_WRITE);
  ev_io_start(loop_, io_.get());
}

void ForwardSender::Connected() {
  state_ = State::kConnected;
  stats_.connects++;
  spdlog::info("fluentd: connected to {} ({} events to send)", config_.address,
               buffer_.backlog_events());
  cursor_ = buffer_.start();
  in_flight_.clear();
  out_.clear();
  out_off_ = 0;
  stream_written_ = stream_queued_ = acked_stream_ = 0;
  in_.clear();
  Pump();
  UpdateIo();
}

void ForwardSender::Fail(const std::string& error) {
  if (fd_ >= 0) {
    ev_io_stop(loop_, io_.get());
    ::close(fd_);
    fd_ = -1;
  }
  bool was_connected = state_ == State::kConnected;
  state_ = State::kIdle;
  in_flight_.clear();
  out_.clear();
  out_off_ = 0;
  in_.clear();
  SetError(error);
  double delay = std::min(kBackoffCap, kBackoffBase * static_cast<double>(1ull << std::min(attempt_, 20)));
  delay = delay / 2 + std::uniform_real_distribution<double>(0, delay / 2)(rng_);
  ++attempt_;
  stats_.failed_attempts = static_cast<std::uint64_t>(attempt_);
  if (was_connected || attempt_ <= 1) {
    spdlog::warn("fluentd: {}; retrying in {:.1f}s ({} events waiting)", error, delay,
                 buffer_.backlog_events());
  } else {
    spdlog::debug("fluentd: {}; retrying in {:.1f}s", error, delay);
  }
  if (!started_) return;
  ev_timer_set(retry_.get(), delay, 0);
  ev_timer_start(loop_, retry_.get());
}

void ForwardSender::OnRetry(struct ev_loop*, ev_timer* w, int) {
  static_cast<ForwardSender*>(w->data)->Connect();
}

void ForwardSender::OnTick(struct ev_loop*, ev_timer* w, int) {
  auto* self = static_cast<ForwardSender*>(w->data);
  auto now = Clock::now();
  if (!self->held_.clear()) {
    self->AppendHeld();
    if (self->dropped_unreported_ > 0) self->Kick();
  }
  if (self->state_ == State::kConnecting &&
      now - self->connect_started_ > std::chrono::duration<double>(kConnectTimeout)) {
    self->Fail("connect to " + self->config_.address + ": timed out");
  } else if (self->state_ == State::kConnected && self->config_.ack && !self->in_flight_.empty() &&
             now - self->in_flight_.front().queued > self->config_.ack_timeout) {
    self->Fail("no ack for chunk " + self->in_flight_.front().id + " within " +
               FormatDuration(self->config_.ack_timeout));
  }
  if (now - self->last_save_ >= kSaveEvery) {
    self->last_save_ = now;
    self->SaveAckOffLoop();
  }
  self->CheckDrain(now);
}

void ForwardSender::OnIo(struct ev_loop*, ev_io* w, int revents) {
  auto* self = static_cast<ForwardSender*>(w->data);
  if (self->state_ == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      self->Fail("connect to " + self->config_.address + ": " + std::strerror(err));
      return;
    }
    self->Connected();
    return;
  }
  if (revents & EV_READ) {
    self->ReadAcks();
    if (self->state_ != State::kConnected) return;
  }
  if (revents & EV_WRITE) self->Flush();
}

void ForwardSender::UpdateIo() {
  if (state_ != State::kConnected) return;
  int want = EV_READ | (out_off_ < out_.size() ? EV_WRITE : 0);
  if (ev_is_active(io_.get()) && io_->events == want) return;  // NOLINT: libev field
  ev_io_stop(loop_, io_.get());
  ev_io_set(io_.get(), fd_, want);
  ev_io_start(loop_, io_.get());
}

void ForwardSender::Pump() {
  if (state_ != State::kConnected) return;
  // Appended but not synced yet (buffered before Start, or since the last
  // kick): sync first; its completion pumps again.
  SyncOffLoop();
  std::size_t max_entries = static_cast<std::size_t>(config_.chunk_limit) - kChunkOverhead -
                            config_.tag.size();
  std::vector<BufferedRecord> records;
  while (in_flight_.size() < kMaxInFlightChunks &&
         stream_queued_ - acked_stream_ < 4 * config_.chunk_limit) {
    if (Status s = buffer_.Read(cursor_, max_entries, &records); !s.ok()) {
      SetError(s.message());
      spdlog::error("fluentd: {}", s.message());
      break;
    }
    // Only what is synced (the rest goes when its sync is done).
    while (!records.empty() && synced_end_ < records.back().end) records.pop_back();
    if (records.empty()) break;
    Chunk c;
    c.begin = buffer_.Normalize(cursor_);
    c.end = records.back().end;
    c.count = records.size();
    std::vector<std::uint8_t> entries;
    std::size_t total = 0;
    for (const auto& r : records) total += r.entry.size();
    entries.reserve(total);
    for (const auto& r : records) entries.insert(entries.end(), r.entry.begin(), r.entry.end());
    nlohmann::json option = {{"size", records.size()}};
    if (config_.ack) {
      c.id = id_prefix_ + "-" + std::to_string(next_chunk_++);
      option["chunk"] = c.id;
    }
    nlohmann::json message = nlohmann::json::array(
        {config_.tag + "." + records.front().family, nlohmann::json::binary(std::move(entries)),
         std::move(option)});
    std::size_t before = out_.size();
    nlohmann::json::to_msgpack(message, nlohmann::detail::output_adapter<char>(out_));
    stream_queued_ += out_.size() - before;
    c.stream_end = stream_queued_;
    c.queued = Clock::now();
    cursor_ = c.end;
    in_flight_.push_back(std::move(c));
    stats_.chunks_sent++;
    if (total + kChunkOverhead > config_.chunk_limit) {
      spdlog::warn("fluentd: one event of {} bytes exceeds chunk_limit", total);
    }
  }
  Flush();
}

void ForwardSender::Flush() {
  if (state_ != State::kConnected) return;
  while (out_off_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      Fail("send to " + config_.address + ": " + std::strerror(errno));
      return;
    }
    out_off_ += static_cast<std::size_t>(n);
    stream_written_ += static_cast<std::uint64_t>(n);
  }
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  } else if (out_off_ > (1u << 20)) {
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
  if (!config_.ack) {
    // Without ack a chunk is delivered once it was written to the socket.
    bool any = false;
    while (!in_flight_.empty() && in_flight_.front().stream_end <= stream_written_) {
      Delivered(in_flight_.front());
      in_flight_.pop_front();
      any = true;
    }
    if (any) {
      Pump();
      return;
    }
  }
  UpdateIo();
}

void ForwardSender::Delivered(const Chunk& c) {
  buffer_.Ack(c.begin, c.end, c.count);
  acked_stream_ = c.stream_end;
  stats_.chunks_acked++;
  stats_.events_acked += c.count;
  stats_.last_ack = std::chrono::system_clock::now();
  attempt_ = 0;
  stats_.failed_attempts = 0;
}

ForwardAnswer ReadForwardAnswer(std::string_view bytes) {
  ForwardAnswer out;
  if (bytes.empty()) return out;
  auto unframeable = [&out](std::string why) {
    out.kind = ForwardAnswer::Kind::kUnframeable;
    out.text = std::move(why);
    return out;
  };
  // fluentd answers with maps only. Any other first byte (an HTTP or TLS
  // answer from a wrong port: ASCII bytes are msgpack integers) can never
  // become an ack, however many bytes follow: say so now, not after
  // ack_timeout or 64 KB.
  const auto first = static_cast<unsigned char>(bytes[0]);
  if ((first & 0xf0) != 0x80 && first != 0xde && first != 0xdf) {
    char why[48];
    std::snprintf(why, sizeof why, "not a msgpack map: first byte 0x%02x", first);
    return unframeable(why);
  }
  DepthLimit limit;
  if (!nlohmann::json::sax_parse(bytes, &limit, nlohmann::json::input_format_t::msgpack,
                                 /*strict=*/false)) {
    if (limit.too_deep) return unframeable("nested deeper than 16 levels");
    // 110 is "unexpected end of input" (strict is off): a prefix, wait for
    // more bytes. Anything else (0xc1, a key that is not a string, ...)
    // stays wrong whatever follows.
    if (limit.error_id != 110) {
      std::string_view what = limit.error;
      if (auto at = what.find("] "); at != std::string_view::npos) what.remove_prefix(at + 2);
      return unframeable("unreadable msgpack: " + std::string(what.substr(0, 160)));
    }
    return out;
  }
  nlohmann::json answer = nlohmann::json::from_msgpack(bytes, /*strict=*/false,
                                                       /*allow_exceptions=*/false);
  if (answer.is_discarded()) return unframeable("unreadable msgpack");  // the SAX pass read it
  // nlohmann does not say how many bytes it read: re-encode (fluentd
  // writes the shortest form, as nlohmann does) and check the prefix.
  std::string again;
  nlohmann::json::to_msgpack(answer, nlohmann::detail::output_adapter<char>(again));
  if (bytes.compare(0, again.size(), again) != 0) {
    return unframeable("not in msgpack's shortest form: its length is unknown");
  }
  out.length = again.size();
  // msgpack strings are raw bytes: a strict dump would throw on them.
  out.text = answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (out.text.size() > 200) {
    std::size_t cut = 200;
    while (cut > 0 && (static_cast<unsigned char>(out.text[cut]) & 0xC0) == 0x80) --cut;
    out.text = out.text.substr(0, cut) + "...";
  }
  if (answer.is_object() && answer.contains("ack")) {
    out.kind = ForwardAnswer::Kind::kAck;
    out.ack = std::move(answer["ack"]);
  } else {
    out.kind = ForwardAnswer::Kind::kOther;
  }
  return out;
}

void ForwardSender::ReadAcks() {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n == 0) {
      Fail("fluentd at " + config_.address + " closed the connection" +
           (in_flight_.empty() ? "" : " with " + std::to_string(in_flight_.size()) +
                                          " chunk(s) unacknowledged"));
      return;
    }
    if (n < 0) {
      Fail("receive from " + config_.address + ": " + std::strerror(errno));
      return;
    }
    in_.append(buf, static_cast<std::size_t>(n));
    if (in_.size() > kMaxAnswer) {
      Fail("fluentd sent more than 64 KB that is not an ack");
      return;
    }
  }
  bool progress = false;
  // Answers are taken from `used` on and erased once, after the loop: an
  // erase per answer moved the rest each time, quadratic in a read that
  // brings hundreds of acks.
  std::size_t used = 0;
  while (used < in_.size()) {
    const std::string_view rest = std::string_view(in_).substr(used);
    ForwardAnswer read = ReadForwardAnswer(rest);
    if (read.kind == ForwardAnswer::Kind::kIncomplete) break;  // wait for more bytes
    if (read.kind == ForwardAnswer::Kind::kUnframeable) {
      // One message for the connection, naming what came: the connection
      // closes here, so the rest of the bytes are never looked at.
      Fail("fluentd at " + config_.address + " answered what cannot be a forward-protocol ack (" +
           read.text + "): " + Quoted(rest, 64));
      return;
    }
    used += read.length;
    if (read.kind == ForwardAnswer::Kind::kOther) {
      spdlog::warn("fluentd: ignoring an answer that is not an ack: {}", read.text);
      continue;
    }
    const nlohmann::json& id = read.ack;
    if (!in_flight_.empty() && id == in_flight_.front().id) {
      Delivered(in_flight_.front());
      in_flight_.pop_front();
      progress = true;
    } else {
      // Acks come in order on a connection: an ack for a later chunk means
      // fluentd lost the earlier ones (dropped, e.g. over its
      // chunk_size_limit). Resend from the oldest on a new connection
      // rather than wait for ack_timeout. An unknown id is ignored.
      for (const auto& c : in_flight_) {
        if (id == c.id) {
          Fail("fluentd acked chunk " + c.id + " before " + in_flight_.front().id +
               ": resending from the oldest");
          return;
        }
      }
      spdlog::warn("fluentd: ignoring an ack for no chunk in flight: {}", read.text);
    }
  }
  in_.erase(0, used);
  if (progress) Pump();
}

FluentdStats ForwardSender::stats() const {
  FluentdStats s = stats_;
  s.connected = state_ == State::kConnected;
  s.backlog_events = buffer_.backlog_events();
  s.backlog_bytes = buffer_.backlog_bytes();
  s.in_flight_chunks = in_flight_.size();
  s.held = held_.size();
  return s;
}

}  // namespace warden
