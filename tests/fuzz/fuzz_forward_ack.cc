// The forward-protocol answer reader (daemon/forward_sender.h,
// ReadForwardAnswer). Input: the bytes fluentd sent on the connection, read
// answer by answer as ForwardSender::ReadAcks does.
#include <string>

#include "daemon/forward_sender.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in = fuzz::AsText(data, size);
  // As ReadAcks: at most 64 KB wait unread.
  if (in.size() > 64 * 1024) in = in.substr(0, 64 * 1024);
  while (!in.empty()) {
    ForwardAnswer a = ReadForwardAnswer(in);
    if (a.kind == ForwardAnswer::Kind::kIncomplete || a.kind == ForwardAnswer::Kind::kUnframeable) {
      FUZZ_CHECK(a.length == 0, "no length without an answer");
      break;
    }
    FUZZ_CHECK(a.length > 0 && a.length <= in.size(), "length outside the bytes");
    FUZZ_CHECK(!a.text.empty() && a.text.size() <= 203, a.text);
    if (a.kind == ForwardAnswer::Kind::kOther) FUZZ_CHECK(a.ack.is_null(), a.text);
    // The answer's bytes alone give the same answer; any shorter prefix is
    // incomplete (so a partial read never yields a different answer).
    // (Acks compared by their bytes: a NaN ack is not == to itself.)
    ForwardAnswer alone = ReadForwardAnswer(in.substr(0, a.length));
    FUZZ_CHECK(alone.kind == a.kind && alone.length == a.length &&
                   nlohmann::json::to_msgpack(alone.ack) == nlohmann::json::to_msgpack(a.ack),
               a.text);
    ForwardAnswer part = ReadForwardAnswer(in.substr(0, a.length - 1));
    FUZZ_CHECK(part.kind == ForwardAnswer::Kind::kIncomplete, a.text);
    in.remove_prefix(a.length);
  }
  return 0;
}
