// What the etcd files of daemon/io share to read the v3 JSON gateway, and
// nothing outside daemon/io includes: the field readers of its answers
// (etcd_client.cc) and of its watch stream (etcd_watch.cc), strict as
// etcd_client.h's "Wire format" says, and the shaping of a peer's text for
// a one-line error (also the mutex's, mutex_client.cc).
//
// A reader's failure is invalid (what the peer sent cannot be read), its
// message names what is wrong ("\"revision\" is not an int64"), and the
// caller puts where it was before it ("etcd http://...: malformed answer: ").
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/io/etcd_client.h"

namespace warden::etcd_json {

using json = nlohmann::json;

// Text from a peer for an error message: printable ASCII only (anything
// else becomes a space), one line, at most 200 characters then "...",
// without trailing spaces.
std::string Printable(std::string_view in);

// nlohmann's exception text without its "[json.exception.parse_error.101] ".
std::string_view JsonExceptionText(const char* what);
// The same, Printable.
std::string JsonErrorText(const char* what);

// `text` as a JSON object: "not JSON (<the parser's words>)" or "not a
// JSON object" otherwise.
Expected<json> ParseObject(std::string_view text);

// The fields of an object, each absent or null reading as empty (0, "",
// false), as the gateway omits empty fields:
//   Int64  an int64 printed as a string (ParseEtcdInt64), or a JSON integer:
//          "\"<name>\" is not an int64", or "is out of range" for a JSON
//          integer above the int64 range
//   Bytes  base64 (Base64Decode): "\"<name>\" is not base64"
//   Bool   a JSON boolean: "\"<name>\" is not a boolean"
//   Text   a JSON string: "\"<name>\" is not a string"
Expected<std::int64_t> Int64(const json& obj, const char* name);
Expected<std::string> Bytes(const json& obj, const char* name);
Expected<bool> Bool(const json& obj, const char* name);
Expected<std::string> Text(const json& obj, const char* name);

// One key-value as the gateway prints it (key, value, create_revision,
// mod_revision, version), from an object.
Expected<EtcdKv> Kv(const json& obj);

// The "header" of `doc`, which must be there and an object ("no
// \"header\""): its revision (Int64) and cluster_id, a decimal number
// as a string or a JSON integer ("\"cluster_id\" is not a number").
Expected<EtcdHeader> Header(const json& doc);

// etcd's account of an error, in a non-200 body ({"error": "text",
// "message": "text", "code": N}) or in the watch stream ({"error":
// {"message": ..., "grpc_code": N}}): its message (Printable; "" when it
// gives none) and its gRPC code (0 to 999; -1 when none).
struct ErrorBody {
  std::string message;
  int code = -1;
};
ErrorBody ReadErrorBody(const json& doc);

// What a caller may do about etcd's gRPC code `code` (-1: none): transient
// for Unavailable, DeadlineExceeded, ResourceExhausted and Aborted (a
// member without quorum, a timeout: asking again may help); not_found for
// NotFound; refused for every other code or none: etcd understood and
// said no.
StatusCode GrpcStatusCode(int code);

}  // namespace warden::etcd_json
