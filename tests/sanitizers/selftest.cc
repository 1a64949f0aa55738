// A program with one deliberate bug per mode, built only with WARDEN_SANITIZE:
// test_reports.py runs it to show that a report in this build ends the process
// with exit 86 and is caught by tests/integration/harness.py, so a clean test
// run means no report, not reports that went unnoticed.
//
//   sanitizer_selftest ok | leak | heap-overflow | use-after-free | signed-overflow

#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>

namespace {

// Opaque to the optimiser, so that no bug below is folded away at compile time.
volatile int g_one = 1;

int leak() {
  auto* p = new int[8]();
  std::printf("%p\n", static_cast<void*>(p));
  return 0;
}

int heap_overflow() {
  auto p = std::make_unique<char[]>(8);
  p[7 + g_one] = 'x';
  return p[0];
}

int use_after_free() {
  auto* p = new int(3);
  delete p;
  return *p + g_one;
}

int signed_overflow() {
  int x = INT_MAX;
  x += g_one;
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (std::strcmp(mode, "ok") == 0) return 0;
  if (std::strcmp(mode, "leak") == 0) return leak();
  if (std::strcmp(mode, "heap-overflow") == 0) return heap_overflow();
  if (std::strcmp(mode, "use-after-free") == 0) return use_after_free();
  if (std::strcmp(mode, "signed-overflow") == 0) return signed_overflow();
  std::fprintf(stderr, "sanitizer_selftest: unknown mode '%s'\n", mode);
  return 2;
}
