#include "checks/tcp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/check_harness.h"
#include "tests/support/local_socket.h"

using warden::Duration;
using warden::Measurement;
using warden::testing::CheckHarness;
using warden::testing::LocalSocket;
using warden::testing::MakeCheck;
using warden::testing::Show;

namespace {

Measurement RunTcp(CheckHarness& h, int port, const std::string& timeout = "5s",
                   const std::string& protocol = "") {
  warden::CheckCommon common;
  common.timeout = *warden::ParseDuration(timeout);
  std::vector<std::pair<std::string, std::string>> keys = {{"host", "127.0.0.1"},
                                                           {"port", std::to_string(port)}};
  if (!protocol.empty()) keys.emplace_back("protocol", protocol);
  auto built = MakeCheck("tcp", keys, common);
  REQUIRE(built.errors.empty());
  return h.Run(*built.check);
}

// The greeting a MariaDB 10.11 server sent (captured from one): protocol
// 10, "5.5.5-" in front of its version, thread id, scramble, capabilities,
// the auth plugin.
const std::string kMariadbGreeting(
    "\x64\x00\x00\x00\x0a"
    "5.5.5-10.11.19-MariaDB-0+deb12u1\x00"
    "I\x00\x00\x00~+TJSB3w\x00\xfe\xf7\x08\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00"
    "\x1d\x00\x00\x00~3\"OI^}yk+0P\x00mysql_native_password\x00",
    104);

// A peer that accepts one connection on `listener`, writes `greeting`, then
// reads until the client closes (or 5 s pass) and keeps what it sent.
struct GreetingPeer {
  std::string received;
  std::thread thread;
  GreetingPeer(LocalSocket& listener, std::string greeting, bool close_at_once = false)
      : thread([this, fd = listener.fd, greeting = std::move(greeting), close_at_once] {
          int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
          if (c < 0) return;
          if (!greeting.empty()) send(c, greeting.data(), greeting.size(), MSG_NOSIGNAL);
          if (!close_at_once) {
            timeval tv{5, 0};
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            char buf[256];
            ssize_t n;
            while ((n = recv(c, buf, sizeof buf, 0)) > 0) received.append(buf, n);
          }
          close(c);
        }) {}
  ~GreetingPeer() {
    if (thread.joinable()) thread.join();
  }
};

}  // namespace

TEST_CASE("tcp measures the connect time to a listener", "[checks][tcp]") {
  CheckHarness h;
  LocalSocket listener(16);
  Measurement m = RunTcp(h, listener.port);
  INFO(Show(m));
  REQUIRE(m.kind == Measurement::Kind::kValue);
  auto ms = warden::ParseNumber(m.value);
  REQUIRE(ms);
  CHECK(*ms >= 0);
  CHECK(*ms < 1000);
  // The connection reached the listener.
  int accepted = accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
  CHECK(accepted >= 0);
  if (accepted >= 0) close(accepted);
}

TEST_CASE("tcp to a port nobody listens on is an error naming host:port", "[checks][tcp]") {
  CheckHarness h;
  int port = 0;
  {
    LocalSocket bound(-1);  // bound, not listening: connects are refused
    port = bound.port;
    Measurement m = RunTcp(h, port);
    CHECK(Show(m) ==
          "error cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
  }
}

TEST_CASE("tcp to a peer that never completes the handshake times out", "[checks][tcp]") {
  CheckHarness h;
  // A listener whose accept queue is full: Linux drops further SYNs.
  LocalSocket listener(0);
  std::vector<int> clients;
  for (int i = 0; i < 4; ++i) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(c >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(listener.port));
    connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    clients.push_back(c);
  }
  usleep(50'000);
  auto start = std::chrono::steady_clock::now();
  auto direct = warden::TcpConnectTime("127.0.0.1", listener.port, Duration(300));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int c : clients) close(c);
  REQUIRE_FALSE(direct.ok());
  CHECK(direct.error() ==
        "cannot connect to 127.0.0.1:" + std::to_string(listener.port) + ": timed out after 300ms");
  CHECK(took >= 0.25);
  CHECK(took < 2.0);
}

TEST_CASE("tcp protocol is none or mysql, anything else an error at its line", "[checks][tcp]") {
  auto bad = MakeCheck("tcp", {{"host", "db"}, {"port", "3306"}, {"protocol", "mysql41"}});
  CHECK(bad.check == nullptr);
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0] == "test.ini:4: protocol: 'mysql41' is not one of none, mysql");
  for (const char* ok : {"none", "mysql"}) {
    auto built = MakeCheck("tcp", {{"host", "db"}, {"port", "3306"}, {"protocol", ok}});
    INFO(ok);
    CHECK(built.errors.empty());
    CHECK(built.check != nullptr);
  }
}

TEST_CASE("tcp protocol = mysql reads the greeting, sends nothing, gives the time to it",
          "[checks][tcp]") {
  CheckHarness h;
  LocalSocket listener(16);
  {
    GreetingPeer peer(listener, kMariadbGreeting);
    auto g = warden::MysqlGreetingTime("127.0.0.1", listener.port, Duration(5000));
    REQUIRE(g.ok());
    CHECK(g->protocol == 10);
    CHECK(g->server_version == "10.11.19-MariaDB-0+deb12u1");
    CHECK(g->ms >= 0);
    CHECK(g->ms < 1000);
    peer.thread.join();
    CHECK(peer.received.empty());  // closed without a byte sent
  }
  {
    GreetingPeer peer(listener, kMariadbGreeting);
    Measurement m = RunTcp(h, listener.port, "5s", "mysql");
    INFO(Show(m));
    REQUIRE(m.kind == Measurement::Kind::kValue);
    auto ms = warden::ParseNumber(m.value);
    REQUIRE(ms);
    CHECK(*ms < 1000);
  }
}

TEST_CASE("tcp protocol = mysql: an error packet, another protocol, silence are errors",
          "[checks][tcp]") {
  CheckHarness h;
  LocalSocket listener(16);
  const std::string where = "127.0.0.1:" + std::to_string(listener.port);
  {
    // What a server at max_connections sends instead of a greeting.
    std::string err("\x17\x00\x00\x00\xff\x10\x04Too many connections", 27);
    GreetingPeer peer(listener, err);
    CHECK(Show(RunTcp(h, listener.port, "5s", "mysql")) ==
          "error " + where + " refused the connection: ERROR 1040: Too many connections");
  }
  {
    GreetingPeer peer(listener, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
    CHECK(Show(RunTcp(h, listener.port, "5s", "mysql")) ==
          "error " + where + " does not speak MySQL: it sent \"SSH-2.0-OpenSSH_\"...");
  }
  {
    GreetingPeer peer(listener, "", true);
    CHECK(Show(RunTcp(h, listener.port, "5s", "mysql")) ==
          "error " + where + " closed the connection without a MySQL greeting");
  }
  {
    // Nobody accepts: the kernel completes the handshake, nothing is sent.
    auto start = std::chrono::steady_clock::now();
    auto g = warden::MysqlGreetingTime("127.0.0.1", listener.port, Duration(300));
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    REQUIRE_FALSE(g.ok());
    CHECK(g.error() == "no MySQL greeting from " + where + ": timed out after 300ms");
    CHECK(took >= 0.25);
    CHECK(took < 2.0);
  }
  // The bare connect is still refused like protocol = none.
  LocalSocket bound(-1);
  CHECK(Show(RunTcp(h, bound.port, "5s", "mysql")) ==
        "error cannot connect to 127.0.0.1:" + std::to_string(bound.port) + ": Connection refused");
}

TEST_CASE("a MySQL greeting is parsed strictly", "[checks][tcp]") {
  auto payload = kMariadbGreeting.substr(4);
  auto g = warden::ParseMysqlGreeting(payload);
  REQUIRE(g.ok());
  CHECK(g->server_version == "10.11.19-MariaDB-0+deb12u1");
  // MySQL's own version has no prefix to drop.
  std::string mysql = payload;
  mysql.replace(1, 32, "8.0.39");
  auto m = warden::ParseMysqlGreeting(mysql);
  REQUIRE(m.ok());
  CHECK(m->server_version == "8.0.39");
  // With a SQLSTATE (a server that knows the client's capabilities).
  auto e = warden::ParseMysqlGreeting(std::string("\xff\x69\x04#HY000Host 'x' is blocked"));
  REQUIRE_FALSE(e.ok());
  CHECK(e.error() == "ERROR 1129: Host 'x' is blocked");
  std::string v9 = payload;
  v9[0] = 9;
  auto old = warden::ParseMysqlGreeting(v9);
  REQUIRE_FALSE(old.ok());
  CHECK(old.error().rfind("protocol version 9, not 10, in \"\\x095.5.5-10.11.19-\"...", 0) == 0);
  CHECK_FALSE(warden::ParseMysqlGreeting(payload.substr(0, 40)).ok());  // cut after the version
  CHECK_FALSE(warden::ParseMysqlGreeting(std::string("\x0a\x00", 2)).ok());
  CHECK_FALSE(warden::ParseMysqlGreeting("").ok());
}
