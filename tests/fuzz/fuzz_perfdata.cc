// A Nagios plugin's output and its perfdata (checks/nagios.h). Input: what
// a plugin prints on stdout.
#include <string>

#include "checks/nagios.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

namespace {

std::string Quote(const std::string& label) {
  std::string out = "'";
  for (char c : label) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  auto out = ParsePluginOutput(text);
  if (!out) {
    FUZZ_CHECK(out.error().rfind("perfdata item \"", 0) == 0, out.error());
    // Without perfdata = LABEL bad perfdata is no error: a verdict, no value.
    Measurement m = MeasurePlugin("c", "p", 1, text, "", "");
    FUZZ_CHECK(m.kind == Measurement::Kind::kValue && m.value.empty(), text);
    Measurement e = MeasurePlugin("c", "p", 0, text, "", "x");
    FUZZ_CHECK(e.kind == Measurement::Kind::kError, text);
    return 0;
  }
  FUZZ_CHECK(out->text.find('\n') == std::string::npos, out->text);
  FUZZ_CHECK(out->text.find('|') == std::string::npos, out->text);
  // Every item read back from its own rendering, the same.
  std::string rendered = "x |";
  for (const auto& p : out->perfdata) {
    FUZZ_CHECK(!p.label.empty(), text);
    FUZZ_CHECK(p.value == "U" || ParseNumber(p.value), p.value);
    rendered += " " + Quote(p.label) + "=" + p.value + p.unit + ";" + p.warn + ";" + p.crit +
                ";" + p.min + ";" + p.max;
  }
  auto again = ParsePluginOutput(rendered);
  FUZZ_CHECK(again.ok(), rendered + ": " + (again.ok() ? "" : again.error()));
  FUZZ_CHECK(again->perfdata.size() == out->perfdata.size(), rendered);
  for (size_t i = 0; i < out->perfdata.size(); ++i) {
    const auto& a = out->perfdata[i];
    const auto& b = again->perfdata[i];
    FUZZ_CHECK(a.label == b.label && a.value == b.value && a.unit == b.unit && a.warn == b.warn &&
                   a.crit == b.crit && a.min == b.min && a.max == b.max,
               rendered);
  }
  // The first item picked by its label: its value, or (U) no value.
  if (!out->perfdata.empty()) {
    const auto& first = out->perfdata.front();
    Measurement m = MeasurePlugin("c", "p", 2, text, "", first.label);
    FUZZ_CHECK(m.kind == Measurement::Kind::kValue && m.level == Measurement::Level::kCrit, text);
    FUZZ_CHECK(first.value == "U" ? m.value.empty() : ParseNumber(m.value).has_value(), m.value);
  }
  return 0;
}
