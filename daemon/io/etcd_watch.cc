#include "daemon/io/etcd_watch.h"

#include <ev.h>

#include <nlohmann/json.hpp>
#include <utility>

#include "daemon/io/etcd_json.h"

namespace warden {
namespace {

using json = nlohmann::json;
using etcd_json::Printable;

constexpr std::size_t kMaxErrorBody = 4096;

// etcd's error as one line: "<message> (code N)", "<message>", "code N" or "".
std::string ErrorDetail(const etcd_json::ErrorBody& error) {
  if (error.code < 0) return error.message;
  if (error.message.empty()) return "code " + std::to_string(error.code);
  return error.message + " (code " + std::to_string(error.code) + ")";
}

// An error etcd sent in the stream ({"error": ...}): "etcd error: <detail>",
// with the code of its gRPC code and that code as the peer code.
Failure StreamFailure(const json& doc) {
  etcd_json::ErrorBody error = etcd_json::ReadErrorBody(doc);
  std::string detail = ErrorDetail(error);
  return Status::WithCode(etcd_json::GrpcStatusCode(error.code),
                          detail.empty() ? "etcd error" : "etcd error: " + detail)
      .WithPeerCode(error.code);
}

// `read`'s value into `to`, or its failure.
template <typename T>
Status Into(Expected<T> read, T& to) {
  if (!read) return read.status();
  to = std::move(*read);
  return Status::Ok();
}

// The fields of a response that are neither its header nor its events;
// the first that cannot be read, in this order, is the failure.
Status ReadResponseFields(const json& r, EtcdWatchResponse& out) {
  const Status fields[] = {Into(etcd_json::Int64(r, "watch_id"), out.watch_id),
                           Into(etcd_json::Bool(r, "created"), out.created),
                           Into(etcd_json::Bool(r, "canceled"), out.canceled),
                           Into(etcd_json::Text(r, "cancel_reason"), out.cancel_reason),
                           Into(etcd_json::Int64(r, "compact_revision"), out.compact_revision),
                           Into(etcd_json::Bool(r, "fragment"), out.fragment)};
  for (const Status& field : fields) {
    if (!field.ok()) return field;
  }
  return Status::Ok();
}

Expected<EtcdWatchEvent> ReadEvent(const json& item) {
  if (!item.is_object()) return Status::Invalid("an event is not an object");
  EtcdWatchEvent ev;
  auto type = etcd_json::Text(item, "type");
  if (!type) return type.failure();
  if (type->empty() || *type == "PUT") ev.type = EtcdWatchEvent::Type::kPut;
  else if (*type == "DELETE") ev.type = EtcdWatchEvent::Type::kDelete;
  else return Status::Invalid("event type '" + Printable(*type) + "' is not PUT or DELETE");
  auto kv = item.find("kv");
  if (kv == item.end() || !kv->is_object()) return Status::Invalid("an event has no \"kv\"");
  auto read = etcd_json::Kv(*kv);
  if (!read) return read.failure();
  ev.kv = std::move(*read);
  if (ev.kv.key.empty()) return Status::Invalid("an event has no key");
  if (ev.kv.mod_revision <= 0) return Status::Invalid("an event has no \"mod_revision\"");
  return ev;
}

}  // namespace

Expected<EtcdWatchResponse> ParseEtcdWatchLine(std::string_view line) {
  auto doc = etcd_json::ParseObject(line);
  if (!doc) return doc.failure();
  if (doc->contains("error")) return StreamFailure(*doc);
  auto r = doc->find("result");
  if (r == doc->end() || !r->is_object()) return Status::Invalid("no \"result\"");
  EtcdWatchResponse out;
  auto header = etcd_json::Header(*r);
  if (!header) return header.failure();
  out.header = std::move(*header);
  if (Status fields = ReadResponseFields(*r, out); !fields.ok()) return fields.failure();
  auto events = r->find("events");
  if (events != r->end() && !events->is_null()) {
    if (!events->is_array()) return Status::Invalid("\"events\" is not an array");
    for (const auto& item : *events) {
      auto ev = ReadEvent(item);
      if (!ev) return ev.failure();
      out.events.push_back(std::move(*ev));
    }
  }
  return out;
}

Status EtcdWatchDecoder::Feed(std::string_view piece, std::vector<EtcdWatchResponse>* out) {
  if (!error_.ok()) return error_;
  while (!piece.empty()) {
    auto nl = piece.find('\n');
    std::string_view part = piece.substr(0, nl);
    if (buffer_.size() + part.size() > max_line_) {
      error_ = Status::Invalid("a line over " + std::to_string(max_line_ / 1024) + " KB");
      buffer_.clear();
      return error_;
    }
    buffer_.append(part);
    if (nl == std::string_view::npos) break;
    piece.remove_prefix(nl + 1);
    std::string line;
    line.swap(buffer_);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto r = ParseEtcdWatchLine(line);
    if (!r) {
      error_ = r.status();
      return error_;
    }
    out->push_back(std::move(*r));
  }
  return Status::Ok();
}

// --- the watch --------------------------------------------------------------

EtcdWatch::EtcdWatch(struct ev_loop* loop, const EtcdConfig& config)
    : loop_(loop),
      config_(config),
      http_(loop),
      kick_(std::make_unique<ev_timer>()),
      create_timeout_(std::make_unique<ev_timer>()),
      alive_(std::make_shared<bool>(true)) {
  ev_timer_init(kick_.get(), &EtcdWatch::OnKick, 0., 0.);
  kick_->data = this;
  ev_timer_init(create_timeout_.get(), &EtcdWatch::OnCreateTimeout, 0., 0.);
  create_timeout_->data = this;
}

EtcdWatch::~EtcdWatch() {
  *alive_ = false;
  ev_timer_stop(loop_, kick_.get());
  ev_timer_stop(loop_, create_timeout_.get());
  // http_ cancels the stream without calling back.
}

void EtcdWatch::Start(std::size_t endpoint, const std::string& key, const std::string& range_end,
                      std::int64_t start_revision, OnResponse on_response, OnEnd on_end) {
  Stop();
  on_response_ = std::move(on_response);
  on_end_ = std::move(on_end);
  decoder_ = EtcdWatchDecoder();
  status_ = 0;
  error_body_.clear();
  created_ = false;
  ending_ = false;
  pending_end_.clear();
  if (config_.endpoints.empty()) {
    where_ = "etcd watch: ";
    End("no endpoints configured");
    return;
  }
  endpoint_ = config_.endpoints[endpoint % config_.endpoints.size()];
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  where_ = "etcd watch " + endpoint_ + ": ";
  json create = {{"key", Base64Encode(key)}, {"progress_notify", true}};
  if (!range_end.empty()) create["range_end"] = Base64Encode(range_end);
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  HttpRequest req;
  req.method = HttpRequest::Method::kPost;
  req.url = endpoint_ + "/v3/watch";
  req.headers.push_back("Content-Type: application/json");
  req.body = json{{"create_request", create}}.dump();
  Duration budget = config_.timeout.count() > 0 ? config_.timeout : Duration(2000);
  req.timeout = Duration(0);  // a stream: liveness is the owner's business
  req.connect_timeout =
      config_.connect_timeout.count() > 0 ? std::min(config_.connect_timeout, budget) : budget;
  req.ca_file = config_.ca_file;
  req.cert_file = config_.cert_file;
  req.key_file = config_.key_file;
  req.on_data = [this](long status, std::string_view piece) { return OnData(status, piece); };
  request_ = http_.Start(req, [this](HttpResponse r) { OnDone(r); });
  ev_timer_set(create_timeout_.get(), static_cast<double>(budget.count()) / 1000.0, 0.);
  ev_timer_start(loop_, create_timeout_.get());
}

void EtcdWatch::Stop() {
  ++generation_;
  if (request_ != 0) http_.Cancel(request_);
  request_ = 0;
  queue_.clear();
  pending_end_.clear();
  ending_ = false;
  created_ = false;
  ev_timer_stop(loop_, kick_.get());
  ev_timer_stop(loop_, create_timeout_.get());
}

bool EtcdWatch::OnData(long status, std::string_view piece) {
  if (ending_) return false;
  status_ = status;
  if (status != 200) {
    if (error_body_.size() < kMaxErrorBody) {
      error_body_.append(piece.substr(0, kMaxErrorBody - error_body_.size()));
    }
    return true;
  }
  std::size_t before = queue_.size();
  const Status decoded = decoder_.Feed(piece, &queue_);
  std::string problem;
  for (std::size_t i = before; i < queue_.size() && problem.empty(); ++i) {
    const auto& r = queue_[i];
    if (!config_.cluster_id.empty() && !r.header.cluster_id.empty() &&
        r.header.cluster_id != config_.cluster_id) {
      problem = "cluster_id " + r.header.cluster_id + " is not the configured " +
                config_.cluster_id;
      queue_.resize(i);
    } else if (r.canceled) {
      problem = "canceled";
      if (!r.cancel_reason.empty()) problem += ": " + Printable(r.cancel_reason);
      if (r.compact_revision > 0) {
        problem += " (compacted at " + std::to_string(r.compact_revision) + ")";
      }
      queue_.resize(i + 1);  // the canceled response is delivered, then the end
    } else if (!created_ && !r.created) {
      problem = "a response before \"created\"";
      queue_.resize(i);
    } else if (r.created && created_) {
      problem = "a second \"created\"";
      queue_.resize(i);
    } else if (r.created) {
      created_ = true;
    }
  }
  if (problem.empty() && !decoded.ok()) {
    // What the stream held cannot be read, or etcd sent an error in it.
    problem = decoded.code() == StatusCode::kInvalid ? "malformed stream: " + decoded.message()
                                                     : decoded.message();
  }
  if (!problem.empty() && pending_end_.empty()) pending_end_ = problem;
  if ((!queue_.empty() || !pending_end_.empty()) && !ev_is_active(kick_.get())) {
    ev_timer_set(kick_.get(), 0., 0.);
    ev_timer_start(loop_, kick_.get());
  }
  if (!pending_end_.empty()) {
    ending_ = true;
    return false;  // aborts the transfer; OnDone sees it
  }
  return true;
}

void EtcdWatch::OnDone(const HttpResponse& r) {
  request_ = 0;
  ev_timer_stop(loop_, create_timeout_.get());
  if (pending_end_.empty()) {
    if (!r.ok) {
      pending_end_ = Printable(r.error);
    } else if (status_ != 200 && r.http_status != 200) {
      long status = r.http_status != 0 ? r.http_status : status_;
      std::string text = "HTTP " + std::to_string(status);
      json doc = json::parse(error_body_, nullptr, /*allow_exceptions=*/false);
      std::string detail = doc.is_object() ? ErrorDetail(etcd_json::ReadErrorBody(doc))
                                           : Printable(error_body_.substr(0, error_body_.find('\n')));
      if (!detail.empty()) text += ": " + detail;
      pending_end_ = text;
    } else {
      pending_end_ = decoder_.buffered() > 0 ? "stream ended inside a line" : "stream ended";
    }
  }
  Drain();
}

void EtcdWatch::Drain() {
  ev_timer_stop(loop_, kick_.get());
  std::weak_ptr<bool> alive = alive_;
  const std::uint64_t generation = generation_;
  while (!queue_.empty()) {
    std::vector<EtcdWatchResponse> batch;
    batch.swap(queue_);
    for (const auto& r : batch) {
      if (r.created) ev_timer_stop(loop_, create_timeout_.get());
      if (on_response_) {
        OnResponse cb = on_response_;
        cb(r);
      }
      auto still = alive.lock();
      if (!still || !*still) return;
      if (generation != generation_) return;  // Stop() or Start() from the callback
    }
  }
  // The end is reported once the transfer is gone (OnDone).
  if (request_ == 0 && !pending_end_.empty()) {
    std::string error = where_ + pending_end_;
    pending_end_.clear();
    ending_ = false;
    OnEnd done = std::move(on_end_);
    on_end_ = nullptr;
    on_response_ = nullptr;
    if (done) done(error);
  }
}

void EtcdWatch::End(std::string error) {
  if (request_ != 0) http_.Cancel(request_);
  request_ = 0;
  pending_end_ = std::move(error);
  ending_ = true;
  ev_timer_stop(loop_, create_timeout_.get());
  ev_timer_stop(loop_, kick_.get());
  ev_timer_set(kick_.get(), 0., 0.);
  ev_timer_start(loop_, kick_.get());
}

void EtcdWatch::OnKick(struct ev_loop* /*loop*/, ev_timer* w, int /*revents*/) {
  static_cast<EtcdWatch*>(w->data)->Drain();
}

void EtcdWatch::OnCreateTimeout(struct ev_loop* /*loop*/, ev_timer* w, int /*revents*/) {
  auto* self = static_cast<EtcdWatch*>(w->data);
  if (self->created_) return;
  Duration budget = self->config_.timeout.count() > 0 ? self->config_.timeout : Duration(2000);
  self->End("no answer within " + std::to_string(budget.count()) + " ms");
}

}  // namespace warden
