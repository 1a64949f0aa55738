#include "daemon/control/control.h"

#include <ev.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "daemon/commands.h"
#include "tests/support/temp_dir.h"

using namespace warden;
using warden::testing::TempDir;
using nlohmann::json;

TEST_CASE("ParseRequest accepts an object with a cmd and refuses the rest", "[control]") {
  auto ok = ParseRequest(R"({"cmd":"status"})");
  REQUIRE(ok.ok());
  CHECK((*ok)["cmd"] == "status");
  auto args = ParseRequest(R"({"cmd":"run","name":"x","wait":true})");
  REQUIRE(args.ok());
  CHECK((*args)["wait"] == true);

  auto bad = ParseRequest("{\"cmd\":\"sta");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error(), Catch::Contains("not valid JSON"));
  CHECK_THAT(ParseRequest("[1,2]").error(), Catch::Contains("not a JSON object"));
  CHECK_THAT(ParseRequest("{}").error(), Catch::Contains("cmd"));
  CHECK_THAT(ParseRequest(R"({"cmd":7})").error(), Catch::Contains("cmd"));
  CHECK_THAT(ParseRequest(R"({"cmd":""})").error(), Catch::Contains("cmd"));
  CHECK_THAT(ParseRequest("   ").error(), Catch::Contains("empty"));
  CHECK_FALSE(ParseRequest(std::string("{\"cmd\":\"x\"}\0junk", 16)).ok());
}

TEST_CASE("LineReader splits lines across reads", "[control]") {
  LineReader r(64);
  auto items = r.Feed("{\"cmd\":\"a\"}\n{\"cmd\"");
  REQUIRE(items.size() == 1);
  CHECK(items[0].kind == LineReader::Item::Kind::kLine);
  CHECK(items[0].line == "{\"cmd\":\"a\"}");
  CHECK(r.partial());
  items = r.Feed(":\"b\"}\r\n\n");
  REQUIRE(items.size() == 2);
  CHECK(items[0].line == "{\"cmd\":\"b\"}");   // \r dropped
  CHECK(items[1].line.empty());
  CHECK_FALSE(r.partial());
}

TEST_CASE("LineReader refuses an oversized line once and recovers after it", "[control]") {
  LineReader r(16);
  SECTION("over the cap within one read") {
    auto items = r.Feed(std::string(40, 'x') + "\nok\n");
    REQUIRE(items.size() == 2);
    CHECK(items[0].kind == LineReader::Item::Kind::kTooLong);
    CHECK(items[1].kind == LineReader::Item::Kind::kLine);
    CHECK(items[1].line == "ok");
  }
  SECTION("over the cap across many reads, without a newline for a long time") {
    auto items = r.Feed(std::string(10, 'x'));
    CHECK(items.empty());
    items = r.Feed(std::string(10, 'x'));
    REQUIRE(items.size() == 1);
    CHECK(items[0].kind == LineReader::Item::Kind::kTooLong);
    CHECK(r.buffered() == 0);   // nothing of it is kept
    for (int i = 0; i < 1000; ++i) CHECK(r.Feed(std::string(1000, 'y')).empty());
    CHECK(r.buffered() == 0);
    CHECK(r.partial());
    items = r.Feed("yyy\nnext\n");
    REQUIRE(items.size() == 1);
    CHECK(items[0].line == "next");
  }
  SECTION("exactly at the cap is fine") {
    auto items = r.Feed(std::string(16, 'z') + "\n");
    REQUIRE(items.size() == 1);
    CHECK(items[0].kind == LineReader::Item::Kind::kLine);
  }
}

TEST_CASE("AccessFor: root and the daemon's user administer, the group reads", "[control]") {
  Peer root{1, 0, 0, {}};
  Peer self{1, 1000, 1000, {}};
  Peer member{1, 2000, 3000, {}};
  Peer supplementary{1, 2001, 2001, {5, 3000}};
  Peer stranger{1, 2002, 2002, {5}};
  CHECK(AccessFor(root, 1000, 3000) == Access::kAdmin);
  CHECK(AccessFor(self, 1000, 3000) == Access::kAdmin);
  CHECK(AccessFor(member, 1000, 3000) == Access::kRead);
  CHECK(AccessFor(supplementary, 1000, 3000) == Access::kRead);
  CHECK(AccessFor(stranger, 1000, 3000) == Access::kNone);
  CHECK(AccessFor(member, 1000, std::nullopt) == Access::kNone);
}

TEST_CASE("LastLines returns the latest complete lines", "[control]") {
  TempDir dir;
  std::string text;
  for (int i = 1; i <= 5000; ++i) text += "{\"seq\":" + std::to_string(i) + "}\n";
  text += "{\"seq\":50";   // torn last line
  dir.Write("events.jsonl", text);
  auto lines = LastLines(dir / "events.jsonl", 3);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "{\"seq\":4998}");
  CHECK(lines[2] == "{\"seq\":5000}");
  CHECK(LastLines(dir / "events.jsonl", 10000).size() == 5000);
  CHECK(LastLines(dir / "missing", 3).empty());
  CHECK(LastLines(dir / "events.jsonl", 0).empty());
}

TEST_CASE("EventFilter: types, prefixes and checks", "[control]") {
  const json start = {{"event", "pause.start"}, {"scope", "host"}};
  const json state = {{"event", "check.state"}, {"check", "lag"}};
  const json fired = {{"event", "action.start"}, {"check", "lag"}, {"action", "fix"}};
  const json other = {{"event", "check.state"}, {"check", "disk"}};
  CHECK(EventFilter{}.Matches(start));   // no filter: everything
  EventFilter prefix{{"pause.*"}, {}};
  CHECK(prefix.Matches(start));
  CHECK_FALSE(prefix.Matches(state));
  CHECK_FALSE(EventFilter({{"pause."}, {}}).Matches(start));   // without '*': the whole name
  CHECK(EventFilter({{"*"}, {}}).Matches(state));
  CHECK_FALSE(EventFilter({{"pause.start.*"}, {}}).Matches(start));
  EventFilter lag{{}, {"lag"}};
  CHECK(lag.Matches(state));
  CHECK(lag.Matches(fired));
  CHECK_FALSE(lag.Matches(other));
  CHECK_FALSE(lag.Matches(start));   // no check member
  EventFilter both{{"check.state", "check.disabled"}, {"lag", "disk"}};
  CHECK(both.Matches(state));
  CHECK(both.Matches(other));
  CHECK_FALSE(both.Matches(fired));
}

namespace {

// A server on its own loop, driven by the test between client calls.
struct Fixture {
  TempDir dir;
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  std::vector<json> seen;
  std::vector<unsigned> iterations;   // the loop iteration of each request
  std::vector<ControlServer::Reply> held;   // requests answered later ("slow")
  std::vector<std::shared_ptr<ControlServer::Stream>> streams;   // "follow" requests
  std::unique_ptr<ControlServer> server;

  explicit Fixture(double idle = 10.0, size_t stream_backlog = 256 * 1024) {
    ControlServer::Options o;
    o.path = dir / "ctl.sock";
    o.idle_timeout = idle;
    o.max_stream_backlog = stream_backlog;
    server = std::make_unique<ControlServer>(
        loop, o, [this](const json& req, const Peer& peer, Access access, ControlServer::Reply r) {
          seen.push_back(req);
          iterations.push_back(ev_iteration(loop));
          if (req["cmd"] == "slow") {
            held.push_back(std::move(r));
            return;
          }
          if (req["cmd"] == "follow") {
            auto stream = r.OpenStream({{"ok", true}, {"following", true}});
            REQUIRE(stream);
            CHECK_FALSE(r.OpenStream({{"ok", true}}));   // once only
            streams.push_back(std::move(stream));
            return;
          }
          r({{"ok", true}, {"echo", req}, {"uid", peer.uid}, {"access", AccessName(access)}});
        });
  }
  ~Fixture() {
    server.reset();
    ev_loop_destroy(loop);
  }
  std::string path() const { return dir / "ctl.sock"; }

  int Connect() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path().c_str());
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
  }
  void Send(int fd, const std::string& bytes) {
    size_t off = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (off < bytes.size() && std::chrono::steady_clock::now() < deadline) {
      ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n > 0) off += static_cast<size_t>(n);
      else if (n < 0 && errno != EAGAIN) break;
      ev_run(loop, EVRUN_NOWAIT);
    }
  }
  // Runs the loop until a full reply line arrives (or EOF / timeout).
  std::map<int, std::string> pending;   // bytes read past a reply line, per fd
  std::optional<json> Read(int fd, double seconds = 10) {
    std::string& buf = pending[fd];
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int>(seconds * 1000));
    while (std::chrono::steady_clock::now() < deadline) {
      ev_run(loop, EVRUN_NOWAIT);
      char tmp[4096];
      ssize_t n = ::read(fd, tmp, sizeof tmp);
      if (n > 0) buf.append(tmp, static_cast<size_t>(n));
      auto nl = buf.find('\n');
      if (nl != std::string::npos) {
        json j = json::parse(buf.substr(0, nl));
        buf.erase(0, nl + 1);
        return j;
      }
      if (n == 0) break;
      ::usleep(1000);
    }
    return std::nullopt;
  }
  // True when the server closed the connection within `seconds`.
  bool Closed(int fd, double seconds = 10) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int>(seconds * 1000));
    while (std::chrono::steady_clock::now() < deadline) {
      ev_run(loop, EVRUN_NOWAIT);
      char tmp[4096];
      ssize_t n = ::read(fd, tmp, sizeof tmp);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      ::usleep(1000);
    }
    return false;
  }
};

}  // namespace

TEST_CASE("control server: socket mode, requests, errors", "[control]") {
  Fixture f;
  REQUIRE(f.server->Start().ok());
  struct stat sb {};
  REQUIRE(::stat(f.path().c_str(), &sb) == 0);
  CHECK(S_ISSOCK(sb.st_mode));
  CHECK((sb.st_mode & 0777) == 0660);

  int fd = f.Connect();
  f.Send(fd, "{\"cmd\":\"status\"}\n");
  auto r = f.Read(fd);
  REQUIRE(r);
  CHECK((*r)["ok"] == true);
  CHECK((*r)["echo"]["cmd"] == "status");
  CHECK((*r)["uid"] == ::geteuid());
  CHECK((*r)["access"] == "admin");   // root or the daemon's own user

  SECTION("malformed requests get an error and the connection keeps working") {
    f.Send(fd, "this is not json\n[1]\n{\"nocmd\":1}\n{\"cmd\":\"again\"}\n");
    for (const char* want : {"not valid JSON", "not a JSON object", "cmd"}) {
      auto e = f.Read(fd);
      REQUIRE(e);
      CHECK((*e)["ok"] == false);
      CHECK_THAT((*e)["error"].get<std::string>(), Catch::Contains(want));
    }
    auto again = f.Read(fd);
    REQUIRE(again);
    CHECK((*again)["echo"]["cmd"] == "again");
  }
  SECTION("an oversized request is refused, and others are still served") {
    int big = f.Connect();
    f.Send(big, std::string(1 << 20, 'x'));   // 1 MB, no newline
    auto e = f.Read(big);
    REQUIRE(e);
    CHECK((*e)["ok"] == false);
    CHECK_THAT((*e)["error"].get<std::string>(), Catch::Contains("over 65536 bytes"));
    f.Send(fd, "{\"cmd\":\"still\"}\n");
    auto still = f.Read(fd);
    REQUIRE(still);
    CHECK((*still)["echo"]["cmd"] == "still");
    // The rest of the huge line is discarded; the next line is served.
    f.Send(big, "\n{\"cmd\":\"after\"}\n");
    auto after = f.Read(big);
    REQUIRE(after);
    CHECK((*after)["echo"]["cmd"] == "after");
    ::close(big);
  }
  SECTION("a request cut off by EOF gets an error") {
    int half = f.Connect();
    f.Send(half, "{\"cmd\":\"sta");
    ::shutdown(half, SHUT_WR);
    auto e = f.Read(half);
    REQUIRE(e);
    CHECK((*e)["ok"] == false);
    CHECK_THAT((*e)["error"].get<std::string>(), Catch::Contains("incomplete"));
    CHECK(f.Closed(half));
    ::close(half);
  }
  SECTION("replies come in order; a slow request holds back only its own connection") {
    int slow = f.Connect();
    f.Send(slow, "{\"cmd\":\"slow\"}\n{\"cmd\":\"next\"}\n");
    for (int i = 0; i < 50; ++i) ev_run(f.loop, EVRUN_NOWAIT);
    REQUIRE(f.held.size() == 1);
    f.Send(fd, "{\"cmd\":\"other\"}\n");
    auto other = f.Read(fd);
    REQUIRE(other);
    CHECK((*other)["echo"]["cmd"] == "other");
    f.held[0]({{"ok", true}, {"slow", "done"}});
    auto first = f.Read(slow);
    REQUIRE(first);
    CHECK((*first)["slow"] == "done");
    auto second = f.Read(slow);
    REQUIRE(second);
    CHECK((*second)["echo"]["cmd"] == "next");
    ::close(slow);
  }
  SECTION("a reply to a client that has gone is dropped") {
    int gone = f.Connect();
    f.Send(gone, "{\"cmd\":\"slow\"}\n");
    for (int i = 0; i < 50 && f.held.empty(); ++i) ev_run(f.loop, EVRUN_NOWAIT);
    REQUIRE(f.held.size() == 1);
    ::close(gone);
    for (int i = 0; i < 50; ++i) ev_run(f.loop, EVRUN_NOWAIT);
    f.held[0]({{"ok", true}});   // must not crash
    f.Send(fd, "{\"cmd\":\"alive\"}\n");
    auto alive = f.Read(fd);
    REQUIRE(alive);
    CHECK((*alive)["echo"]["cmd"] == "alive");
  }
  ::close(fd);
}

TEST_CASE("control server: many pipelining clients share each loop iteration", "[control]") {
  Fixture f;
  REQUIRE(f.server->Start().ok());
  // 10 clients x 16 pipelined requests arrive at once: 160 requests, more
  // than one iteration may serve (32), so no iteration holds the loop for
  // all of them, and every client still gets all its replies, in order.
  std::vector<int> fds;
  std::string burst;
  for (int i = 0; i < 16; ++i) burst += "{\"cmd\":\"n" + std::to_string(i) + "\"}\n";
  for (int c = 0; c < 10; ++c) {
    fds.push_back(f.Connect());
    REQUIRE(::send(fds.back(), burst.data(), burst.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(burst.size()));
  }
  for (int fd : fds) {
    for (int i = 0; i < 16; ++i) {
      auto r = f.Read(fd);
      REQUIRE(r);
      CHECK((*r)["echo"]["cmd"] == "n" + std::to_string(i));
    }
    ::close(fd);
  }
  REQUIRE(f.iterations.size() == 160);
  std::map<unsigned, int> per_iteration;
  for (unsigned it : f.iterations) ++per_iteration[it];
  int most = 0;
  for (const auto& [it, n] : per_iteration) most = std::max(most, n);
  CHECK(most <= 32);
  CHECK(per_iteration.size() >= 5);
}

TEST_CASE("control server: a stream pushes lines until its client goes", "[control]") {
  Fixture f;
  REQUIRE(f.server->Start().ok());
  int fd = f.Connect();
  f.Send(fd, "{\"cmd\":\"follow\"}\n{\"cmd\":\"ignored\"}\n");
  auto first = f.Read(fd);
  REQUIRE(first);
  CHECK((*first)["following"] == true);
  REQUIRE(f.streams.size() == 1);
  auto& stream = f.streams[0];
  CHECK(stream->open());
  for (int i = 1; i <= 3; ++i) CHECK(stream->Push({{"seq", i}}));
  for (int i = 1; i <= 3; ++i) {
    auto line = f.Read(fd);
    REQUIRE(line);
    CHECK((*line)["seq"] == i);
  }
  // What the client sends on a stream is read and not served.
  f.Send(fd, "{\"cmd\":\"status\"}\n");
  CHECK_FALSE(f.Read(fd, 0.3));
  CHECK(f.seen.size() == 1);
  // A reply made without a server cannot stream.
  ControlServer::Reply plain = [](json) {};
  CHECK_FALSE(plain.OpenStream({}));

  ::close(fd);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (stream->open() && std::chrono::steady_clock::now() < deadline) {
    ev_run(f.loop, EVRUN_NOWAIT);
    ::usleep(1000);
  }
  CHECK_FALSE(stream->open());
  CHECK_FALSE(stream->Push({{"seq", 4}}));
  CHECK(f.server->clients() == 0);
}

TEST_CASE("control server: a stream that falls behind is ended with a last line, never "
          "waited for",
          "[control]") {
  Fixture f(10.0, 8 * 1024);
  REQUIRE(f.server->Start().ok());
  int fd = f.Connect();
  f.Send(fd, "{\"cmd\":\"follow\"}\n");
  REQUIRE(f.Read(fd));
  REQUIRE(f.streams.size() == 1);
  auto& stream = f.streams[0];
  // The client reads nothing: the kernel's buffer fills, then the
  // server's; a push never blocks, and the one past the bound ends it.
  const std::string filler(500, 'x');
  int pushed = 0;
  auto start = std::chrono::steady_clock::now();
  while (stream->Push({{"seq", pushed + 1}, {"filler", filler}})) {
    ++pushed;
    REQUIRE(pushed < 100'000);
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK_FALSE(stream->open());
  CHECK_FALSE(stream->Push({{"seq", 0}}));
  // Now it reads: a run of whole lines from the first, then the last line.
  std::vector<json> lines;
  while (auto line = f.Read(fd, 5)) lines.push_back(*line);
  REQUIRE(lines.size() >= 2);
  const json& last = lines.back();
  CHECK(last["ok"] == false);
  CHECK(last["end"] == "behind");
  CHECK_THAT(last["error"].get<std::string>(), Catch::Contains("fell behind"));
  const int got = static_cast<int>(lines.size()) - 1;
  for (int i = 0; i < got; ++i) CHECK(lines[static_cast<size_t>(i)]["seq"] == i + 1);
  CHECK(last["not_sent"] == pushed + 1 - got);
  CHECK(f.Closed(fd));
}

TEST_CASE("control server: a stream open when the server stops hears so", "[control]") {
  Fixture f;
  REQUIRE(f.server->Start().ok());
  int fd = f.Connect();
  f.Send(fd, "{\"cmd\":\"follow\"}\n");
  REQUIRE(f.Read(fd));
  REQUIRE(f.streams.size() == 1);
  f.server->Stop();
  auto last = f.Read(fd);
  REQUIRE(last);
  CHECK(last->value("end", "") == "stopping");
  CHECK_FALSE(f.streams[0]->open());
  CHECK_FALSE(f.streams[0]->Push({{"seq", 1}}));
  ::close(fd);
}

TEST_CASE("control server: a half-sent request times out with an error", "[control]") {
  Fixture f(0.3);
  REQUIRE(f.server->Start().ok());
  int fd = f.Connect();
  f.Send(fd, "{\"cmd\":\"sta");
  auto e = f.Read(fd, 10);
  REQUIRE(e);
  CHECK((*e)["ok"] == false);
  CHECK_THAT((*e)["error"].get<std::string>(), Catch::Contains("no newline"));
  CHECK(f.Closed(fd));
  CHECK(f.server->clients() == 0);
  ::close(fd);
}

TEST_CASE("control server: stale socket replaced, live one left alone", "[control]") {
  Fixture f;
  // A stale socket file: bound, then its owner went away.
  {
    int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, f.path().c_str());
    REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(s);
  }
  REQUIRE(f.server->Start().ok());
  ControlServer::Options o;
  o.path = f.path();
  ControlServer second(f.loop, o,
                       [](const json&, const Peer&, Access, ControlServer::Reply r) { r({}); });
  Status s = second.Start();
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("another process answers"));
  // The first server still works.
  int fd = f.Connect();
  f.Send(fd, "{\"cmd\":\"x\"}\n");
  CHECK(f.Read(fd));
  ::close(fd);
}

TEST_CASE("control server: an unknown group is an error", "[control]") {
  TempDir dir;
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  {
    ControlServer::Options o;
    o.path = dir / "ctl.sock";
    o.group = "no-such-group-warden";
    ControlServer s(loop, o, [](const json&, const Peer&, Access, ControlServer::Reply r) { r({}); });
    Status st = s.Start();
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.message(), Catch::Contains("no-such-group-warden"));
  }
  ev_loop_destroy(loop);
}
