#include "daemon/io/journal.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace warden {

bool ValidJournalFieldName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (!(name[0] >= 'A' && name[0] <= 'Z')) return false;   // not _ (trusted) nor a digit
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

void AppendJournalField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  if (value.find('\n') == std::string_view::npos) {
    out += '=';
    out.append(value);
  } else {
    out += '\n';
    std::uint64_t n = value.size();
    for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
    out.append(value);
  }
  out += '\n';
}

std::string CutJournalMessage(std::string_view message, std::size_t limit) {
  if (message.size() <= limit) return std::string(message);
  std::size_t keep = limit;
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (keep > 0 && (static_cast<unsigned char>(message[keep]) & 0xC0) == 0x80) --keep;
  std::string out(message.substr(0, keep));
  out += " [... " + std::to_string(message.size() - keep) + " bytes cut]";
  return out;
}

std::string EncodeJournalEntry(JournalPriority priority, std::string_view identifier,
                               std::string_view message, const std::vector<JournalField>& fields) {
  std::string out;
  out.reserve(message.size() + 64 + fields.size() * 32);
  AppendJournalField(out, "MESSAGE", message);
  AppendJournalField(out, "PRIORITY", std::to_string(static_cast<int>(priority)));
  AppendJournalField(out, "SYSLOG_IDENTIFIER", identifier);
  for (const auto& f : fields) {
    if (ValidJournalFieldName(f.name)) AppendJournalField(out, f.name, f.value);
  }
  return out;
}

bool FdIsJournalStream(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  char extra = 0;
  if (std::sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &extra) != 2) return false;
  struct stat sb {};
  if (::fstat(fd, &sb) != 0) return false;
  return static_cast<unsigned long long>(sb.st_dev) == dev &&
         static_cast<unsigned long long>(sb.st_ino) == ino;
}

JournalSender::JournalSender(std::string socket_path, std::string identifier)
    : path_(std::move(socket_path)), identifier_(std::move(identifier)) {
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

JournalSender::~JournalSender() {
  if (fd_ >= 0) ::close(fd_);
}

Expected<JournalSender::Result> JournalSender::Send(JournalPriority priority,
                                                    std::string_view message,
                                                    const std::vector<JournalField>& fields) {
  // Drops since the last entry that got through are said first, once the
  // socket takes entries again.
  if (std::uint64_t lost = dropped_unreported_.exchange(0); lost > 0) {
    std::string note = EncodeJournalEntry(
        JournalPriority::kWarning, identifier_,
        "journald's socket was full: " + std::to_string(lost) + " log entries dropped", {});
    if (!(SendEncoded(note, /*count=*/false) == Result::kSent)) dropped_unreported_ += lost;
  }
  std::string cut;
  if (message.size() > kMaxMessage) {
    cut = CutJournalMessage(message, kMaxMessage);
    message = cut;
  }
  return SendEncoded(EncodeJournalEntry(priority, identifier_, message, fields), true);
}

Expected<JournalSender::Result> JournalSender::SendEncoded(const std::string& datagram,
                                                           bool count) {
  auto fail = [&](Failure why) -> Expected<Result> {
    if (count) ++failed_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = why.message();
    }
    return why;
  };
  if (fd_ < 0) return fail(Status::Internal("cannot make a unix datagram socket"));
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) return fail(Status::Invalid(path_ + ": path too long"));
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  // Unconnected: each entry is addressed, so a restarted journald (a new
  // socket at the same path) is reached without reconnecting.
  for (;;) {
    ssize_t n = ::sendto(fd_, datagram.data(), datagram.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                         reinterpret_cast<const struct sockaddr*>(&addr), sizeof addr);
    if (n >= 0) {
      if (count) ++sent_;
      return Result::kSent;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (count) {
        ++dropped_;
        ++dropped_unreported_;
      }
      return Result::kDropped;
    }
    return fail(Status::FromErrno(errno, path_));
  }
}

JournalSender::Stats JournalSender::stats() const {
  Stats s;
  s.sent = sent_.load();
  s.dropped = dropped_.load();
  s.failed = failed_.load();
  std::lock_guard<std::mutex> lock(mu_);
  s.last_error = last_error_;
  return s;
}

JournalSink::JournalSink(std::shared_ptr<JournalSender> sender) : sender_(std::move(sender)) {}

JournalPriority JournalSink::PriorityOf(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return JournalPriority::kDebug;
    case spdlog::level::info: return JournalPriority::kInfo;
    case spdlog::level::warn: return JournalPriority::kWarning;
    case spdlog::level::err: return JournalPriority::kErr;
    case spdlog::level::critical: return JournalPriority::kCrit;
    default: return JournalPriority::kInfo;
  }
}

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
  std::string_view text(msg.payload.data(), msg.payload.size());
  if (sender_->Send(PriorityOf(msg.level), text).ok()) return;
  // Not taken (no journald, the path gone): the line goes to stderr, as it
  // would without the journal.
  spdlog::memory_buf_t formatted;
  formatter_->format(msg, formatted);
  std::fwrite(formatted.data(), 1, formatted.size(), stderr);
  std::fflush(stderr);
}

void JournalSink::flush_() {}

}  // namespace warden
