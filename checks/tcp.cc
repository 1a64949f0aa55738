#include "checks/tcp.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace warden {
namespace {

using Clock = std::chrono::steady_clock;

// The longest first packet taken for a greeting: real ones are about 100
// bytes; a length beyond this is some other protocol's bytes.
constexpr std::size_t kMaxGreeting = 4096;

std::string HostPort(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// Milliseconds left until `deadline`, at least 0, for poll().
int MsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<long long>(left.count(), 0, 1'000'000));
}

struct Connected {
  int fd = -1;
  Clock::time_point start;  // when the connect that succeeded began
};

// A connected non-blocking socket to host:port (the first address that
// answers before `deadline`), or the error naming host:port.
Expected<Connected> Connect(const std::string& host, int port, Duration timeout,
                            Clock::time_point deadline) {
  const std::string where = HostPort(host, port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    return Expected<Connected>::Error("cannot resolve " + host + " (for " + where + "): " +
                                      (rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc)));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    auto start = Clock::now();
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        err = 0;
        for (;;) {
          if (Clock::now() >= deadline) {
            err = ETIMEDOUT;
            break;
          }
          pollfd p{fd, POLLOUT, 0};
          int n = poll(&p, 1, MsLeft(deadline));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            err = errno;
            break;
          }
          if (n == 0) continue;  // re-check the deadline
          socklen_t len = sizeof err;
          if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
          break;
        }
      }
    }
    if (err == 0) {
      freeaddrinfo(list);
      return Connected{fd, start};
    }
    close(fd);
    last_error =
        err == ETIMEDOUT ? "timed out after " + FormatDuration(timeout) : std::strerror(err);
    if (Clock::now() >= deadline) break;
  }
  freeaddrinfo(list);
  return Expected<Connected>::Error("cannot connect to " + where + ": " + last_error);
}

// Up to 16 bytes for a message: printable ASCII as is, the rest as \xNN.
std::string Excerpt(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes.substr(0, 16)) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return "\"" + out + (bytes.size() > 16 ? "\"..." : "\"");
}

// Reads the server's first packet from connected `fd` until `deadline`:
// its payload, or why there is none.
Expected<std::string> ReadFirstPacket(int fd, const std::string& where, Duration timeout,
                                      Clock::time_point deadline) {
  std::string got;
  for (;;) {
    if (got.size() >= 4) {
      std::size_t len = static_cast<unsigned char>(got[0]) |
                        static_cast<unsigned char>(got[1]) << 8 |
                        static_cast<std::size_t>(static_cast<unsigned char>(got[2])) << 16;
      if (got[3] != 0 || len == 0 || len > kMaxGreeting) {
        return Expected<std::string>::Error(where + " does not speak MySQL: it sent " +
                                            Excerpt(got));
      }
      if (got.size() >= 4 + len) return got.substr(4, len);
    }
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      got.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) {
      return Expected<std::string>::Error(
          where + (got.empty()
                       ? " closed the connection without a MySQL greeting"
                       : " closed the connection inside its greeting, after " + Excerpt(got)));
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Expected<std::string>::Error("no MySQL greeting from " + where + ": " +
                                          std::strerror(errno));
    }
    if (Clock::now() >= deadline) {
      return Expected<std::string>::Error("no MySQL greeting from " + where + ": timed out after " +
                                          FormatDuration(timeout));
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, MsLeft(deadline)) < 0 && errno != EINTR) {
      return Expected<std::string>::Error("no MySQL greeting from " + where + ": " +
                                          std::strerror(errno));
    }
  }
}

class TcpCheck final : public Check {
 public:
  TcpCheck(std::string host, int port, bool mysql, Duration timeout)
      : host_(std::move(host)), port_(port), mysql_(mysql), timeout_(timeout) {}

  void Run(Runtime& rt, Done done) override {
    RunBlocking(
        rt, "tcp:" + HostPort(host_, port_), timeout_,
        [host = host_, port = port_, mysql = mysql_, timeout = timeout_]() -> Measurement {
          double ms = 0;
          if (mysql) {
            auto greeting = MysqlGreetingTime(host, port, timeout);
            if (!greeting) return Measurement::Error(greeting.failure());
            ms = greeting->ms;
          } else {
            auto connect = TcpConnectTime(host, port, timeout);
            if (!connect) return Measurement::Error(connect.failure());
            ms = *connect;
          }
          return Measurement::Number(std::round(ms * 1000) / 1000);
        },
        std::move(done));
  }

 private:
  const std::string host_;
  const int port_;
  const bool mysql_;
  const Duration timeout_;
};

constexpr const char* kProtocols[] = {"none", "mysql"};
constexpr OptionSpec kOptions[] = {
    opt::Text("host", "name or address to connect to").Required(),
    opt::Integer("port", 1, 65535, "TCP port, 1-65535").Required(),
    opt::Choice("protocol", kProtocols,
                "none: the connect time; mysql: the time to the server's greeting, which must be "
                "MySQL's")
        .Default("none"),
};

constexpr const char* kExample = R"([check haproxy_stats]
type  = tcp
host  = 127.0.0.1
port  = 8404
crit  = > 500
)";

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  auto host = opts.Text("host");
  auto port = opts.GetInteger("port");
  auto protocol = opts.GetChoice("protocol");
  if (!host || !port || !protocol) return nullptr;
  return std::make_unique<TcpCheck>(*host, static_cast<int>(*port), *protocol == "mysql",
                                    common.timeout);
}

}  // namespace

Expected<double> TcpConnectTime(const std::string& host, int port, Duration timeout) {
  auto c = Connect(host, port, timeout, Clock::now() + timeout);
  if (!c) return c.failure();
  std::chrono::duration<double, std::milli> elapsed = Clock::now() - c->start;
  close(c->fd);
  return elapsed.count();
}

Expected<MysqlGreeting> ParseMysqlGreeting(std::string_view payload) {
  using E = Expected<MysqlGreeting>;
  if (payload.empty()) return E::Error("an empty packet");
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(payload[i]); };
  if (byte(0) == 0xff) {
    // An error packet instead of a greeting: code, [#SQLSTATE], message.
    if (payload.size() < 3) return E::Error("a truncated error packet");
    int code = byte(1) | byte(2) << 8;
    std::string_view message = payload.substr(3);
    if (message.size() >= 6 && message[0] == '#') message.remove_prefix(6);
    return E::Error("ERROR " + std::to_string(code) + ": " + std::string(message));
  }
  if (byte(0) != 10) {
    return E::Error("protocol version " + std::to_string(byte(0)) + ", not 10, in " +
                    Excerpt(payload));
  }
  std::size_t nul = payload.find('\0', 1);
  // After the version: thread id (4), scramble (8), a filler 0, capabilities.
  if (nul == std::string_view::npos || nul == 1 || payload.size() < nul + 1 + 13 + 2 ||
      byte(nul + 13) != 0) {
    return E::Error("not a greeting: " + Excerpt(payload));
  }
  std::string_view version = payload.substr(1, nul - 1);
  for (unsigned char c : version) {
    if (c < 0x20 || c >= 0x7f) return E::Error("not a greeting: " + Excerpt(payload));
  }
  constexpr std::string_view kCompat = "5.5.5-";
  if (version.size() > kCompat.size() && version.substr(0, kCompat.size()) == kCompat) {
    version.remove_prefix(kCompat.size());
  }
  MysqlGreeting g;
  g.protocol = 10;
  g.server_version = std::string(version);
  return g;
}

Expected<MysqlGreeting> MysqlGreetingTime(const std::string& host, int port, Duration timeout) {
  using E = Expected<MysqlGreeting>;
  auto deadline = Clock::now() + timeout;
  auto c = Connect(host, port, timeout, deadline);
  if (!c) return c.failure();
  const std::string where = HostPort(host, port);
  auto packet = ReadFirstPacket(c->fd, where, timeout, deadline);
  std::chrono::duration<double, std::milli> elapsed = Clock::now() - c->start;
  // Nothing to say: the server counts the connection as aborted whatever a
  // client without credentials sends (docs/behaviour.md).
  close(c->fd);
  if (!packet) return packet.failure();
  auto greeting = ParseMysqlGreeting(*packet);
  if (!greeting) {
    bool refused = !packet->empty() && static_cast<unsigned char>((*packet)[0]) == 0xff;
    return E::Error(where + (refused ? " refused the connection: " : " does not speak MySQL: ") +
                    greeting.error());
  }
  greeting->ms = elapsed.count();
  return greeting;
}

const CheckType kTcpCheckType = {
    "tcp", "time to connect to host:port in ms (protocol = mysql: to the server's greeting)", false,
    kOptions, kExample, &Make};

}  // namespace warden
