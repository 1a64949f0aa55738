#include "daemon/io/http_client.h"

#include <curl/curl.h>
#include <ev.h>

#include <cerrno>
#include <mutex>
#include <utility>

#include "version.h"

namespace warden {
namespace {

// curl_global_init is not thread-safe on older libcurl; do it once, before
// the first handle. Never cleaned up: it lives as long as the process.
void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string SizeText(std::size_t bytes) {
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KB";
  return std::to_string(bytes) + " bytes";
}

CURLM* Multi(void* p) { return static_cast<CURLM*>(p); }

}  // namespace

struct HttpClient::Transfer {
  RequestId id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  Callback done;
  HttpRequest::Method method = HttpRequest::Method::kGet;
  Duration timeout{0};
  Duration connect_timeout{0};
  std::size_t max_body = 0;
  bool over_limit = false;
  bool aborted = false;  // on_data said stop
  std::function<bool(long, std::string_view)> on_data;
  bool in_multi = false;
  char errbuf[CURL_ERROR_SIZE] = {};
  HttpResponse response;

  ~Transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (headers != nullptr) curl_slist_free_all(headers);
  }

  static size_t OnWrite(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t n = size * count;
    if (t->on_data) {
      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      if (!t->on_data(status, std::string_view(data, n))) {
        t->aborted = true;
        return 0;  // CURLE_WRITE_ERROR
      }
      return n;
    }
    if (t->response.body.size() + n > t->max_body) {
      t->over_limit = true;
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    t->response.body.append(data, n);
    return n;
  }
};

struct HttpClient::Socket {
  ev_io io;
  HttpClient* client = nullptr;
};

HttpClient::HttpClient(struct ev_loop* loop)
    : loop_(loop),
      multi_(nullptr),
      timer_(std::make_unique<ev_timer>()),
      kick_(std::make_unique<ev_timer>()),
      alive_(std::make_shared<bool>(true)) {
  GlobalInit();
  multi_ = curl_multi_init();
  ev_timer_init(timer_.get(), &HttpClient::OnTimer, 0., 0.);
  timer_->data = this;
  ev_timer_init(kick_.get(), &HttpClient::OnTimer, 0., 0.);
  kick_->data = this;
  if (multi_ != nullptr) {
    curl_multi_setopt(Multi(multi_), CURLMOPT_SOCKETFUNCTION, &HttpClient::OnCurlSocket);
    curl_multi_setopt(Multi(multi_), CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(Multi(multi_), CURLMOPT_TIMERFUNCTION, &HttpClient::OnCurlTimer);
    curl_multi_setopt(Multi(multi_), CURLMOPT_TIMERDATA, this);
  }
}

HttpClient::~HttpClient() {
  *alive_ = false;
  // Removing a handle may call OnCurlSocket (REMOVE) and OnCurlTimer: both
  // only touch watchers, which is fine here.
  for (auto& [id, t] : transfers_) {
    if (t->in_multi) curl_multi_remove_handle(Multi(multi_), t->easy);
    t->in_multi = false;
  }
  transfers_.clear();
  if (multi_ != nullptr) curl_multi_cleanup(Multi(multi_));
  multi_ = nullptr;
  // Whatever curl did not tell us to remove (cached connections).
  for (auto& [fd, s] : sockets_) ev_io_stop(loop_, &s->io);
  sockets_.clear();
  ev_timer_stop(loop_, timer_.get());
  ev_timer_stop(loop_, kick_.get());
}

HttpClient::RequestId HttpClient::Start(const HttpRequest& request, Callback done) {
  auto t = std::make_unique<Transfer>();
  t->id = next_id_++;
  t->done = std::move(done);
  t->method = request.method;
  t->timeout = request.timeout;
  t->connect_timeout =
      request.connect_timeout.count() > 0 ? request.connect_timeout : request.timeout;
  t->max_body = request.max_body;
  t->on_data = request.on_data;
  RequestId id = t->id;

  if (multi_ == nullptr) {
    FailLater(std::move(t), "cannot initialise libcurl");
    return id;
  }
  t->easy = curl_easy_init();
  if (t->easy == nullptr) {
    FailLater(std::move(t), "cannot initialise libcurl");
    return id;
  }
  for (const auto& h : request.headers) {
    curl_slist* next = curl_slist_append(t->headers, h.c_str());
    if (next == nullptr) {
      FailLater(std::move(t), "out of memory");
      return id;
    }
    t->headers = next;
  }
  if (request.method == HttpRequest::Method::kPost) {
    // No "Expect: 100-continue" round trip before larger bodies.
    curl_slist* next = curl_slist_append(t->headers, "Expect:");
    if (next == nullptr) {
      FailLater(std::move(t), "out of memory");
      return id;
    }
    t->headers = next;
  }

  CURL* e = t->easy;
  const std::string agent = std::string("warden/") + kVersion;
  CURLcode rc = CURLE_OK;
  auto set = [&rc](CURLcode r) {
    if (rc == CURLE_OK) rc = r;
  };
  set(curl_easy_setopt(e, CURLOPT_URL, request.url.c_str()));
  set(curl_easy_setopt(e, CURLOPT_PRIVATE, t.get()));
  set(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf));
  set(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
  set(curl_easy_setopt(e, CURLOPT_NOPROGRESS, 1L));
  set(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L));
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85.0
  set(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file"));
#else
  set(curl_easy_setopt(e, CURLOPT_PROTOCOLS,
                       static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS | CURLPROTO_FILE)));
#endif
  set(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(t->timeout.count())));
  set(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<long>(t->connect_timeout.count())));
  if (!t->on_data) {
    set(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(t->max_body)));
  }
  set(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::OnWrite));
  set(curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get()));
  set(curl_easy_setopt(e, CURLOPT_USERAGENT, agent.c_str()));
  set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L));
  set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L));
  if (!request.ca_file.empty()) set(curl_easy_setopt(e, CURLOPT_CAINFO, request.ca_file.c_str()));
  if (!request.cert_file.empty()) {
    set(curl_easy_setopt(e, CURLOPT_SSLCERT, request.cert_file.c_str()));
  }
  if (!request.key_file.empty()) set(curl_easy_setopt(e, CURLOPT_SSLKEY, request.key_file.c_str()));
  if (t->headers != nullptr) set(curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers));
  if (request.method == HttpRequest::Method::kPost) {
    set(curl_easy_setopt(e, CURLOPT_POST, 1L));
    set(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size())));
    set(curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, request.body.c_str()));
  } else {
    set(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));
  }
  if (rc != CURLE_OK) {
    FailLater(std::move(t), std::string("cannot set up request: ") + curl_easy_strerror(rc));
    return id;
  }

  Transfer* raw = t.get();
  transfers_.emplace(id, std::move(t));
  // Adding the handle asks (through OnCurlTimer) for an immediate timeout;
  // the transfer starts, and can finish, only once the loop runs that timer.
  CURLMcode mc = curl_multi_add_handle(Multi(multi_), raw->easy);
  if (mc != CURLM_OK) {
    auto node = transfers_.extract(id);
    FailLater(std::move(node.mapped()),
              std::string("cannot start request: ") + curl_multi_strerror(mc));
    return id;
  }
  raw->in_multi = true;
  return id;
}

bool HttpClient::Cancel(RequestId id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return false;
  if (it->second->in_multi) curl_multi_remove_handle(Multi(multi_), it->second->easy);
  transfers_.erase(it);
  return true;
}

void HttpClient::FailLater(std::unique_ptr<Transfer> t, std::string error) {
  t->response = HttpResponse{};
  t->response.error = std::move(error);
  t->response.failure_code = StatusCode::kInternal;
  RequestId id = t->id;
  transfers_.emplace(id, std::move(t));
  finished_.push_back(id);
  ev_timer_stop(loop_, kick_.get());
  ev_timer_set(kick_.get(), 0., 0.);
  ev_timer_start(loop_, kick_.get());
}

int HttpClient::OnCurlSocket(void* /*easy*/, int fd, int what, void* userp, void* /*socketp*/) {
  auto* self = static_cast<HttpClient*>(userp);
  auto it = self->sockets_.find(fd);
  if (what == CURL_POLL_REMOVE) {
    if (it != self->sockets_.end()) {
      ev_io_stop(self->loop_, &it->second->io);
      self->sockets_.erase(it);
    }
    return 0;
  }
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= EV_READ;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= EV_WRITE;
  if (it == self->sockets_.end()) {
    auto s = std::make_unique<Socket>();
    s->client = self;
    ev_io_init(&s->io, &HttpClient::OnIo, fd, events);
    s->io.data = s.get();
    ev_io_start(self->loop_, &s->io);
    self->sockets_.emplace(fd, std::move(s));
  } else {
    Socket& s = *it->second;
    ev_io_stop(self->loop_, &s.io);
    ev_io_set(&s.io, fd, events);
    ev_io_start(self->loop_, &s.io);
  }
  return 0;
}

int HttpClient::OnCurlTimer(void* /*multi*/, long timeout_ms, void* userp) {
  auto* self = static_cast<HttpClient*>(userp);
  ev_timer_stop(self->loop_, self->timer_.get());
  if (timeout_ms >= 0) {
    // 0 means "as soon as possible": the next loop iteration, never now
    // (curl_multi_socket_action must not be called from its own callbacks).
    ev_timer_set(self->timer_.get(), static_cast<double>(timeout_ms) / 1000.0, 0.);
    ev_timer_start(self->loop_, self->timer_.get());
  }
  return 0;
}

void HttpClient::OnIo(struct ev_loop* /*loop*/, ev_io* w, int revents) {
  auto* s = static_cast<Socket*>(w->data);
  int flags = 0;
  if (revents & EV_READ) flags |= CURL_CSELECT_IN;
  if (revents & EV_WRITE) flags |= CURL_CSELECT_OUT;
  if (revents & EV_ERROR) flags |= CURL_CSELECT_ERR;
  // `s` may be freed inside SocketAction (CURL_POLL_REMOVE): copy first.
  HttpClient* self = s->client;
  self->SocketAction(w->fd, flags);
}

void HttpClient::OnTimer(struct ev_loop* /*loop*/, ev_timer* w, int /*revents*/) {
  auto* self = static_cast<HttpClient*>(w->data);
  if (w == self->timer_.get()) {
    self->SocketAction(CURL_SOCKET_TIMEOUT, 0);
  } else {
    self->Deliver();
  }
}

void HttpClient::SocketAction(int fd, int events) {
  int running = 0;
  curl_multi_socket_action(Multi(multi_), fd, events, &running);
  // file:// (and failures before any socket) finish right inside
  // curl_multi_socket_action: they are picked up here like the others.
  Deliver();
}

void HttpClient::Finish(Transfer& t, int curl_code) {
  auto code = static_cast<CURLcode>(curl_code);
  HttpResponse& r = t.response;
  long request_bytes = 0;
  curl_easy_getinfo(t.easy, CURLINFO_REQUEST_SIZE, &request_bytes);
  r.sent = request_bytes > 0;
  if (code == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
    r.ok = true;
    r.http_status = status;
    return;
  }
  r.ok = false;
  r.http_status = 0;
  r.failure_code = StatusCode::kTransient;
  std::string detail = t.errbuf[0] != '\0' ? std::string(t.errbuf) : curl_easy_strerror(code);
  switch (code) {
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
      if (t.aborted) {
        r.error = "aborted by the receiver";
        break;
      }
      r.error = t.over_limit || code == CURLE_FILESIZE_EXCEEDED
                    ? "body over " + SizeText(t.max_body)
                    : detail;
      r.failure_code = t.over_limit || code == CURLE_FILESIZE_EXCEEDED ? StatusCode::kInvalid
                                                                       : StatusCode::kInternal;
      break;
    case CURLE_OPERATION_TIMEDOUT: {
      curl_off_t connected = 0;
      curl_easy_getinfo(t.easy, CURLINFO_CONNECT_TIME_T, &connected);
      bool is_file = detail.find("file") != std::string::npos;
      // A stream (timeout 0) can only time out connecting.
      if (connected == 0 && !is_file &&
          (t.timeout.count() == 0 || t.connect_timeout < t.timeout)) {
        r.error = "connect timed out after " + std::to_string(t.connect_timeout.count()) + " ms";
      } else {
        r.error = "timed out after " + std::to_string(t.timeout.count()) + " ms";
      }
      break;
    }
    case CURLE_COULDNT_CONNECT: {
      long os_errno = 0;
      curl_easy_getinfo(t.easy, CURLINFO_OS_ERRNO, &os_errno);
      r.error = os_errno == ECONNREFUSED ? "connection refused: " + detail : detail;
      break;
    }
    case CURLE_GOT_NOTHING:
      r.error = "connection closed without an answer";
      break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
      // A certificate does not change within a timeout, but a failed
      // handshake is a failed connection like the others (retried).
      r.error = "TLS error: " + detail;
      break;
    case CURLE_FILE_COULDNT_READ_FILE:
      r.error = detail;
      r.failure_code = StatusCode::kNotFound;
      break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      r.error = detail;
      r.failure_code = StatusCode::kInvalid;
      break;
    default:
      // Resolving, sending, receiving...: the exchange with the peer
      // failed, and another may not.
      r.error = detail;
      break;
  }
  r.body.clear();
}

void HttpClient::Deliver() {
  if (multi_ != nullptr) {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(Multi(multi_), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      int result = msg->data.result;
      char* priv = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
      auto* t = reinterpret_cast<Transfer*>(priv);
      curl_multi_remove_handle(Multi(multi_), easy);
      if (t == nullptr) continue;
      t->in_multi = false;
      Finish(*t, result);
      finished_.push_back(t->id);
    }
  }
  // Callbacks last, each with the transfer already gone from this client: a
  // callback may start or cancel requests, or destroy the client.
  std::vector<RequestId> ready;
  ready.swap(finished_);
  std::weak_ptr<bool> alive = alive_;
  for (size_t i = 0; i < ready.size(); ++i) {
    auto node = transfers_.extract(ready[i]);
    if (node.empty()) continue;  // cancelled by an earlier callback
    std::unique_ptr<Transfer> t = std::move(node.mapped());
    Callback done = std::move(t->done);
    HttpResponse response = std::move(t->response);
    t.reset();
    if (done) done(std::move(response));
    auto still = alive.lock();
    if (!still || !*still) return;
  }
}

}  // namespace warden
