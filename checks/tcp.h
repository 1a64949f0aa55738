// type = tcp: the time in ms to connect to host:port (a TCP handshake,
// nothing sent). Non-blocking connect on a worker (lane "tcp:HOST:PORT"),
// trying each address the name resolves to within the check's timeout.
// Refused, unreachable, timed out or unresolvable are errors naming
// host:port.
#pragma once

#include <string>

#include "checks/check.h"

namespace warden {

extern const CheckType kTcpCheckType;

// Worker side, exposed for tests: connects once, returns the connect time.
Expected<double> TcpConnectTime(const std::string& host, int port, Duration timeout);

}  // namespace warden
