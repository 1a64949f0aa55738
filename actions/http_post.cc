#include "actions/http_post.h"

#include <ev.h>

#include <algorithm>
#include <memory>

namespace warden {

Status CheckHttpUrl(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else {
    return Status::Invalid("'" + std::string(url) + "' is not an http:// or https:// URL");
  }
  if (rest.empty() || rest[0] == '/' || rest[0] == ':') {
    return Status::Invalid("'" + std::string(url) + "' has no host");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return Status::Invalid("'" + std::string(url) +
                             "' has a blank or a control character (encode it: %20)");
    }
  }
  return Status::Ok();
}

std::string ShowAnswer(std::string_view body, const std::vector<std::string>& secrets) {
  std::string out(body);
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    for (size_t at = out.find(s); at != std::string::npos; at = out.find(s, at + 4)) {
      out.replace(at, s.size(), "****");
    }
  }
  size_t begin = 0;
  while (begin < out.size() && (out[begin] == ' ' || out[begin] == '\n' || out[begin] == '\r')) {
    ++begin;
  }
  out = out.substr(begin, 300);
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n' || out.back() == '\r')) {
    out.pop_back();
  }
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u == '\n' || u == '\t' || u == '\r') c = ' ';
    else if (u < 0x20 || u >= 0x7f) c = '?';
  }
  return out;
}

namespace {

constexpr Duration kFirstBackoff{250};
constexpr Duration kMaxBackoff{5000};
constexpr Duration kMinAttempt{1000};

struct Poster : std::enable_shared_from_this<Poster> {
  Runtime* rt = nullptr;
  HttpRequest request;
  std::vector<std::string> secrets;
  Action::Done done;
  std::chrono::steady_clock::time_point begin;
  Duration timeout{0};
  Duration backoff = kFirstBackoff;
  int attempts = 0;
  ev_timer timer{};
  std::shared_ptr<Poster> self;   // while the backoff timer runs

  Duration Left() const {
    auto used = std::chrono::duration_cast<Duration>(rt->time->Now() - begin);
    return timeout - used;
  }

  void Attempt() {
    ++attempts;
    Duration left = Left();
    request.timeout = std::max(Duration(1), std::min(left, std::max(kMinAttempt, timeout / 3)));
    auto keep = shared_from_this();
    rt->http->Start(request, [keep](HttpResponse r) { keep->Answered(std::move(r)); });
  }

  static void OnTimer(struct ev_loop* loop, ev_timer* w, int /*revents*/) {
    auto* p = static_cast<Poster*>(w->data);
    ev_timer_stop(loop, w);
    auto keep = std::move(p->self);
    keep->Attempt();
  }

  void Answered(HttpResponse r) {
    const long status = r.http_status;
    const bool accepted = r.ok && status >= 200 && status < 300;
    // A failed exchange that another may not repeat, or the peer's "later".
    const bool retry = r.status().transient() || status == 408 || status == 429 || status >= 500;
    const Duration left = Left();
    if (!accepted && retry && left > backoff + Duration(100)) {
      self = shared_from_this();
      ev_timer_init(&timer, &Poster::OnTimer, std::chrono::duration<double>(backoff).count(), 0.);
      timer.data = this;
      ev_timer_start(rt->loop, &timer);
      backoff = std::min(backoff * 2, kMaxBackoff);
      return;
    }
    ActionOutcome out;
    out.ok = accepted;
    out.extra["http_status"] = status;
    out.extra["attempts"] = attempts;
    std::string answer = ShowAnswer(r.body, secrets);
    if (r.ok) out.extra["answer"] = answer;
    if (!accepted) {
      std::string why = r.ok ? "HTTP " + std::to_string(status) +
                                   (answer.empty() ? std::string() : ": " + answer)
                             : r.error;
      std::string tries = attempts == 1 ? "1 attempt" : std::to_string(attempts) + " attempts";
      out.error = "POST " + request.url + ": " + why + " (" + tries +
                  (retry ? ", no time left for another within the timeout"
                         : "; not retried: the peer's final answer") +
                  ")";
    }
    auto finish = std::move(done);
    finish(std::move(out));
  }
};

}  // namespace

void PostWithRetry(Runtime& rt, HttpRequest request, Duration timeout,
                   std::vector<std::string> secrets, Action::Done done) {
  auto p = std::make_shared<Poster>();
  p->rt = &rt;
  p->request = std::move(request);
  p->request.method = HttpRequest::Method::kPost;
  p->secrets = std::move(secrets);
  p->done = std::move(done);
  p->begin = rt.time->Now();
  p->timeout = timeout;
  if (!rt.http) {
    ActionOutcome out;
    out.error = "internal error: no HTTP client in this runtime";
    p->done(std::move(out));
    return;
  }
  p->Attempt();
}

}  // namespace warden
