// The etcd gateway's field readers (daemon/io/etcd_json.h), shared by the
// etcd client and the watch: what they accept, and that what they cannot
// read fails invalid with a message naming the field.
#include "daemon/io/etcd_json.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>

namespace warden::etcd_json {
namespace {

json Doc(const char* text) { return json::parse(text); }

template <typename T>
void CheckInvalid(const Expected<T>& got, const std::string& message) {
  REQUIRE_FALSE(got.ok());
  CHECK(got.code() == StatusCode::kInvalid);
  CHECK(got.error() == message);
  CHECK(got.peer_code() == -1);
}

}  // namespace

TEST_CASE("etcd_json: a peer's text is one printable, bounded line", "[etcd]") {
  CHECK(Printable("plain text") == "plain text");
  CHECK(Printable("two\nlines\t\x01\x7f") == "two lines");
  CHECK(Printable("caf\xc3\xa9") == "caf");
  std::string long_text(500, 'x');
  CHECK(Printable(long_text) == std::string(200, 'x') + "...");
  CHECK(JsonErrorText("[json.exception.parse_error.101] parse error at line 1") ==
        "parse error at line 1");
  CHECK(JsonErrorText("no prefix") == "no prefix");
  CHECK(JsonExceptionText("[json.exception.type_error.302] type must be string\x01") ==
        "type must be string\x01");
  CHECK(JsonErrorText("[json.exception.type_error.302] type must be string\x01") ==
        "type must be string");
}

TEST_CASE("etcd_json: an answer must be a JSON object", "[etcd]") {
  auto doc = ParseObject(R"({"a":1})");
  REQUIRE(doc.ok());
  CHECK((*doc)["a"] == 1);

  auto truncated = ParseObject(R"({"header":)");
  REQUIRE_FALSE(truncated.ok());
  CHECK(truncated.code() == StatusCode::kInvalid);
  CHECK_THAT(truncated.error(), Catch::StartsWith("not JSON (parse error"));
  CHECK(truncated.error().find("json.exception") == std::string::npos);
  CHECK(truncated.error().find('\n') == std::string::npos);

  auto html = ParseObject("<html>proxy error</html>");
  REQUIRE_FALSE(html.ok());
  CHECK_THAT(html.error(), Catch::StartsWith("not JSON ("));

  CheckInvalid(ParseObject("[1,2]"), "not a JSON object");
  CheckInvalid(ParseObject("\"text\""), "not a JSON object");
  CheckInvalid(ParseObject("null"), "not a JSON object");
}

TEST_CASE("etcd_json: int64 fields, as strings or integers, absent is 0", "[etcd]") {
  json obj = Doc(R"({"s":"-42","i":7,"null":null,"max":"9223372036854775807",
                     "big":"9223372036854775808","huge":10000000000000000000,
                     "word":"12x","empty":"","float":1.5,"flag":true,"list":[1]})");
  CHECK(Int64(obj, "s") == std::int64_t{-42});
  CHECK(Int64(obj, "i") == std::int64_t{7});
  CHECK(Int64(obj, "absent") == std::int64_t{0});
  CHECK(Int64(obj, "null") == std::int64_t{0});
  CHECK(Int64(obj, "max") == std::numeric_limits<std::int64_t>::max());
  CheckInvalid(Int64(obj, "big"), "\"big\" is not an int64");
  CheckInvalid(Int64(obj, "huge"), "\"huge\" is out of range");
  CheckInvalid(Int64(obj, "word"), "\"word\" is not an int64");
  CheckInvalid(Int64(obj, "empty"), "\"empty\" is not an int64");
  CheckInvalid(Int64(obj, "float"), "\"float\" is not an int64");
  CheckInvalid(Int64(obj, "flag"), "\"flag\" is not an int64");
  CheckInvalid(Int64(obj, "list"), "\"list\" is not an int64");
}

TEST_CASE("etcd_json: bytes, booleans and strings", "[etcd]") {
  json obj = Doc(R"({"key":"L3dhcmRlbg==","bad":"a!==","number":3,"yes":true,"no":false,
                     "word":"yes","text":"hi","null":null})");
  CHECK(Bytes(obj, "key") == std::string("/warden"));
  CHECK(Bytes(obj, "absent") == std::string());
  CHECK(Bytes(obj, "null") == std::string());
  CheckInvalid(Bytes(obj, "bad"), "\"bad\" is not base64");
  CheckInvalid(Bytes(obj, "number"), "\"number\" is not base64");

  CHECK(Bool(obj, "yes") == true);
  CHECK(Bool(obj, "no") == false);
  CHECK(Bool(obj, "absent") == false);
  CheckInvalid(Bool(obj, "word"), "\"word\" is not a boolean");
  CheckInvalid(Bool(obj, "number"), "\"number\" is not a boolean");

  CHECK(Text(obj, "text") == std::string("hi"));
  CHECK(Text(obj, "absent") == std::string());
  CheckInvalid(Text(obj, "number"), "\"number\" is not a string");
  CheckInvalid(Text(obj, "yes"), "\"yes\" is not a string");
}

TEST_CASE("etcd_json: a key-value, its missing fields empty, its bad one named", "[etcd]") {
  auto kv = Kv(Doc(R"({"key":"YQ==","value":"Yg==","create_revision":"3","mod_revision":"5",
                       "version":"2"})"));
  REQUIRE(kv.ok());
  CHECK(kv->key == "a");
  CHECK(kv->value == "b");
  CHECK(kv->create_revision == 3);
  CHECK(kv->mod_revision == 5);
  CHECK(kv->version == 2);

  auto bare = Kv(Doc("{}"));
  REQUIRE(bare.ok());
  CHECK(bare->key.empty());
  CHECK(bare->value.empty());
  CHECK(bare->mod_revision == 0);

  CheckInvalid(Kv(Doc(R"({"key":"!!"})")), "\"key\" is not base64");
  CheckInvalid(Kv(Doc(R"({"key":"YQ==","value":7})")), "\"value\" is not base64");
  CheckInvalid(Kv(Doc(R"({"create_revision":"x"})")), "\"create_revision\" is not an int64");
  CheckInvalid(Kv(Doc(R"({"mod_revision":[]})")), "\"mod_revision\" is not an int64");
  CheckInvalid(Kv(Doc(R"({"version":1.5})")), "\"version\" is not an int64");
  // The first bad field, in the order of the fields, is the one named.
  CheckInvalid(Kv(Doc(R"({"version":"x","key":"!!"})")), "\"key\" is not base64");
}

TEST_CASE("etcd_json: the header, its revision and cluster_id", "[etcd]") {
  auto h = Header(Doc(R"({"header":{"cluster_id":"15118495548433857066","revision":"12"}})"));
  REQUIRE(h.ok());
  CHECK(h->revision == 12);
  CHECK(h->cluster_id == "15118495548433857066");
  auto number = Header(Doc(R"({"header":{"cluster_id":123}})"));
  REQUIRE(number.ok());
  CHECK(number->cluster_id == "123");
  CHECK(number->revision == 0);
  auto empty = Header(Doc(R"({"header":{}})"));
  REQUIRE(empty.ok());
  CHECK(empty->cluster_id.empty());

  CheckInvalid(Header(Doc("{}")), "no \"header\"");
  CheckInvalid(Header(Doc(R"({"header":"x"})")), "no \"header\"");
  CheckInvalid(Header(Doc(R"({"header":{"revision":"12x"}})")), "\"revision\" is not an int64");
  CheckInvalid(Header(Doc(R"({"header":{"cluster_id":"-1"}})")), "\"cluster_id\" is not a number");
  CheckInvalid(Header(Doc(R"({"header":{"cluster_id":-1}})")), "\"cluster_id\" is not a number");
  CheckInvalid(Header(Doc(R"({"header":{"cluster_id":""}})")), "\"cluster_id\" is not a number");
  CheckInvalid(Header(Doc(R"({"header":{"cluster_id":true}})")), "\"cluster_id\" is not a number");
}

TEST_CASE("etcd_json: etcd's error bodies and their gRPC codes", "[etcd]") {
  ErrorBody gateway = ReadErrorBody(Doc(R"({"error":"boom","message":"etcdserver: no leader","code":14})"));
  CHECK(gateway.message == "etcdserver: no leader");
  CHECK(gateway.code == 14);
  ErrorBody only_error = ReadErrorBody(Doc(R"({"error":"boom","code":2})"));
  CHECK(only_error.message == "boom");
  CHECK(only_error.code == 2);
  ErrorBody stream =
      ReadErrorBody(Doc(R"({"error":{"grpc_code":4,"message":"deadline\nexceeded"}})"));
  CHECK(stream.message == "deadline exceeded");
  CHECK(stream.code == 4);
  ErrorBody none = ReadErrorBody(Doc(R"({"error":"","code":"14","other":1})"));
  CHECK(none.message.empty());
  CHECK(none.code == -1);
  CHECK(ReadErrorBody(Doc(R"({"code":1000})")).code == -1);
  CHECK(ReadErrorBody(Doc(R"({"code":-3})")).code == -1);

  CHECK(GrpcStatusCode(14) == StatusCode::kTransient);
  CHECK(GrpcStatusCode(4) == StatusCode::kTransient);
  CHECK(GrpcStatusCode(5) == StatusCode::kNotFound);
  CHECK(GrpcStatusCode(7) == StatusCode::kRefused);
  CHECK(GrpcStatusCode(3) == StatusCode::kRefused);
  CHECK(GrpcStatusCode(-1) == StatusCode::kRefused);
}

}  // namespace warden::etcd_json
