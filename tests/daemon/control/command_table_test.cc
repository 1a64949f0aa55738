#include "daemon/control/command_table.h"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace warden;
using nlohmann::json;

namespace {

// Records which handler Dispatch called, with the request it saw.
class Recorder final : public CommandTarget {
 public:
  std::vector<std::string> called;
  json last;

  void Ping(const CommandRequest& r, ControlServer::Reply reply) override { Got("ping", r, reply); }
  void Status(const CommandRequest& r, ControlServer::Reply reply) override {
    Got("status", r, reply);
  }
  void Events(const CommandRequest& r, ControlServer::Reply reply) override {
    Got("events", r, reply);
  }
  void Check(const CommandRequest& r, ControlServer::Reply reply) override {
    Got("check", r, reply);
  }
  void Run(const CommandRequest& r, ControlServer::Reply reply) override { Got("run", r, reply); }
  void Pause(const CommandRequest& r, ControlServer::Reply reply) override {
    Got("pause", r, reply);
  }
  void Unpause(const CommandRequest& r, ControlServer::Reply reply) override {
    Got("unpause", r, reply);
  }
  void Disable(const CommandRequest& r, ControlServer::Reply reply) override {
    Got("disable", r, reply);
  }
  void Enable(const CommandRequest& r, ControlServer::Reply reply) override {
    Got("enable", r, reply);
  }
  void Resume(const CommandRequest& r, ControlServer::Reply reply) override {
    Got("resume", r, reply);
  }
  void Abort(const CommandRequest& r, ControlServer::Reply reply) override {
    Got("abort", r, reply);
  }
  void Reload(const CommandRequest& r, ControlServer::Reply reply) override {
    Got("reload", r, reply);
  }

 private:
  void Got(const char* name, const CommandRequest& r, const ControlServer::Reply& reply) {
    called.push_back(name);
    last = r.args;
    reply({{"ok", true}, {"handled_by", name}});
  }
};

json Ask(Recorder& target, const json& request, Access access = Access::kAdmin) {
  Peer peer;
  std::optional<json> answer;
  Dispatch(target, request, peer, access, [&](json j) { answer = std::move(j); });
  REQUIRE(answer);   // exactly once, here: the recorder answers at once
  return *answer;
}

json Request(const CommandSpec& spec) {
  json r = {{"cmd", spec.name}};
  for (const auto& p : spec.params) {
    if (!p.required || p.local) continue;
    if (p.kind == CommandParam::Kind::kWords) {
      r[p.key] = json::array({"x"});
    } else {
      r[p.key] = "x";
    }
  }
  return r;
}

}  // namespace

TEST_CASE("commands: every row with a handler reaches its own handler", "[control][commands]") {
  int handled = 0;
  for (const auto& spec : CommandTable()) {
    if (!spec.handler) continue;
    Recorder target;
    json a = Ask(target, Request(spec));
    INFO(spec.name << ": " << a.dump());
    CHECK(a["ok"] == true);
    REQUIRE(target.called.size() == 1);
    CHECK(target.called[0] == spec.name);
    ++handled;
  }
  // ping status events check run pause unpause disable enable resume reload
  CHECK(handled == 12);
}

TEST_CASE("commands: the table has no name twice and finds each", "[control][commands]") {
  for (const auto& spec : CommandTable()) {
    CHECK(FindCommand(spec.name) == &spec);
  }
  CHECK(FindCommand("nope") == nullptr);
}

TEST_CASE("commands: unknown commands, wardenctl's own and odd cmds are refused",
          "[control][commands]") {
  Recorder target;
  for (const json& request : {json{{"cmd", "nope"}}, json{{"cmd", "validate"}},
                              json{{"cmd", "fleet"}}, json{{"cmd", 7}}, json::object()}) {
    json a = Ask(target, request);
    INFO(request.dump());
    CHECK(a["ok"] == false);
    CHECK_THAT(a["error"].get<std::string>(), Catch::StartsWith("unknown command"));
  }
  CHECK(target.called.empty());
}

TEST_CASE("commands: a reader may not change the host", "[control][commands]") {
  Recorder target;
  for (const auto& spec : CommandTable()) {
    if (!spec.handler) continue;
    json a = Ask(target, Request(spec), Access::kRead);
    INFO(spec.name);
    if (spec.access == Access::kAdmin) {
      CHECK(a["ok"] == false);
      CHECK_THAT(a["error"].get<std::string>(), Catch::StartsWith("permission denied"));
    } else {
      CHECK(a["ok"] == true);
    }
  }
  CHECK(target.called == std::vector<std::string>{"status", "events", "ping"});
}

TEST_CASE("commands: members of the wrong type or missing are refused before the handler",
          "[control][commands]") {
  Recorder target;
  struct Case {
    json request;
    const char* error;
  };
  for (const auto& c : std::vector<Case>{
           {{{"cmd", "run"}}, "run needs NAME (usage: run NAME [--dry-run] [--wait] [--json])"},
           {{{"cmd", "run"}, {"name", ""}}, "run needs NAME"},
           {{{"cmd", "run"}, {"name", 3}}, "run: 'name' must be a string"},
           {{{"cmd", "run"}, {"name", "x"}, {"wait", "yes"}}, "run: 'wait' must be true or false"},
           {{{"cmd", "events"}, {"n", -1}}, "events: 'n' must be a non-negative integer"},
           {{{"cmd", "events"}, {"n", 1.5}}, "events: 'n' must be a non-negative integer"},
           {{{"cmd", "pause"}}, "pause needs --reason TEXT"},
           {{{"cmd", "check"}, {"name", json::array()}}, "check: 'name' must be a string"},
           {{{"cmd", "events"}, {"event", "pause.*"}},
            "events: 'event' must be an array of non-empty strings"},
           {{{"cmd", "events"}, {"check", {"a", ""}}},
            "events: 'check' must be an array of non-empty strings"},
           {{{"cmd", "events"}, {"follow", 1}}, "events: 'follow' must be true or false"},
       }) {
    json a = Ask(target, c.request);
    INFO(c.request.dump());
    CHECK(a["ok"] == false);
    CHECK_THAT(a["error"].get<std::string>(), Catch::StartsWith(c.error));
  }
  CHECK(target.called.empty());
  // Members no row names are left alone; null is absent.
  json a = Ask(target, {{"cmd", "events"}, {"n", nullptr}, {"extra", {1, 2}}});
  CHECK(a["ok"] == true);
}

TEST_CASE("commands: wardenctl's words become the request its row describes",
          "[control][commands]") {
  auto run = ParseCommandLine({"run", "upgrade", "--wait"});
  REQUIRE(run.ok());
  CHECK(run->request == json{{"cmd", "run"}, {"name", "upgrade"}, {"wait", true}});
  CHECK(run->spec == FindCommand("run"));

  auto status = ParseCommandLine({"status", "--json"});
  REQUIRE(status.ok());
  CHECK(status->request == json{{"cmd", "status"}});   // --json is wardenctl's own
  CHECK(status->local == json{{"json", true}});

  auto events = ParseCommandLine({"events", "-n", "5"});
  REQUIRE(events.ok());
  CHECK(events->request["n"] == 5);
  // --event and --check repeat, and each takes a comma list.
  auto follow = ParseCommandLine({"events", "-f", "--event", "pause.*, check.state", "--check",
                                  "lag", "--event", "job.fail", "--json"});
  REQUIRE(follow.ok());
  CHECK(follow->request == json{{"cmd", "events"},
                                {"follow", true},
                                {"event", {"pause.*", "check.state", "job.fail"}},
                                {"check", {"lag"}}});
  CHECK(follow->local == json{{"json", true}});

  auto fleet = ParseCommandLine({"fleet", "halt", "--reason", "upgrade window"});
  REQUIRE(fleet.ok());
  CHECK(fleet->request["args"] == json::array({"halt"}));
  CHECK(fleet->request["reason"] == "upgrade window");

  auto pause = ParseCommandLine({"pause", "--reason", "disk", "--for", "2h", "--group", "repl"});
  REQUIRE(pause.ok());
  CHECK(pause->request ==
        json{{"cmd", "pause"}, {"reason", "disk"}, {"for", "2h"}, {"group", "repl"}});
  auto disable = ParseCommandLine({"disable", "lag", "--reason", "noisy", "--until", "14:00"});
  REQUIRE(disable.ok());
  CHECK(disable->request ==
        json{{"cmd", "disable"}, {"name", "lag"}, {"reason", "noisy"}, {"until", "14:00"}});
  auto group = ParseCommandLine({"check", "--group", "repl"});
  REQUIRE(group.ok());
  CHECK(group->request == json{{"cmd", "check"}, {"group", "repl"}});

  auto release = ParseCommandLine({"fleet", "release", "g1", "db7"});
  REQUIRE(release.ok());
  CHECK(release->request["args"] == json::array({"release", "g1", "db7"}));
}

TEST_CASE("commands: wardenctl's usage errors say what is wrong", "[control][commands]") {
  struct Case {
    std::vector<std::string> words;
    const char* error;
  };
  for (const auto& c : std::vector<Case>{
           {{}, "no command"},
           {{"nope"}, "unknown command 'nope'"},
           {{"ping"}, "unknown command 'ping'"},   // the socket's, not wardenctl's
           {{"status", "--grants"}, "an option does not apply to 'status': --grants"},
           {{"status", "--bogus"}, "unknown option '--bogus'"},
           {{"status", "extra"}, "usage: wardenctl status [--group G] [--json]"},
           {{"check"}, "usage: wardenctl check [NAME] [--group G]"},
           {{"check", "a", "b"}, "usage: wardenctl check [NAME] [--group G]"},
           {{"check", "--group"}, "--group needs G"},
           {{"disable"}, "usage: wardenctl disable CHECK --reason TEXT"},
           {{"disable", "db"}, "disable needs --reason TEXT"},
           {{"enable"}, "usage: wardenctl enable CHECK"},
           {{"unpause", "--reason", "x"}, "an option does not apply to 'unpause': --reason"},
           {{"events", "-n"}, "-n needs N"},
           {{"events", "-n", "x"}, "-n needs a number >= 0"},
           {{"events", "-n", "-3"}, "-n needs a number >= 0"},
           {{"pause"}, "pause needs --reason TEXT"},
           {{"pause", "--reason", ""}, "pause needs --reason TEXT"},
           {{"fleet"}, "usage: wardenctl fleet status [ROLLOUT] [--json] |"},
           {{"events", "--event"}, "--event needs TYPE"},
           {{"events", "-f", "--event", "a,,b"}, "--event needs TYPE (an empty name in 'a,,b')"},
           {{"events", "-f", "--check", ""}, "--check needs NAME"},
       }) {
    auto p = ParseCommandLine(c.words);
    std::string said;
    for (const auto& w : c.words) said += w + " ";
    INFO(said);
    REQUIRE_FALSE(p.ok());
    CHECK_THAT(p.error(), Catch::StartsWith(c.error));
  }
}

TEST_CASE("commands: every command that prints takes --json, wardenctl's own option",
          "[control][commands]") {
  for (const auto& spec : CommandTable()) {
    const std::string name = spec.name;
    INFO(name);
    if (name == "ping") continue;   // the socket's, not wardenctl's
    if (name == "top") {            // a terminal view: status --json is its form for scripts
      CHECK_FALSE(ParseCommandLine({"top", "--json"}).ok());
      continue;
    }
    auto words = std::vector<std::string>{name};
    if (name == "fleet") words.push_back("status");
    for (const auto& p : spec.params) {
      if (p.required && p.kind == CommandParam::Kind::kName) words.push_back("x");
      if (p.required && p.kind == CommandParam::Kind::kText) {
        words.push_back(p.option);
        words.push_back("x");
      }
    }
    if (name == "check") words.push_back("x");
    words.push_back("--json");
    auto parsed = ParseCommandLine(words);
    REQUIRE(parsed.ok());
    CHECK(parsed->local == json{{"json", true}});
    CHECK_FALSE(parsed->request.contains("json"));
  }
}

TEST_CASE("commands: the usage text lists every command wardenctl takes, once",
          "[control][commands]") {
  const std::string usage = UsageText();
  for (const auto& spec : CommandTable()) {
    const std::string line = "\n  " + Synopsis(spec);
    INFO(spec.name);
    if (spec.help[0]) {
      CHECK(usage.find(line) != std::string::npos);
      CHECK(usage.find(spec.help) != std::string::npos);
    } else {
      CHECK(usage.find(line) == std::string::npos);
    }
  }
}
