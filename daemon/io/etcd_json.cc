#include "daemon/io/etcd_json.h"

#include <limits>
#include <utility>

namespace warden::etcd_json {
namespace {

constexpr std::size_t kMaxDetail = 200;

// `name` between quotes, then `what`: "\"revision\" is not an int64".
Failure FieldFailure(const char* name, const char* what) {
  return Status::Invalid(std::string("\"") + name + "\" " + what);
}

// The field `name` of `obj`, or null when it is absent or null.
const json* Field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

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

std::string_view JsonExceptionText(const char* what) {
  std::string_view s(what);
  if (!s.empty() && s.front() == '[') {
    auto end = s.find("] ");
    if (end != std::string_view::npos) s.remove_prefix(end + 2);
  }
  return s;
}

std::string JsonErrorText(const char* what) { return Printable(JsonExceptionText(what)); }

Expected<json> ParseObject(std::string_view text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& ex) {
    return Status::Invalid("not JSON (" + JsonErrorText(ex.what()) + ")");
  }
  if (!doc.is_object()) return Status::Invalid("not a JSON object");
  return doc;
}

Expected<std::int64_t> Int64(const json& obj, const char* name) {
  const json* v = Field(obj, name);
  if (!v) return std::int64_t{0};
  if (v->is_string()) {
    if (auto n = ParseEtcdInt64(v->get_ref<const std::string&>())) return *n;
  } else if (v->is_number_integer()) {
    if (v->is_number_unsigned() &&
        v->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return FieldFailure(name, "is out of range");
    }
    return v->get<std::int64_t>();
  }
  return FieldFailure(name, "is not an int64");
}

Expected<std::string> Bytes(const json& obj, const char* name) {
  const json* v = Field(obj, name);
  if (!v) return std::string();
  if (v->is_string()) {
    if (auto bytes = Base64Decode(v->get_ref<const std::string&>())) return std::move(*bytes);
  }
  return FieldFailure(name, "is not base64");
}

Expected<bool> Bool(const json& obj, const char* name) {
  const json* v = Field(obj, name);
  if (!v) return false;
  if (!v->is_boolean()) return FieldFailure(name, "is not a boolean");
  return v->get<bool>();
}

Expected<std::string> Text(const json& obj, const char* name) {
  const json* v = Field(obj, name);
  if (!v) return std::string();
  if (!v->is_string()) return FieldFailure(name, "is not a string");
  return v->get<std::string>();
}

Expected<EtcdKv> Kv(const json& obj) {
  auto key = Bytes(obj, "key");
  if (!key) return key.failure();
  auto value = Bytes(obj, "value");
  if (!value) return value.failure();
  EtcdKv kv;
  kv.key = std::move(*key);
  kv.value = std::move(*value);
  for (auto [name, out] : {std::pair{"create_revision", &kv.create_revision},
                           std::pair{"mod_revision", &kv.mod_revision},
                           std::pair{"version", &kv.version}}) {
    auto n = Int64(obj, name);
    if (!n) return n.failure();
    *out = *n;
  }
  return kv;
}

Expected<EtcdHeader> Header(const json& doc) {
  auto h = doc.find("header");
  if (h == doc.end() || !h->is_object()) return Status::Invalid("no \"header\"");
  EtcdHeader header;
  auto revision = Int64(*h, "revision");
  if (!revision) return revision.failure();
  header.revision = *revision;
  if (const json* cid = Field(*h, "cluster_id")) {
    if (cid->is_string()) header.cluster_id = cid->get<std::string>();
    else if (cid->is_number_unsigned()) header.cluster_id = std::to_string(cid->get<std::uint64_t>());
    if (header.cluster_id.empty() ||
        header.cluster_id.find_first_not_of("0123456789") != std::string::npos) {
      return FieldFailure("cluster_id", "is not a number");
    }
  }
  return header;
}

ErrorBody ReadErrorBody(const json& doc) {
  ErrorBody out;
  auto read = [&out](const json& obj) {
    for (const char* key : {"message", "error"}) {
      auto it = obj.find(key);
      if (it != obj.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
        out.message = Printable(it->get_ref<const std::string&>());
        break;
      }
    }
    for (const char* key : {"code", "grpc_code"}) {
      auto it = obj.find(key);
      if (it != obj.end() && it->is_number_integer() && it->get<std::int64_t>() >= 0 &&
          it->get<std::int64_t>() < 1000) {
        out.code = static_cast<int>(it->get<std::int64_t>());
        break;
      }
    }
  };
  auto e = doc.find("error");
  if (e != doc.end() && e->is_object()) read(*e);
  else read(doc);
  return out;
}

StatusCode GrpcStatusCode(int code) {
  switch (code) {
    case 4:   // DEADLINE_EXCEEDED
    case 8:   // RESOURCE_EXHAUSTED
    case 10:  // ABORTED
    case 14:  // UNAVAILABLE
      return StatusCode::kTransient;
    case 5:   // NOT_FOUND
      return StatusCode::kNotFound;
    default:
      return StatusCode::kRefused;
  }
}

}  // namespace warden::etcd_json
