// The control socket: a unix stream socket served on the daemon's libev
// loop, for wardenctl.
//
// Protocol: newline-delimited JSON. A client sends one request per line,
// a JSON object with a string "cmd" and the command's arguments:
//
//   {"cmd":"status"}
//   {"cmd":"run","name":"restart_replication","dry_run":false,"wait":true}
//
// and gets exactly one reply line per request, a JSON object with "ok"
// (true, or false with "error": a message for an operator). Requests on one
// connection are answered in order, one at a time; a connection may send
// several.
//
// A request may turn its connection into a one-way stream instead
// (`events` with `follow`, Reply::OpenStream): after its reply, the server
// pushes lines to it (Stream::Push) until the client goes; what the client
// sends from then on is read and ignored. Push never blocks: lines wait in
// the client's buffer, and one that would take it past
// `max_stream_backlog` bytes unsent ends the stream instead: the lines not
// yet begun are cut, a last line {"ok": false, "error": ..., "end":
// "behind", "not_sent": N} follows, and the connection is closed once that
// is written (or after `idle_timeout` unread). A stream still open when the
// server stops gets {"ok": false, "error": ..., "end": "stopping"} when its
// buffer is empty.
//
// Robustness: everything is non-blocking. A line longer than
// `max_request` (64 KB) is answered with an error and the rest of it is
// discarded; a line that is not a JSON object with a "cmd" gets an error;
// a request left unfinished (no newline) for `idle_timeout`, or ended by
// EOF without a newline, gets an error and the connection is closed.
// Replies to a client that has gone are dropped. At most `max_clients`
// connections are served at once; more are told so and closed.
//
// Access (SO_PEERCRED): root and the daemon's own user may do everything
// (kAdmin); members of [control] group (primary or supplementary group of
// the peer, SO_PEERGROUPS) may read (kRead); anyone else gets kNone and
// every request is refused. The socket file is mode 0660, group [control]
// group, so the kernel already keeps others out; the check here does not
// rely on that.
//
// Threads: loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/status.h"

struct ev_loop;
struct ev_io;
struct ev_timer;

namespace warden {

struct Peer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;   // supplementary, when the kernel tells
  std::string Describe() const;   // "uid 1000 (alice) pid 4242"
};

enum class Access { kNone, kRead, kAdmin };
const char* AccessName(Access a);

// Root or `daemon_uid` -> kAdmin; member of `group` -> kRead; else kNone.
Access AccessFor(const Peer& peer, uid_t daemon_uid, std::optional<gid_t> group);

// One request line (without its newline): a JSON object whose "cmd" is a
// non-empty string. The error says what is wrong.
Expected<nlohmann::json> ParseRequest(std::string_view line);

// Splits complete lines off a connection's input buffer, enforcing the
// size cap. Pure logic (tested without sockets).
class LineReader {
 public:
  explicit LineReader(size_t max_line) : max_line_(max_line) {}
  struct Item {
    enum class Kind { kLine, kTooLong, kIncomplete } kind;   // kIncomplete: EOF mid-line (server)
    std::string line;   // kLine: without the newline (and without a final '\r')
  };
  // Feeds bytes; returns the items completed by them, in order. A line
  // over the cap yields one kTooLong (as soon as the cap is passed) and its
  // remaining bytes up to the newline are dropped.
  std::vector<Item> Feed(std::string_view bytes);
  bool partial() const { return !buffer_.empty() || discarding_; }
  size_t buffered() const { return buffer_.size(); }

 private:
  size_t max_line_;
  std::string buffer_;
  bool discarding_ = false;
};

class ControlServer {
 public:
  struct Options {
    std::string path;
    std::string group;                  // "" : only root and the daemon's user
    size_t max_request = 64 * 1024;
    double idle_timeout = 10.0;         // seconds a partial request may wait
    size_t max_clients = 1024;
    size_t max_reply_backlog = 64u << 20;   // unsent reply bytes before a client is dropped
    size_t max_stream_backlog = 256 * 1024;  // unsent stream bytes before a stream is ended
  };

  // A connection turned into a stream by its request (Reply::OpenStream).
  // Shared by whoever pushes to it; the server forgets it when the client
  // goes. Loop thread only.
  class Stream {
   public:
    // Sends one line (`line`, dumped). false once the stream has ended (the
    // client went, fell behind, or the server stopped): drop it then.
    bool Push(const nlohmann::json& line);
    bool open() const;

   private:
    friend class ControlServer;
    Stream(ControlServer* server, std::weak_ptr<bool> alive, std::uint64_t id)
        : server_(server), alive_(std::move(alive)), id_(id) {}
    ControlServer* server_;
    std::weak_ptr<bool> alive_;
    std::uint64_t id_;
    bool ended_ = false;
  };

  // Sends the reply to one request; call exactly once. Safe to call after
  // the client has gone (dropped), and from any later loop iteration.
  // Made from any callable taking the reply (tests, wrappers); the
  // server's own can also open a stream.
  class Reply {
   public:
    Reply() = default;
    template <typename F, typename = std::enable_if_t<
                              !std::is_same_v<std::decay_t<F>, Reply> &&
                              std::is_invocable_v<F&, nlohmann::json>>>
    Reply(F f) : send_(std::move(f)) {}   // NOLINT: implicit, like std::function
    void operator()(nlohmann::json reply) const {
      if (send_) send_(std::move(reply));
    }
    // Answers with `first` (instead of calling the reply) and keeps the
    // connection as a stream. nullptr when this reply cannot stream (not
    // the server's, or already used) or the client has gone.
    std::shared_ptr<Stream> OpenStream(nlohmann::json first) const {
      return stream_ ? stream_(std::move(first)) : nullptr;
    }

   private:
    friend class ControlServer;
    std::function<void(nlohmann::json)> send_;
    std::function<std::shared_ptr<Stream>(nlohmann::json)> stream_;
  };
  using Handler =
      std::function<void(const nlohmann::json& request, const Peer& peer, Access access, Reply reply)>;

  ControlServer(struct ev_loop* loop, Options options, Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds and listens. A stale socket file (nobody answers) is replaced; a
  // socket a live daemon answers on is not. Creates the socket's directory
  // (0755) when missing.
  Status Start();
  void Stop();
  size_t clients() const { return clients_.size(); }
  std::uint64_t served() const { return served_; }
  const std::string& path() const { return options_.path; }

 private:
  struct Client;
  static void OnAccept(struct ev_loop* loop, ev_io* w, int revents);
  static void OnRetryAccept(struct ev_loop* loop, ev_timer* w, int revents);
  void Accept();
  void OnReadable(Client& c);
  void OnWritable(Client& c);
  void OnIdle(Client& c);
  void Dispatch(Client& c);
  void Send(Client& c, const nlohmann::json& reply);
  void Close(std::uint64_t id);
  void CloseLater(Client& c);   // after the pending output is written
  // Stream::Push: false when the stream ended (now or before).
  bool PushLine(std::uint64_t id, const nlohmann::json& line);
  // Cuts the lines not yet begun, adds the last line, closes after it.
  void EndStream(Client& c, const std::string& error, const char* end);

  struct ev_loop* loop_;
  Options options_;
  Handler handler_;
  int fd_ = -1;
  std::unique_ptr<ev_io> accept_;
  std::unique_ptr<ev_timer> retry_;
  std::map<std::uint64_t, std::unique_ptr<Client>> clients_;
  unsigned iteration_ = 0;          // the loop iteration iteration_served_ counts
  size_t iteration_served_ = 0;     // requests served in it (all clients)
  std::uint64_t next_id_ = 1;
  std::uint64_t served_ = 0;
  uid_t uid_ = 0;
  std::optional<gid_t> gid_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace warden
