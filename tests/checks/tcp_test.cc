#include "checks/tcp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "check_test_util.h"
#include "local_socket.h"

using warden::Duration;
using warden::Measurement;
using warden::test::Harness;
using warden::test::LocalSocket;
using warden::test::MakeCheck;
using warden::test::Show;

namespace {

Measurement RunTcp(Harness& h, int port, const std::string& timeout = "5s") {
  warden::CheckCommon common;
  common.timeout = *warden::ParseDuration(timeout);
  auto built = MakeCheck("tcp", {{"host", "127.0.0.1"}, {"port", std::to_string(port)}}, common);
  REQUIRE(built.errors.empty());
  return h.Run(*built.check);
}

}  // namespace

TEST_CASE("tcp measures the connect time to a listener", "[checks][tcp]") {
  Harness h;
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
  Harness h;
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
  Harness h;
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
