#include "daemon/control/nagios_line.h"

#include <catch2/catch.hpp>

using nlohmann::json;
using warden::NagiosLine;
using warden::NagiosRange;

namespace {

std::pair<int, std::string> Line(const json& reply) {
  std::string line;
  int code = NagiosLine("disk_root", reply, line);
  return {code, line};
}

json Answer(const char* result, const char* value = "") {
  return {{"ok", true},     {"check", "disk_root"}, {"type", "nagios"}, {"result", result},
          {"value", value}, {"error", ""},          {"state", "ok"},    {"changed", false}};
}

}  // namespace

TEST_CASE("check --nagios: ok, warn, crit exit 0, 1, 2 with the detail and perfdata",
          "[control][nagios]") {
  json ok = Answer("ok", "2643");
  ok["detail"] = "DISK OK - free space: / 3326 MB (56%);";
  ok["unit"] = "MB";
  ok["warn"] = "> 5000";
  ok["crit"] = ">= 5900";
  CHECK(Line(ok) == std::pair<int, std::string>{
                        0, "WARDEN disk_root OK - DISK OK - free space: / 3326 MB (56%); | "
                           "disk_root=2643MB;~:5000;~:5900"});
  json warn = Answer("warn", "61");
  warn["warn"] = "> 60";
  CHECK(Line(warn) ==
        std::pair<int, std::string>{
            1, "WARDEN disk_root WARNING - value 61 (warn > 60) | disk_root=61;~:60;"});
  json crit = Answer("crit", "1");
  crit["crit"] = "< 2";
  CHECK(Line(crit) == std::pair<int, std::string>{
                          2, "WARDEN disk_root CRITICAL - value 1 (crit < 2) | disk_root=1;;2:"});
  // A word is no perfdata value.
  CHECK(Line(Answer("ok", "Yes")) ==
        std::pair<int, std::string>{0, "WARDEN disk_root OK - value Yes"});
}

TEST_CASE("check --nagios: an error, no value yet and a refusal are UNKNOWN (3)",
          "[control][nagios]") {
  json error = Answer("error");
  error["error"] = "nagios check disk_root: check_disk: UNKNOWN (exit status 3): bad | args";
  CHECK(Line(error) ==
        std::pair<int, std::string>{
            3, "WARDEN disk_root UNKNOWN - nagios check disk_root: check_disk: UNKNOWN (exit "
               "status 3): bad / args"});
  CHECK(Line(Answer("no_value")) ==
        std::pair<int, std::string>{3, "WARDEN disk_root UNKNOWN - no value yet"});
  json refused = {{"ok", false}, {"error", "no check named 'disk_root'"}};
  CHECK(Line(refused) ==
        std::pair<int, std::string>{3, "WARDEN disk_root UNKNOWN - no check named 'disk_root'"});
  CHECK(Line(json::array()).first == 3);
  CHECK(warden::NagiosUnknown("", "wardend is not running\nat all") ==
        "WARDEN UNKNOWN - wardend is not running at all");
}

TEST_CASE("check --nagios: the detail is one line, and a plugin's own text is kept",
          "[control][nagios]") {
  json crit = Answer("crit", "");
  crit["detail"] = "CRITICAL: a|b\nsecond line";
  CHECK(Line(crit) ==
        std::pair<int, std::string>{2, "WARDEN disk_root CRITICAL - CRITICAL: a/b second line"});
}

TEST_CASE("thresholds as Nagios ranges", "[control][nagios]") {
  CHECK(NagiosRange("> 90") == "~:90");
  CHECK(NagiosRange(">= 90") == "~:90");
  CHECK(NagiosRange("< 10") == "10:");
  CHECK(NagiosRange("<= 10.5") == "10.5:");
  CHECK(NagiosRange("== 0") == "@0:0");
  CHECK(NagiosRange("!= 0") == "0:0");
  CHECK(NagiosRange("== Yes") == "");
  CHECK(NagiosRange("") == "");
}
