#include "daemon/io/etcd_client.h"

#include <ev.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>

#include "daemon/io/etcd_json.h"

namespace warden {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// A range's "kvs" and "count" (a range answer, or a txn's response_range).
Status ReadRange(const json& obj, std::vector<EtcdKv>& kvs, std::int64_t& count) {
  kvs.clear();
  auto it = obj.find("kvs");
  if (it != obj.end() && !it->is_null()) {
    if (!it->is_array()) return Status::Invalid("\"kvs\" is not an array");
    for (const auto& item : *it) {
      if (!item.is_object()) return Status::Invalid("a \"kvs\" entry is not an object");
      auto kv = etcd_json::Kv(item);
      if (!kv) return kv.failure();
      kvs.push_back(std::move(*kv));
    }
  }
  auto n = etcd_json::Int64(obj, "count");
  if (!n) return n.failure();
  count = *n;
  return Status::Ok();
}

const char* TargetName(EtcdCompare::Target t) {
  switch (t) {
    case EtcdCompare::Target::kVersion: return "VERSION";
    case EtcdCompare::Target::kCreate: return "CREATE";
    case EtcdCompare::Target::kMod: return "MOD";
    case EtcdCompare::Target::kValue: return "VALUE";
  }
  return "CREATE";
}

const char* ResultName(EtcdCompare::Result r) {
  switch (r) {
    case EtcdCompare::Result::kEqual: return "EQUAL";
    case EtcdCompare::Result::kGreater: return "GREATER";
    case EtcdCompare::Result::kLess: return "LESS";
    case EtcdCompare::Result::kNotEqual: return "NOT_EQUAL";
  }
  return "EQUAL";
}

json CompareJson(const EtcdCompare& c) {
  json j = {{"key", Base64Encode(c.key)},
            {"target", TargetName(c.target)},
            {"result", ResultName(c.result)}};
  switch (c.target) {
    case EtcdCompare::Target::kVersion: j["version"] = std::to_string(c.number); break;
    case EtcdCompare::Target::kCreate: j["create_revision"] = std::to_string(c.number); break;
    case EtcdCompare::Target::kMod: j["mod_revision"] = std::to_string(c.number); break;
    case EtcdCompare::Target::kValue: j["value"] = Base64Encode(c.value); break;
  }
  return j;
}

json RangeJson(const std::string& key, const std::string& range_end) {
  // Never "serializable": reads are linearizable.
  json j = {{"key", Base64Encode(key)}};
  if (!range_end.empty()) j["range_end"] = Base64Encode(range_end);
  return j;
}

json OpJson(const EtcdOp& op) {
  switch (op.kind) {
    case EtcdOp::Kind::kRange:
      return {{"request_range", RangeJson(op.key, op.range_end)}};
    case EtcdOp::Kind::kPut: {
      json p = {{"key", Base64Encode(op.key)}, {"value", Base64Encode(op.value)}};
      if (op.lease != 0) p["lease"] = std::to_string(op.lease);
      return {{"request_put", p}};
    }
    case EtcdOp::Kind::kDelete: {
      json d = {{"key", Base64Encode(op.key)}};
      if (!op.range_end.empty()) d["range_end"] = Base64Encode(op.range_end);
      return {{"request_delete_range", d}};
    }
  }
  return json::object();
}

const char* ResponseField(EtcdOp::Kind kind) {
  switch (kind) {
    case EtcdOp::Kind::kRange: return "response_range";
    case EtcdOp::Kind::kPut: return "response_put";
    case EtcdOp::Kind::kDelete: return "response_delete_range";
  }
  return "";
}

// The rest of a txn's 200 answer: "succeeded" and the responses of the
// branch that ran, whose ops are `success` or `failure`.
Status ReadTxnBody(const json& doc, const std::vector<EtcdOp::Kind>& success_kinds,
                   const std::vector<EtcdOp::Kind>& failure_kinds, EtcdTxnResult& r) {
  auto succeeded = etcd_json::Bool(doc, "succeeded");
  if (!succeeded) return succeeded.failure();
  r.succeeded = *succeeded;
  const auto& kinds = r.succeeded ? success_kinds : failure_kinds;
  json responses = json::array();
  auto it = doc.find("responses");
  if (it != doc.end() && !it->is_null()) {
    if (!it->is_array()) return Status::Invalid("\"responses\" is not an array");
    responses = *it;
  }
  if (responses.size() != kinds.size()) {
    return Status::Invalid(std::to_string(responses.size()) + " responses for " +
                           std::to_string(kinds.size()) + " operations");
  }
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    EtcdOpResult op;
    op.kind = kinds[i];
    const json& item = responses[i];
    auto field = item.is_object() ? item.find(ResponseField(kinds[i])) : item.end();
    if (!item.is_object() || field == item.end() || !field->is_object()) {
      return Status::Invalid(std::string("response ") + std::to_string(i) + " has no \"" +
                             ResponseField(kinds[i]) + "\"");
    }
    if (kinds[i] == EtcdOp::Kind::kRange) {
      if (Status read = ReadRange(*field, op.kvs, op.count); !read.ok()) return read;
    }
    if (kinds[i] == EtcdOp::Kind::kDelete) {
      auto deleted = etcd_json::Int64(*field, "deleted");
      if (!deleted) return deleted.failure();
      op.deleted = *deleted;
    }
    r.responses.push_back(std::move(op));
  }
  return Status::Ok();
}

std::string Endpoint(const std::string& e) {
  std::string out = e;
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

// HttpClient's text, shortened where it repeats curl's wording.
std::string TransportError(const std::string& error) {
  if (error.rfind("connection refused", 0) == 0) return "connection refused";
  return etcd_json::Printable(error);
}

// What a caller may do about a non-200 answer: transient for 408, 429 and
// 5xx (a member that lost quorum answers 503), not_found for 404, refused
// for the other 4xx, internal for anything else.
StatusCode HttpStatusCode(long status) {
  if (status == 408 || status == 429 || (status >= 500 && status < 600)) {
    return StatusCode::kTransient;
  }
  if (status == 404) return StatusCode::kNotFound;
  if (status >= 400 && status < 500) return StatusCode::kRefused;
  return StatusCode::kInternal;
}

// A non-200 answer: "HTTP <status>" and etcd's error body ({"error": "...",
// "message": "...", "code": N}: ": <message> (code N)") or the first line
// of another body; its code by the status, its peer code etcd's (gRPC)
// code, -1 if the body has none.
Failure HttpFailure(long status, const std::string& body) {
  std::string text = "HTTP " + std::to_string(status);
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    std::string first = etcd_json::Printable(body.substr(0, body.find('\n')));
    if (!first.empty()) text += ": " + first;
    return Status::WithCode(HttpStatusCode(status), std::move(text));
  }
  etcd_json::ErrorBody error = etcd_json::ReadErrorBody(doc);
  if (!error.message.empty()) text += ": " + error.message;
  if (error.code >= 0) text += " (code " + std::to_string(error.code) + ")";
  return Status::WithCode(HttpStatusCode(status), std::move(text)).WithPeerCode(error.code);
}

}  // namespace

// --- encoding helpers -------------------------------------------------------

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t n = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  std::size_t left = bytes.size() - i;
  if (left == 1) {
    std::uint32_t n = at(i) << 16;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out += "==";
  } else if (left == 2) {
    std::uint32_t n = (at(i) << 16) | (at(i + 1) << 8);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    std::uint32_t n = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      int v = 0;
      if (k < 4 - static_cast<std::size_t>(pad)) {
        v = Base64Value(text[i + k]);
        if (v < 0) return std::nullopt;  // includes a '=' not at the end
      }
      n = (n << 6) | static_cast<std::uint32_t>(v);
    }
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    if (pad == 2) {
      if ((n & 0xffff) != 0) return std::nullopt;  // unused bits must be zero
    } else {
      out.push_back(static_cast<char>((n >> 8) & 0xff));
      if (pad == 1) {
        if ((n & 0xff) != 0) return std::nullopt;
      } else {
        out.push_back(static_cast<char>(n & 0xff));
      }
    }
  }
  return out;
}

std::optional<std::int64_t> ParseEtcdInt64(std::string_view text) {
  bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (negative) {
    if (n > kMax + 1) return std::nullopt;
    return n == kMax + 1 ? std::numeric_limits<std::int64_t>::min()
                         : -static_cast<std::int64_t>(n);
  }
  if (n > kMax) return std::nullopt;
  return static_cast<std::int64_t>(n);
}

Expected<std::string> ParseEtcdClusterId(std::string_view text) {
  const std::string why =
      "cluster_id must be a decimal number (as the gateway prints it) or hex with 0x "
      "(as etcdctl does)";
  bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  if (hex) text.remove_prefix(2);
  if (text.empty()) return Expected<std::string>::Error(why);
  std::uint64_t n = 0;
  const std::uint64_t base = hex ? 16 : 10;
  for (char c : text) {
    std::uint64_t d;
    if (c >= '0' && c <= '9') d = static_cast<std::uint64_t>(c - '0');
    else if (hex && c >= 'a' && c <= 'f') d = static_cast<std::uint64_t>(c - 'a' + 10);
    else if (hex && c >= 'A' && c <= 'F') d = static_cast<std::uint64_t>(c - 'A' + 10);
    else return Expected<std::string>::Error(why);
    if (n > (std::numeric_limits<std::uint64_t>::max() - d) / base) {
      return Expected<std::string>::Error("cluster_id is larger than 64 bits");
    }
    n = n * base + d;
  }
  return std::to_string(n);
}

Expected<std::string> ParseEtcdEndpoint(std::string_view text) {
  const std::string why =
      "'" + etcd_json::Printable(text) + "' is not http://HOST:PORT or https://HOST:PORT";
  std::string_view rest = text;
  if (rest.rfind("http://", 0) == 0) rest.remove_prefix(7);
  else if (rest.rfind("https://", 0) == 0) rest.remove_prefix(8);
  else return Expected<std::string>::Error(why);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) return Expected<std::string>::Error(why + " (no port)");
  std::string_view host = rest.substr(0, colon);
  std::string_view port = rest.substr(colon + 1);
  bool host_ok = !host.empty();
  if (host_ok && host.front() == '[') {
    host_ok = host.size() > 2 && host.back() == ']' &&
              host.substr(1, host.size() - 2).find_first_not_of("0123456789abcdefABCDEF:.") ==
                  std::string_view::npos;
  } else if (host_ok) {
    host_ok = std::all_of(host.begin(), host.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-' || c == '_';
    });
  }
  if (!host_ok) return Expected<std::string>::Error(why);
  auto number = ParseEtcdInt64(port);
  if (port.empty() || port.front() == '-' || !number || *number < 1 || *number > 65535) {
    return Expected<std::string>::Error(why + " (bad port)");
  }
  return std::string(text.substr(0, text.size() - (text.back() == '/' ? 1 : 0)));
}

std::string EtcdPrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::uint64_t HostHash(std::string_view host_id) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : host_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

EtcdCompare EtcdCompare::Missing(std::string key) {
  return Revision(std::move(key), Target::kCreate, Result::kEqual, 0);
}

EtcdCompare EtcdCompare::ValueIs(std::string key, std::string value) {
  EtcdCompare c;
  c.key = std::move(key);
  c.target = Target::kValue;
  c.result = Result::kEqual;
  c.value = std::move(value);
  return c;
}

EtcdCompare EtcdCompare::Revision(std::string key, Target target, Result result, std::int64_t n) {
  EtcdCompare c;
  c.key = std::move(key);
  c.target = target;
  c.result = result;
  c.number = n;
  return c;
}

EtcdOp EtcdOp::Range(std::string key, std::string range_end) {
  EtcdOp op;
  op.kind = Kind::kRange;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  return op;
}

EtcdOp EtcdOp::RangePrefix(std::string prefix) {
  std::string end = EtcdPrefixEnd(prefix);
  return Range(std::move(prefix), std::move(end));
}

EtcdOp EtcdOp::Put(std::string key, std::string value, std::int64_t lease) {
  EtcdOp op;
  op.kind = Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

EtcdOp EtcdOp::Delete(std::string key, std::string range_end) {
  EtcdOp op;
  op.kind = Kind::kDelete;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  return op;
}

// --- the client -------------------------------------------------------------

struct EtcdClient::Call {
  std::string path;  // "/v3/kv/range"
  std::string body;
  bool read_only = false;
  Clock::time_point deadline;
  std::size_t attempts = 0;
  std::size_t next = 0;  // endpoint index of the next attempt
  HttpClient::RequestId http = 0;
  std::vector<EtcdError> errors;  // one per failed attempt
  bool wrapped = false;  // a stream's answer: the object is under "result"
  // Reads a 200 answer (header already checked) into the call's result;
  // an invalid failure says what is wrong with it.
  std::function<Status(const json& doc, const EtcdHeader& header)> parse;
  // Runs the user's callback with the result, or with *error.
  std::function<void(const EtcdError* error)> finish;
};

namespace {

// Binds a result of type T to a call: parse fills it, finish hands it over.
template <typename T, typename Parse>
void Bind(std::function<Status(const json&, const EtcdHeader&)>& parse_out,
          std::function<void(const EtcdError*)>& finish_out, Parse parse,
          EtcdClient::Callback<T> done) {
  auto result = std::make_shared<T>();
  parse_out = [result, parse](const json& doc, const EtcdHeader& header) {
    result->header = header;
    return parse(doc, *result);
  };
  finish_out = [result, done = std::move(done)](const EtcdError* error) {
    if (!done) return;
    if (error != nullptr) done(EtcdResult<T>(*error));
    else done(EtcdResult<T>(std::move(*result)));
  };
}

// A lease's "ID" and "TTL" (grant and keepalive answers).
Status ReadLease(const json& doc, EtcdLeaseResult& r) {
  auto id = etcd_json::Int64(doc, "ID");
  if (!id) return id.failure();
  auto ttl = etcd_json::Int64(doc, "TTL");
  if (!ttl) return ttl.failure();
  r.id = *id;
  r.ttl = *ttl;
  return Status::Ok();
}

}  // namespace

Expected<EtcdTxnResult> ParseEtcdTxnAnswer(std::string_view body,
                                           const std::vector<EtcdOp::Kind>& success,
                                           const std::vector<EtcdOp::Kind>& failure) {
  auto doc = etcd_json::ParseObject(body);
  if (!doc) return doc.failure();
  auto header = etcd_json::Header(*doc);
  if (!header) return header.failure();
  EtcdTxnResult out;
  out.header = std::move(*header);
  if (Status read = ReadTxnBody(*doc, success, failure, out); !read.ok()) return read.failure();
  return out;
}

EtcdClient::EtcdClient(struct ev_loop* loop, EtcdConfig config)
    : loop_(loop),
      config_(std::move(config)),
      budget_(config_.timeout.count() > 0 ? config_.timeout : Duration(1)),
      http_(loop),
      kick_(std::make_unique<ev_timer>()),
      alive_(std::make_shared<bool>(true)) {
  if (!config_.endpoints.empty()) current_ = config_.first % config_.endpoints.size();
  ev_timer_init(kick_.get(), &EtcdClient::OnKick, 0., 0.);
  kick_->data = this;
}

EtcdClient::~EtcdClient() {
  *alive_ = false;
  ev_timer_stop(loop_, kick_.get());
  calls_.clear();
  // http_ is destroyed after this body and cancels what is in flight
  // without calling back.
}

const std::string& EtcdClient::current_endpoint() const {
  static const std::string kNone;
  return config_.endpoints.empty() ? kNone : config_.endpoints[current_];
}

EtcdClient::RequestId EtcdClient::Range(std::string key, std::string range_end,
                                        Callback<EtcdRange> done) {
  auto call = std::make_unique<Call>();
  call->path = "/v3/kv/range";
  call->body = RangeJson(key, range_end).dump();
  call->read_only = true;
  Bind<EtcdRange>(
      call->parse, call->finish,
      [](const json& doc, EtcdRange& r) { return ReadRange(doc, r.kvs, r.count); },
      std::move(done));
  return Begin(std::move(call));
}

EtcdClient::RequestId EtcdClient::Txn(std::vector<EtcdCompare> compares,
                                      std::vector<EtcdOp> success, std::vector<EtcdOp> failure,
                                      Callback<EtcdTxnResult> done) {
  json body = json::object();
  body["compare"] = json::array();
  for (const auto& c : compares) body["compare"].push_back(CompareJson(c));
  body["success"] = json::array();
  for (const auto& op : success) body["success"].push_back(OpJson(op));
  body["failure"] = json::array();
  for (const auto& op : failure) body["failure"].push_back(OpJson(op));
  bool read_only = true;
  for (const auto* ops : {&success, &failure}) {
    for (const auto& op : *ops) read_only = read_only && op.kind == EtcdOp::Kind::kRange;
  }
  std::vector<EtcdOp::Kind> success_kinds, failure_kinds;
  for (const auto& op : success) success_kinds.push_back(op.kind);
  for (const auto& op : failure) failure_kinds.push_back(op.kind);

  auto call = std::make_unique<Call>();
  call->path = "/v3/kv/txn";
  call->body = body.dump();
  call->read_only = read_only;
  Bind<EtcdTxnResult>(
      call->parse, call->finish,
      [success_kinds, failure_kinds](const json& doc, EtcdTxnResult& r) {
        return ReadTxnBody(doc, success_kinds, failure_kinds, r);
      },
      std::move(done));
  return Begin(std::move(call));
}

EtcdClient::RequestId EtcdClient::Put(std::string key, std::string value,
                                      Callback<EtcdPutResult> done) {
  auto call = std::make_unique<Call>();
  call->path = "/v3/kv/put";
  call->body = json{{"key", Base64Encode(key)}, {"value", Base64Encode(value)}}.dump();
  call->read_only = false;
  Bind<EtcdPutResult>(
      call->parse, call->finish, [](const json&, EtcdPutResult&) { return Status::Ok(); },
      std::move(done));
  return Begin(std::move(call));
}

EtcdClient::RequestId EtcdClient::Delete(std::string key, std::string range_end,
                                         Callback<EtcdDeleteResult> done) {
  json body = {{"key", Base64Encode(key)}};
  if (!range_end.empty()) body["range_end"] = Base64Encode(range_end);
  auto call = std::make_unique<Call>();
  call->path = "/v3/kv/deleterange";
  call->body = body.dump();
  call->read_only = false;
  Bind<EtcdDeleteResult>(
      call->parse, call->finish,
      [](const json& doc, EtcdDeleteResult& r) -> Status {
        auto deleted = etcd_json::Int64(doc, "deleted");
        if (!deleted) return deleted.failure();
        r.deleted = *deleted;
        return Status::Ok();
      },
      std::move(done));
  return Begin(std::move(call));
}

EtcdClient::RequestId EtcdClient::LeaseGrant(std::int64_t ttl_seconds,
                                             Callback<EtcdLeaseResult> done) {
  auto call = std::make_unique<Call>();
  call->path = "/v3/lease/grant";
  call->body = json{{"TTL", std::to_string(ttl_seconds)}}.dump();
  call->read_only = false;
  Bind<EtcdLeaseResult>(
      call->parse, call->finish,
      [](const json& doc, EtcdLeaseResult& r) -> Status {
        Status read = ReadLease(doc, r);
        if (!read.ok()) return read;
        auto err = doc.find("error");
        if (err != doc.end() && err->is_string() && !err->get<std::string>().empty()) {
          return Status::Refused("lease not granted: " + err->get<std::string>());
        }
        if (r.id == 0) return Status::Invalid("no lease \"ID\"");
        return Status::Ok();
      },
      std::move(done));
  return Begin(std::move(call));
}

EtcdClient::RequestId EtcdClient::LeaseKeepAlive(std::int64_t id,
                                                 Callback<EtcdLeaseResult> done) {
  auto call = std::make_unique<Call>();
  call->path = "/v3/lease/keepalive";
  call->body = json{{"ID", std::to_string(id)}}.dump();
  call->read_only = false;
  call->wrapped = true;
  Bind<EtcdLeaseResult>(
      call->parse, call->finish,
      [](const json& doc, EtcdLeaseResult& r) -> Status { return ReadLease(doc, r); },
      std::move(done));
  return Begin(std::move(call));
}

bool EtcdClient::Cancel(RequestId id) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return false;
  if (it->second->http != 0) http_.Cancel(it->second->http);
  calls_.erase(it);
  return true;
}

EtcdClient::RequestId EtcdClient::Begin(std::unique_ptr<Call> call) {
  RequestId id = next_id_++;
  call->deadline = Clock::now() + budget_;
  call->next = current_;
  calls_.emplace(id, std::move(call));
  if (config_.endpoints.empty()) {
    unstartable_.push_back(id);
    ev_timer_stop(loop_, kick_.get());
    ev_timer_set(kick_.get(), 0., 0.);
    ev_timer_start(loop_, kick_.get());
    return id;
  }
  // The first attempt always starts an HTTP request (budget > 0): its
  // callback comes from the loop, never from here.
  Attempt(id);
  return id;
}

bool EtcdClient::Attempt(RequestId id) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return true;
  Call& c = *it->second;
  auto left = std::chrono::duration_cast<Duration>(c.deadline - Clock::now());
  bool first = c.attempts == 0;
  if (!first && (c.attempts >= config_.endpoints.size() || left.count() < 1)) {
    // Every endpoint failed, or no time is left: one error from all.
    EtcdError all;
    all.kind = EtcdError::Kind::kUnreachable;
    std::string message;
    for (const auto& e : c.errors) {
      if (!message.empty()) message += "; ";
      message += e.message;
      if (e.kind != EtcdError::Kind::kUnreachable) {
        all.kind = e.kind;
        all.http_status = e.http_status;
        all.code = e.code;
      }
      all.maybe_applied = all.maybe_applied || e.maybe_applied;
    }
    if (c.attempts < config_.endpoints.size()) {
      message += "; no time left for the other endpoints (timeout " +
                 std::to_string(config_.timeout.count()) + " ms)";
    }
    all.message = std::move(message);
    return Finish(id, &all);
  }
  if (first) left = budget_;
  if (left.count() < 1) left = Duration(1);
  if (c.read_only) {
    // A read may move on: a silent member gets only its share of what is
    // left, so the others still have time.
    auto untried = static_cast<Duration::rep>(config_.endpoints.size() - c.attempts);
    left = std::max(Duration(1), left / std::max<Duration::rep>(1, untried));
  }
  std::size_t index = c.next % config_.endpoints.size();
  c.next = index + 1;
  ++c.attempts;
  HttpRequest req;
  req.method = HttpRequest::Method::kPost;
  req.url = Endpoint(config_.endpoints[index]) + c.path;
  req.headers.push_back("Content-Type: application/json");
  req.body = c.body;
  req.timeout = left;
  req.connect_timeout = std::min(config_.connect_timeout.count() > 0 ? config_.connect_timeout
                                                                     : left,
                                 left);
  req.max_body = config_.max_body;
  req.ca_file = config_.ca_file;
  req.cert_file = config_.cert_file;
  req.key_file = config_.key_file;
  c.http = http_.Start(req, [this, id, index](HttpResponse r) { OnHttp(id, index, r); });
  return true;
}

void EtcdClient::OnHttp(RequestId id, std::size_t index, const HttpResponse& r) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  Call& c = *it->second;
  c.http = 0;
  const std::string where = "etcd " + Endpoint(config_.endpoints[index]) + ": ";
  EtcdError e;
  bool retry = false;
  if (!r.ok) {
    e.kind = r.sent ? EtcdError::Kind::kNoAnswer : EtcdError::Kind::kUnreachable;
    e.message = where + TransportError(r.error);
    e.maybe_applied = r.sent;
    retry = !r.sent || c.read_only;
  } else if (r.http_status != 200) {
    e.kind = EtcdError::Kind::kHttp;
    e.http_status = r.http_status;
    Failure failure = HttpFailure(r.http_status, r.body);
    e.message = where + failure.message();
    e.code = failure.peer_code();
    bool server_error = r.http_status >= 500;
    e.maybe_applied = !(r.http_status >= 400 && r.http_status < 500);
    retry = server_error && c.read_only;
  } else {
    e.maybe_applied = true;
    auto doc = etcd_json::ParseObject(r.body);
    if (doc && c.wrapped) {
      // A stream's answer (lease keepalive): the object is under "result".
      auto result_field = doc->find("result");
      if (result_field != doc->end() && result_field->is_object()) {
        doc = json(*result_field);
      } else {
        auto error_field = doc->find("error");
        doc = Status::Invalid(error_field != doc->end() ? "etcd error: " + error_field->dump()
                                                : std::string("no \"result\""));
      }
    }
    auto header = doc ? etcd_json::Header(*doc) : Expected<EtcdHeader>(doc.failure());
    if (header && !config_.cluster_id.empty() && header->cluster_id != config_.cluster_id) {
      e.kind = EtcdError::Kind::kWrongCluster;
      e.message = where + "cluster_id " +
                  (header->cluster_id.empty() ? std::string("(none)") : header->cluster_id) +
                  " is not the configured " + config_.cluster_id;
    } else {
      Status read = header ? c.parse(*doc, *header) : header.status();
      if (read.ok()) {
        current_ = index;
        Finish(id, nullptr);
        return;
      }
      e.kind = EtcdError::Kind::kMalformed;
      e.message = where + "malformed answer: " + read.message();
    }
  }
  c.errors.push_back(std::move(e));
  if (retry) {
    Attempt(id);
    return;
  }
  // Only this attempt's error: earlier ones (other endpoints) add to it.
  Call& call = *calls_.at(id);
  if (call.errors.size() == 1) {
    EtcdError only = call.errors.front();
    Finish(id, &only);
    return;
  }
  call.attempts = config_.endpoints.size();  // no more attempts: report all
  Attempt(id);
}

bool EtcdClient::Finish(RequestId id, const EtcdError* error) {
  auto node = calls_.extract(id);
  if (node.empty()) return true;
  std::unique_ptr<Call> call = std::move(node.mapped());
  auto finish = std::move(call->finish);
  call.reset();
  std::weak_ptr<bool> alive = alive_;
  if (finish) finish(error);
  auto still = alive.lock();
  return still && *still;
}

void EtcdClient::OnKick(struct ev_loop* /*loop*/, ev_timer* w, int /*revents*/) {
  auto* self = static_cast<EtcdClient*>(w->data);
  std::vector<RequestId> ids;
  ids.swap(self->unstartable_);
  for (RequestId id : ids) {
    EtcdError e;
    e.kind = EtcdError::Kind::kUnreachable;
    e.message = "etcd: no endpoints configured";
    if (!self->Finish(id, &e)) return;
  }
}

}  // namespace warden
