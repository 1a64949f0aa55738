#include "daemon/io/etcd_watch.h"

#include <ev.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace warden {
namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxDetail = 200;
constexpr std::size_t kMaxErrorBody = 4096;

// Printable ASCII only, one line, bounded: text from a peer.
std::string Printable(std::string_view in) {
  std::string out;
  for (char ch : in) {
    auto c = static_cast<unsigned char>(ch);
    out.push_back(c < 0x20 || c >= 0x7f ? ' ' : ch);
    if (out.size() >= kMaxDetail) {
      out += "...";
      break;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string JsonErrorText(const char* what) {
  std::string_view s(what);
  if (!s.empty() && s.front() == '[') {
    auto end = s.find("] ");
    if (end != std::string_view::npos) s.remove_prefix(end + 2);
  }
  return Printable(s);
}

// An int64 field that the gateway prints as a string; absent is 0.
bool Int64(const json& obj, const char* name, std::int64_t* out, std::string* error) {
  *out = 0;
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_string()) {
    if (auto v = ParseEtcdInt64(it->get_ref<const std::string&>())) {
      *out = *v;
      return true;
    }
  } else if (it->is_number_integer() &&
             !(it->is_number_unsigned() &&
               it->get<std::uint64_t>() >
                   static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
    *out = it->get<std::int64_t>();
    return true;
  }
  *error = std::string("\"") + name + "\" is not an int64";
  return false;
}

bool Bytes(const json& obj, const char* name, std::string* out, std::string* error) {
  out->clear();
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_string()) {
    if (auto v = Base64Decode(it->get_ref<const std::string&>())) {
      *out = std::move(*v);
      return true;
    }
  }
  *error = std::string("\"") + name + "\" is not base64";
  return false;
}

bool Bool(const json& obj, const char* name, bool* out, std::string* error) {
  *out = false;
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_boolean()) {
    *error = std::string("\"") + name + "\" is not a boolean";
    return false;
  }
  *out = it->get<bool>();
  return true;
}

bool Text(const json& obj, const char* name, std::string* out, std::string* error) {
  out->clear();
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_string()) {
    *error = std::string("\"") + name + "\" is not a string";
    return false;
  }
  *out = it->get<std::string>();
  return true;
}

// {"error": "text", "code": N} (the gateway's own) or {"error": {"message":
// ..., "grpc_code": N, ...}} (an error in the stream).
std::string StreamErrorDetail(const json& doc) {
  std::string message;
  int code = -1;
  auto read = [&](const json& obj) {
    for (const char* key : {"message", "error"}) {
      auto it = obj.find(key);
      if (it != obj.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
        message = it->get<std::string>();
        break;
      }
    }
    for (const char* key : {"code", "grpc_code"}) {
      auto it = obj.find(key);
      if (it != obj.end() && it->is_number_integer() && it->get<std::int64_t>() >= 0 &&
          it->get<std::int64_t>() < 1000) {
        code = static_cast<int>(it->get<std::int64_t>());
        break;
      }
    }
  };
  auto e = doc.find("error");
  if (e != doc.end() && e->is_object()) read(*e);
  else read(doc);
  std::string text = Printable(message);
  if (code >= 0) text += (text.empty() ? "code " : " (code ") + std::to_string(code) + (text.empty() ? "" : ")");
  return text;
}

std::string StreamError(const json& doc) {
  std::string detail = StreamErrorDetail(doc);
  return detail.empty() ? "etcd error" : "etcd error: " + detail;
}

}  // namespace

std::string ParseEtcdWatchLine(std::string_view line, EtcdWatchResponse* out) {
  *out = EtcdWatchResponse();
  json doc;
  try {
    doc = json::parse(line);
  } catch (const json::exception& ex) {
    return "not JSON (" + JsonErrorText(ex.what()) + ")";
  }
  if (!doc.is_object()) return "not a JSON object";
  if (doc.contains("error")) return StreamError(doc);
  auto r = doc.find("result");
  if (r == doc.end() || !r->is_object()) return "no \"result\"";
  std::string error;
  auto h = r->find("header");
  if (h == r->end() || !h->is_object()) return "no \"header\"";
  if (!Int64(*h, "revision", &out->header.revision, &error)) return error;
  auto cid = h->find("cluster_id");
  if (cid != h->end() && !cid->is_null()) {
    if (cid->is_string()) out->header.cluster_id = cid->get<std::string>();
    else if (cid->is_number_unsigned()) out->header.cluster_id = std::to_string(cid->get<std::uint64_t>());
    if (out->header.cluster_id.empty() ||
        out->header.cluster_id.find_first_not_of("0123456789") != std::string::npos) {
      return "\"cluster_id\" is not a number";
    }
  }
  if (!Int64(*r, "watch_id", &out->watch_id, &error) ||
      !Bool(*r, "created", &out->created, &error) ||
      !Bool(*r, "canceled", &out->canceled, &error) ||
      !Text(*r, "cancel_reason", &out->cancel_reason, &error) ||
      !Int64(*r, "compact_revision", &out->compact_revision, &error) ||
      !Bool(*r, "fragment", &out->fragment, &error)) {
    return error;
  }
  auto events = r->find("events");
  if (events != r->end() && !events->is_null()) {
    if (!events->is_array()) return "\"events\" is not an array";
    for (const auto& item : *events) {
      if (!item.is_object()) return "an event is not an object";
      EtcdWatchEvent ev;
      std::string type;
      if (!Text(item, "type", &type, &error)) return error;
      if (type.empty() || type == "PUT") ev.type = EtcdWatchEvent::Type::kPut;
      else if (type == "DELETE") ev.type = EtcdWatchEvent::Type::kDelete;
      else return "event type '" + Printable(type) + "' is not PUT or DELETE";
      auto kv = item.find("kv");
      if (kv == item.end() || !kv->is_object()) return "an event has no \"kv\"";
      if (!Bytes(*kv, "key", &ev.kv.key, &error) || !Bytes(*kv, "value", &ev.kv.value, &error) ||
          !Int64(*kv, "create_revision", &ev.kv.create_revision, &error) ||
          !Int64(*kv, "mod_revision", &ev.kv.mod_revision, &error) ||
          !Int64(*kv, "version", &ev.kv.version, &error)) {
        return error;
      }
      if (ev.kv.key.empty()) return "an event has no key";
      if (ev.kv.mod_revision <= 0) return "an event has no \"mod_revision\"";
      out->events.push_back(std::move(ev));
    }
  }
  return "";
}

std::string EtcdWatchDecoder::Feed(std::string_view piece, std::vector<EtcdWatchResponse>* out) {
  if (!error_.empty()) return error_;
  while (!piece.empty()) {
    auto nl = piece.find('\n');
    std::string_view part = piece.substr(0, nl);
    if (buffer_.size() + part.size() > max_line_) {
      error_ = "a line over " + std::to_string(max_line_ / 1024) + " KB";
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
    EtcdWatchResponse r;
    if (std::string problem = ParseEtcdWatchLine(line, &r); !problem.empty()) {
      error_ = std::move(problem);
      return error_;
    }
    out->push_back(std::move(r));
  }
  return "";
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
  const std::string decode_error = decoder_.Feed(piece, &queue_);
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
  if (problem.empty() && !decode_error.empty()) {
    problem = decode_error.rfind("etcd error", 0) == 0 ? decode_error
                                                       : "malformed stream: " + decode_error;
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
      std::string detail = doc.is_object() ? StreamErrorDetail(doc)
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
