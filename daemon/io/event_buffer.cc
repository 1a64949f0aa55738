#include "daemon/io/event_buffer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "daemon/base/atomic_file.h"

namespace warden {
namespace {

constexpr std::size_t kHeader = 8;
constexpr std::uint32_t kMaxRecord = 64u << 20;

std::uint32_t Fnv1a(std::string_view s) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

void PutU32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t GetU32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Parses one record at data[0..size). Returns its total length, 0 when the
// bytes hold only part of a record, or -1 when it is corrupt.
long ParseRecord(const char* data, std::size_t size, std::string_view* family,
                 std::string_view* entry) {
  if (size < kHeader) return 0;
  std::uint32_t len = GetU32(data);
  std::uint32_t sum = GetU32(data + 4);
  if (len == 0 || len > kMaxRecord) return -1;
  if (size < kHeader + len) return 0;
  std::string_view payload(data + kHeader, len);
  if (Fnv1a(payload) != sum) return -1;
  auto n = static_cast<unsigned char>(payload[0]);
  if (1u + n > len) return -1;
  if (family) *family = payload.substr(1, n);
  if (entry) *entry = payload.substr(1 + n);
  return static_cast<long>(kHeader + len);
}

bool ReadAll(int fd, std::uint64_t offset, std::size_t size, std::string* out) {
  out->resize(size);
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, out->data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  out->resize(got);
  return got == size;
}

}  // namespace

EventBuffer::~EventBuffer() {
  for (int fd : retired_) {
    ::fdatasync(fd);
    ::close(fd);
  }
  if (write_fd_ >= 0) {
    ::fdatasync(write_fd_);
    ::close(write_fd_);
  }
  if (read_fd_ >= 0) ::close(read_fd_);
  if (!dir_.empty()) (void)SaveAck();
}

std::string EventBuffer::SegmentPath(std::uint64_t id) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(id));
  return dir_ + "/" + name;
}

BufferPos EventBuffer::end() const {
  if (segments_.empty()) return start_;
  return {segments_.back().id, segments_.back().size};
}

Status EventBuffer::Open(const std::string& dir, std::uint64_t limit, std::uint64_t segment_size) {
  dir_ = dir;
  limit_ = limit;
  segment_size_ = segment_size ? segment_size
                               : std::max<std::uint64_t>(limit / 32, std::min<std::uint64_t>(limit / 4, 1u << 20));
  if (Status made = MakeDirectories(dir, 0700); !made.ok()) return made;
  ::chmod(dir.c_str(), 0700);

  BufferPos acked{0, 0};
  if (auto text = ReadSmallFile(dir + "/acked", 4096); text.ok()) {
    unsigned long long seg = 0, off = 0;
    if (std::sscanf(text->c_str(), "%llu %llu", &seg, &off) == 2) acked = {seg, off};
    else spdlog::warn("fluentd buffer: ignoring unreadable {}/acked", dir);
  }

  std::vector<std::uint64_t> ids;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::Error("cannot read " + dir + ": " + std::strerror(errno));
  while (dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name.size() == 24 && name.compare(20, 4, ".seg") == 0 &&
        std::all_of(name.begin(), name.begin() + 20, [](char c) { return c >= '0' && c <= '9'; })) {
      ids.push_back(std::stoull(name.substr(0, 20)));
    }
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());

  std::uint64_t next_id = std::max<std::uint64_t>(1, acked.segment + 1);
  for (std::uint64_t id : ids) {
    next_id = std::max(next_id, id + 1);
    std::string path = SegmentPath(id);
    if (id < acked.segment) {
      ::unlink(path.c_str());
      continue;
    }
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return Status::Error("cannot open " + path + ": " + std::strerror(errno));
    struct stat sb {};
    ::fstat(fd, &sb);
    std::string data;
    bool ok = ReadAll(fd, 0, static_cast<std::size_t>(sb.st_size), &data);
    Segment seg{id, 0, 0};
    std::uint64_t acked_here = 0;
    std::size_t pos = 0;
    while (ok && pos < data.size()) {
      long n = ParseRecord(data.data() + pos, data.size() - pos, nullptr, nullptr);
      if (n <= 0) break;
      pos += static_cast<std::size_t>(n);
      ++seg.records;
      if (id == acked.segment && pos <= acked.offset) ++acked_here;
    }
    seg.size = pos;
    if (pos < static_cast<std::size_t>(sb.st_size)) {
      spdlog::warn("fluentd buffer: {}: cutting {} bytes of a torn or corrupt record at offset {}",
                   path, static_cast<std::uint64_t>(sb.st_size) - pos, pos);
      if (::ftruncate(fd, static_cast<off_t>(pos)) != 0) {
        ::close(fd);
        return Status::Error("cannot truncate " + path + ": " + std::strerror(errno));
      }
    }
    ::close(fd);
    if (seg.records == 0 && id != ids.back()) {
      ::unlink(path.c_str());
      continue;
    }
    if (segments_.empty()) {
      if (id == acked.segment) {
        // The acked offset may sit inside a record cut as torn: clamp to a
        // record boundary at or before it by recounting.
        std::uint64_t off = 0, k = 0;
        std::size_t p = 0;
        while (k < acked_here) {
          p += static_cast<std::size_t>(ParseRecord(data.data() + p, data.size() - p, nullptr, nullptr));
          ++k;
        }
        off = p;
        start_ = {id, off};
        acked_in_front_ = acked_here;
      } else {
        start_ = {id, 0};
      }
    }
    total_records_ += seg.records;
    total_bytes_ += seg.size;
    segments_.push_back(seg);
  }
  if (segments_.empty()) {
    Status s = StartSegment(next_id);
    if (!s.ok()) return s;
    start_ = {next_id, 0};
  } else {
    std::string path = SegmentPath(segments_.back().id);
    write_fd_ = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
    if (write_fd_ < 0) return Status::Error("cannot open " + path + ": " + std::strerror(errno));
  }
  RemoveAckedFront();
  saved_start_ = start_;
  if (backlog_events() > 0) {
    spdlog::info("fluentd buffer {}: {} events ({} bytes) not yet delivered", dir, backlog_events(),
                 backlog_bytes());
  }
  return Status::Ok();
}

Status EventBuffer::StartSegment(std::uint64_t id) {
  std::string path = SegmentPath(id);
  int fd = OpenOrCreate(path, O_RDWR | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOENT && RemakeParentDir(path, 0700)) {   // removed under us
    fd = OpenOrCreate(path, O_RDWR | O_APPEND | O_CLOEXEC, 0600);
  }
  if (fd < 0) return Status::Error("cannot create " + path + ": " + std::strerror(errno));
  if (write_fd_ >= 0) {
    // Synced with the next sync, off the loop; closed after.
    if (dirty_) retired_.push_back(write_fd_);
    else ::close(write_fd_);
  }
  write_fd_ = fd;
  dir_dirty_ = true;
  segments_.push_back(Segment{id, 0, 0});
  return Status::Ok();
}

Status EventBuffer::Append(std::string_view family, std::string_view entry) {
  if (write_fd_ < 0) return Status::Error("fluentd buffer is not open");
  std::string family_cut(family.substr(0, 255));
  std::size_t len = 1 + family_cut.size() + entry.size();
  if (len > kMaxRecord) return Status::Error("event too large for the fluentd buffer");
  std::string record(kHeader + len, '\0');
  record[kHeader] = static_cast<char>(family_cut.size());
  std::memcpy(record.data() + kHeader + 1, family_cut.data(), family_cut.size());
  std::memcpy(record.data() + kHeader + 1 + family_cut.size(), entry.data(), entry.size());
  PutU32(record.data(), static_cast<std::uint32_t>(len));
  PutU32(record.data() + 4, Fnv1a(std::string_view(record).substr(kHeader)));

  if (segments_.back().size > 0 && segments_.back().size + record.size() > segment_size_) {
    Status s = StartSegment(segments_.back().id + 1);
    if (!s.ok()) return s;
    RemoveAckedFront();
  }
  Segment& seg = segments_.back();
  std::size_t done = 0;
  while (done < record.size()) {
    ssize_t n = ::write(write_fd_, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string err = std::strerror(errno);
      // Cut a partial record so the segment stays parseable.
      if (done > 0 && ::ftruncate(write_fd_, static_cast<off_t>(seg.size)) != 0) {
        spdlog::error("fluentd buffer: cannot cut a partial record: {}", std::strerror(errno));
      }
      return Status::Error("cannot append to the fluentd buffer: " + err);
    }
    done += static_cast<std::size_t>(n);
  }
  seg.size += record.size();
  seg.records += 1;
  total_bytes_ += record.size();
  total_records_ += 1;
  dirty_ = true;
  while (total_bytes_ > limit_ && segments_.size() > 1) DropFront();
  return Status::Ok();
}

Status EventBuffer::Sync() {
  SyncJob job = TakeSync();
  return RunSync(job);
}

EventBuffer::SyncJob::SyncJob(SyncJob&& o) noexcept
    : fds(std::move(o.fds)), dir(std::move(o.dir)), end(o.end) {
  o.fds.clear();
}

EventBuffer::SyncJob::~SyncJob() {
  for (int fd : fds) ::close(fd);
}

EventBuffer::SyncJob EventBuffer::TakeSync() {
  SyncJob job;
  job.end = end();
  job.fds = std::move(retired_);
  retired_.clear();
  if (dirty_ && write_fd_ >= 0) {
    int fd = ::fcntl(write_fd_, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) job.fds.push_back(fd);
    dirty_ = false;
  }
  if (dir_dirty_) {
    job.dir = dir_;
    dir_dirty_ = false;
  }
  return job;
}

Status EventBuffer::RunSync(SyncJob& job) {
  Status result;
  for (int fd : job.fds) {
    if (::fdatasync(fd) != 0 && result.ok()) {
      result = Status::Error(std::string("fdatasync of the fluentd buffer: ") +
                             std::strerror(errno));
    }
    ::close(fd);
  }
  job.fds.clear();
  if (!job.dir.empty()) {
    int dfd = ::open(job.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  return result;
}

void EventBuffer::DropFront() {
  const Segment& front = segments_.front();
  std::uint64_t lost = front.records - acked_in_front_;
  dropped_pending_ += lost;
  dropped_total_ += lost;
  spdlog::warn("fluentd buffer over its limit ({} bytes): dropping {} undelivered events "
               "(segment {})", limit_, lost, front.id);
  PopFront();
}

// Forgets the oldest segment (dropped or fully acked) and deletes its file.
void EventBuffer::PopFront() {
  const Segment& front = segments_.front();
  total_records_ -= front.records;
  total_bytes_ -= front.size;
  if (read_fd_ >= 0 && read_fd_seg_ == front.id) {
    ::close(read_fd_);
    read_fd_ = -1;
  }
  if (cache_seg_ == front.id) cache_.clear();
  ::unlink(SegmentPath(front.id).c_str());
  segments_.pop_front();
  acked_in_front_ = 0;
  start_ = {segments_.front().id, 0};
}

void EventBuffer::RemoveAckedFront() {
  while (segments_.size() > 1 && start_.segment == segments_.front().id &&
         start_.offset >= segments_.front().size) {
    PopFront();
  }
}

BufferPos EventBuffer::Normalize(BufferPos p) const {
  if (p < start_) p = start_;
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    if (p.segment > s.id) continue;
    if (p.segment < s.id) return {s.id, 0};
    if (p.offset < s.size || i + 1 == segments_.size()) return p;
    p = {segments_[i + 1].id, 0};
  }
  return p;
}

Status EventBuffer::Fill(std::uint64_t segment, std::uint64_t offset, std::size_t want) {
  if (read_fd_ < 0 || read_fd_seg_ != segment) {
    if (read_fd_ >= 0) ::close(read_fd_);
    read_fd_ = ::open(SegmentPath(segment).c_str(), O_RDONLY | O_CLOEXEC);
    read_fd_seg_ = segment;
    if (read_fd_ < 0) return Status::FromErrno(errno, "cannot open " + SegmentPath(segment));
  }
  cache_seg_ = segment;
  cache_off_ = offset;
  if (!ReadAll(read_fd_, offset, want, &cache_)) {
    cache_.clear();
    return Status::Internal("short read from " + SegmentPath(segment));
  }
  return Status::Ok();
}

Status EventBuffer::Read(BufferPos from, std::size_t max_bytes, std::vector<BufferedRecord>* out) {
  out->clear();
  BufferPos p = Normalize(from);
  const Segment* seg = nullptr;
  for (const auto& s : segments_) {
    if (s.id == p.segment) seg = &s;
  }
  if (!seg || p.offset >= seg->size) return Status::Ok();
  std::size_t used = 0;
  std::string family;
  while (p.offset < seg->size) {
    std::size_t rel = 0;
    bool cached = cache_seg_ == p.segment && p.offset >= cache_off_ &&
                  p.offset < cache_off_ + cache_.size();
    std::string_view fam, entry;
    long n = 0;
    if (cached) {
      rel = static_cast<std::size_t>(p.offset - cache_off_);
      n = ParseRecord(cache_.data() + rel, cache_.size() - rel, &fam, &entry);
    }
    if (!cached || n == 0) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(
          seg->size - p.offset, std::max<std::size_t>(max_bytes + 4096, 1u << 20)));
      if (Status s = Fill(p.segment, p.offset, want); !s.ok()) return s;
      rel = 0;
      n = ParseRecord(cache_.data(), cache_.size(), &fam, &entry);
      if (n == 0 && cache_.size() >= kHeader) {  // a record longer than the read-ahead
        std::size_t whole = kHeader + GetU32(cache_.data());
        if (whole <= seg->size - p.offset) {
          if (Status s = Fill(p.segment, p.offset, whole); !s.ok()) return s;
          n = ParseRecord(cache_.data(), cache_.size(), &fam, &entry);
        }
      }
    }
    if (n <= 0) {
      return Status::Invalid("corrupt record in " + SegmentPath(p.segment) + " at offset " +
                             std::to_string(p.offset));
    }
    if (!out->empty() && (fam != family || used + entry.size() > max_bytes)) break;
    family = std::string(fam);
    used += entry.size();
    p.offset += static_cast<std::uint64_t>(n);
    out->push_back(BufferedRecord{family, std::string(entry), p});
  }
  return Status::Ok();
}

void EventBuffer::Ack(BufferPos begin, BufferPos end, std::uint64_t count) {
  if (end <= start_) return;
  if (segments_.empty() || end.segment != segments_.front().id || begin != start_) {
    // Not contiguous with what was acked (should not happen: chunks are
    // acked in order): recount the front segment up to `end`.
    while (segments_.size() > 1 && segments_.front().id < end.segment) {
      start_ = {segments_.front().id, segments_.front().size};
      RemoveAckedFront();
    }
    if (segments_.empty() || end.segment != segments_.front().id) return;
    std::string data, error;
    int fd = ::open(SegmentPath(end.segment).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    bool ok = ReadAll(fd, 0, static_cast<std::size_t>(end.offset), &data);
    ::close(fd);
    if (!ok) return;
    std::uint64_t k = 0;
    std::size_t p = 0;
    while (p < data.size()) {
      long n = ParseRecord(data.data() + p, data.size() - p, nullptr, nullptr);
      if (n <= 0) break;
      p += static_cast<std::size_t>(n);
      ++k;
    }
    acked_in_front_ = k;
  } else {
    acked_in_front_ += count;
  }
  start_ = end;
  RemoveAckedFront();
}

std::string EventBuffer::AckText() const {
  if (start_ == saved_start_) return "";
  return std::to_string(start_.segment) + " " + std::to_string(start_.offset) + "\n";
}

Status EventBuffer::SaveAck() {
  std::string text = AckText();
  if (text.empty()) return Status::Ok();
  Status s = WriteFileAtomically(ack_path(), text, 0600, 0700);
  if (s.ok()) saved_start_ = start_;
  return s;
}

}  // namespace warden
