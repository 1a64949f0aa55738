#include "checks/nagios.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "daemon/io/process.h"
#include "tests/support/check_harness.h"

using warden::Measurement;
using warden::MeasurePlugin;
using warden::ParsePluginOutput;
using warden::testing::CheckHarness;
using warden::testing::MakeCheck;
using Level = Measurement::Level;

namespace {

struct NagiosHarness : CheckHarness {
  warden::ProcessRunner processes{loop};
  NagiosHarness() { rt.processes = &processes; }

  Measurement RunPlugin(const std::string& command, const std::string& perfdata = "",
                        const std::string& timeout = "10s") {
    warden::CheckCommon common;
    common.timeout = *warden::ParseDuration(timeout);
    std::vector<std::pair<std::string, std::string>> keys = {{"command", command}};
    if (!perfdata.empty()) keys.emplace_back("perfdata", perfdata);
    auto built = MakeCheck("nagios", keys, common);
    REQUIRE(built.errors.empty());
    return Run(*built.check);
  }
};

// Debian's monitoring-plugins, or EPEL's nagios-plugins on EL9.
std::string Plugin(const std::string& name) {
  std::string debian = "/usr/lib/nagios/plugins/" + name;
  return ::access(debian.c_str(), X_OK) == 0 ? debian : "/usr/lib64/nagios/plugins/" + name;
}

}  // namespace

TEST_CASE("plugin output: the first line is the text, perfdata after |", "[checks][nagios]") {
  auto o =
      ParsePluginOutput("DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n");
  REQUIRE(o);
  CHECK(o->text == "DISK OK - free space: / 3326 MB (56%);");
  REQUIRE(o->perfdata.size() == 1);
  const auto& p = o->perfdata[0];
  CHECK(p.label == "/");
  CHECK(p.value == "2643");
  CHECK(p.unit == "MB");
  CHECK(p.warn == "5948");
  CHECK(p.crit == "5958");
  CHECK(p.min == "0");
  CHECK(p.max == "5968");

  auto plain = ParsePluginOutput("OK: all fine");
  REQUIRE(plain);
  CHECK(plain->text == "OK: all fine");
  CHECK(plain->perfdata.empty());

  auto empty = ParsePluginOutput("");
  REQUIRE(empty);
  CHECK(empty->text.empty());
  CHECK(empty->perfdata.empty());
}

TEST_CASE("plugin output: several values, quoted labels, units, empty fields",
          "[checks][nagios]") {
  auto o = ParsePluginOutput(
      "OK | time=0.003s;;;0.000000 'free space'=12.5GB;20:;10:; 'it''s'=3c "
      "pct=99.5% neg=-4 exp=1.5e3 undetermined=U;1;2 temp=21°C\n");
  REQUIRE(o);
  REQUIRE(o->perfdata.size() == 8);
  CHECK(o->perfdata[0].label == "time");
  CHECK(o->perfdata[0].value == "0.003");
  CHECK(o->perfdata[0].unit == "s");
  CHECK(o->perfdata[0].warn.empty());
  CHECK(o->perfdata[0].crit.empty());
  CHECK(o->perfdata[0].min == "0.000000");
  CHECK(o->perfdata[1].label == "free space");
  CHECK(o->perfdata[1].value == "12.5");
  CHECK(o->perfdata[1].unit == "GB");
  CHECK(o->perfdata[1].warn == "20:");
  CHECK(o->perfdata[1].crit == "10:");
  CHECK(o->perfdata[1].min.empty());
  CHECK(o->perfdata[2].label == "it's");
  CHECK(o->perfdata[2].unit == "c");
  CHECK(o->perfdata[3].unit == "%");
  CHECK(o->perfdata[4].value == "-4");
  CHECK(o->perfdata[5].value == "1.5e3");
  CHECK(o->perfdata[5].unit.empty());
  CHECK(o->perfdata[6].value == "U");
  CHECK(o->perfdata[6].crit == "2");
  CHECK(o->perfdata[7].unit == "°C");
}

TEST_CASE("plugin output: long text and perfdata lines after the first line",
          "[checks][nagios]") {
  // The guidelines' layout: perfdata on the first line, long text, then a
  // `|` that starts perfdata running to the end of the output.
  auto o = ParsePluginOutput(
      "DISK OK - free space | /=2643MB;5948;5958;0;5968\n"
      "/ 15272 MB (77% inode=96%);\n"
      "/boot 68 MB (69% inode=99%); | /boot=68MB;88;93;0;98\n"
      "/home=69357MB;253404;253409;0;253414\n"
      "  /var/log=818MB;970;975;0;980\n");
  REQUIRE(o);
  CHECK(o->text == "DISK OK - free space");
  REQUIRE(o->perfdata.size() == 4);
  CHECK(o->perfdata[0].label == "/");
  CHECK(o->perfdata[1].label == "/boot");
  CHECK(o->perfdata[2].label == "/home");
  CHECK(o->perfdata[2].value == "69357");
  CHECK(o->perfdata[3].label == "/var/log");

  // Long text with no `|`: no perfdata from it, whatever it looks like.
  auto text = ParsePluginOutput("OK\nconnections=12 is not perfdata here\n");
  REQUIRE(text);
  CHECK(text->perfdata.empty());
}

TEST_CASE("plugin output: perfdata that cannot be read is an error naming the item",
          "[checks][nagios]") {
  auto err = [](const char* out) {
    auto o = ParsePluginOutput(out);
    REQUIRE_FALSE(o);
    return o.error();
  };
  CHECK_THAT(err("OK | 'free space=12"), Catch::Contains("the quoted label has no closing '"));
  CHECK_THAT(err("OK | free space=12"),
             Catch::Contains("\"free\"") && Catch::Contains("not label=value"));
  CHECK_THAT(err("OK | =12"), Catch::Contains("no label before '='"));
  CHECK_THAT(err("OK | a="), Catch::Contains("no value after '='"));
  CHECK_THAT(err("OK | a=abc"), Catch::Contains("the value 'abc' is not a number"));
  CHECK_THAT(err("OK | a=12.5.3"), Catch::Contains("'.3' after the value 12.5 is no unit"));
  CHECK_THAT(err("OK | a=1;2;3;4;5;6"), Catch::Contains("more than value;warn;crit;min;max"));
  CHECK_THAT(err("OK | a=1 b=;1"), Catch::Contains("perfdata item \"b=;1\""));
  // On a perfdata line after the long text too.
  CHECK_THAT(err("OK\nlong | a=1\nb=x\n"), Catch::Contains("the value 'x' is not a number"));
}

TEST_CASE("plugin exit status: 0 ok, 1 warn, 2 crit, anything else no verdict",
          "[checks][nagios]") {
  CHECK(warden::PluginVerdict(0) == Level::kOk);
  CHECK(warden::PluginVerdict(1) == Level::kWarn);
  CHECK(warden::PluginVerdict(2) == Level::kCrit);
  for (int code : {3, 4, 127, 255, -1}) {
    INFO(code);
    CHECK_FALSE(warden::PluginVerdict(code).has_value());
  }
}

TEST_CASE("a plugin's verdict and first line go into the measurement", "[checks][nagios]") {
  Measurement ok = MeasurePlugin("c", "p", 0, "PING OK - 0.1 ms | rta=0.1ms;1;2\nmore\n", "", "");
  CHECK(ok.kind == Measurement::Kind::kValue);
  CHECK(ok.level == Level::kOk);
  CHECK(ok.detail == "PING OK - 0.1 ms");
  CHECK(ok.value.empty());   // no perfdata = LABEL: no value
  CHECK(MeasurePlugin("c", "p", 1, "W", "", "").level == Level::kWarn);
  CHECK(MeasurePlugin("c", "p", 2, "C", "", "").level == Level::kCrit);
  // Without perfdata = LABEL the perfdata is not read: bad perfdata is no error.
  CHECK(MeasurePlugin("c", "p", 0, "OK | bad perf", "", "").kind == Measurement::Kind::kValue);

  Measurement unknown = MeasurePlugin("db", "/x/check_foo", 3, "UNKNOWN: no such thing\n", "", "");
  CHECK(unknown.kind == Measurement::Kind::kError);
  CHECK(unknown.error ==
        "nagios check db: /x/check_foo: UNKNOWN (exit status 3): UNKNOWN: no such thing");
  Measurement other = MeasurePlugin("db", "check_foo", 4, "", "usage: check_foo -H host\n", "");
  CHECK(other.kind == Measurement::Kind::kError);
  CHECK_THAT(other.error, Catch::Contains("exit status 4 (no plugin verdict") &&
                              Catch::Contains("usage: check_foo -H host"));
}

TEST_CASE("perfdata = LABEL takes that value and its unit", "[checks][nagios]") {
  const char* out = "DISK WARNING | /=2643.5MB;5948;5958;0;5968 /boot=68MB;88;93;0;98\n";
  Measurement m = MeasurePlugin("c", "p", 1, out, "", "/");
  CHECK(m.kind == Measurement::Kind::kValue);
  CHECK(m.value == "2643.5");
  CHECK(m.unit == "MB");
  CHECK(m.level == Level::kWarn);
  CHECK(m.detail == "DISK WARNING");
  CHECK(MeasurePlugin("c", "p", 0, out, "", "/boot").value == "68");
  CHECK(MeasurePlugin("c", "p", 0, "OK | 'a b'=007", "", "a b").value == "7");
}

TEST_CASE("perfdata = LABEL: a missing label or bad perfdata is an error naming the check",
          "[checks][nagios]") {
  Measurement missing = MeasurePlugin("disk_root", "check_disk", 0,
                                      "DISK OK | /boot=68MB;88;93;0;98 /var=1MB\n", "", "/");
  CHECK(missing.kind == Measurement::Kind::kError);
  CHECK(missing.error ==
        "nagios check disk_root: check_disk said OK, but printed no perfdata '/' (it printed "
        "'/boot', '/var'); its output: 'DISK OK | /boot=68MB;88;93;0;98 /var=1MB'");
  Measurement none = MeasurePlugin("c", "p", 0, "OK", "", "x");
  CHECK_THAT(none.error, Catch::Contains("no perfdata 'x' (no perfdata at all)") &&
                             Catch::Contains("its output: 'OK'"));
  Measurement undetermined = MeasurePlugin("c", "p", 0, "OK | x=U", "", "x");
  CHECK_THAT(undetermined.error, Catch::Contains("gave perfdata 'x' as U (undetermined)"));
  Measurement bad = MeasurePlugin("c", "p", 2, "CRIT | x=1 y=oops", "", "x");
  CHECK(bad.kind == Measurement::Kind::kError);
  CHECK_THAT(bad.error, Catch::Contains("nagios check c: p said CRITICAL, but its perfdata "
                                        "cannot be read: perfdata item \"y=oops\"") &&
                            Catch::Contains("its output: 'CRIT | x=1 y=oops'"));
  Measurement huge = MeasurePlugin("c", "p", 0, "OK | x=1e999", "", "x");
  CHECK(huge.kind == Measurement::Kind::kError);
  CHECK_THAT(huge.error, Catch::Contains("the value '1e999' is not a number"));
}

TEST_CASE("perfdata = LABEL: a WARNING or CRITICAL without the value keeps its verdict",
          "[checks][nagios]") {
  // check_mysql when the server is down: CRITICAL, no perfdata at all.
  Measurement down = MeasurePlugin(
      "c", "check_mysql", 2, "Can't connect to MySQL server on '127.0.0.1' (111)\n", "", "queries");
  CHECK(down.kind == Measurement::Kind::kValue);
  CHECK(down.level == Level::kCrit);
  CHECK(down.value.empty());
  CHECK(down.detail == "Can't connect to MySQL server on '127.0.0.1' (111)");
  CHECK(MeasurePlugin("c", "p", 1, "W | x=U", "", "x").level == Level::kWarn);
}

TEST_CASE("nagios runs real plugins: exit status, output, perfdata", "[checks][nagios]") {
  NagiosHarness h;
  Measurement ok = h.RunPlugin(Plugin("check_dummy") + " 0 'all good'");
  CHECK(ok.kind == Measurement::Kind::kValue);
  CHECK(ok.level == Level::kOk);
  CHECK(ok.detail == "OK: all good");
  Measurement warn = h.RunPlugin(Plugin("check_dummy") + " 1 'half full'");
  CHECK(warn.level == Level::kWarn);
  CHECK(warn.detail == "WARNING: half full");
  Measurement crit = h.RunPlugin(Plugin("check_dummy") + " 2 down");
  CHECK(crit.level == Level::kCrit);
  Measurement unknown = h.RunPlugin(Plugin("check_dummy") + " 3 'who knows'");
  CHECK(unknown.kind == Measurement::Kind::kError);
  CHECK_THAT(unknown.error, Catch::Contains("UNKNOWN (exit status 3): UNKNOWN: who knows"));

  Measurement disk = h.RunPlugin(
      Plugin("check_disk") + " -w 0% -c 0% -p /", "/");
  INFO(warden::testing::Show(disk));
  CHECK(disk.kind == Measurement::Kind::kValue);
  CHECK(disk.level == Level::kOk);
  CHECK(warden::ParseNumber(disk.value).has_value());
  CHECK(disk.unit == "B");   // Debian 12's check_disk gives bytes
  CHECK_THAT(disk.detail, Catch::StartsWith("DISK OK"));

  Measurement multi = h.RunPlugin("printf 'OK\\nlong text | a=1\\nb=2.5s;3;4\\n'", "b");
  CHECK(multi.value == "2.5");
  CHECK(multi.unit == "s");
}

TEST_CASE("nagios: timeouts, signals and spawn failures are errors", "[checks][nagios]") {
  NagiosHarness h;
  auto start = std::chrono::steady_clock::now();
  Measurement slow = h.RunPlugin("sleep 30", "", "300ms");
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(slow.kind == Measurement::Kind::kError);
  CHECK_THAT(slow.error, Catch::Contains("sleep: timed out"));
  CHECK(took < 10.0);

  Measurement missing = h.RunPlugin("/nonexistent/check_nothing -H x");
  CHECK(missing.kind == Measurement::Kind::kError);
  CHECK_THAT(missing.error, Catch::Contains("/nonexistent/check_nothing"));

  Measurement killed = h.RunPlugin("sh -c 'kill -9 $$'");
  CHECK(killed.kind == Measurement::Kind::kError);
  CHECK_THAT(killed.error, Catch::Contains("SIGKILL"));
}

TEST_CASE("nagios: output past 8 KB is cut at the last whole line", "[checks][nagios]") {
  NagiosHarness h;
  // The first line, then long text to past the limit, then a perfdata
  // line that is cut off: the value past the cut is not read.
  Measurement m = h.RunPlugin(
      "sh -c 'echo \"OK | a=1\"; i=0; while [ $i -lt 300 ]; do echo "
      "\"long text line number $i ..........\"; i=$((i+1)); done; echo \"| b=2\"'",
      "b");
  CHECK(m.kind == Measurement::Kind::kError);
  CHECK_THAT(m.error, Catch::Contains("printed no perfdata 'b' (it printed 'a')"));
  CHECK(h.RunPlugin("sh -c 'echo \"OK | a=1\"; i=0; while [ $i -lt 300 ]; do echo "
                    "\"long text line number $i ..........\"; i=$((i+1)); done'",
                    "a")
            .value == "1");
}

TEST_CASE("nagios keys: command is required and split like a program's", "[checks][nagios]") {
  auto none = MakeCheck("nagios", {{"perfdata", "x"}});
  CHECK_FALSE(none.check);
  REQUIRE_FALSE(none.errors.empty());
  CHECK_THAT(none.errors[0], Catch::Contains("command"));
  auto unbalanced = MakeCheck("nagios", {{"command", "check_x 'open"}});
  CHECK_FALSE(unbalanced.check);
  REQUIRE_FALSE(unbalanced.errors.empty());
  CHECK_THAT(unbalanced.errors[0], Catch::StartsWith("test.ini:2: command: "));
}

TEST_CASE("nagios keys: warn or crit without perfdata is an error at the key",
          "[checks][nagios]") {
  // What the config loader reads before the factory (check_config.cc).
  warden::RawSection s = warden::testing::CheckSection(
      {{"type", "nagios"}, {"command", Plugin("check_dummy")}, {"crit", "> 5"}});
  warden::Diagnostics diag;
  warden::OptionReader opts(s, diag);
  (void)opts.Text("type");
  (void)opts.GetThreshold("crit");
  warden::CheckCommon common;
  common.name = "t";
  common.has_thresholds = true;
  auto check = warden::BuildCheck(*warden::FindCheckType("nagios"), opts, common);
  CHECK_FALSE(check);
  REQUIRE(diag.errors().size() == 1);
  CHECK(diag.errors()[0] ==
        "test.ini:4: crit compares the check's value, and a nagios check has one only with "
        "perfdata = LABEL (without it, the plugin's exit status alone judges)");

  // With perfdata, thresholds are fine.
  warden::RawSection s2 = warden::testing::CheckSection(
      {{"type", "nagios"}, {"command", Plugin("check_dummy")}, {"crit", "> 5"}, {"perfdata", "x"}});
  warden::Diagnostics diag2;
  warden::OptionReader opts2(s2, diag2);
  (void)opts2.Text("type");
  (void)opts2.GetThreshold("crit");
  CHECK(warden::BuildCheck(*warden::FindCheckType("nagios"), opts2, common));
  CHECK(diag2.errors().empty());
}
