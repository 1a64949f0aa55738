#include "checks/nagios.h"

#include <cctype>

#include "checks/program.h"
#include "daemon/io/process.h"

namespace warden {
namespace {

bool Space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
bool Digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// What of the plugin's output an error shows: short, on one line.
std::string Shown(std::string_view output) {
  std::string s(Trim(output));
  if (s.empty()) return "(no output)";
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (s.size() > 300) s = s.substr(0, 297) + "...";
  return "'" + s + "'";
}

// The length of the number that starts `s` ("-12.5e3"), 0 if none:
// [-+]digits[.digits] or [-+].digits, then an exponent if digits follow.
size_t NumberPrefix(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t digits = 0;
  while (i < s.size() && Digit(s[i])) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && Digit(s[i])) ++i, ++digits;
  }
  if (digits == 0) return 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '-' || s[j] == '+')) ++j;
    if (j < s.size() && Digit(s[j])) {
      while (j < s.size() && Digit(s[j])) ++j;
      i = j;
    }
  }
  return i;
}

// A unit of measure: letters, '%', '/' and bytes past ASCII ("°C").
bool ValidUnit(std::string_view u) {
  for (char c : u) {
    auto b = static_cast<unsigned char>(c);
    if (!(std::isalpha(b) || c == '%' || c == '/' || b >= 0x80)) return false;
  }
  return true;
}

Expected<std::vector<PerfValue>> ParsePerfdata(std::string_view s) {
  std::vector<PerfValue> out;
  size_t i = 0;
  while (true) {
    while (i < s.size() && (Space(s[i]) || s[i] == '\n')) ++i;
    if (i >= s.size()) break;
    const size_t start = i;
    auto item_end = [&] {
      size_t j = i;
      while (j < s.size() && !Space(s[j]) && s[j] != '\n') ++j;
      return j;
    };
    auto bad = [&](const std::string& why) {
      size_t end = std::max(item_end(), i);
      std::string item(s.substr(start, std::min<size_t>(end - start, 120)));
      return Expected<std::vector<PerfValue>>::Error("perfdata item \"" + item + "\": " + why);
    };
    PerfValue v;
    if (s[i] == '\'') {
      // 'label' with '' for a quote; may hold spaces.
      ++i;
      bool closed = false;
      while (i < s.size() && s[i] != '\n') {
        if (s[i] == '\'') {
          if (i + 1 < s.size() && s[i + 1] == '\'') {
            v.label += '\'';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        v.label += s[i++];
      }
      if (!closed) return bad("the quoted label has no closing '");
    } else {
      while (i < s.size() && s[i] != '=' && !Space(s[i]) && s[i] != '\n') v.label += s[i++];
    }
    if (v.label.empty()) return bad("no label before '='");
    if (i >= s.size() || s[i] != '=') {
      return bad("not label=value (quote a label that has spaces: 'free space'=12)");
    }
    ++i;
    const size_t fields_start = i;
    i = item_end();
    std::string_view fields = s.substr(fields_start, i - fields_start);
    std::vector<std::string_view> parts;
    for (size_t from = 0;;) {
      size_t semi = fields.find(';', from);
      parts.push_back(fields.substr(from, semi == std::string_view::npos ? semi : semi - from));
      if (semi == std::string_view::npos) break;
      from = semi + 1;
    }
    if (parts.size() > 5) return bad("more than value;warn;crit;min;max");
    std::string_view value = parts[0];
    if (value.empty()) return bad("no value after '='");
    if (value == "U") {
      v.value = "U";
    } else {
      size_t n = NumberPrefix(value);
      if (n == 0 || !ParseNumber(value.substr(0, n))) {
        return bad("the value '" + std::string(value) + "' is not a number");
      }
      v.value = std::string(value.substr(0, n));
      v.unit = std::string(value.substr(n));
      if (!ValidUnit(v.unit)) {
        return bad("'" + v.unit + "' after the value " + v.value + " is no unit of measure");
      }
    }
    std::string* rest[] = {&v.warn, &v.crit, &v.min, &v.max};
    for (size_t k = 1; k < parts.size(); ++k) *rest[k - 1] = std::string(parts[k]);
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

Expected<PluginOutput> ParsePluginOutput(std::string_view output) {
  PluginOutput out;
  std::string perf;
  bool perf_lines = false;   // past the long text's `|`: every line is perfdata
  size_t at = 0;
  for (bool first = true; at <= output.size(); first = false) {
    size_t nl = output.find('\n', at);
    std::string_view line =
        output.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    at = nl == std::string_view::npos ? output.size() + 1 : nl + 1;
    size_t bar = perf_lines ? 0 : line.find('|');
    if (first) out.text = std::string(Trim(line.substr(0, bar)));
    if (perf_lines) {
      perf.append(line).push_back('\n');
    } else if (bar != std::string_view::npos) {
      perf.append(line.substr(bar + 1)).push_back('\n');
      perf_lines = !first;
    }
  }
  auto items = ParsePerfdata(perf);
  if (!items) return Expected<PluginOutput>::Error(items.error());
  out.perfdata = std::move(*items);
  return out;
}

std::optional<Measurement::Level> PluginVerdict(int exit_code) {
  switch (exit_code) {
    case 0: return Measurement::Level::kOk;
    case 1: return Measurement::Level::kWarn;
    case 2: return Measurement::Level::kCrit;
    default: return std::nullopt;
  }
}

Measurement MeasurePlugin(std::string_view check, std::string_view program, int exit_code,
                          std::string_view output, std::string_view stderr_tail,
                          const std::string& perfdata) {
  const std::string who = "nagios check " + std::string(check) + ": " + std::string(program);
  auto verdict = PluginVerdict(exit_code);
  auto parsed = ParsePluginOutput(output);
  if (!verdict) {
    // The plugin's own words, or (when it printed nothing) its stderr's last line.
    std::string said = parsed ? parsed->text : std::string();
    if (said.empty()) {
      std::string_view err = Trim(stderr_tail);
      auto nl = err.rfind('\n');
      if (nl != std::string_view::npos) err = Trim(err.substr(nl + 1));
      said = std::string(err.substr(0, 300));
    }
    std::string status = exit_code == 3 ? "UNKNOWN (exit status 3)"
                                        : "exit status " + std::to_string(exit_code) +
                                              " (no plugin verdict: 0, 1, 2 are)";
    return Measurement::Error(who + ": " + status + (said.empty() ? "" : ": " + said));
  }
  const char* said = *verdict == Measurement::Level::kOk     ? "OK"
                     : *verdict == Measurement::Level::kWarn ? "WARNING"
                                                             : "CRITICAL";
  Measurement m = Measurement::Value("");
  m.level = *verdict;
  if (parsed) m.detail = parsed->text;
  if (perfdata.empty()) return m;
  if (!parsed) {
    return Measurement::Error(who + " said " + said + ", but its perfdata cannot be read: " +
                              parsed.error() + "; its output: " + Shown(output));
  }
  const PerfValue* found = nullptr;
  for (const auto& p : parsed->perfdata) {
    if (p.label == perfdata) {
      found = &p;
      break;
    }
  }
  if (!found || found->value == "U") {
    // A plugin that says WARNING or CRITICAL without measuring (it cannot
    // reach what it checks): its verdict stands, with no value.
    if (*verdict != Measurement::Level::kOk) return m;
    std::string labels;
    for (const auto& p : parsed->perfdata) labels += (labels.empty() ? "'" : ", '") + p.label + "'";
    std::string why = found ? "gave perfdata '" + perfdata + "' as U (undetermined)"
                            : "printed no perfdata '" + perfdata + "' (" +
                                  (labels.empty() ? "no perfdata at all" : "it printed " + labels) +
                                  ")";
    return Measurement::Error(who + " said OK, but " + why + "; its output: " + Shown(output));
  }
  // A finite number: the parser took nothing else.
  m.value = Measurement::Number(*ParseNumber(found->value)).value;
  m.unit = found->unit;
  return m;
}

namespace {

// Nagios 4 reads at most 8 KB of a plugin's output; so does this check.
constexpr size_t kCapture = 8192;

class NagiosCheck final : public Check {
 public:
  NagiosCheck(std::string name, std::vector<std::string> argv, std::string perfdata,
              Duration timeout)
      : name_(std::move(name)),
        argv_(std::move(argv)),
        perfdata_(std::move(perfdata)),
        timeout_(timeout) {}

  void Run(Runtime& rt, Done done) override {
    RunCheckProgram(
        rt, argv_, timeout_, kCapture,
        // Copies, not `this`: the completion may outlive the check (a
        // reload while the plugin runs).
        [name = name_, program = argv_[0], perfdata = perfdata_](const ProcessResult& r) {
          std::string_view out = r.stdout_head;
          // Cut at the limit: what follows the last whole line is dropped
          // (half a perfdata item would read as another value).
          if (out.size() >= kCapture) {
            auto nl = out.rfind('\n');
            if (nl != std::string_view::npos) out = out.substr(0, nl + 1);
          }
          return MeasurePlugin(name, program, r.exit_code, out, r.stderr_tail, perfdata);
        },
        std::move(done));
  }

 private:
  const std::string name_;
  const std::vector<std::string> argv_;
  const std::string perfdata_;
  const Duration timeout_;
};

constexpr OptionSpec kOptions[] = {
    opt::MultiLine("command", "the plugin and its arguments").Required(),
    opt::Text("perfdata", "the perfdata label whose value is the check's value")
        .DefaultNote("none: the exit status alone"),
};

constexpr const char* kExample = R"([check root_disk]
type     = nagios
command  = /usr/lib/nagios/plugins/check_disk -w 20% -c 10% -p /
perfdata = /
)";

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  auto argv = ReadCommand(opts);
  std::string perfdata = opts.Text("perfdata").value_or("");
  if (common.has_thresholds && perfdata.empty()) {
    for (const auto& e : opts.section().entries) {
      if (e.key != "warn" && e.key != "crit") continue;
      opts.Error(e, e.key + " compares the check's value, and a nagios check has one only with "
                            "perfdata = LABEL (without it, the plugin's exit status alone "
                            "judges)");
      return nullptr;
    }
  }
  if (!argv) return nullptr;
  return std::make_unique<NagiosCheck>(common.name, std::move(*argv), std::move(perfdata),
                                       common.timeout);
}

}  // namespace

const CheckType kNagiosCheckType = {
    "nagios",
    "a Nagios plugin: its exit status (0 ok, 1 warn, 2 crit), a perfdata value (perfdata = LABEL)",
    false,
    kOptions,
    kExample,
    &Make,
    true};

}  // namespace warden
