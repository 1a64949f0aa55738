// journald's native protocol (daemon/io/journal.cc): the encoding, checked
// byte for byte and by a decoder written here from systemd's description of
// the protocol, and the non-blocking sender against a socket the test binds.
#include "daemon/io/journal.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

using namespace warden;
using warden::testing::TempDir;

namespace {

// KEY=value\n, or KEY\n + le64 size + data + \n. Fails the test on anything
// else.
std::vector<std::pair<std::string, std::string>> Decode(const std::string& d) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  while (i < d.size()) {
    std::size_t nl = d.find('\n', i);
    REQUIRE(nl != std::string::npos);
    std::size_t eq = d.find('=', i);
    if (eq != std::string::npos && eq < nl) {
      out.emplace_back(d.substr(i, eq - i), d.substr(eq + 1, nl - eq - 1));
      i = nl + 1;
      continue;
    }
    std::string name = d.substr(i, nl - i);
    i = nl + 1;
    REQUIRE(i + 8 <= d.size());
    std::uint64_t n = 0;
    for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(d[i + k]);
    i += 8;
    REQUIRE(i + n + 1 <= d.size());
    out.emplace_back(name, d.substr(i, n));
    i += n;
    REQUIRE(d[i] == '\n');
    ++i;
  }
  return out;
}

std::map<std::string, std::string> AsMap(const std::string& d) {
  std::map<std::string, std::string> m;
  for (auto& [k, v] : Decode(d)) m[k] = v;
  return m;
}

// A bound unix datagram socket in journald's place.
struct Receiver {
  TempDir dir;
  std::string path = dir / "journal.sock";
  int fd = -1;
  explicit Receiver(int rcvbuf = 0) {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_un a {};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size());
    REQUIRE(::bind(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof a) == 0);
  }
  ~Receiver() { ::close(fd); }
  // The next datagram, "" when none is waiting.
  std::string Next() {
    std::string buf(256 * 1024, '\0');
    ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) return "";
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }
};

}  // namespace

TEST_CASE("journal: a field without a newline is KEY=value", "[journal]") {
  std::string out;
  AppendJournalField(out, "MESSAGE", "check disk: ok -> crit");
  CHECK(out == "MESSAGE=check disk: ok -> crit\n");
  out.clear();
  AppendJournalField(out, "WARDEN_VALUE", "a=b");   // '=' in a value is plain data
  CHECK(out == "WARDEN_VALUE=a=b\n");
  out.clear();
  AppendJournalField(out, "EMPTY", "");
  CHECK(out == "EMPTY=\n");
}

TEST_CASE("journal: a value with newlines takes the binary form", "[journal]") {
  std::string out;
  AppendJournalField(out, "MESSAGE", "line one\nline two");
  std::string expected = "MESSAGE\n";
  expected += std::string("\x11\0\0\0\0\0\0\0", 8);   // 17, little-endian
  expected += "line one\nline two\n";
  CHECK(out == expected);
  // Bytes of any value survive, NULs and all.
  std::string binary("a\n\0b=\n", 6);
  out.clear();
  AppendJournalField(out, "X", binary);
  auto fields = Decode(out);
  REQUIRE(fields.size() == 1);
  CHECK(fields[0].first == "X");
  CHECK(fields[0].second == binary);
}

TEST_CASE("journal: field names", "[journal]") {
  CHECK(ValidJournalFieldName("MESSAGE"));
  CHECK(ValidJournalFieldName("WARDEN_SEQ"));
  CHECK(ValidJournalFieldName("A1"));
  CHECK_FALSE(ValidJournalFieldName(""));
  CHECK_FALSE(ValidJournalFieldName("_PID"));          // journald's own, trusted
  CHECK_FALSE(ValidJournalFieldName("1ST"));
  CHECK_FALSE(ValidJournalFieldName("message"));
  CHECK_FALSE(ValidJournalFieldName("WARDEN-SEQ"));
  CHECK_FALSE(ValidJournalFieldName(std::string(65, 'A')));
  CHECK(ValidJournalFieldName(std::string(64, 'A')));
}

TEST_CASE("journal: an entry has MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and its fields", "[journal]") {
  std::string d = EncodeJournalEntry(JournalPriority::kErr, "wardend", "cannot save state:\nEROFS",
                                     {{"WARDEN_EVENT", "check.state"},
                                      {"bad name", "left out"},
                                      {"WARDEN_SEQ", "12"}});
  auto fields = Decode(d);
  REQUIRE(fields.size() == 5);
  CHECK(fields[0] == std::pair<std::string, std::string>{"MESSAGE", "cannot save state:\nEROFS"});
  CHECK(fields[1] == std::pair<std::string, std::string>{"PRIORITY", "3"});
  CHECK(fields[2] == std::pair<std::string, std::string>{"SYSLOG_IDENTIFIER", "wardend"});
  CHECK(fields[3] == std::pair<std::string, std::string>{"WARDEN_EVENT", "check.state"});
  CHECK(fields[4] == std::pair<std::string, std::string>{"WARDEN_SEQ", "12"});
}

TEST_CASE("journal: long messages are cut on a character boundary", "[journal]") {
  CHECK(CutJournalMessage("short", 10) == "short");
  // "é" is two bytes: a cut at 4 would split the second one.
  std::string m = "aaa\xc3\xa9zzzz";
  CHECK(CutJournalMessage(m, 4) == "aaa [... 6 bytes cut]");
  CHECK(CutJournalMessage(m, 5) == "aaa\xc3\xa9 [... 4 bytes cut]");
}

TEST_CASE("journal: JOURNAL_STREAM must name the descriptor's file", "[journal]") {
  TempDir dir;
  std::string path = dir / "stderr";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  struct stat sb {};
  REQUIRE(::fstat(fd, &sb) == 0);
  std::string mine = std::to_string(sb.st_dev) + ":" + std::to_string(sb.st_ino);
  CHECK(FdIsJournalStream(mine.c_str(), fd));
  std::string other = std::to_string(sb.st_dev) + ":" + std::to_string(sb.st_ino + 1);
  CHECK_FALSE(FdIsJournalStream(other.c_str(), fd));
  CHECK_FALSE(FdIsJournalStream(nullptr, fd));
  CHECK_FALSE(FdIsJournalStream("", fd));
  CHECK_FALSE(FdIsJournalStream("garbage", fd));
  CHECK_FALSE(FdIsJournalStream((mine + "x").c_str(), fd));
  ::close(fd);
}

TEST_CASE("journal: the sender's datagrams reach the socket", "[journal]") {
  Receiver r;
  JournalSender s(r.path, "wardend");
  CHECK(s.Send(JournalPriority::kWarning, "mutex held: maintenance",
               {{"WARDEN_EVENT", "mutex.state"}}) == JournalSender::Result::kSent);
  auto m = AsMap(r.Next());
  CHECK(m["MESSAGE"] == "mutex held: maintenance");
  CHECK(m["PRIORITY"] == "4");
  CHECK(m["SYSLOG_IDENTIFIER"] == "wardend");
  CHECK(m["WARDEN_EVENT"] == "mutex.state");

  // A message above kMaxMessage is cut, and still one datagram.
  std::string big(JournalSender::kMaxMessage + 1000, 'x');
  CHECK(s.Send(JournalPriority::kInfo, big) == JournalSender::Result::kSent);
  m = AsMap(r.Next());
  CHECK(m["MESSAGE"].size() < JournalSender::kMaxMessage + 40);
  CHECK(m["MESSAGE"].find("[... 1000 bytes cut]") != std::string::npos);
  CHECK(s.stats().sent == 2);
}

TEST_CASE("journal: no journald is a failure that says the path", "[journal]") {
  TempDir dir;
  JournalSender s(dir / "none.sock", "wardend");
  auto sent = s.Send(JournalPriority::kInfo, "x", {});
  REQUIRE_FALSE(sent.ok());
  CHECK(sent.code() == StatusCode::kNotFound);
  const std::string& error = sent.error();
  CHECK(error.find(dir / "none.sock") != std::string::npos);
  CHECK(error.find("No such file") != std::string::npos);
  CHECK(s.stats().failed == 1);
  CHECK(s.stats().last_error == error);
}

TEST_CASE("journal: a full socket drops without waiting, and says so later", "[journal]") {
  Receiver r(4096);   // nobody reads: it fills after a few entries
  JournalSender s(r.path, "wardend");
  std::string line(1000, 'y');
  int sent = 0;
  for (int i = 0; i < 10000 && s.stats().dropped < 3; ++i) {
    if (s.Send(JournalPriority::kInfo, line) == JournalSender::Result::kSent) ++sent;
  }
  REQUIRE(s.stats().dropped == 3);
  REQUIRE(sent > 0);
  // journald reads again: the next entry is preceded by the count.
  for (int i = 0; i < sent; ++i) CHECK(AsMap(r.Next())["MESSAGE"] == line);
  CHECK(r.Next().empty());
  CHECK(s.Send(JournalPriority::kInfo, "after") == JournalSender::Result::kSent);
  auto note = AsMap(r.Next());
  CHECK(note["MESSAGE"] == "journald's socket was full: 3 log entries dropped");
  CHECK(note["PRIORITY"] == "4");
  CHECK(AsMap(r.Next())["MESSAGE"] == "after");
  CHECK(s.stats().dropped == 3);
  CHECK(s.stats().failed == 0);
}
