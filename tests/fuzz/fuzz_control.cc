// The control socket's request side (daemon/control/control.h): LineReader splits
// a connection's bytes into request lines under a size cap, ParseRequest
// reads each line. Input: a byte choosing the cap (0: the daemon's 64 KB),
// then the bytes a client sends. The bytes are fed once whole and once in
// pieces whose sizes come from the input itself: both must give the same
// items.
#include <algorithm>
#include <string>
#include <vector>

#include "daemon/control/control.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

namespace {

using Items = std::vector<LineReader::Item>;

bool Same(const Items& a, const Items& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind != b[i].kind || a[i].line != b[i].line) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  std::uint8_t cap = in.Byte();
  std::size_t max_line = cap == 0 ? 64 * 1024 : cap;
  std::string_view bytes = in.Rest();

  LineReader whole(max_line);
  Items all = whole.Feed(bytes);

  LineReader pieces(max_line);
  Items got;
  std::size_t pos = 0;
  std::size_t step = 0;
  while (pos < bytes.size()) {
    // Piece sizes 1..16, taken from the bytes being fed.
    std::size_t n = 1 + static_cast<unsigned char>(bytes[(pos + step++) % bytes.size()]) % 16;
    n = std::min(n, bytes.size() - pos);
    for (auto& item : pieces.Feed(bytes.substr(pos, n))) got.push_back(std::move(item));
    pos += n;
  }
  FUZZ_CHECK(Same(all, got), "pieces differ from the whole");
  FUZZ_CHECK(whole.partial() == pieces.partial() && whole.buffered() == pieces.buffered(),
             "state differs");
  FUZZ_CHECK(whole.buffered() <= max_line, "buffered over the cap");

  for (const auto& item : all) {
    if (item.kind != LineReader::Item::Kind::kLine) continue;
    FUZZ_CHECK(item.line.size() <= max_line, "a line over the cap");
    FUZZ_CHECK(item.line.find('\n') == std::string::npos, "a line holds a newline");
    auto req = ParseRequest(item.line);
    if (!req) {
      FUZZ_CHECK(!req.error().empty(), item.line);
      continue;
    }
    FUZZ_CHECK(req->is_object(), item.line);
    auto cmd = req->find("cmd");
    FUZZ_CHECK(cmd != req->end() && cmd->is_string() && !cmd->get<std::string>().empty(),
               item.line);
  }
  return 0;
}
