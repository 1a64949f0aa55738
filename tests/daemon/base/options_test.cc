#include "daemon/base/options.h"

#include <catch2/catch.hpp>

using namespace warden;

namespace {

constexpr const char* kColours[] = {"red", "green"};
constexpr OptionSpec kTable[] = {
    opt::Text("name", "what it is called").Required(),
    opt::Duration("wait", "how long"),
    opt::Choice("colour", kColours, "which colour").Default("red"),
    opt::Integer("count", 1, 9, "how many").DefaultNote("as many as there are"),
    opt::List("items", "names"),
};

RawSection Section(const std::vector<std::pair<std::string, std::string>>& keys) {
  RawSection s;
  s.kind = "thing";
  s.name = "t";
  s.where = Location{"test.ini", 1};
  int line = 2;
  for (const auto& [k, v] : keys) s.entries.push_back(ConfigEntry{k, v, Location{"test.ini", line++}, 0});
  return s;
}

}  // namespace

TEST_CASE("Declare reports from the table, once, at file:line", "[options]") {
  RawSection s = Section({{"wait", "10"}, {"colour", "blue"}, {"count", "12"}, {"size", "1"}});
  Diagnostics diag;
  OptionReader r(s, diag);
  r.Declare(kTable, "thing type t");
  // What a factory reads afterwards adds nothing for the keys already reported.
  CHECK_FALSE(r.GetDuration("wait"));
  CHECK_FALSE(r.GetChoice("colour"));
  CHECK_FALSE(r.GetInteger("count"));
  CHECK_FALSE(r.Text("name"));
  r.Finish("thing type t");
  CHECK(diag.errors() == std::vector<std::string>{
                             "test.ini:1: [thing t] needs 'name' (what it is called)",
                             "test.ini:2: wait: duration '10' needs a unit (ms, s, m, h, d)",
                             "test.ini:3: colour: 'blue' is not one of red, green",
                             "test.ini:4: count: '12' is out of range (1 to 9)",
                             "test.ini:5: unknown key 'size' for thing type t"});
}

TEST_CASE("Declare: defaults, and keys read before it stay known", "[options]") {
  RawSection s = Section({{"type", "t"}, {"name", "x"}, {"items", "a, b"}});
  Diagnostics diag;
  OptionReader r(s, diag);
  CHECK(r.Text("type") == "t");   // a common key, read before the table
  r.Declare(kTable, "thing type t");
  CHECK(r.GetChoice("colour") == "red");
  CHECK_FALSE(r.GetInteger("count"));   // a note is no value
  CHECK(r.GetList("items") == std::vector<std::string>{"a", "b"});
  CHECK(r.Text("type") == "t");
  CHECK(r.Asked("colour"));
  CHECK_FALSE(r.Asked("wait"));
  r.Finish("thing type t");
  CHECK(diag.ok());
}

TEST_CASE("CheckValue and FormatOptions read the table", "[options]") {
  CHECK(CheckValue(kTable[1], "2s").ok());
  CHECK(CheckValue(kTable[2], "blue").code() == StatusCode::kInvalid);
  CHECK(KindName(kTable[3]) == "integer 1-9");
  CHECK(KindName(kTable[2]) == "red | green");
  CHECK(FormatOptions(std::span<const OptionSpec>(kTable, 3)) ==
        "  name = text (required)\n"
        "      what it is called\n"
        "  wait = duration\n"
        "      how long\n"
        "  colour = red | green (default red)\n"
        "      which colour\n");
  CHECK(FormatOptions(std::span<const OptionSpec>(kTable + 3, 1)) ==
        "  count = integer 1-9 (default: as many as there are)\n"
        "      how many\n");
}
