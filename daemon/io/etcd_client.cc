#include "daemon/io/etcd_client.h"

#include <ev.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>

namespace warden {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::size_t kMaxDetail = 200;

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

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

// Drops nlohmann's "[json.exception.parse_error.101] " prefix.
std::string JsonErrorText(const char* what) {
  std::string_view s(what);
  if (!s.empty() && s.front() == '[') {
    auto end = s.find("] ");
    if (end != std::string_view::npos) s.remove_prefix(end + 2);
  }
  return Printable(s);
}

// Reads an int64 field that the gateway prints as a string; absent is 0.
bool GetInt64(const json& obj, const char* name, std::int64_t* out, std::string* error) {
  *out = 0;
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_string()) {
    if (auto v = ParseEtcdInt64(it->get_ref<const std::string&>())) {
      *out = *v;
      return true;
    }
  } else if (it->is_number_integer()) {
    if (it->is_number_unsigned() &&
        it->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      *error = std::string("\"") + name + "\" is out of range";
      return false;
    }
    *out = it->get<std::int64_t>();
    return true;
  }
  *error = std::string("\"") + name + "\" is not an int64";
  return false;
}

// A base64 bytes field; absent is "".
bool GetBytes(const json& obj, const char* name, std::string* out, std::string* error) {
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

bool GetKvs(const json& obj, std::vector<EtcdKv>* out, std::string* error) {
  out->clear();
  auto it = obj.find("kvs");
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_array()) {
    *error = "\"kvs\" is not an array";
    return false;
  }
  for (const auto& item : *it) {
    if (!item.is_object()) {
      *error = "a \"kvs\" entry is not an object";
      return false;
    }
    EtcdKv kv;
    if (!GetBytes(item, "key", &kv.key, error) || !GetBytes(item, "value", &kv.value, error) ||
        !GetInt64(item, "create_revision", &kv.create_revision, error) ||
        !GetInt64(item, "mod_revision", &kv.mod_revision, error) ||
        !GetInt64(item, "version", &kv.version, error)) {
      return false;
    }
    out->push_back(std::move(kv));
  }
  return true;
}

bool ParseRangeBody(const json& obj, std::vector<EtcdKv>* kvs, std::int64_t* count,
                    std::string* error) {
  return GetKvs(obj, kvs, error) && GetInt64(obj, "count", count, error);
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

// A 200 answer's "header" (doc must be an object): revision and
// cluster_id. Returns what is wrong with it, "" when it is fine.
std::string ParseHeader(const json& doc, EtcdHeader* header) {
  std::string problem;
  auto h = doc.find("header");
  if (h == doc.end() || !h->is_object()) return "no \"header\"";
  if (!GetInt64(*h, "revision", &header->revision, &problem)) return problem;
  auto cid = h->find("cluster_id");
  if (cid != h->end() && !cid->is_null()) {
    if (cid->is_string()) header->cluster_id = cid->get<std::string>();
    else if (cid->is_number_unsigned()) header->cluster_id = std::to_string(cid->get<std::uint64_t>());
    else if (cid->is_number_integer()) header->cluster_id = std::to_string(cid->get<std::int64_t>());
    if (header->cluster_id.empty() ||
        header->cluster_id.find_first_not_of("0123456789") != std::string::npos) {
      return "\"cluster_id\" is not a number";
    }
  }
  return "";
}

// The rest of a txn's 200 answer: "succeeded" and the responses of the
// branch that ran, whose ops are `success` or `failure`.
std::string ParseTxnBody(const json& doc, const std::vector<EtcdOp::Kind>& success_kinds,
                         const std::vector<EtcdOp::Kind>& failure_kinds, EtcdTxnResult& r) {
  auto s = doc.find("succeeded");
  if (s != doc.end() && !s->is_null()) {
    if (!s->is_boolean()) return "\"succeeded\" is not a boolean";
    r.succeeded = s->get<bool>();
  }
  const auto& kinds = r.succeeded ? success_kinds : failure_kinds;
  json responses = json::array();
  auto it = doc.find("responses");
  if (it != doc.end() && !it->is_null()) {
    if (!it->is_array()) return "\"responses\" is not an array";
    responses = *it;
  }
  if (responses.size() != kinds.size()) {
    return std::to_string(responses.size()) + " responses for " + std::to_string(kinds.size()) +
           " operations";
  }
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    EtcdOpResult op;
    op.kind = kinds[i];
    const json& item = responses[i];
    auto field = item.is_object() ? item.find(ResponseField(kinds[i])) : item.end();
    if (!item.is_object() || field == item.end() || !field->is_object()) {
      return std::string("response ") + std::to_string(i) + " has no \"" +
             ResponseField(kinds[i]) + "\"";
    }
    std::string error;
    if (kinds[i] == EtcdOp::Kind::kRange && !ParseRangeBody(*field, &op.kvs, &op.count, &error)) {
      return error;
    }
    if (kinds[i] == EtcdOp::Kind::kDelete && !GetInt64(*field, "deleted", &op.deleted, &error)) {
      return error;
    }
    r.responses.push_back(std::move(op));
  }
  return "";
}

std::string Endpoint(const std::string& e) {
  std::string out = e;
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

// HttpClient's text, shortened where it repeats curl's wording.
std::string TransportError(const std::string& error) {
  if (error.rfind("connection refused", 0) == 0) return "connection refused";
  return Printable(error);
}

// etcd's error body: {"error": "...", "message": "...", "code": N}.
std::string HttpErrorText(long status, const std::string& body, int* code) {
  std::string text = "HTTP " + std::to_string(status);
  *code = -1;
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object()) {
    std::string message;
    for (const char* key : {"message", "error"}) {
      auto it = doc.find(key);
      if (it != doc.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
        message = it->get<std::string>();
        break;
      }
    }
    auto c = doc.find("code");
    if (c != doc.end() && c->is_number_integer()) *code = c->get<int>();
    if (!message.empty()) text += ": " + Printable(message);
    if (*code >= 0) text += " (code " + std::to_string(*code) + ")";
    return text;
  }
  std::string first = body.substr(0, body.find('\n'));
  first = Printable(first);
  if (!first.empty()) text += ": " + first;
  return text;
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
      "'" + Printable(text) + "' is not http://HOST:PORT or https://HOST:PORT";
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
  // returns what is wrong with it, "" when it is fine.
  std::function<std::string(const json& doc, const EtcdHeader& header)> parse;
  // Runs the user's callback with the result, or with *error.
  std::function<void(const EtcdError* error)> finish;
};

namespace {

// Binds a result of type T to a call: parse fills it, finish hands it over.
template <typename T, typename Parse>
void Bind(std::function<std::string(const json&, const EtcdHeader&)>& parse_out,
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

}  // namespace

std::string ParseEtcdTxnAnswer(std::string_view body, const std::vector<EtcdOp::Kind>& success,
                               const std::vector<EtcdOp::Kind>& failure, EtcdTxnResult* out) {
  json doc;
  try {
    doc = json::parse(body);
  } catch (const json::exception& ex) {
    return "not JSON (" + JsonErrorText(ex.what()) + ")";
  }
  if (!doc.is_object()) return "not a JSON object";
  *out = EtcdTxnResult();
  if (std::string problem = ParseHeader(doc, &out->header); !problem.empty()) return problem;
  return ParseTxnBody(doc, success, failure, *out);
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
      [](const json& doc, EtcdRange& r) {
        std::string error;
        ParseRangeBody(doc, &r.kvs, &r.count, &error);
        return error;
      },
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
        return ParseTxnBody(doc, success_kinds, failure_kinds, r);
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
      call->parse, call->finish, [](const json&, EtcdPutResult&) { return std::string(); },
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
      [](const json& doc, EtcdDeleteResult& r) {
        std::string error;
        GetInt64(doc, "deleted", &r.deleted, &error);
        return error;
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
      [](const json& doc, EtcdLeaseResult& r) {
        std::string error;
        if (!GetInt64(doc, "ID", &r.id, &error) || !GetInt64(doc, "TTL", &r.ttl, &error)) {
          return error;
        }
        if (doc.contains("error") && doc["error"].is_string() &&
            !doc["error"].get<std::string>().empty()) {
          return "lease not granted: " + doc["error"].get<std::string>();
        }
        return r.id == 0 ? std::string("no lease \"ID\"") : std::string();
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
      [](const json& doc, EtcdLeaseResult& r) {
        std::string error;
        if (!GetInt64(doc, "ID", &r.id, &error) || !GetInt64(doc, "TTL", &r.ttl, &error)) {
          return error;
        }
        return std::string();
      },
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
    e.message = where + HttpErrorText(r.http_status, r.body, &e.code);
    bool server_error = r.http_status >= 500;
    e.maybe_applied = !(r.http_status >= 400 && r.http_status < 500);
    retry = server_error && c.read_only;
  } else {
    e.kind = EtcdError::Kind::kMalformed;
    e.maybe_applied = true;
    std::string problem;
    json doc;
    bool parsed = false;
    try {
      doc = json::parse(r.body);
      parsed = true;
    } catch (const json::exception& ex) {
      problem = "not JSON (" + JsonErrorText(ex.what()) + ")";
    }
    EtcdHeader header;
    if (!parsed) {
      // problem set
    } else if (!doc.is_object()) {
      problem = "not a JSON object";
    } else if (c.wrapped && (!doc.contains("result") || !doc["result"].is_object())) {
      problem = doc.contains("error") ? "etcd error: " + doc["error"].dump() : "no \"result\"";
    } else {
      if (c.wrapped) doc = json(doc["result"]);
      problem = ParseHeader(doc, &header);
      if (problem.empty() && !config_.cluster_id.empty() &&
          header.cluster_id != config_.cluster_id) {
        e.kind = EtcdError::Kind::kWrongCluster;
        e.message = where + "cluster_id " +
                    (header.cluster_id.empty() ? std::string("(none)") : header.cluster_id) +
                    " is not the configured " + config_.cluster_id;
      } else if (problem.empty()) {
        problem = c.parse(doc, header);
      }
    }
    if (e.kind == EtcdError::Kind::kMalformed && problem.empty()) {
      current_ = index;
      Finish(id, nullptr);
      return;
    }
    if (e.kind == EtcdError::Kind::kMalformed) e.message = where + "malformed answer: " + problem;
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
