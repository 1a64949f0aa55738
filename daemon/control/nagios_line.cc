#include "daemon/control/nagios_line.h"

#include "daemon/base/units.h"

namespace warden {
namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// The text part of a plugin line: one line, and no '|' (what follows one
// is perfdata).
std::string Clean(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    if (c == '|') c = '/';
  }
  return std::string(Trim(s));
}

std::string Line(const std::string& name, const char* status, const std::string& text) {
  return "WARDEN " + (name.empty() ? std::string() : name + " ") + status + " - " +
         Clean(text);
}

}  // namespace

std::string NagiosRange(const std::string& threshold) {
  auto t = ParseThreshold(threshold);
  if (!t || !t->number) return "";
  const std::string& x = t->operand;
  switch (t->op) {
    case Threshold::Op::kGt:
    case Threshold::Op::kGe:
      return "~:" + x;
    case Threshold::Op::kLt:
    case Threshold::Op::kLe:
      return x + ":";
    case Threshold::Op::kEq:
      return "@" + x + ":" + x;
    case Threshold::Op::kNe:
      return x + ":" + x;
  }
  return "";
}

std::string NagiosUnknown(const std::string& name, const std::string& why) {
  return Line(name, "UNKNOWN", why);
}

int NagiosLine(const std::string& name, const json& reply, std::string& line) {
  if (!reply.is_object() || !reply.value("ok", false)) {
    std::string why = reply.is_object() ? Str(reply, "error") : "";
    line = NagiosUnknown(name, why.empty() ? "wardend refused the check" : why);
    return kNagiosUnknown;
  }
  const std::string result = Str(reply, "result");
  const std::string value = Str(reply, "value"), unit = Str(reply, "unit");
  const std::string detail = Str(reply, "detail"), error = Str(reply, "error");
  int code = kNagiosUnknown;
  const char* status = "UNKNOWN";
  if (result == "ok") {
    code = kNagiosOk;
    status = "OK";
  } else if (result == "warn") {
    code = kNagiosWarning;
    status = "WARNING";
  } else if (result == "crit") {
    code = kNagiosCritical;
    status = "CRITICAL";
  }
  std::string text = detail;
  if (text.empty() && !error.empty()) text = error;
  if (text.empty() && result == "no_value") text = "no value yet";
  if (text.empty() && !value.empty()) {
    text = "value " + value + unit;
    const char* which = result == "crit" ? "crit" : result == "warn" ? "warn" : nullptr;
    if (which && reply.contains(which)) {
      text += " (" + std::string(which) + " " + Str(reply, which) + ")";
    }
  }
  if (text.empty()) text = result.empty() ? "no result" : result;
  line = Line(name, status, text);
  // Perfdata: the value when it is a number, with the thresholds as ranges.
  if (!value.empty() && ParseNumber(value)) {
    line += " | " + name + "=" + value + unit + ";" + NagiosRange(Str(reply, "warn")) + ";" +
            NagiosRange(Str(reply, "crit"));
  }
  return code;
}

}  // namespace warden
