// The command word splitter (daemon/base/words.h). Input: a command line.
#include <string>
#include <vector>

#include "daemon/base/words.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  auto words = SplitWords(text);
  if (!words) {
    FUZZ_CHECK(!words.error().empty(), text);
    return 0;
  }
  FUZZ_CHECK(!words->empty(), text);   // nothing to run is "empty command"
  // Quotes and escapes only ever remove bytes.
  std::size_t bytes = 0;
  for (const auto& w : *words) bytes += w.size();
  FUZZ_CHECK(bytes <= size, text);
  // Quoting gives every word back unchanged, alone and joined.
  std::string joined = JoinWords(*words);
  auto again = SplitWords(joined);
  FUZZ_CHECK(again.ok() && *again == *words, joined + (again.ok() ? "" : ": " + again.error()));
  return 0;
}
