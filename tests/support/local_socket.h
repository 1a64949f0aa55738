// A TCP socket bound to 127.0.0.1 on a free port, for check tests that need
// a peer: listening (a server that accepts and may never answer), or only
// bound (connects are refused); and a free port number alone.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace warden::testing {

// Listening if backlog >= 0; closed with the object.
struct LocalSocket {
  int fd = -1;
  int port = 0;
  explicit LocalSocket(int backlog) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
    if (backlog >= 0) REQUIRE(listen(fd, backlog) == 0);
  }
  ~LocalSocket() {
    if (fd >= 0) close(fd);
  }
  LocalSocket(const LocalSocket&) = delete;
  LocalSocket& operator=(const LocalSocket&) = delete;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound, then closed):
// for a server about to start there, or as a port where nothing listens.
inline int FreeLoopbackPort() { return LocalSocket(-1).port; }

}  // namespace warden::testing
