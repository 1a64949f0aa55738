// etcd answers (daemon/io/etcd_client.h) and the etcd mutex built on them
// (daemon/io/mutex_client.h, InterpretEtcdMutex). Input: a selector byte, then
// text:
//   0: the body of a 200 answer to the mutex txn (range <prefix>/armed,
//      range <prefix>/mutex). Clear only when armed is there and mutex is
//      not; everything else held, with a bounded, printable reason.
//   1: base64 (what decodes encodes back to the same text)
//   2: an int64 as the gateway prints it (prints back the same)
//   3: a configured cluster id, 4: a configured endpoint
#include <algorithm>
#include <string>

#include "daemon/io/etcd_client.h"
#include "daemon/io/mutex_client.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

namespace {

const std::string kPrefix = "/warden";

void MutexTxn(std::string_view body) {
  auto parsed = ParseEtcdTxnAnswer(body, {EtcdOp::Kind::kRange, EtcdOp::Kind::kRange}, {});
  FUZZ_CHECK(parsed.ok() || parsed.code() == StatusCode::kInvalid, parsed.error());
  EtcdError error;
  error.kind = EtcdError::Kind::kMalformed;
  if (!parsed) error.message = "etcd http://127.0.0.1:2379: malformed answer: " + parsed.error();
  MutexAnswer a = parsed ? InterpretEtcdMutex(*parsed, kPrefix)
                         : InterpretEtcdMutex(EtcdResult<EtcdTxnResult>(error), kPrefix);
  bool clear = false;
  if (parsed) {
    const EtcdTxnResult& txn = *parsed;
    for (const auto& op : txn.responses) FUZZ_CHECK(op.kind == EtcdOp::Kind::kRange, body);
    FUZZ_CHECK(txn.responses.size() == (txn.succeeded ? 2u : 0u), body);
    if (txn.responses.size() == 2) {
      auto has = [](const EtcdOpResult& op, const std::string& key) {
        return std::any_of(op.kvs.begin(), op.kvs.end(),
                           [&](const EtcdKv& kv) { return kv.key == key; });
      };
      clear = has(txn.responses[0], kPrefix + "/armed") && !has(txn.responses[1], kPrefix + "/mutex");
    }
  }
  FUZZ_CHECK(a.held == !clear, std::string(clear ? "clear answer held: " : "held answer clear: ") +
                                   std::string(body));
  if (!a.held) FUZZ_CHECK(a.reason == "clear", a.reason);
  FUZZ_CHECK(!a.terminate || a.held, "terminate without held: " + std::string(body));
  FUZZ_CHECK(!a.reason.empty() && a.reason.size() <= 256 + 3, a.reason);
  for (char ch : a.reason) {
    auto c = static_cast<unsigned char>(ch);
    FUZZ_CHECK(c >= 0x20 && c != 0x7f, "control character in reason: " + a.reason);
  }
}

void Base64(std::string_view text) {
  auto bytes = Base64Decode(text);
  if (bytes) FUZZ_CHECK(Base64Encode(*bytes) == text, text);
  auto again = Base64Decode(Base64Encode(text));
  FUZZ_CHECK(again && *again == text, text);
}

void Int64(std::string_view text) {
  auto v = ParseEtcdInt64(text);
  if (!v) return;
  auto again = ParseEtcdInt64(std::to_string(*v));
  FUZZ_CHECK(again && *again == *v, text);
}

void ClusterId(std::string_view text) {
  auto id = ParseEtcdClusterId(text);
  if (!id) {
    FUZZ_CHECK(!id.error().empty(), text);
    return;
  }
  FUZZ_CHECK(!id->empty() && id->find_first_not_of("0123456789") == std::string::npos, *id);
  auto again = ParseEtcdClusterId(*id);   // the decimal form is a valid id of itself
  FUZZ_CHECK(again && *again == *id, *id);
}

void Endpoint(std::string_view text) {
  auto e = ParseEtcdEndpoint(text);
  if (!e) return;
  FUZZ_CHECK(!e->empty() && e->back() != '/', *e);
  auto again = ParseEtcdEndpoint(*e);
  FUZZ_CHECK(again && *again == *e, *e);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  std::uint8_t which = in.Byte();
  std::string_view text = in.Rest();
  switch (which % 5) {
    case 0: MutexTxn(text); break;
    case 1: Base64(text); break;
    case 2: Int64(text); break;
    case 3: ClusterId(text); break;
    case 4: Endpoint(text); break;
  }
  return 0;
}
