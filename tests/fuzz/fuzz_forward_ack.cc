// The forward-protocol answer reader (daemon/io/forward_sender.h,
// ReadForwardAnswer). Input: the bytes fluentd sent on the connection, read
// answer by answer as ForwardSender::ReadAcks does.
#include <msgpack.hpp>
#include <string>

#include "daemon/io/forward_sender.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

namespace {

// msgpack-cxx (the decoder of tests/fluentd/receiver.cc, independent of
// nlohmann) finds the bytes malformed: no more bytes can make them a value.
// Its other refusals (too few bytes, a size over the limits that keep its
// allocations small) say nothing.
bool MalformedForMsgpackCxx(std::string_view in) {
  try {
    std::size_t off = 0;
    msgpack::unpack(in.data(), in.size(), off, nullptr, nullptr,
                    msgpack::unpack_limit(1 << 16, 1 << 16, 1 << 20, 1 << 20, 1 << 20, 64));
  } catch (const msgpack::parse_error&) {
    return true;
  } catch (const std::exception&) {
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in = fuzz::AsText(data, size);
  // As ReadAcks: at most 64 KB wait unread.
  if (in.size() > 64 * 1024) in = in.substr(0, 64 * 1024);
  while (!in.empty()) {
    ForwardAnswer a = ReadForwardAnswer(in);
    if (a.kind == ForwardAnswer::Kind::kIncomplete || a.kind == ForwardAnswer::Kind::kUnframeable) {
      FUZZ_CHECK(a.length == 0, "no length without an answer");
    }
    if (a.kind == ForwardAnswer::Kind::kIncomplete) {
      // Only a prefix of a map waits (fluentd answers with maps): garbage
      // never holds a chunk until ack_timeout. A shorter prefix waits too,
      // so garbage is judged at its first byte that shows it, not later.
      const auto first = static_cast<unsigned char>(in[0]);
      FUZZ_CHECK((first & 0xf0) == 0x80 || first == 0xde || first == 0xdf,
                 "a value that is not a map waits for more bytes");
      FUZZ_CHECK(!MalformedForMsgpackCxx(in), "bytes that are not msgpack wait for more");
      for (std::size_t n = 1; n < in.size() && n <= 16; ++n) {
        FUZZ_CHECK(ReadForwardAnswer(in.substr(0, n)).kind == ForwardAnswer::Kind::kIncomplete,
                   "a prefix of a waiting answer was judged unframeable");
      }
      break;
    }
    if (a.kind == ForwardAnswer::Kind::kUnframeable) {
      FUZZ_CHECK(!a.text.empty(), "an unframeable answer without a reason");
      // More bytes never rescue it, not even a good ack right behind.
      std::string more(in);
      more += "\x81\xa3" "ack" "\xa1" "1";
      FUZZ_CHECK(ReadForwardAnswer(more).kind == ForwardAnswer::Kind::kUnframeable, a.text);
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
