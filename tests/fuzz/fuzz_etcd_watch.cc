// The etcd watch stream decoder (daemon/io/etcd_watch.h, EtcdWatchDecoder).
// Input: a byte choosing the piece size (1 to 64), then the stream. The
// stream is fed whole and in pieces of that size: the two must give the same
// responses and the same error (decoding does not depend on how TCP cut
// the stream). Every response it returns holds only what the contract
// allows (events with a key and a revision > 0); an error is one printable
// line, bounded, and sticks.
#include <string>
#include <vector>

#include "daemon/io/etcd_watch.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

namespace {

struct Run {
  std::vector<EtcdWatchResponse> responses;
  std::string error;
};

Run Feed(std::string_view stream, std::size_t piece) {
  EtcdWatchDecoder d(4096);
  Run r;
  for (std::size_t i = 0; i < stream.size() && r.error.empty(); i += piece) {
    r.error = d.Feed(stream.substr(i, piece), &r.responses).message();
  }
  if (!r.error.empty()) {
    std::vector<EtcdWatchResponse> more;
    FUZZ_CHECK(d.Feed("{}\n", &more).message() == r.error, r.error);
    FUZZ_CHECK(more.empty(), r.error);
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  std::size_t piece = in.Byte() % 64 + 1;
  std::string_view stream = in.Rest();
  Run whole = Feed(stream, stream.size() + 1);
  Run cut = Feed(stream, piece);
  FUZZ_CHECK(whole.error == cut.error, whole.error + " / " + cut.error);
  FUZZ_CHECK(whole.responses.size() == cut.responses.size(), std::string(stream));
  FUZZ_CHECK(whole.error.size() <= 512, whole.error);
  for (char ch : whole.error) {
    auto c = static_cast<unsigned char>(ch);
    FUZZ_CHECK(c >= 0x20 && c < 0x7f, "unprintable error: " + whole.error);
  }
  for (std::size_t i = 0; i < whole.responses.size(); ++i) {
    const auto& a = whole.responses[i];
    const auto& b = cut.responses[i];
    FUZZ_CHECK(a.header.revision == b.header.revision && a.events.size() == b.events.size() &&
                   a.created == b.created && a.canceled == b.canceled,
               std::string(stream));
    FUZZ_CHECK(a.header.cluster_id.find_first_not_of("0123456789") == std::string::npos,
               a.header.cluster_id);
    for (const auto& e : a.events) {
      FUZZ_CHECK(!e.kv.key.empty(), std::string(stream));
      FUZZ_CHECK(e.kv.mod_revision > 0, std::string(stream));
    }
    FUZZ_CHECK(a.progress() == (!a.created && !a.canceled && a.events.empty()), "progress");
  }
  return 0;
}
