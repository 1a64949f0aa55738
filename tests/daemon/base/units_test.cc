#include "daemon/base/units.h"

#include <catch2/catch.hpp>

using namespace warden;

TEST_CASE("durations need a unit", "[units]") {
  CHECK(ParseDuration("250ms")->count() == 250);
  CHECK(ParseDuration("10s")->count() == 10'000);
  CHECK(ParseDuration("5m")->count() == 300'000);
  CHECK(ParseDuration("2h")->count() == 7'200'000);
  CHECK(ParseDuration("1d")->count() == 86'400'000);
  CHECK(ParseDuration("1.5s")->count() == 1500);
  CHECK(ParseDuration(" 0 ")->count() == 0);
  auto bare = ParseDuration("10");
  REQUIRE_FALSE(bare.ok());
  CHECK_THAT(bare.error(), Catch::Contains("needs a unit"));
  auto bad = ParseDuration("10 parsecs");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error(), Catch::Contains("unknown unit"));
  CHECK_FALSE(ParseDuration("").ok());
  CHECK_FALSE(ParseDuration("s").ok());
  CHECK_FALSE(ParseDuration("-5s").ok());
  CHECK_FALSE(ParseDuration("99999999999d").ok());
}

TEST_CASE("sizes need a unit", "[units]") {
  CHECK(*ParseSize("64KB") == 64 * 1024);
  CHECK(*ParseSize("256MB") == 256ULL * 1024 * 1024);
  CHECK(*ParseSize("1GB") == 1024ULL * 1024 * 1024);
  CHECK(*ParseSize("512B") == 512);
  CHECK_THAT(ParseSize("64").error(), Catch::Contains("needs a unit"));
  CHECK_FALSE(ParseSize("64XB").ok());
}

TEST_CASE("percent, bool, integer", "[units]") {
  CHECK(*ParsePercent("10%") == Approx(0.10));
  CHECK(*ParsePercent("0%") == 0);
  CHECK_FALSE(ParsePercent("10").ok());
  CHECK_FALSE(ParsePercent("100").ok());
  CHECK_FALSE(ParsePercent("0.5").ok());
  CHECK_FALSE(ParsePercent("101%").ok());
  CHECK(*ParseBool("yes"));
  CHECK_FALSE(*ParseBool("No"));
  CHECK_FALSE(ParseBool("maybe").ok());
  CHECK(*ParseInteger("42", 1, 64) == 42);
  CHECK_FALSE(ParseInteger("65", 1, 64).ok());
  CHECK_FALSE(ParseInteger("4x", 1, 64).ok());
}

TEST_CASE("a bare 0 is 0%, as for durations (jitter = 0)", "[units]") {
  auto zero = ParsePercent("0");
  REQUIRE(zero.ok());
  CHECK(*zero == 0);
  CHECK(*ParsePercent(" 0 ") == 0);
  CHECK_FALSE(ParsePercent("00").ok());
  CHECK_FALSE(ParsePercent("0.0").ok());
}

TEST_CASE("thresholds compare numbers and words", "[units]") {
  auto gt = ParseThreshold("> 60");
  REQUIRE(gt.ok());
  CHECK(*gt->Matches("61"));
  CHECK_FALSE(*gt->Matches("60"));
  CHECK(*ParseThreshold(">=60")->Matches("60"));
  CHECK(*ParseThreshold("< 0.5")->Matches("0.25"));
  CHECK(*ParseThreshold("<= 1")->Matches("1"));
  CHECK(*ParseThreshold("== 3")->Matches("3.0"));
  CHECK(*ParseThreshold("!= 3")->Matches("4"));
  auto word = ParseThreshold("!= Yes");
  REQUIRE(word.ok());
  CHECK(*word->Matches("No"));
  CHECK(*word->Matches("Connecting"));
  CHECK_FALSE(*word->Matches("Yes"));
  CHECK(gt->ToString() == "> 60");
  // A number threshold against a word is an error, not "false".
  auto m = gt->Matches("Connecting");
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.error(), Catch::Contains("not a number"));
  CHECK_THAT(ParseThreshold("> Yes").error(), Catch::Contains("only be compared with == or !="));
  CHECK_FALSE(ParseThreshold("60").ok());
  CHECK_FALSE(ParseThreshold(">").ok());
}

TEST_CASE("trip and budget", "[units]") {
  auto t = ParseTrip("3 of 5");
  REQUIRE(t.ok());
  CHECK(t->need == 3);
  CHECK(t->window == 5);
  auto n = ParseTrip("2");
  CHECK(n->need == 2);
  CHECK(n->window == 2);
  CHECK_THAT(ParseTrip("5 of 3").error(), Catch::Contains("cannot exceed"));
  CHECK_FALSE(ParseTrip("0").ok());
  CHECK_FALSE(ParseTrip("three").ok());
  auto b = ParseBudget("3 per 1h");
  REQUIRE(b.ok());
  CHECK(b->count == 3);
  CHECK(b->window.count() == 3'600'000);
  CHECK_FALSE(ParseBudget("3 per hour").ok());
  CHECK_FALSE(ParseBudget("3").ok());
}

TEST_CASE("durations format back", "[units]") {
  CHECK(FormatDuration(Duration(600'000)) == "10m");
  CHECK(FormatDuration(Duration(1500)) == "1500ms");
  CHECK(FormatDuration(Duration(3'600'000)) == "1h");
  CHECK(FormatDuration(Duration(2000)) == "2s");
}
