#include "daemon/io/http_server.h"

#include <arpa/inet.h>
#include <ev.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace warden {

struct HttpServerAccess {
  static MHD_Result OnRequest(void* cls, struct MHD_Connection* connection, const char* url,
                              const char* method, const char* /*version*/,
                              const char* /*upload_data*/, size_t* upload_data_size,
                              void** req_cls) {
    auto* self = static_cast<HttpServer*>(cls);
    // A request without a body (a scrape) is answered at MHD's second call,
    // once the request is complete: answered at the first, at its headers,
    // MHD takes it as answered early and closes the connection after it
    // (Connection: close), so that every scrape paid for a new connection
    // (accept, setsockopt, shutdown, close: most of a 100-check scrape's
    // cost). A request with a body is still answered at its headers, the
    // body never read, and that connection closed.
    static char kHeadersSeen;
    if (*req_cls == nullptr && !HasBody(connection)) {
      *req_cls = &kHeadersSeen;
      return MHD_YES;
    }
    if (*req_cls == &kHeadersSeen && *upload_data_size != 0) {
      *upload_data_size = 0;   // (a body after all: not read)
    }
    ++self->requests_;
    HttpServer::Reply reply = self->handler_(method ? method : "", url ? url : "");
    struct MHD_Response* response = Response(reply);
    if (!response) return MHD_NO;   // MHD closes the connection
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
    for (const auto& [name, value] : reply.headers) {
      MHD_add_response_header(response, name.c_str(), value.c_str());
    }
    MHD_Result queued = MHD_queue_response(connection, reply.status, response);
    MHD_destroy_response(response);
    return queued;
  }

  // The body is shared, not copied: the response keeps a reference until
  // MHD is done with it (the last client that was sent it).
  static struct MHD_Response* Response(HttpServer::Reply& reply) {
    using Pieces = std::vector<std::shared_ptr<const std::string>>;
    if (!reply.pieces.empty()) {
      auto* keep = new Pieces(std::move(reply.pieces));
      std::vector<MHD_IoVec> iov;
      iov.reserve(keep->size());
      for (const auto& p : *keep) {
        if (p && !p->empty()) iov.push_back(MHD_IoVec{p->data(), p->size()});
      }
      struct MHD_Response* response = MHD_create_response_from_iovec(
          iov.data(), static_cast<unsigned>(iov.size()),
          [](void* p) { delete static_cast<Pieces*>(p); }, keep);   // (MHD copies iov)
      if (!response) delete keep;
      return response;
    }
    auto* keep = new std::shared_ptr<const std::string>(std::move(reply.body));
    const std::string* text = keep->get();
    struct MHD_Response* response = MHD_create_response_from_buffer_with_free_callback_cls(
        text ? text->size() : 0, text ? const_cast<char*>(text->data()) : nullptr,
        [](void* p) { delete static_cast<std::shared_ptr<const std::string>*>(p); }, keep);
    if (!response) delete keep;
    return response;
  }

  // Whether the request says a body follows (a length other than 0, or a
  // transfer coding).
  static bool HasBody(struct MHD_Connection* connection) {
    const char* length =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && std::strcmp(length, "0") != 0) return true;
    return MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_TRANSFER_ENCODING) != nullptr;
  }

  static void Log(void* /*cls*/, const char* fmt, va_list ap) {
    char line[512];
    std::vsnprintf(line, sizeof line, fmt, ap);
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    // A hostile client's doing more often than not (a request too large,
    // a connection reset): debug, not the operator's log.
    spdlog::debug("metrics http: {}", text);
  }
};

HttpServer::HttpServer(struct ev_loop* loop, Options options, Handler handler)
    : loop_(loop), options_(std::move(options)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  if (io_) ev_io_stop(loop_, io_.get());
  if (timer_) ev_timer_stop(loop_, timer_.get());
  if (mhd_) MHD_stop_daemon(mhd_);
}

Status HttpServer::Start() {
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  const sockaddr* addr = nullptr;
  unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (::inet_pton(AF_INET, options_.host.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<uint16_t>(options_.port));
    addr = reinterpret_cast<const sockaddr*>(&v4);
  } else if (::inet_pton(AF_INET6, options_.host.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(static_cast<uint16_t>(options_.port));
    addr = reinterpret_cast<const sockaddr*>(&v6);
    flags |= MHD_USE_IPv6;
  } else {
    return Status::Error("metrics listen " + where + ": not a numeric IP address");
  }
  errno = 0;
  mhd_ = MHD_start_daemon(
      flags, static_cast<uint16_t>(options_.port), nullptr, nullptr, &HttpServerAccess::OnRequest,
      this, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_CONNECTION_LIMIT, options_.max_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, options_.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      options_.memory_limit, MHD_OPTION_LISTEN_BACKLOG_SIZE, 128u, MHD_OPTION_EXTERNAL_LOGGER,
      &HttpServerAccess::Log, nullptr, MHD_OPTION_END);
  if (!mhd_) {
    const int err = errno;
    return Status::Error("metrics listen " + where + ": cannot serve" +
                         (err ? std::string(": ") + std::strerror(err) : std::string()));
  }
  const MHD_DaemonInfo* epoll = MHD_get_daemon_info(mhd_, MHD_DAEMON_INFO_EPOLL_FD);
  const MHD_DaemonInfo* bound = MHD_get_daemon_info(mhd_, MHD_DAEMON_INFO_BIND_PORT);
  if (!epoll || epoll->epoll_fd < 0) {
    MHD_stop_daemon(mhd_);
    mhd_ = nullptr;
    return Status::Error("metrics listen " + where + ": libmicrohttpd has no epoll fd");
  }
  port_ = bound ? bound->port : options_.port;
  io_ = std::make_unique<ev_io>();
  ev_io_init(io_.get(), &HttpServer::OnIo, epoll->epoll_fd, EV_READ);
  io_->data = this;
  ev_io_start(loop_, io_.get());
  timer_ = std::make_unique<ev_timer>();
  ev_timer_init(timer_.get(), &HttpServer::OnTimer, 0, 0);
  timer_->data = this;
  // Neither keeps the loop running by itself: the daemon's stop decides.
  Run();
  return Status::Ok();
}

unsigned HttpServer::Connections() const {
  const MHD_DaemonInfo* info = MHD_get_daemon_info(mhd_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
  return info ? info->num_connections : 0;
}

void HttpServer::OnIo(struct ev_loop*, ev_io* w, int) { static_cast<HttpServer*>(w->data)->Run(); }

void HttpServer::OnTimer(struct ev_loop*, ev_timer* w, int) {
  static_cast<HttpServer*>(w->data)->Run();
}

void HttpServer::Run() {
  // epoll_wait with no wait: what is ready, nothing more. At the connection
  // limit MHD takes its listening socket out of its epoll set and puts it
  // back at the start of a run once below it: a run that closed connections
  // is followed by another, so that connections waiting in the backlog are
  // taken then, not never (no event of the set would come for them).
  for (int i = 0; i < 4; ++i) {
    const unsigned before = Connections();
    (void)MHD_run(mhd_);
    if (Connections() >= before) break;
  }
  ev_timer_stop(loop_, timer_.get());
  MHD_UNSIGNED_LONG_LONG ms = 0;
  if (MHD_get_timeout(mhd_, &ms) == MHD_YES) {
    // 0: MHD holds data it has not processed yet (edge-triggered sockets):
    // run again on the loop's next pass, after the other watchers.
    ev_timer_set(timer_.get(), static_cast<double>(ms) / 1000.0, 0);
    ev_timer_start(loop_, timer_.get());
  }
}

}  // namespace warden
