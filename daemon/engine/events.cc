#include "daemon/engine/events.h"

#include <ev.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "daemon/base/atomic_file.h"
#include "version.h"

namespace warden {
namespace {

constexpr std::uint64_t kSeqBlock = 1000;

std::int64_t EventWallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The last complete line of the events file that is an event with a seq.
std::optional<nlohmann::json> LastEventInFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat sb {};
  std::optional<nlohmann::json> result;
  if (::fstat(fd, &sb) == 0 && sb.st_size > 0) {
    // Read the tail; an event line is far below 64 KB.
    off_t len = std::min<off_t>(sb.st_size, 256 * 1024);
    std::string buf(static_cast<size_t>(len), '\0');
    ssize_t n = ::pread(fd, buf.data(), buf.size(), sb.st_size - len);
    if (n > 0) {
      buf.resize(static_cast<size_t>(n));
      // Lines end with '\n'; a torn last line (crash mid-write) is ignored.
      size_t end = buf.rfind('\n');
      while (end != std::string::npos && !result) {
        size_t start = end == 0 ? std::string::npos : buf.rfind('\n', end - 1);
        std::string line = buf.substr(start == std::string::npos ? 0 : start + 1,
                                      end - (start == std::string::npos ? 0 : start + 1));
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.contains("seq") &&
            j["seq"].is_number_unsigned()) {
          result = std::move(j);
        }
        if (start == std::string::npos) break;
        end = start;
      }
    }
  }
  ::close(fd);
  return result;
}

}  // namespace

EventLog::EventLog()
    : write_([](int fd, const void* data, std::size_t size) { return ::write(fd, data, size); }) {}

EventLog::~EventLog() {
  // Whatever was posted is written first (the owner stops its writer
  // before this; without one it was written in Emit). Then a last try for
  // what is held (no events.dropped now: its subscribers may be gone), and
  // what is lost said.
  writer_->Drain();
  std::string error;
  if (fd_ >= 0) {
    held_.Drain([&](const Held& h) {
      Status s = WriteLine(h.line);
      if (!s.ok()) error = s.message();
      return s.ok();
    });
  }
  if (held_.size() > 0) {
    spdlog::error("events file {}: stopping with {} events never written to it (seq {} to {}): {}",
                  path_, held_.size(), held_.front().seq, held_.back().seq, error);
  }
  if (retry_ && loop_) {
    ev_ref(loop_);
    ev_periodic_stop(loop_, retry_.get());
  }
  if (fd_ >= 0) ::close(fd_);
}

void EventLog::SetLoop(struct ev_loop* loop) {
  loop_ = loop;
  retry_ = std::make_unique<ev_periodic>();
  ev_periodic_init(retry_.get(), &EventLog::OnRetry, 0, 1, nullptr);
  retry_->data = this;
  ev_periodic_start(loop_, retry_.get());
  ev_unref(loop_);   // held events alone do not keep the loop running
}

void EventLog::OnRetry(struct ev_loop*, ev_periodic* w, int) {
  auto* self = static_cast<EventLog*>(w->data);
  // Nearly always nothing is held: one load, not the lock and a copy of
  // the health (its error text) a second.
  if (self->held_any_.load(std::memory_order_acquire)) self->Flush();
}

EventLog::WriteHealth EventLog::write_health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

void EventLog::PublishHealth() {
  std::lock_guard<std::mutex> lock(mu_);
  health_ = WriteHealth{held_.error(), held_.since_ms(), held_.size(), held_.dropped_total()};
  held_any_.store(health_.held > 0, std::memory_order_release);
}

Status EventLog::Open(const std::string& events_path, const std::string& state_dir,
                      std::string host) {
  host_ = std::move(host);
  path_ = events_path;
  seq_path_ = state_dir + "/seq";
  std::string dir = std::filesystem::path(events_path).parent_path().string();
  if (!dir.empty()) {
    if (Status made = MakeDirectories(dir, 0750); !made.ok()) return made;
  }
  fd_ = OpenOrCreate(events_path, O_RDWR | O_APPEND | O_CLOEXEC, 0640);   // read: the tail
  if (fd_ < 0) {
    return Status::Error("cannot open events file " + events_path + ": " + std::strerror(errno));
  }
  // A crash in the middle of a write (or a disk that filled under an
  // older wardend) can leave part of a line at the end: cut it, so that
  // the next event starts a line of its own instead of completing garbage.
  if (struct stat sb {}; ::fstat(fd_, &sb) == 0 && sb.st_size > 0) {
    const off_t len = std::min<off_t>(sb.st_size, 256 * 1024);
    std::string tail(static_cast<std::size_t>(len), '\0');
    ssize_t n = ::pread(fd_, tail.data(), tail.size(), sb.st_size - len);
    if (n == len && tail.back() != '\n') {
      std::size_t nl = tail.rfind('\n');
      // No newline in the tail: the whole tail is one partial line only
      // when the file is no longer than it.
      if (nl != std::string::npos || sb.st_size == len) {
        const off_t keep = nl == std::string::npos ? 0 : sb.st_size - len + off_t(nl) + 1;
        if (::ftruncate(fd_, keep) == 0) {
          spdlog::warn("events file {}: cut {} bytes of a partial last line (a write that did "
                       "not finish)",
                       events_path, sb.st_size - keep);
        } else {
          spdlog::error("events file {}: cannot cut a partial last line: {}", events_path,
                        std::strerror(errno));
        }
      }
    }
  }
  // The events file is authoritative: every seq is written there when it
  // is assigned, so its last complete line is the last seq used. When the
  // file is empty (rotated, removed) the reservation in state_dir, kept
  // ahead in blocks, guarantees no seq is used twice (a gap at worst).
  std::uint64_t next = 1;
  last_event_at_open_ = LastEventInFile(events_path);
  if (last_event_at_open_) {
    next = (*last_event_at_open_)["seq"].get<std::uint64_t>() + 1;
  } else if (auto reserved = ReadSmallFile(seq_path_); reserved.ok()) {
    try {
      next = std::max<std::uint64_t>(1, std::stoull(*reserved));
    } catch (const std::exception&) {
      spdlog::warn("ignoring unreadable seq reservation {}", seq_path_);
    }
  }
  next_seq_ = next;
  reserved_ = next;  // force a reservation write before the first event
  return Reserve(next_seq_ + kSeqBlock);
}

Status EventLog::Reserve(std::uint64_t upto) {
  Status s = WriteFileAtomically(seq_path_, std::to_string(upto) + "\n", 0600);
  if (s.ok()) reserved_ = upto;
  return s;
}

nlohmann::json EventLog::Emit(const std::string& event, nlohmann::json fields) {
  if (next_seq_ >= reserved_) {
    // Written before any line with a seq it covers (one lane, in order);
    // tried again at every event until it is written; said once.
    const std::uint64_t upto = next_seq_ + kSeqBlock;
    reserved_ = upto;
    writer_->Post([this, upto] {
      Status s = WriteFileAtomically(seq_path_, std::to_string(upto) + "\n", 0600, 0750);
      if (!s.ok() && !reserve_failing_) {
        spdlog::error("cannot persist event seq: {} (tried again at every event)", s.message());
      } else if (s.ok() && reserve_failing_) {
        spdlog::info("event seq reservation written again");
      }
      reserve_failing_ = !s.ok();
      if (!s.ok()) {
        writer_->ToLoop([this, upto] {
          if (reserved_ == upto) reserved_ = 0;   // the next event tries again
        });
      }
      return s;
    });
  }
  nlohmann::json e = nlohmann::json::object();
  e["host"] = host_;
  e["event"] = event;
  e["seq"] = next_seq_++;
  e["time"] = Rfc3339Now();
  e["version"] = kVersion;
  for (auto& [k, v] : fields.items()) e[k] = std::move(v);
  std::string line = e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  const std::uint64_t seq = e["seq"].get<std::uint64_t>();
  if (fd_ >= 0) {
    writer_->Post([this, seq, line = std::move(line)]() mutable {
      WriteOrHold(seq, std::move(line));
      return Status::Ok();   // trouble is held and shown by write_health()
    });
  }
  for (auto& s : subscribers_) s(e);
  return e;
}

void EventLog::Flush() {
  if (fd_ < 0) return;
  writer_->Post([this] {
    ReopenIfRemoved();
    DrainHeld();
    PublishHealth();
    ReportDrop();
    return Status::Ok();
  });
}

void EventLog::ReopenIfRemoved() {
  // At most once a second: an fstat per event would be cheap, but not free.
  auto now = std::chrono::steady_clock::now();
  if (now - last_link_check_ < std::chrono::seconds(1)) return;
  last_link_check_ = now;
  struct stat sb {};
  if (::fstat(fd_, &sb) != 0 || sb.st_nlink > 0) return;
  // Deleted under us (the file, or the whole state dir): what we write
  // would go nowhere. Made again (directory included); seq goes on.
  RemakeParentDir(path_, 0750);
  int fd = OpenOrCreate(path_, O_RDWR | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    if (!reopen_failing_) {
      spdlog::error("events file {} was removed and cannot be made again: {}", path_,
                    std::strerror(errno));
    }
    reopen_failing_ = true;
    return;
  }
  ::close(fd_);
  fd_ = fd;
  torn_ = 0;
  reopen_failing_ = false;
  spdlog::warn("events file {} was removed: made it again, from seq {} on", path_,
               next_written_seq_);
}

void EventLog::WriteOrHold(std::uint64_t seq, std::string line) {
  next_written_seq_ = held_.clear() ? seq : held_.front().seq;
  ReopenIfRemoved();
  // The held lines first: the file stays in seq order. Once they are all
  // written, the drop range (if any) ends, so this line is kept again.
  const bool drained = held_.clear() || DrainHeld();
  std::string error;
  if (drained && held_.clear()) {
    Status s = WriteLine(line);
    if (s.ok()) {
      PublishHealth();
      ReportDrop();
      return;
    }
    error = s.message();
    if (held_.Fail(error, EventWallMs())) {
      spdlog::error("cannot write events to {}: {}; holding them in memory (up to {} events) and "
                    "writing them as soon as it can",
                    path_, error, kHeldEvents);
    }
  }
  // Full: not kept for the file until the held ones are written, so that
  // what is lost is one range, said by one events.dropped.
  const bool was_dropping = held_.dropping();
  const std::size_t size = line.size();
  if (!held_.Hold(Held{seq, std::move(line)}, size, seq) && !was_dropping) {
    spdlog::error("events file {}: {} events held in memory, the most kept; events from seq "
                  "{} on are not written to it until the held ones are",
                  path_, held_.size(), seq);
  }
  PublishHealth();
  ReportDrop();
}

bool EventLog::DrainHeld() {
  if (held_.clear()) return true;
  std::string error;
  if (!held_.Drain([&](const Held& h) {
        Status s = WriteLine(h.line);
        if (!s.ok()) error = s.message();
        return s.ok();
      })) {
    held_.Fail(error, EventWallMs());
    return false;
  }
  if (auto r = held_.Recovered(EventWallMs())) {
    spdlog::warn("events file {} is written again after {} s: {} held events written late", path_,
                 r->failing_ms / 1000, r->written_late);
  }
  if (auto d = held_.TakeDropped()) {
    spdlog::error("events file {}: {} events (seq {} to {}) were not written to it", path_,
                  d->count, d->first_seq, d->last_seq);
    drop_to_report_ = *d;
  }
  return true;
}

void EventLog::ReportDrop() {
  if (!drop_to_report_) return;
  const auto d = *drop_to_report_;
  drop_to_report_.reset();   // before: without a thread, Emit runs in here
  // Emitted on the loop (it takes a seq), after the line being written.
  writer_->ToLoop([this, d] {
    Emit("events.dropped", {{"count", d.count},
                            {"first_seq", d.first_seq},
                            {"last_seq", d.last_seq},
                            {"from", "events_file"}});
  });
}

Status EventLog::WriteLine(const std::string& line) {
  if (torn_ > 0) {
    if (Status s = CutTorn(); !s.ok()) return s;
  }
  std::size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write_(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status error = n < 0 ? Status(Status::WithCode(ErrnoCode(errno), std::strerror(errno)))
                           : Status(Status::Internal("write took nothing"));
      if (done > 0) {
        torn_ = done;
        if (Status cut = CutTorn(); !cut.ok()) {
          error = Status::WithCode(error.code(), error.message() + "; " + cut.message());
        }
      }
      return error;
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Status EventLog::CutTorn() {
  // The file is ours and appended to: the partial line is its last torn_
  // bytes (fstat, not a size kept here: logrotate's copytruncate may have
  // emptied it meanwhile).
  struct stat sb {};
  if (::fstat(fd_, &sb) != 0) return Status::FromErrno(errno, "cannot cut a partial line");
  const auto torn = static_cast<off_t>(torn_);
  if (sb.st_size >= torn && ::ftruncate(fd_, sb.st_size - torn) != 0) {
    return Status::FromErrno(errno, "cannot cut a partial line");
  }
  torn_ = 0;
  return Status::Ok();
}

std::string Rfc3339Now() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - secs).count();
  std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid.
size_t Utf8SeqLen(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t len = 0;
  std::uint32_t cp = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
  else return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

}  // namespace

std::string Utf8Tail(std::string_view text, size_t limit) {
  std::string clean;
  clean.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t n = Utf8SeqLen(text, i);
    if (n == 0) {
      clean += "\xEF\xBF\xBD";
      ++i;
    } else {
      clean.append(text.substr(i, n));
      i += n;
    }
  }
  if (clean.size() <= limit) return clean;
  size_t start = clean.size() - limit;
  while (start < clean.size() && (static_cast<unsigned char>(clean[start]) & 0xC0) == 0x80) ++start;
  return clean.substr(start);
}

std::string Redact(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    size_t pos = 0;
    while ((pos = text.find(s, pos)) != std::string::npos) {
      text.replace(pos, s.size(), "****");
      pos += 4;
    }
  }
  return text;
}

}  // namespace warden
