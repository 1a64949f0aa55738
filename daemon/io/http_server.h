// A small HTTP server on the libev loop, for read-only endpoints (the
// Prometheus /metrics page). HTTP itself is libmicrohttpd's: its parser,
// its limits, its timeouts. It runs without a thread of its own
// (MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD): one ev_io
// watches MHD's epoll fd, MHD_run does what is ready without waiting
// (never blocks the loop), and one ev_timer wakes it at MHD_get_timeout
// (idle connections to close, data MHD already holds).
//
// Hostile clients: at most `max_connections` at once (more are accepted
// and closed at once by MHD), each closed after `timeout_s` without
// progress (a slow reader, a half-sent request), each with at most
// `memory_limit` bytes for its request (an oversized request line or
// header block gets MHD's 431/414 answer and the connection is closed);
// a request body is never read (a request that has one is answered at its
// headers and its connection closed). A request without one is answered
// once complete and its connection kept alive, as Prometheus expects: a
// scrape a second costs no new connection.
// A body shared between answers (Reply::body) is not copied per client,
// nor are a body's pieces joined (Reply::pieces: one writev).
//
// Threads: every method and the handler run on the loop's thread.
// Ownership: the server must be destroyed on the loop's thread; the
// destructor closes every connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/base/status.h"

struct ev_loop;
struct ev_io;
struct ev_timer;
struct MHD_Daemon;

namespace warden {

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";   // a numeric IPv4 or IPv6 address
    int port = 0;                     // 0: any free port (tests; see port())
    unsigned max_connections = 64;
    unsigned timeout_s = 10;
    std::size_t memory_limit = 16 * 1024;
  };
  struct Reply {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::shared_ptr<const std::string> body;   // null: empty
    // When not empty, the body instead: these one after the other, sent
    // as they are (one writev), not joined.
    std::vector<std::shared_ptr<const std::string>> pieces;
    std::vector<std::pair<std::string, std::string>> headers;
  };
  // Called once per request, when its headers are in. `path` is without
  // the query string. For a HEAD, MHD sends the Reply's status and
  // headers (Content-Length too) without its body: a handler that answers
  // HEAD like GET makes HEAD what HTTP wants.
  using Handler = std::function<Reply(std::string_view method, std::string_view path)>;

  HttpServer(struct ev_loop* loop, Options options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. The error names the address and why.
  Status Start();
  int port() const { return port_; }   // the bound port, after Start
  std::uint64_t requests() const { return requests_; }

 private:
  static void OnIo(struct ev_loop* loop, ev_io* w, int revents);
  static void OnTimer(struct ev_loop* loop, ev_timer* w, int revents);
  // MHD_run, then the timer re-armed from MHD_get_timeout.
  void Run();
  unsigned Connections() const;   // MHD's, now

  struct ev_loop* loop_;
  Options options_;
  Handler handler_;
  struct MHD_Daemon* mhd_ = nullptr;
  std::unique_ptr<ev_io> io_;
  std::unique_ptr<ev_timer> timer_;
  int port_ = 0;
  std::uint64_t requests_ = 0;

  friend struct HttpServerAccess;
};

}  // namespace warden
