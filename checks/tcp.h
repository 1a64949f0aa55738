// type = tcp: the time in ms to connect to host:port. Non-blocking connect
// on a worker (lane "tcp:HOST:PORT"), trying each address the name resolves
// to within the check's timeout. Refused, unreachable, timed out or
// unresolvable are errors naming host:port.
//
// protocol = none (the default): a TCP handshake, nothing sent or read.
// protocol = mysql: then reads the server's greeting (the first packet of
// the MySQL protocol, within the same timeout) and requires protocol
// version 10; the value is the time until the greeting. An error packet in
// its place (Too many connections, host blocked) or anything that is not a
// greeting is an error. Nothing is sent: without credentials no answer
// ends the handshake cleanly, so MySQL and MariaDB count every probe of
// either protocol in Aborted_connects and MariaDB logs a warning for it
// (docs/behaviour.md, "tcp checks and MySQL's port"). mysql_ping logs in
// and says QUIT.
#pragma once

#include <string>
#include <string_view>

#include "checks/check.h"

namespace warden {

extern const CheckType kTcpCheckType;

// Worker side, exposed for tests: connects once, returns the connect time.
Expected<double> TcpConnectTime(const std::string& host, int port, Duration timeout);

// What a MySQL server's greeting says of it.
struct MysqlGreeting {
  int protocol = 0;
  // As the server sends it, less the "5.5.5-" that MariaDB puts in front
  // for old clients (what SELECT VERSION() says).
  std::string server_version;
  double ms = 0;  // from the start of the connect to the whole greeting
};

// The payload of the server's first packet (header removed) as a greeting,
// or what it is instead (an error packet's code and message, or not MySQL).
Expected<MysqlGreeting> ParseMysqlGreeting(std::string_view payload);

// Worker side of protocol = mysql: connects, reads the greeting and closes,
// all within `timeout`.
Expected<MysqlGreeting> MysqlGreetingTime(const std::string& host, int port, Duration timeout);

}  // namespace warden
