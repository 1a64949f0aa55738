// The value syntaxes of the config (daemon/base/units.h): durations, sizes,
// percentages, booleans, whole numbers, thresholds, trip rules, budgets.
// Input: a selector byte, then the text (for thresholds: "THRESHOLD\nVALUE").
#include <string>

#include "daemon/base/units.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

namespace {

void Duration_(std::string_view text) {
  auto d = ParseDuration(text);
  if (!d) {
    FUZZ_CHECK(!d.error().empty(), text);
    return;
  }
  FUZZ_CHECK(d->count() >= 0 && d->count() <= 10'000'000'000'000LL, text);
  // What it prints reads back as the same duration.
  std::string printed = FormatDuration(*d);
  auto again = ParseDuration(printed);
  FUZZ_CHECK(again.ok() && *again == *d, std::string(text) + " -> " + printed);
}

void Size(std::string_view text) {
  auto s = ParseSize(text);
  if (!s) return;
  FUZZ_CHECK(*s <= 1'000'000'000'000'000'000ULL, text);
  auto again = ParseSize(std::to_string(*s) + "B");
  FUZZ_CHECK(again.ok() && *again == *s, text);
}

void Percent(std::string_view text) {
  auto p = ParsePercent(text);
  if (p) FUZZ_CHECK(*p >= 0.0 && *p <= 1.0, text);
}

void Integer(std::string_view text) {
  auto n = ParseInteger(text, -1000, 1'000'000);
  if (!n) return;
  FUZZ_CHECK(*n >= -1000 && *n <= 1'000'000, text);
  auto again = ParseInteger(std::to_string(*n), -1000, 1'000'000);
  FUZZ_CHECK(again.ok() && *again == *n, text);
  auto b = ParseBool(text);
  if (b) FUZZ_CHECK(*b == (*n == 1), text);   // "1" / "0" are booleans too
}

void Threshold_(std::string_view input) {
  auto nl = input.find('\n');
  std::string_view text = input.substr(0, nl);
  std::string_view value = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
  auto th = ParseThreshold(text);
  if (!th) return;
  FUZZ_CHECK(!th->operand.empty(), text);
  FUZZ_CHECK(th->number.has_value() || th->op == Threshold::Op::kEq || th->op == Threshold::Op::kNe,
             text);
  // What it prints reads back as the same threshold.
  auto again = ParseThreshold(th->ToString());
  FUZZ_CHECK(again.ok() && again->op == th->op && again->operand == th->operand &&
                 again->number == th->number,
             std::string(text) + " -> " + th->ToString());
  // Its own operand meets == >= <=, never != > <.
  auto self = th->Matches(th->operand);
  bool inclusive = th->op == Threshold::Op::kEq || th->op == Threshold::Op::kGe ||
                   th->op == Threshold::Op::kLe;
  FUZZ_CHECK(self.ok() && *self == inclusive, th->ToString());
  auto m = th->Matches(value);
  // Only a numeric threshold against a non-number is an error.
  if (!m) FUZZ_CHECK(th->number && !ParseNumber(value), th->ToString() + " vs " + std::string(value));
  if (th->number && ParseNumber(value)) FUZZ_CHECK(m.ok(), std::string(value));
}

void Trip(std::string_view text) {
  auto t = ParseTrip(text);
  if (t) FUZZ_CHECK(1 <= t->need && t->need <= t->window && t->window <= 1000, text);
}

void Budget_(std::string_view text) {
  auto b = ParseBudget(text);
  if (b) FUZZ_CHECK(b->count >= 1 && b->window.count() > 0, text);
}

void Number(std::string_view text) {
  auto n = ParseNumber(text);
  if (n) FUZZ_CHECK(*n == *n, text);   // finite, never NaN
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  std::uint8_t which = in.Byte();
  std::string_view text = in.Rest();
  switch (which % 8) {
    case 0: Duration_(text); break;
    case 1: Size(text); break;
    case 2: Percent(text); break;
    case 3: Integer(text); break;
    case 4: Threshold_(text); break;
    case 5: Trip(text); break;
    case 6: Budget_(text); break;
    case 7: Number(text); break;
  }
  return 0;
}
