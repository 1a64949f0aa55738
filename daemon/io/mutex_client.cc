#include "daemon/io/mutex_client.h"

#include <ev.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "daemon/io/etcd_json.h"

namespace warden {
namespace {

constexpr std::size_t kMaxBody = 64 * 1024;
constexpr std::size_t kMaxReason = 256;

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// Control characters become spaces; with ascii_only (text that may hold raw
// bytes from the peer) so does anything outside printable ASCII. Cut at
// kMaxReason bytes, never inside a UTF-8 sequence.
std::string BoundReason(std::string_view in, bool ascii_only) {
  std::string out;
  out.reserve(std::min(in.size(), kMaxReason));
  for (char ch : in) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out.push_back(' ');
    } else if (c >= 0x80 && ascii_only) {
      out.push_back('?');
    } else {
      out.push_back(ch);
    }
  }
  if (out.size() > kMaxReason) {
    size_t cut = kMaxReason;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}


std::string StripLineBreaks(std::string s) {
  std::erase_if(s, [](char c) { return c == '\r' || c == '\n'; });
  return s;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

MutexAnswer Held(std::string reason) {
  MutexAnswer a;
  a.held = true;
  a.reason = std::move(reason);
  return a;
}

// A held answer read from a JSON object: its "reason" (a non-empty string,
// else `fallback`) and "terminate" (only the boolean true counts).
MutexAnswer HeldObject(const nlohmann::json& doc, const std::string& fallback) {
  auto reason = doc.find("reason");
  MutexAnswer a;
  if (reason != doc.end() && reason->is_string() && !reason->get<std::string>().empty()) {
    // Parsed JSON strings are valid UTF-8: keep them, only bounded.
    a = Held(BoundReason(reason->get<std::string>(), false));
  } else {
    a = Held(fallback);
  }
  auto terminate = doc.find("terminate");
  a.terminate = terminate != doc.end() && terminate->is_boolean() && terminate->get<bool>();
  return a;
}

}  // namespace

MutexClient::MutexClient(struct ev_loop* loop, const MutexConfig& config, std::string host_id)
    : loop_(loop),
      config_(config),
      host_id_(StripLineBreaks(std::move(host_id))),
      is_file_(StartsWithNoCase(config.url, "file:")),
      http_(loop),
      poll_(std::make_unique<ev_timer>()),
      deferred_timer_(std::make_unique<ev_timer>()),
      watch_retry_(std::make_unique<ev_timer>()),
      rng_(HostHash(host_id_) ^
           static_cast<std::uint64_t>(Clock::now().time_since_epoch().count())),
      alive_(std::make_shared<bool>(true)) {
  ev_timer_init(poll_.get(), &MutexClient::OnPoll, 0., 0.);
  poll_->data = this;
  ev_timer_init(watch_retry_.get(), &MutexClient::OnWatchRetry, 0., 0.);
  watch_retry_->data = this;
  if (config_.mode == MutexConfig::Mode::kEtcd) {
    EtcdConfig etcd = config_.etcd;
    if (etcd.timeout.count() <= 0) etcd.timeout = Duration(2000);
    etcd.connect_timeout = std::min(etcd.connect_timeout, etcd.timeout);
    etcd.max_body = kMaxBody;
    etcd.first = HostHash(host_id_) % std::max<std::size_t>(1, etcd.endpoints.size());
    if (config_.watch) watch_ = std::make_unique<EtcdWatch>(loop_, etcd);
    etcd_ = std::make_unique<EtcdClient>(loop_, std::move(etcd));
  }
  ev_timer_init(deferred_timer_.get(), &MutexClient::OnDeferred, 0., 0.);
  deferred_timer_->data = this;
}

MutexClient::~MutexClient() {
  *alive_ = false;
  ev_timer_stop(loop_, poll_.get());
  ev_timer_stop(loop_, deferred_timer_.get());
  ev_timer_stop(loop_, watch_retry_.get());
  // watch_, etcd_ and http_ are destroyed after this body: they cancel request_
  // without calling back.
}

void MutexClient::Query(Callback done) {
  if (config_.mode == MutexConfig::Mode::kOff) {
    Defer([this, done = std::move(done)] {
      MutexAnswer a;
      a.held = false;
      a.reason = "mutex off";
      a.at = Clock::now();
      if (!Record(a)) return;
      if (done) done(a);
    });
    return;
  }
  if (request_ != 0) {
    waiters_.push_back(std::move(done));
    return;
  }
  auto now = Clock::now();
  if (last_ && !last_->held && config_.cache.count() > 0 && now >= last_sent_ &&
      now - last_sent_ < config_.cache) {
    MutexAnswer cached = *last_;
    cached.from_cache = true;
    Defer([done = std::move(done), cached] {
      if (done) done(cached);
    });
    return;
  }
  waiters_.push_back(std::move(done));
  Fetch();
}

void MutexClient::Start() {
  ev_timer_stop(loop_, poll_.get());
  if (config_.mode == MutexConfig::Mode::kOff) {
    if (!last_) Query(nullptr);  // reports "mutex off" as the first change
    return;
  }
  if (config_.poll.count() <= 0) return;
  polling_ = true;
  // The first poll runs from the loop, not inside Start().
  ArmPoll(true);
}

void MutexClient::Stop() {
  polling_ = false;
  ev_timer_stop(loop_, poll_.get());
  ev_timer_stop(loop_, watch_retry_.get());
  if (watch_) watch_->Stop();
  watch_up_ = false;
}

double MutexClient::Random01() {
  // splitmix64: cheap, and enough for spreading hosts apart.
  rng_ += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = rng_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) / static_cast<double>(1ULL << 53);  // [0, 1)
}

Duration MutexClient::NextPollDelay() {
  auto poll = static_cast<double>(config_.poll.count());
  return Duration(static_cast<Duration::rep>(poll * (0.8 + 0.2 * Random01())));
}

void MutexClient::ArmPoll(bool now) {
  ev_timer_stop(loop_, poll_.get());
  if (!polling_) return;
  double delay = now ? 0. : static_cast<double>(NextPollDelay().count()) / 1000.0;
  ev_timer_set(poll_.get(), delay, 0.);
  ev_timer_start(loop_, poll_.get());
}

std::optional<Duration> MutexClient::last_age() const {
  if (!last_) return std::nullopt;
  return std::chrono::duration_cast<Duration>(Clock::now() - last_->at);
}

void MutexClient::Fetch() {
  if (request_ != 0) return;
  if (etcd_) {
    sent_ = Clock::now();
    ++requests_;
    // One linearizable txn reads both keys: a consistent answer.
    request_ = etcd_->Txn({},
                          {EtcdOp::Range(config_.prefix + "/armed"),
                           EtcdOp::Range(config_.prefix + "/mutex")},
                          {}, [this](EtcdResult<EtcdTxnResult> r) {
                            request_ = 0;
                            OnEtcdPoll(r);
                          });
    return;
  }
  HttpRequest req;
  req.method = HttpRequest::Method::kGet;
  req.url = config_.url;
  req.headers.push_back("X-Warden-Host: " + host_id_);
  if (!config_.token.empty()) {
    req.headers.push_back("Authorization: Bearer " + StripLineBreaks(config_.token));
  }
  req.timeout = config_.timeout.count() > 0 ? config_.timeout : Duration(2000);
  req.max_body = kMaxBody;
  req.ca_file = config_.ca_file;
  sent_ = Clock::now();
  ++requests_;
  // Capturing `this` is safe: http_ is a member and never calls back after
  // its destruction.
  request_ = http_.Start(req, [this](HttpResponse r) { OnResponse(r); });
}

MutexAnswer InterpretMutexResponse(const HttpResponse& r, bool is_file) {
  if (!r.ok) return Held(BoundReason(r.error, true));
  long status = r.http_status;
  if (is_file && status == 0) status = 200;
  if (status != 200) return Held("HTTP " + std::to_string(status));
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(r.body);
  } catch (const nlohmann::json::exception& e) {
    return Held(BoundReason("malformed answer: " + std::string(etcd_json::JsonExceptionText(e.what())), true));
  }
  if (!doc.is_object()) return Held("malformed answer: not a JSON object");
  auto it = doc.find("held");
  if (it == doc.end()) return Held("malformed answer: no \"held\"");
  if (!it->is_boolean()) return Held("malformed answer: \"held\" is not a boolean");
  if (!it->get<bool>()) {
    MutexAnswer a;
    a.held = false;
    a.reason = "clear";
    return a;
  }
  return HeldObject(doc, "held");
}

MutexAnswer InterpretEtcdMutex(const EtcdResult<EtcdTxnResult>& r, const std::string& prefix) {
  if (!r.ok()) return Held(BoundReason(r.error().message, true));
  const auto& responses = r->responses;
  if (responses.size() != 2) return Held("malformed etcd answer: not two ranges");
  const std::string mutex_key = prefix + "/mutex";
  const std::string armed_key = prefix + "/armed";
  const EtcdKv* mutex = nullptr;
  const EtcdKv* armed = nullptr;
  for (const auto& kv : responses[1].kvs) {
    if (kv.key == mutex_key && mutex == nullptr) mutex = &kv;
  }
  for (const auto& kv : responses[0].kvs) {
    if (kv.key == armed_key && armed == nullptr) armed = &kv;
  }
  return EtcdMutexAnswer(armed, mutex, prefix);
}

MutexAnswer EtcdMutexAnswer(const EtcdKv* armed, const EtcdKv* mutex, const std::string& prefix) {
  const std::string mutex_key = prefix + "/mutex";
  const std::string armed_key = prefix + "/armed";
  if (mutex != nullptr) {
    if (mutex->value.empty()) return Held(mutex_key + " is set");
    // A halt record ({"reason": ..., "terminate": true}) is read like the
    // HTTP answer; any other value is the reason itself.
    if (mutex->value.front() == '{') {
      nlohmann::json doc = nlohmann::json::parse(mutex->value, nullptr, /*allow_exceptions=*/false);
      if (doc.is_object() && doc.contains("reason") && doc["reason"].is_string()) {
        return HeldObject(doc, mutex_key + " is set");
      }
    }
    // A value that is valid UTF-8 is kept (bounded); raw bytes are not.
    return Held(BoundReason(mutex->value, !ValidUtf8(mutex->value)));
  }
  if (armed == nullptr) {
    return Held(BoundReason("etcd mutex not armed: " + armed_key + " is missing (etcdctl put " +
                                armed_key + " yes)",
                            true));
  }
  MutexAnswer a;
  a.held = false;
  a.reason = "clear";
  return a;
}

bool MutexClient::Keys::SameState(const Keys& o) const {
  if (armed.has_value() != o.armed.has_value()) return false;
  if (mutex.has_value() != o.mutex.has_value()) return false;
  return !mutex || mutex->value == o.mutex->value;
}

MutexAnswer MutexClient::KeysAnswer(const Keys& keys) const {
  return EtcdMutexAnswer(keys.armed ? &*keys.armed : nullptr, keys.mutex ? &*keys.mutex : nullptr,
                         config_.prefix);
}

void MutexClient::OnEtcdPoll(const EtcdResult<EtcdTxnResult>& r) {
  MutexAnswer answer = InterpretEtcdMutex(r, config_.prefix);
  if (!r.ok() || r->responses.size() != 2) {
    // Held. A watch on a member we cannot poll is not to be trusted.
    if (watch_ && (watch_->active() || watch_up_)) WatchFailed("a poll failed: " + answer.reason);
    Answer(std::move(answer));
    return;
  }
  const std::int64_t revision = r->header.revision;
  Keys keys;
  const std::string armed_key = config_.prefix + "/armed";
  const std::string mutex_key = config_.prefix + "/mutex";
  for (const auto& kv : r->responses[0].kvs) {
    if (kv.key == armed_key) keys.armed = kv;
  }
  for (const auto& kv : r->responses[1].kvs) {
    if (kv.key == mutex_key) keys.mutex = kv;
  }
  if (watch_up_ && watch_rev_ >= revision) {
    // The watch has told as much or more: its state stands (a poll sent
    // before an event and answered after it must not undo it).
    suspect_rev_ = 0;
    Answer(KeysAnswer(watch_keys_));
    return;
  }
  poll_rev_ = std::max(poll_rev_, revision);
  bool restart = false;
  if (watch_up_ && !keys.SameState(watch_keys_)) {
    // The poll saw a change the watch has not delivered (yet): late by a
    // whole poll interval means dead (a silent connection).
    if (suspect_rev_ != 0) restart = true;
    else suspect_rev_ = revision;
  }
  std::weak_ptr<bool> alive = alive_;
  Answer(std::move(answer));
  auto still = alive.lock();
  if (!still || !*still) return;
  if (restart) {
    WatchFailed("missed a change for a poll interval (a poll at revision " +
                std::to_string(revision) + " saw it, the watch was at " +
                std::to_string(watch_rev_) + ")");
    return;
  }
  if (watch_ && polling_ && !watch_->active() && !ev_is_active(watch_retry_.get())) {
    StartWatch(revision, keys);
  }
}

void MutexClient::StartWatch(std::int64_t revision, const Keys& keys) {
  watch_keys_ = keys;
  watch_rev_ = revision;
  watch_up_ = false;
  suspect_rev_ = 0;
  ++watch_started_;
  const std::string key = config_.prefix + "/";
  // The endpoint that just answered the poll; after failures, the next ones.
  std::size_t index = etcd_->current_index() + watch_failures_;
  watch_->Start(
      index, key, EtcdPrefixEnd(key), revision + 1,
      [this](const EtcdWatchResponse& r) { OnWatchResponse(r); },
      [this](const std::string& error) { OnWatchEnd(error); });
  watch_endpoint_ = watch_->endpoint();
}

void MutexClient::OnWatchResponse(const EtcdWatchResponse& r) {
  if (r.created) {
    watch_up_ = true;
    watch_failures_ = 0;  // last_error stays: why the previous one ended
    if (on_watch_) {
      auto cb = on_watch_;
      cb(watch_state());
    }
    return;
  }
  if (r.canceled || !watch_up_) return;  // the end follows
  const std::string armed_key = config_.prefix + "/armed";
  const std::string mutex_key = config_.prefix + "/mutex";
  std::int64_t rev = watch_rev_;
  bool touched = false;
  for (const auto& ev : r.events) {
    if (ev.kv.mod_revision <= watch_rev_) continue;  // already known
    rev = std::max(rev, ev.kv.mod_revision);
    std::optional<EtcdKv>* slot = ev.kv.key == armed_key   ? &watch_keys_.armed
                                  : ev.kv.key == mutex_key ? &watch_keys_.mutex
                                                           : nullptr;
    if (slot == nullptr) {
      if (on_key_) on_key_(ev.kv.key);  // rollouts: must not destroy us (it arms a timer)
      continue;
    }
    touched = true;
    ++watch_events_;
    if (ev.type == EtcdWatchEvent::Type::kDelete) slot->reset();
    else *slot = ev.kv;
  }
  // A progress notification: every event up to header.revision was sent.
  if (r.progress() && r.header.revision > rev) rev = r.header.revision;
  watch_rev_ = rev;
  if (suspect_rev_ != 0 && watch_rev_ >= suspect_rev_) suspect_rev_ = 0;
  if (touched && watch_rev_ > poll_rev_) {
    MutexAnswer a = KeysAnswer(watch_keys_);
    a.at = Clock::now();
    Record(a);
  }
}

void MutexClient::OnWatchEnd(const std::string& error) { WatchFailed(error); }

void MutexClient::WatchFailed(const std::string& error) {
  if (watch_) watch_->Stop();
  watch_up_ = false;
  suspect_rev_ = 0;
  watch_error_ = error;
  ++watch_failures_;
  // 1 s, 2 s, 4 s ... 60 s; each wait drawn from [d/2, d].
  double d = 1000.0 * static_cast<double>(1u << std::min(watch_failures_ - 1, 6u));
  d = std::min(d, 60'000.0);
  double wait_ms = d / 2 + Random01() * d / 2;
  ev_timer_stop(loop_, watch_retry_.get());
  ev_timer_set(watch_retry_.get(), wait_ms / 1000.0, 0.);
  ev_timer_start(loop_, watch_retry_.get());
  if (on_watch_) {
    auto cb = on_watch_;
    cb(watch_state());
  }
}

void MutexClient::OnWatchRetry(struct ev_loop* /*loop*/, ev_timer* w, int /*revents*/) {
  auto* self = static_cast<MutexClient*>(w->data);
  // A poll now: its revision starts the new watch.
  if (self->polling_) self->Fetch();
}

MutexWatchState MutexClient::watch_state() const {
  MutexWatchState s;
  s.enabled = watch_ != nullptr;
  if (!watch_) return s;
  s.up = watch_up_;
  s.endpoint = watch_endpoint_;
  s.last_error = watch_error_;
  s.revision = watch_rev_;
  s.started = watch_started_;
  s.events = watch_events_;
  if (ev_is_active(watch_retry_.get())) {
    s.retry_in = Duration(static_cast<Duration::rep>(
        1000.0 * ev_timer_remaining(loop_, const_cast<ev_timer*>(watch_retry_.get()))));
  }
  return s;
}

void MutexClient::OnResponse(const HttpResponse& response) {
  request_ = 0;
  Answer(InterpretMutexResponse(response, is_file_));
}

void MutexClient::Answer(MutexAnswer answer) {
  answer.at = Clock::now();
  last_sent_ = sent_;
  std::vector<Callback> waiters;
  waiters.swap(waiters_);
  if (!Record(answer)) return;
  std::weak_ptr<bool> alive = alive_;
  for (auto& done : waiters) {
    if (done) done(answer);
    auto still = alive.lock();
    if (!still || !*still) return;
  }
}

bool MutexClient::Record(const MutexAnswer& answer) {
  bool changed = !last_ || last_->held != answer.held || last_->reason != answer.reason ||
                 last_->terminate != answer.terminate;
  last_ = answer;
  if (!changed || !on_change_) return true;
  std::weak_ptr<bool> alive = alive_;
  // A copy: the callback may replace on_change_.
  Callback on_change = on_change_;
  on_change(answer);
  auto still = alive.lock();
  return still && *still;
}

void MutexClient::Defer(std::function<void()> fn) {
  deferred_.push_back(std::move(fn));
  if (!ev_is_active(deferred_timer_.get())) {
    ev_timer_set(deferred_timer_.get(), 0., 0.);
    ev_timer_start(loop_, deferred_timer_.get());
  }
}

void MutexClient::OnPoll(struct ev_loop* /*loop*/, ev_timer* w, int /*revents*/) {
  auto* self = static_cast<MutexClient*>(w->data);
  self->ArmPoll(false);
  self->Fetch();
}

void MutexClient::OnDeferred(struct ev_loop* /*loop*/, ev_timer* w, int /*revents*/) {
  auto* self = static_cast<MutexClient*>(w->data);
  std::vector<std::function<void()>> run;
  run.swap(self->deferred_);
  std::weak_ptr<bool> alive = self->alive_;
  for (auto& fn : run) {
    fn();
    auto still = alive.lock();
    if (!still || !*still) return;
  }
}

}  // namespace warden
