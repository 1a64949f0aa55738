// InlineFunction: the completion type of shared reads.
#include "daemon/base/inline_function.h"

#include <catch2/catch.hpp>

#include <array>
#include <memory>
#include <string>
#include <vector>

using warden::InlineFunction;

namespace {

// Counts its live copies, to show each one is destroyed once.
struct Tracked {
  explicit Tracked(int* counter) : live(counter) { ++*live; }
  Tracked(Tracked&& o) noexcept : live(o.live) { ++*live; }
  Tracked(const Tracked&) = delete;
  ~Tracked() { --*live; }
  int* live;
};

}  // namespace

TEST_CASE("InlineFunction keeps a small capture in place and a large one on the heap",
          "[inline_function]") {
  using Fn = InlineFunction<int(int), 48>;
  auto shared = std::make_shared<int>(7);
  std::function<int(int)> inner = [](int x) { return x; };
  auto small = [shared, inner](int x) { return *shared + inner(x); };
  std::array<char, 64> big_buf{};
  big_buf[63] = 3;
  auto big = [big_buf](int x) { return x * big_buf[63]; };
  STATIC_REQUIRE(Fn::kInPlace<decltype(small)>);
  STATIC_REQUIRE_FALSE(Fn::kInPlace<decltype(big)>);

  Fn a = small;
  Fn b = big;
  CHECK(a(1) == 8);
  CHECK(b(5) == 15);
  CHECK(shared.use_count() == 3);   // here, the lambda `small`, and a's copy
  Fn moved = std::move(a);
  CHECK_FALSE(a);   // NOLINT(bugprone-use-after-move): a moved-from one is empty
  CHECK(moved(2) == 9);
  CHECK(shared.use_count() == 3);
  moved = std::move(b);   // the in-place capture is destroyed
  CHECK(shared.use_count() == 2);
  CHECK(moved(2) == 6);
}

TEST_CASE("InlineFunction destroys its callable once, in place or not, called or not",
          "[inline_function]") {
  int live = 0;
  {
    std::vector<InlineFunction<void(const std::string&), 16>> queue;
    for (int i = 0; i < 20; ++i) {
      if (i % 2) {
        queue.emplace_back([t = Tracked(&live)](const std::string&) {});
      } else {
        std::array<char, 40> pad{};
        queue.emplace_back([t = Tracked(&live), pad](const std::string&) { (void)pad; });
      }
    }
    CHECK(live == 20);   // the vector's growth moved them: none left behind
    std::string seen;
    InlineFunction<void(const std::string&), 16> record = [&seen](const std::string& s) {
      seen = s;
    };
    record("x");
    CHECK(seen == "x");
    for (int i = 0; i < 10; ++i) queue[static_cast<size_t>(i)]("called");
    queue.erase(queue.begin(), queue.begin() + 5);
    CHECK(live == 15);
  }
  CHECK(live == 0);
}
