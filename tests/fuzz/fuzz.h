// Shared by the fuzz targets (tests/fuzz/fuzz_<name>.cc). Each target
// defines LLVMFuzzerTestOneInput; it is linked either with libFuzzer
// (WARDEN_FUZZ=ON, clang) or with replay_main.cc, which runs it once on
// every file it is given (the default build replays the corpus and the
// regressions that way).
//
// A target returns normally for any input that its code handles as the
// contract says, and aborts through FUZZ_CHECK when a property that must
// hold does not: libFuzzer keeps such an input as a crash artifact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond, what)                                                        \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: property failed: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, std::string(what).c_str());                                 \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace warden::fuzz {

inline std::string_view AsText(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Consumes input bytes front to back: a selector byte, then the rest.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  // The next byte, or 0 when none is left.
  std::uint8_t Byte() {
    if (pos_ >= size_) return 0;
    return data_[pos_++];
  }
  std::string_view Rest() {
    std::string_view r(reinterpret_cast<const char*>(data_) + pos_, size_ - pos_);
    pos_ = size_;
    return r;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace warden::fuzz
