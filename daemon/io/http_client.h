// A small asynchronous HTTP client driven by a libev loop through libcurl's
// multi-socket API: one CURLM per client, one ev_io per socket curl asks
// for, one ev_timer for curl's timeout. Nothing here blocks the loop (names
// are resolved by curl's threaded resolver).
//
// Threads: every method, and every callback, runs on the loop's thread.
// Ownership: the client owns its transfers; it must outlive neither its loop
// nor be destroyed from another thread. It may be destroyed from inside one
// of its own callbacks.
// Failure modes: every started request gets exactly one callback, unless it
// is cancelled (Cancel, or destruction of the client): a cancelled request
// never gets a callback. A callback never runs inside Start(); it runs from
// the loop, at the earliest on the loop's next iteration.
//
// Used by the mutex client and meant for etcd's JSON gateway: it knows
// nothing about either protocol.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/units.h"

struct ev_loop;
struct ev_io;
struct ev_timer;

namespace warden {

struct HttpRequest {
  enum class Method { kGet, kPost };
  Method method = Method::kGet;
  // http://, https:// or file://; any other scheme fails the request.
  // libcurl reads a file:// inside the loop: meant for a small regular local
  // file (never a FIFO or a slow network file system).
  // Proxy environment variables (http_proxy, ...) apply as in libcurl.
  std::string url;
  // Extra header lines, each "Name: value". Never logged by this client.
  std::vector<std::string> headers;
  // Sent with kPost (Content-Type is the caller's business, via headers).
  std::string body;
  // Whole transfer, connect included. Must be > 0, except for a stream
  // (on_data set), where 0 means no limit (the receiver watches liveness).
  Duration timeout{2000};
  // Connect (TCP + TLS handshake) only; 0 means the same as `timeout`.
  Duration connect_timeout{0};
  // A response body longer than this aborts the transfer with the error
  // "body over 64 KB" (the figure is max_body).
  std::size_t max_body = 64 * 1024;
  // PEM file of trusted CA certificates. Note: with libcurl this REPLACES the
  // system bundle for this request (CURLOPT_CAINFO); "" keeps the system one.
  // Certificates and host names are always verified.
  std::string ca_file;
  // PEM client certificate and its key (CURLOPT_SSLCERT / CURLOPT_SSLKEY)
  // for servers that ask for one (etcd with --client-cert-auth); "" sends
  // none. key_file may name the same file as cert_file.
  std::string cert_file;
  std::string key_file;
  // Streaming (etcd's watch): when set, every piece of the body is handed
  // to it as it arrives, with the HTTP status read so far, instead of being
  // kept in HttpResponse::body (max_body does not apply; bounding is the
  // receiver's business). Returning false aborts the transfer (error
  // "aborted by the receiver"). It runs on the loop but INSIDE this client:
  // it must not Start, Cancel or destroy the client (defer that).
  std::function<bool(long http_status, std::string_view piece)> on_data;
};

// Redirects are never followed: a 3xx is an ordinary completed response.
struct HttpResponse {
  // The transfer completed: a whole response was read, whatever its status.
  // False for a timeout, a refused/closed connection, a TLS or DNS failure,
  // an unreadable file, a body over max_body, a cancelled... (see error).
  bool ok = false;
  // HTTP status of the response; 0 when !ok, and 0 for file:// (a file has
  // no status: ok tells whether it was read).
  long http_status = 0;
  std::string body;  // as much as was received (at most max_body)
  // When !ok, one line for an operator, e.g. "timed out after 2000 ms",
  // "connection refused: Failed to connect to 127.0.0.1 port 9 ...",
  // "TLS error: SSL certificate problem: self-signed certificate",
  // "body over 64 KB". Empty when ok.
  std::string error;
  // When !ok, what kind of failure: invalid for a body over max_body or a
  // bad URL; not_found for a file:// that cannot be read; internal for a
  // request that could not be set up; transient for every other failure
  // of the exchange (a timeout, a refused, closed or reset connection, a
  // name that did not resolve, a failed TLS handshake).
  StatusCode failure_code = StatusCode::kInternal;
  // Some of the request was written to the server, which may therefore have
  // acted on it even when !ok (a timeout, a closed connection). False when
  // nothing was sent (refused, DNS, connect timeout, TLS handshake failure,
  // file://): the server saw no request.
  bool sent = false;

  // ok, or the failure with its code and `error`.
  Status status() const {
    return ok ? Status::Ok() : Status(Status::WithCode(failure_code, error));
  }
};

class HttpClient {
 public:
  using Callback = std::function<void(HttpResponse)>;
  using RequestId = std::uint64_t;  // never 0

  explicit HttpClient(struct ev_loop* loop);
  // Cancels every request in flight; their callbacks are NOT called.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a request; `done` runs once on the loop when it ends (even when it
  // could not start at all: then with ok = false). Returns its id.
  RequestId Start(const HttpRequest& request, Callback done);

  // Drops a request: its callback will not be called. False when the id is
  // unknown or the callback already ran.
  bool Cancel(RequestId id);

  // Requests started and not yet called back or cancelled.
  std::size_t in_flight() const { return transfers_.size(); }

 private:
  struct Transfer;
  struct Socket;

  static int OnCurlSocket(void* easy, int fd, int what, void* userp, void* socketp);
  static int OnCurlTimer(void* multi, long timeout_ms, void* userp);
  static void OnIo(struct ev_loop* loop, ev_io* w, int revents);
  static void OnTimer(struct ev_loop* loop, ev_timer* w, int revents);

  void SocketAction(int fd, int events);
  // Collects finished transfers from curl, then runs their callbacks.
  void Deliver();
  void Finish(Transfer& t, int curl_code);
  void FailLater(std::unique_ptr<Transfer> t, std::string error);

  struct ev_loop* loop_;
  void* multi_;                      // CURLM*
  std::unique_ptr<ev_timer> timer_;  // curl's single timeout
  std::unique_ptr<ev_timer> kick_;   // 0 s: runs Deliver for requests that never started
  std::map<int, std::unique_ptr<Socket>> sockets_;
  std::map<RequestId, std::unique_ptr<Transfer>> transfers_;
  std::vector<RequestId> finished_;  // completed, callback not yet run
  RequestId next_id_ = 1;
  // Set to false by the destructor, so Deliver notices a callback that
  // destroyed the client.
  std::shared_ptr<bool> alive_;
};

}  // namespace warden
