// wardend and systemd (daemon/systemd.cc): events as journal entries, the
// STATUS= line and how often it is sent.
#include "daemon/systemd.h"

#include <ev.h>

#include <catch2/catch.hpp>
#include <map>

#include "tests/support/run_loop.h"

using namespace warden;
using nlohmann::json;

namespace {

std::map<std::string, std::string> Fields(const JournalEntry& e) {
  std::map<std::string, std::string> m;
  for (const auto& f : e.fields) m[f.name] = f.value;
  return m;
}

}  // namespace

TEST_CASE("systemd: a check.state event as a journal entry", "[systemd]") {
  json e = {{"host", "db-17"},      {"event", "check.state"}, {"seq", 412},
            {"time", "2026-11-25T17:02:44.854Z"}, {"version", "0.1.0"},
            {"check", "connections"}, {"type", "mysql_status"}, {"state", "crit"},
            {"prev_state", "ok"},   {"value", "27"},            {"threshold", "> 20"},
            {"error", ""}};
  JournalEntry j = EventJournalEntry(e);
  CHECK(j.priority == JournalPriority::kWarning);
  CHECK(j.message ==
        "check.state #412: check=connections prev_state=ok state=crit value=27 "
        "threshold=\"> 20\" type=mysql_status");
  auto f = Fields(j);
  CHECK(f["WARDEN_EVENT"] == "check.state");
  CHECK(f["WARDEN_SEQ"] == "412");
  CHECK(f["WARDEN_CHECK"] == "connections");
  CHECK(f.count("WARDEN_ACTION") == 0);
  CHECK(f.count("WARDEN_JOB") == 0);
}

TEST_CASE("systemd: action and job events name theirs", "[systemd]") {
  json a = {{"event", "action.finish"}, {"seq", 7},      {"action", "kill_sleepers"},
            {"check", "connections"},   {"result", "fail"}, {"duration_ms", 12},
            {"stderr_tail", "line 1\nline 2"}};
  JournalEntry j = EventJournalEntry(a);
  CHECK(j.priority == JournalPriority::kWarning);
  auto f = Fields(j);
  CHECK(f["WARDEN_ACTION"] == "kill_sleepers");
  CHECK(f["WARDEN_CHECK"] == "connections");
  // One line: newlines of a value stay escaped in MESSAGE.
  CHECK(j.message.find('\n') == std::string::npos);
  CHECK(j.message.find("stderr_tail=\"line 1\\nline 2\"") != std::string::npos);

  json jf = {{"event", "job.fail"}, {"seq", 9}, {"job", "upgrade"}, {"step", "stop"},
             {"error", "exit 1"}};
  j = EventJournalEntry(jf);
  CHECK(j.priority == JournalPriority::kErr);
  CHECK(Fields(j)["WARDEN_JOB"] == "upgrade");
  CHECK(j.message == "job.fail #9: job=upgrade step=stop error=\"exit 1\"");

  CHECK(EventJournalEntry({{"event", "action.finish"}, {"seq", 1}, {"result", "ok"}}).priority ==
        JournalPriority::kInfo);
  CHECK(EventJournalEntry({{"event", "check.state"}, {"seq", 1}, {"state", "warn"}}).priority ==
        JournalPriority::kNotice);
  CHECK(EventJournalEntry({{"event", "check.state"}, {"seq", 1}, {"state", "ok"}}).priority ==
        JournalPriority::kInfo);
  CHECK(EventJournalEntry({{"event", "events.dropped"}, {"seq", 1}}).priority ==
        JournalPriority::kErr);
  CHECK(EventJournalEntry({{"event", "mutex.state"}, {"seq", 1}, {"held", true}}).priority ==
        JournalPriority::kNotice);
  CHECK(EventJournalEntry({{"event", "mutex.state"}, {"seq", 1}, {"held", false}}).priority ==
        JournalPriority::kInfo);
}

TEST_CASE("systemd: the STATUS= line", "[systemd]") {
  StatusFacts f;
  f.mutex = "clear";
  f.jobs = {{"queue", json::array()}, {"running", nullptr}, {"halt", nullptr}};
  f.check_states = std::vector<std::string>(12, "ok");
  f.check_states.push_back("crit");
  CHECK(StatusLine(f) == "12 ok, 1 crit; mutex clear; queue idle");

  f.check_states = {"pending", "error", "warn", "ok", "warn"};
  f.mutex = "held";
  f.paused = true;
  CHECK(StatusLine(f) == "1 ok, 2 warn, 1 error, 1 pending; mutex held; queue idle; paused");

  f = StatusFacts{};
  f.mutex = "off";
  f.jobs = {{"queue", json::array({{{"job", "a"}}, {{"job", "b"}}})},
            {"running", {{"job", "upgrade"}, {"step", "stop"}, {"step_index", 2}, {"steps", 5}}},
            {"halt", nullptr}};
  CHECK(StatusLine(f) == "no checks; mutex off; job upgrade at 2/5 (stop), 2 queued");
  f.jobs["running"] = nullptr;
  CHECK(StatusLine(f) == "no checks; mutex off; 2 queued");
  f.jobs["halt"] = {{"reason", "step stop failed:\nexit 1"}, {"job", "upgrade"}, {"step", "stop"}};
  CHECK(StatusLine(f) == "no checks; mutex off; queue halted (job upgrade at stop)");
}

TEST_CASE("systemd: STATUS= is sent at most once a second, and only when it changed",
          "[systemd]") {
  struct ev_loop* loop = EV_DEFAULT;
  ev_now_update(loop);
  std::string now = "1 ok; mutex clear; queue idle";
  int computed = 0;
  std::vector<std::string> sent;
  StatusNotifier n(
      loop, [&] { ++computed; return now; }, [&](const std::string& l) { sent.push_back(l); });
  n.Update();
  REQUIRE(sent.size() == 1);
  // A burst of changes right after: one update, a second after the first.
  now = "1 crit; mutex clear; queue idle";
  const double t0 = ev_time();
  for (int i = 0; i < 100; ++i) n.Poke();
  CHECK(sent.size() == 1);
  REQUIRE(warden::testing::RunUntil([&] { return sent.size() == 2; }, 5));
  CHECK(ev_time() - t0 > 0.8 * StatusNotifier::kMinInterval);
  CHECK(sent[1] == now);
  CHECK(computed == 2);
  // Nothing changed: computed, not sent.
  n.Poke();
  REQUIRE(warden::testing::RunUntil([&] { return computed == 3; }, 5));
  CHECK(sent.size() == 2);
  // Stopped: no more.
  now = "stopping";
  n.Stop();
  n.Poke();
  warden::testing::RunUntil([] { return false; }, 0.3);
  CHECK(computed == 3);
  CHECK(n.last() == "1 crit; mutex clear; queue idle");
}
