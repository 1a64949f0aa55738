#include "checks/tcp.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

namespace warden {
namespace {

using Clock = std::chrono::steady_clock;

std::string HostPort(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

class TcpCheck final : public Check {
 public:
  TcpCheck(std::string host, int port, Duration timeout)
      : host_(std::move(host)), port_(port), timeout_(timeout) {}

  void Run(Runtime& rt, Done done) override {
    RunBlocking(
        rt, "tcp:" + HostPort(host_, port_), timeout_,
        [host = host_, port = port_, timeout = timeout_]() -> Measurement {
          auto ms = TcpConnectTime(host, port, timeout);
          if (!ms) return Measurement::Error(ms.error());
          return Measurement::Number(std::round(*ms * 1000) / 1000);
        },
        std::move(done));
  }

 private:
  const std::string host_;
  const int port_;
  const Duration timeout_;
};

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  std::string host = opts.Required("host", "name or address to connect to");
  std::optional<long long> port;
  if (!opts.Has("port")) {
    opts.Required("port", "TCP port, 1-65535");
  } else {
    port = opts.GetInteger("port", 1, 65535);
  }
  if (host.empty() || !port) return nullptr;
  return std::make_unique<TcpCheck>(host, static_cast<int>(*port), common.timeout);
}

}  // namespace

Expected<double> TcpConnectTime(const std::string& host, int port, Duration timeout) {
  const std::string where = HostPort(host, port);
  auto deadline = Clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    return Expected<double>::Error("cannot resolve " + host + " (for " + where + "): " +
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
          auto left =
              std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
          if (left.count() <= 0) {
            err = ETIMEDOUT;
            break;
          }
          pollfd p{fd, POLLOUT, 0};
          int n = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1'000'000)));
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
    std::chrono::duration<double, std::milli> elapsed = Clock::now() - start;
    close(fd);
    if (err == 0) {
      freeaddrinfo(list);
      return elapsed.count();
    }
    last_error =
        err == ETIMEDOUT ? "timed out after " + FormatDuration(timeout) : std::strerror(err);
    if (Clock::now() >= deadline) break;
  }
  freeaddrinfo(list);
  return Expected<double>::Error("cannot connect to " + where + ": " + last_error);
}

const CheckType kTcpCheckType = {"tcp", "time to connect to host:port in ms", false, &Make};

}  // namespace warden
