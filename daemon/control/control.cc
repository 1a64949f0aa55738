#include "daemon/control/control.h"

#include <ev.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "daemon/base/atomic_file.h"

namespace warden {

using nlohmann::json;

std::string Peer::Describe() const {
  return "uid " + std::to_string(uid) + " gid " + std::to_string(gid) + " pid " +
         std::to_string(pid);
}

const char* AccessName(Access a) {
  switch (a) {
    case Access::kNone: return "none";
    case Access::kRead: return "read";
    case Access::kAdmin: return "admin";
  }
  return "?";
}

Access AccessFor(const Peer& peer, uid_t daemon_uid, std::optional<gid_t> group) {
  if (peer.uid == 0 || peer.uid == daemon_uid) return Access::kAdmin;
  if (group) {
    if (peer.gid == *group) return Access::kRead;
    if (std::find(peer.groups.begin(), peer.groups.end(), *group) != peer.groups.end()) {
      return Access::kRead;
    }
  }
  return Access::kNone;
}

Expected<json> ParseRequest(std::string_view line) {
  if (line.find_first_not_of(" \t") == std::string_view::npos) {
    return Expected<json>::Error("empty request: send one JSON object per line");
  }
  // nlohmann's parser stops at a NUL byte: what follows it would be ignored.
  if (line.find('\0') != std::string_view::npos) {
    return Expected<json>::Error("malformed request: not valid JSON (NUL byte)");
  }
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded()) return Expected<json>::Error("malformed request: not valid JSON");
  if (!j.is_object()) return Expected<json>::Error("malformed request: not a JSON object");
  auto it = j.find("cmd");
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
    return Expected<json>::Error("malformed request: no \"cmd\" string");
  }
  return j;
}

std::vector<LineReader::Item> LineReader::Feed(std::string_view bytes) {
  std::vector<Item> out;
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view chunk = nl == std::string_view::npos ? bytes : bytes.substr(0, nl);
    if (discarding_) {
      if (nl == std::string_view::npos) return out;
      discarding_ = false;
    } else if (buffer_.size() + chunk.size() > max_line_) {
      buffer_.clear();
      out.push_back({Item::Kind::kTooLong, {}});
      if (nl == std::string_view::npos) {
        discarding_ = true;
        return out;
      }
    } else {
      buffer_.append(chunk);
      if (nl == std::string_view::npos) return out;
      if (!buffer_.empty() && buffer_.back() == '\r') buffer_.pop_back();
      out.push_back({Item::Kind::kLine, std::move(buffer_)});
      buffer_.clear();
    }
    bytes.remove_prefix(nl + 1);
  }
  return out;
}

struct ControlServer::Client {
  ControlServer* owner = nullptr;
  std::uint64_t id = 0;
  int fd = -1;
  Peer peer;
  Access access = Access::kNone;
  ev_io rio{};
  ev_io wio{};
  ev_timer idle{};
  LineReader reader;
  std::deque<LineReader::Item> queue;
  bool busy = false;          // a request is with the handler
  bool dispatching = false;   // inside Dispatch (a reply may come synchronously)
  bool eof = false;
  bool closing = false;       // close once `out` is written
  bool streaming = false;     // a stream (Reply::OpenStream): no more requests
  std::string out;

  explicit Client(size_t max_line) : reader(max_line) {}
};

namespace {

json ErrorReply(const std::string& message) { return {{"ok", false}, {"error", message}}; }

constexpr size_t kMaxQueued = 16;   // pipelined requests read ahead of the one being served
// Pipelined requests are served only while less than this is waiting to be
// written: a client that sends and never reads stops being served (and
// read), instead of making the daemon build replies for it without end.
constexpr size_t kMaxPendingReply = 64 * 1024;
// Requests served in one loop iteration, all clients together: many clients
// pipelining at once cannot hold the loop (checks, timers) for longer than
// this many replies take to build. The rest are served next iteration.
constexpr size_t kMaxPerIteration = 32;

}  // namespace

ControlServer::ControlServer(struct ev_loop* loop, Options options, Handler handler)
    : loop_(loop), options_(std::move(options)), handler_(std::move(handler)) {}

ControlServer::~ControlServer() {
  Stop();
  *alive_ = false;
}

Status ControlServer::Start() {
  uid_ = ::geteuid();
  if (!options_.group.empty()) {
    struct group gr {};
    struct group* found = nullptr;
    std::vector<char> buf(16384);
    int rc = ::getgrnam_r(options_.group.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc != 0 || !found) {
      return Status::Error("[control] group '" + options_.group + "' does not exist");
    }
    gid_ = gr.gr_gid;
  }
  const std::string& path = options_.path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Status::Error("[control] socket path '" + path + "' is empty or longer than " +
                         std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    if (Status made = MakeDirectories(dir.string(), 0755); !made.ok()) return made;
  }
  struct stat sb {};
  if (::lstat(path.c_str(), &sb) == 0) {
    if (!S_ISSOCK(sb.st_mode)) {
      return Status::Error("control socket " + path + " exists and is not a socket");
    }
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
      bool live = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      ::close(probe);
      if (live) return Status::Error("another process answers on control socket " + path);
    }
    ::unlink(path.c_str());  // stale: left by a daemon that died
  }
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Status::Error(std::string("socket: ") + std::strerror(errno));
  // No window in which the socket is reachable with wider permissions.
  mode_t old_mask = ::umask(0117);
  int rc = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int bind_errno = errno;
  ::umask(old_mask);
  if (rc != 0) {
    ::close(fd_);
    fd_ = -1;
    return Status::Error("cannot bind control socket " + path + ": " + std::strerror(bind_errno));
  }
  if (gid_ && ::chown(path.c_str(), static_cast<uid_t>(-1), *gid_) != 0) {
    std::string err = std::strerror(errno);
    Stop();
    return Status::Error("cannot give control socket " + path + " to group " + options_.group +
                         ": " + err);
  }
  ::chmod(path.c_str(), 0660);
  if (::listen(fd_, 512) != 0) {
    std::string err = std::strerror(errno);
    Stop();
    return Status::Error("cannot listen on " + path + ": " + err);
  }
  accept_ = std::make_unique<ev_io>();
  ev_io_init(accept_.get(), &ControlServer::OnAccept, fd_, EV_READ);
  accept_->data = this;
  ev_io_start(loop_, accept_.get());
  retry_ = std::make_unique<ev_timer>();
  ev_timer_init(retry_.get(), &ControlServer::OnRetryAccept, 0.1, 0);
  retry_->data = this;
  return Status::Ok();
}

void ControlServer::Stop() {
  if (accept_) ev_io_stop(loop_, accept_.get());
  if (retry_) ev_timer_stop(loop_, retry_.get());
  std::vector<std::uint64_t> ids;
  for (auto& [id, c] : clients_) {
    ids.push_back(id);
    if (c->streaming && !c->closing && c->out.empty()) {
      // Said once, without waiting: a follower learns the stream did not
      // just go quiet.
      json last = {{"ok", false}, {"error", "wardend is stopping"}, {"end", "stopping"}};
      std::string line = last.dump() + "\n";
      ssize_t ignored = ::send(c->fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)ignored;
    }
  }
  for (auto id : ids) Close(id);
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(options_.path.c_str());
  }
}

void ControlServer::OnAccept(struct ev_loop*, ev_io* w, int) {
  static_cast<ControlServer*>(w->data)->Accept();
}

void ControlServer::OnRetryAccept(struct ev_loop* loop, ev_timer* w, int) {
  auto* self = static_cast<ControlServer*>(w->data);
  if (self->fd_ >= 0) ev_io_start(loop, self->accept_.get());
}

void ControlServer::Accept() {
  for (int i = 0; i < 64; ++i) {  // bounded: other watchers get their turn
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: pause accepting briefly instead of spinning.
        spdlog::warn("control socket: accept: {}; retrying in 100 ms", std::strerror(errno));
        ev_io_stop(loop_, accept_.get());
        ev_timer_stop(loop_, retry_.get());
        ev_timer_set(retry_.get(), 0.1, 0);
        ev_timer_start(loop_, retry_.get());
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        spdlog::warn("control socket: accept: {}", std::strerror(errno));
      }
      return;
    }
    if (clients_.size() >= options_.max_clients) {
      std::string msg = ErrorReply("too many control connections (" +
                                   std::to_string(options_.max_clients) + "); try again")
                            .dump() + "\n";
      ssize_t ignored = ::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)ignored;
      ::close(fd);
      continue;
    }
    auto c = std::make_unique<Client>(options_.max_request);
    c->owner = this;
    c->id = next_id_++;
    c->fd = fd;
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      c->peer.pid = cred.pid;
      c->peer.uid = cred.uid;
      c->peer.gid = cred.gid;
    } else {
      // Unknown peer: treat as nobody at all.
      c->peer.uid = static_cast<uid_t>(-1);
      c->peer.gid = static_cast<gid_t>(-1);
    }
#ifdef SO_PEERGROUPS
    std::vector<gid_t> groups(64);
    for (int attempt = 0; attempt < 3; ++attempt) {
      socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
        groups.resize(glen / sizeof(gid_t));
        c->peer.groups = std::move(groups);
        break;
      }
      if (errno != ERANGE) break;
      groups.resize(std::max<size_t>(glen / sizeof(gid_t), groups.size() * 4));
    }
#endif
    c->access = AccessFor(c->peer, uid_, gid_);
    Client* raw = c.get();
    ev_io_init(&raw->rio, [](struct ev_loop*, ev_io* w, int) {
      auto* cl = static_cast<Client*>(w->data);
      cl->owner->OnReadable(*cl);
    }, fd, EV_READ);
    raw->rio.data = raw;
    ev_io_init(&raw->wio, [](struct ev_loop*, ev_io* w, int) {
      auto* cl = static_cast<Client*>(w->data);
      cl->owner->OnWritable(*cl);
    }, fd, EV_WRITE);
    raw->wio.data = raw;
    ev_timer_init(&raw->idle, [](struct ev_loop*, ev_timer* w, int) {
      auto* cl = static_cast<Client*>(w->data);
      cl->owner->OnIdle(*cl);
    }, 0, options_.idle_timeout);
    raw->idle.data = raw;
    ev_io_start(loop_, &raw->rio);
    ev_timer_again(loop_, &raw->idle);
    clients_[raw->id] = std::move(c);
  }
}

void ControlServer::OnReadable(Client& c) {
  char buf[65536];
  size_t total = 0;
  std::uint64_t id = c.id;
  if (c.streaming) {
    // A stream takes no requests: what comes is read and ignored, and its
    // end (or a reset) means the follower has gone.
    while (total < 4 * sizeof buf) {
      ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {
        Close(id);
        return;
      }
      total += static_cast<size_t>(n);
    }
    return;
  }
  while (total < 4 * sizeof buf) {  // bounded per wakeup: fairness between clients
    ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Close(id);  // reset by the peer
      return;
    }
    if (n == 0) {
      c.eof = true;
      ev_io_stop(loop_, &c.rio);
      if (c.reader.buffered() > 0) {
        // An unfinished request: say so rather than guessing what it meant.
        c.queue.push_back({LineReader::Item::Kind::kIncomplete, {}});
      }
      break;
    }
    total += static_cast<size_t>(n);
    ev_timer_again(loop_, &c.idle);
    for (auto& item : c.reader.Feed(std::string_view(buf, static_cast<size_t>(n)))) {
      c.queue.push_back(std::move(item));
    }
    if (c.queue.size() >= kMaxQueued) {
      ev_io_stop(loop_, &c.rio);  // resumed when the queue drains
      break;
    }
  }
  Dispatch(c);
}

void ControlServer::OnIdle(Client& c) {
  if (c.busy) return;  // a long request (run --wait) is not idleness
  if (c.streaming && c.out.empty()) return;   // a quiet stream is not idleness
  if (!c.out.empty()) {
    // Replies unread for idle_timeout (writing resets the timer).
    spdlog::warn("control socket: client {} does not read its replies; dropped",
                 c.peer.Describe());
    Close(c.id);
    return;
  }
  if (c.reader.buffered() > 0 || c.reader.partial()) {
    std::uint64_t id = c.id;
    Send(c, ErrorReply("incomplete request: no newline within " +
                       std::to_string(static_cast<int>(options_.idle_timeout)) + " s"));
    if (clients_.count(id)) CloseLater(c);
    return;
  }
  Close(c.id);
}

void ControlServer::Dispatch(Client& c) {
  std::uint64_t id = c.id;
  c.dispatching = true;
  size_t served = 0;
  while (!c.busy && !c.queue.empty() && !c.closing && !c.streaming) {
    if (ev_iteration(loop_) != iteration_) {
      iteration_ = ev_iteration(loop_);
      iteration_served_ = 0;
    }
    if (served == kMaxQueued || iteration_served_ >= kMaxPerIteration ||
        c.out.size() >= kMaxPendingReply) {
      // Back to the loop: other clients and timers get their turn. The write
      // watcher resumes here once the pending replies are written
      // (OnWritable): next iteration if the client reads.
      ev_io_start(loop_, &c.wio);
      break;
    }
    ++served;
    ++iteration_served_;
    LineReader::Item item = std::move(c.queue.front());
    c.queue.pop_front();
    if (item.kind == LineReader::Item::Kind::kTooLong) {
      Send(c, ErrorReply("request over " + std::to_string(options_.max_request) +
                         " bytes: refused"));
    } else if (item.kind == LineReader::Item::Kind::kIncomplete) {
      Send(c, ErrorReply("incomplete request: the connection ended before a newline"));
    } else if (c.access == Access::kNone) {
      Send(c, ErrorReply("permission denied: " + c.peer.Describe() +
                         " is neither root, the daemon's user, nor in the [control] group" +
                         (options_.group.empty() ? std::string(" (none is set)")
                                                 : " '" + options_.group + "'")));
    } else {
      auto req = ParseRequest(item.line);
      if (!req.ok()) {
        Send(c, ErrorReply(req.error()));
      } else {
        c.busy = true;
        ++served_;
        std::weak_ptr<bool> alive = alive_;
        auto replied = std::make_shared<bool>(false);
        Reply reply = [this, alive, id, replied](json r) {
          if (alive.expired() || *replied) return;
          *replied = true;
          auto it = clients_.find(id);
          if (it == clients_.end()) return;  // the client has gone
          Client& cl = *it->second;
          cl.busy = false;
          Send(cl, r);
          if (!clients_.count(id)) return;
          if (!cl.dispatching) Dispatch(cl);
        };
        reply.stream_ = [this, alive, id, replied](json first) -> std::shared_ptr<Stream> {
          if (alive.expired() || *replied) return nullptr;
          *replied = true;
          auto it = clients_.find(id);
          if (it == clients_.end()) return nullptr;  // the client has gone
          Client& cl = *it->second;
          cl.busy = false;
          cl.streaming = true;
          cl.queue.clear();   // requests pipelined behind it are not served
          // What the kernel holds for it counts against the same bound: a
          // small socket buffer, so that most of a slow follower's backlog
          // is the one this server measures.
          int sndbuf = static_cast<int>(std::min<size_t>(options_.max_stream_backlog, 64 * 1024));
          ::setsockopt(cl.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
          Send(cl, first);
          if (!clients_.count(id)) return nullptr;
          if (!cl.eof) ev_io_start(loop_, &cl.rio);   // to see the follower go
          return std::shared_ptr<Stream>(new Stream(this, alive, id));
        };
        handler_(*req, c.peer, c.access, std::move(reply));
        if (alive.expired()) return;
      }
    }
    if (!clients_.count(id)) return;  // closed while sending
  }
  c.dispatching = false;
  if (!c.eof && !c.closing && c.queue.size() < kMaxQueued) ev_io_start(loop_, &c.rio);
  if (c.eof && c.streaming) {
    Close(id);   // the follower has gone
    return;
  }
  if (c.eof && c.queue.empty() && !c.busy) CloseLater(c);
}

void ControlServer::Send(Client& c, const json& reply) {
  c.out += reply.dump(-1, ' ', false, json::error_handler_t::replace);
  c.out += '\n';
  if (c.out.size() > options_.max_reply_backlog) {
    spdlog::warn("control socket: client {} does not read its replies; dropped",
                 c.peer.Describe());
    Close(c.id);
    return;
  }
  OnWritable(c);
}

void ControlServer::OnWritable(Client& c) {
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ev_io_start(loop_, &c.wio);
        return;
      }
      Close(c.id);  // the peer has gone
      return;
    }
    c.out.erase(0, static_cast<size_t>(n));
    ev_timer_again(loop_, &c.idle);  // the client reads: not idle
  }
  ev_io_stop(loop_, &c.wio);
  if (c.closing) {
    Close(c.id);
  } else if (!c.dispatching && !c.busy && !c.queue.empty()) {
    Dispatch(c);  // requests held back while replies were pending
  }
}

bool ControlServer::Stream::Push(const json& line) {
  if (ended_ || alive_.expired()) return false;
  ended_ = !server_->PushLine(id_, line);
  return !ended_;
}

bool ControlServer::Stream::open() const {
  if (ended_ || alive_.expired()) return false;
  auto it = server_->clients_.find(id_);
  return it != server_->clients_.end() && !it->second->closing;
}

bool ControlServer::PushLine(std::uint64_t id, const json& line) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return false;
  Client& c = *it->second;
  if (c.closing) return false;
  std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace);
  text += '\n';
  if (c.out.size() + text.size() > options_.max_stream_backlog) {
    EndStream(c, "fell behind: more than " + std::to_string(options_.max_stream_backlog) +
                     " bytes unread; this stream is ended",
              "behind");
    return false;
  }
  c.out += text;
  OnWritable(c);
  it = clients_.find(id);
  return it != clients_.end() && !it->second->closing;
}

void ControlServer::EndStream(Client& c, const std::string& error, const char* end) {
  // The first line may be partly sent already: it is finished; the rest,
  // not begun, is cut and counted.
  size_t keep = c.out.find('\n');
  keep = keep == std::string::npos ? 0 : keep + 1;
  size_t cut = static_cast<size_t>(std::count(c.out.begin() + static_cast<std::ptrdiff_t>(keep),
                                              c.out.end(), '\n'));
  c.out.resize(keep);
  spdlog::warn("control socket: stream to {} ended: {} ({} lines not sent)", c.peer.Describe(),
               error, cut + 1);
  json last = {{"ok", false}, {"error", error}, {"end", end}, {"not_sent", cut + 1}};
  c.out += last.dump() + "\n";
  std::uint64_t id = c.id;
  OnWritable(c);
  if (clients_.count(id)) CloseLater(c);
}

void ControlServer::CloseLater(Client& c) {
  c.closing = true;
  ev_io_stop(loop_, &c.rio);
  if (c.out.empty()) Close(c.id);
}

void ControlServer::Close(std::uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  ev_io_stop(loop_, &c.rio);
  ev_io_stop(loop_, &c.wio);
  ev_timer_stop(loop_, &c.idle);
  ::close(c.fd);
  clients_.erase(it);
}

}  // namespace warden
