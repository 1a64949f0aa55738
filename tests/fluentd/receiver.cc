// A forward-protocol receiver for tests: an independent decoder (msgpack-cxx,
// not the nlohmann encoder wardend uses) that behaves like fluentd 1.15 as
// far as warden cares, and can misbehave on demand.
//
//   fluentd_receiver (--port P | --unix PATH) --out FILE [--control FILE]
//
// --port 0 picks a free port; the port is printed on the first line of
// stdout either way. Every record received is appended to FILE as one JSON
// line: {"tag", "mode" (packed/forward/message), "time_type" (eventtime/
// int/other), "sec", "nsec", "chunk" (or null), "conn", "size_ok",
// "record"}. The control file (re-read for every message and every 100 ms)
// holds one mode:
//   ack          store, and ack chunks that carry the chunk option (default)
//   ack-burst    as ack, but a connection's acks wait until it has sent
//                nothing for 100 ms, then go in one write (many acks in one
//                read on the other side); prints "acks N" on stdout per write
//   noack        read and discard everything, never ack (a hung fluentd:
//                a connection that saw noack stays so; new ones follow the mode)
//   store-noack  store but never ack (lost acks: resends are duplicates)
//   drop:N       close every connection after its first N bytes, storing
//                only the messages complete within them (closes mid-chunk)
//   stall        accept, never read
//   answer-http  store nothing, answer every message with "HTTP/1.1 400 Bad
//                Request" and keep the connection open (a wrong port)
// SIGTERM/SIGINT end it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

std::string g_control;
std::string g_mode = "ack";
std::FILE* g_out = nullptr;

void ReadControl() {
  if (g_control.empty()) return;
  std::ifstream in(g_control);
  std::string line;
  if (in && std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) g_mode = line;
  }
}

long DropAfter() {
  if (g_mode.rfind("drop:", 0) == 0) return std::stol(g_mode.substr(5));
  return -1;
}

nlohmann::json ToJson(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL: return nullptr;
    case msgpack::type::BOOLEAN: return o.via.boolean;
    case msgpack::type::POSITIVE_INTEGER: return o.via.u64;
    case msgpack::type::NEGATIVE_INTEGER: return o.via.i64;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return o.via.f64;
    case msgpack::type::STR: return std::string(o.via.str.ptr, o.via.str.size);
    case msgpack::type::BIN: return {{"$bin", std::string(o.via.bin.ptr, o.via.bin.size)}};
    case msgpack::type::ARRAY: {
      nlohmann::json a = nlohmann::json::array();
      for (uint32_t i = 0; i < o.via.array.size; ++i) a.push_back(ToJson(o.via.array.ptr[i]));
      return a;
    }
    case msgpack::type::MAP: {
      nlohmann::json m = nlohmann::json::object();
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        std::string key = kv.key.type == msgpack::type::STR
                              ? std::string(kv.key.via.str.ptr, kv.key.via.str.size)
                              : ToJson(kv.key).dump();
        m[key] = ToJson(kv.val);
      }
      return m;
    }
    case msgpack::type::EXT: return {{"$ext", o.via.ext.type()}, {"size", o.via.ext.size}};
  }
  return nullptr;
}

struct Conn {
  int fd = -1;
  int id = 0;
  long received = 0;
  bool blackhole = false;   // saw noack: this connection never answers again
  msgpack::unpacker unpacker;
  std::string acks;         // ack-burst: written once the connection is quiet
  size_t ack_count = 0;
  std::chrono::steady_clock::time_point last_read;
};

void Ack(Conn& c, const msgpack::object& chunk) {
  if (g_mode != "ack" && g_mode != "ack-burst") return;
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(1);
  pk.pack(std::string("ack"));
  pk.pack(chunk);
  if (g_mode == "ack-burst") {
    c.acks.append(buf.data(), buf.size());
    c.ack_count++;
    return;
  }
  (void)!::send(c.fd, buf.data(), buf.size(), MSG_NOSIGNAL);
}

// ack-burst: the held acks of a connection quiet for 100 ms, in one write
// (the socket blocks: all of it goes).
void FlushAcks(Conn& c) {
  if (c.ack_count == 0 ||
      std::chrono::steady_clock::now() - c.last_read < std::chrono::milliseconds(100)) {
    return;
  }
  (void)!::send(c.fd, c.acks.data(), c.acks.size(), MSG_NOSIGNAL);
  std::printf("acks %zu\n", c.ack_count);
  std::fflush(stdout);
  c.acks.clear();
  c.ack_count = 0;
}

void Store(const std::string& tag, const char* mode, const msgpack::object& entry,
           const nlohmann::json& chunk, int conn, bool size_ok) {
  nlohmann::json line = {{"tag", tag}, {"mode", mode}, {"chunk", chunk}, {"conn", conn},
                         {"size_ok", size_ok}};
  if (entry.type != msgpack::type::ARRAY || entry.via.array.size != 2) {
    line["error"] = "entry is not [time, record]";
    line["raw"] = ToJson(entry);
  } else {
    const msgpack::object& t = entry.via.array.ptr[0];
    if (t.type == msgpack::type::EXT && t.via.ext.type() == 0 && t.via.ext.size == 8) {
      const auto* p = reinterpret_cast<const unsigned char*>(t.via.ext.data());
      uint32_t sec = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
      uint32_t nsec = (uint32_t(p[4]) << 24) | (uint32_t(p[5]) << 16) | (uint32_t(p[6]) << 8) | p[7];
      line["time_type"] = "eventtime";
      line["sec"] = sec;
      line["nsec"] = nsec;
    } else if (t.type == msgpack::type::POSITIVE_INTEGER) {
      line["time_type"] = "int";
      line["sec"] = t.via.u64;
      line["nsec"] = 0;
    } else {
      line["time_type"] = "other";
      line["raw_time"] = ToJson(t);
    }
    line["record"] = ToJson(entry.via.array.ptr[1]);
  }
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(text.data(), 1, text.size(), g_out);
}

// One complete forward-protocol message. Returns false on a protocol error
// (the connection is closed, as fluentd does for invalid msgpack).
bool Handle(Conn& c, const msgpack::object& msg) {
  ReadControl();
  if (g_mode == "noack") c.blackhole = true;
  if (c.blackhole) return true;
  if (g_mode == "answer-http") {
    static const char kAnswer[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    (void)!::send(c.fd, kAnswer, sizeof kAnswer - 1, MSG_NOSIGNAL);
    return true;
  }
  if (msg.type != msgpack::type::ARRAY || msg.via.array.size < 2 ||
      msg.via.array.ptr[0].type != msgpack::type::STR) {
    std::fprintf(stderr, "receiver: conn %d: not a forward message\n", c.id);
    return false;
  }
  const auto* el = msg.via.array.ptr;
  std::string tag(el[0].via.str.ptr, el[0].via.str.size);
  const msgpack::object* option = nullptr;
  const msgpack::object& second = el[1];
  std::vector<msgpack::object_handle> holders;
  std::vector<msgpack::object> entries;
  const char* mode = "message";
  if (second.type == msgpack::type::STR || second.type == msgpack::type::BIN) {
    mode = "packed";
    const char* data = second.type == msgpack::type::STR ? second.via.str.ptr : second.via.bin.ptr;
    size_t size = second.type == msgpack::type::STR ? second.via.str.size : second.via.bin.size;
    size_t off = 0;
    while (off < size) {
      try {
        holders.push_back(msgpack::unpack(data, size, off));
        entries.push_back(holders.back().get());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "receiver: conn %d: truncated packed entries: %s\n", c.id, e.what());
        break;
      }
    }
    if (msg.via.array.size > 2) option = &el[2];
  } else if (second.type == msgpack::type::ARRAY) {
    mode = "forward";
    for (uint32_t i = 0; i < second.via.array.size; ++i) entries.push_back(second.via.array.ptr[i]);
    if (msg.via.array.size > 2) option = &el[2];
  } else {
    if (msg.via.array.size < 3) return false;
    msgpack::object pair[2] = {el[1], el[2]};
    msgpack::object entry;
    entry.type = msgpack::type::ARRAY;
    entry.via.array.size = 2;
    entry.via.array.ptr = pair;
    entries.push_back(entry);
    if (msg.via.array.size > 3) option = &el[3];
    nlohmann::json chunk = nullptr;
    // Store needs pair alive: do it here.
    const msgpack::object* chunk_obj = nullptr;
    if (option && option->type == msgpack::type::MAP) {
      for (uint32_t i = 0; i < option->via.map.size; ++i) {
        const auto& kv = option->via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR && std::string(kv.key.via.str.ptr, kv.key.via.str.size) == "chunk") {
          chunk_obj = &kv.val;
          chunk = ToJson(kv.val);
        }
      }
    }
    Store(tag, mode, entry, chunk, c.id, true);
    std::fflush(g_out);
    if (chunk_obj) Ack(c, *chunk_obj);
    return true;
  }
  nlohmann::json chunk = nullptr;
  const msgpack::object* chunk_obj = nullptr;
  bool size_ok = true;
  if (option && option->type == msgpack::type::MAP) {
    for (uint32_t i = 0; i < option->via.map.size; ++i) {
      const auto& kv = option->via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) continue;
      std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
      if (key == "chunk") {
        chunk_obj = &kv.val;
        chunk = ToJson(kv.val);
      } else if (key == "size") {
        size_ok = kv.val.type == msgpack::type::POSITIVE_INTEGER && kv.val.via.u64 == entries.size();
      }
    }
  }
  for (const auto& e : entries) Store(tag, mode, e, chunk, c.id, size_ok);
  std::fflush(g_out);
  if (chunk_obj) Ack(c, *chunk_obj);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int port = -1;
  std::string unix_path, out_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--port") port = std::atoi(argv[i + 1]);
    else if (a == "--unix") unix_path = argv[i + 1];
    else if (a == "--out") out_path = argv[i + 1];
    else if (a == "--control") g_control = argv[i + 1];
    else {
      std::fprintf(stderr, "receiver: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (out_path.empty() || (port < 0 && unix_path.empty())) {
    std::fprintf(stderr, "usage: fluentd_receiver (--port P | --unix PATH) --out FILE [--control FILE]\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  g_out = std::fopen(out_path.c_str(), "a");
  if (!g_out) {
    std::perror("receiver: --out");
    return 1;
  }
  int lfd;
  if (!unix_path.empty()) {
    lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strncpy(un.sun_path, unix_path.c_str(), sizeof un.sun_path - 1);
    ::unlink(unix_path.c_str());
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&un), sizeof un) != 0) {
      std::perror("receiver: bind");
      return 1;
    }
    std::printf("0\n");
  } else {
    lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<uint16_t>(port));
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0) {
      std::perror("receiver: bind");
      return 1;
    }
    socklen_t len = sizeof in;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&in), &len);
    std::printf("%d\n", ntohs(in.sin_port));
  }
  // Listen before the port is told: a client that reads it and connects at
  // once must not be refused (it was, now and then, under load).
  if (::listen(lfd, 64) != 0) {
    std::perror("receiver: listen");
    return 1;
  }
  std::fflush(stdout);

  std::map<int, std::unique_ptr<Conn>> conns;
  int next_id = 1;
  std::vector<char> buf(1 << 16);
  while (!g_stop) {
    ReadControl();
    std::vector<pollfd> fds;
    fds.push_back({lfd, POLLIN, 0});
    bool stall = g_mode == "stall";
    bool acks_held = false;
    for (auto& [fd, c] : conns) {
      fds.push_back({fd, static_cast<short>(stall ? 0 : POLLIN), 0});
      acks_held = acks_held || c->ack_count > 0;
    }
    int n = ::poll(fds.data(), fds.size(), acks_held ? 10 : 100);
    for (auto& [fd, c] : conns) FlushAcks(*c);
    if (n <= 0) continue;
    if (fds[0].revents & POLLIN) {
      int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        c->id = next_id++;
        conns[fd] = std::move(c);
      }
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Conn& c = *conns[fds[i].fd];
      ssize_t got = ::recv(c.fd, buf.data(), buf.size(), 0);
      bool close_it = got <= 0;
      c.last_read = std::chrono::steady_clock::now();
      if (got > 0) {
        long limit = DropAfter();
        size_t use = static_cast<size_t>(got);
        if (limit >= 0 && c.received + got >= limit) {
          use = static_cast<size_t>(std::max<long>(0, limit - c.received));
          close_it = true;
        }
        c.received += got;
        c.unpacker.reserve_buffer(use);
        std::memcpy(c.unpacker.buffer(), buf.data(), use);
        c.unpacker.buffer_consumed(use);
        try {
          msgpack::object_handle oh;
          while (c.unpacker.next(oh)) {
            if (!Handle(c, oh.get())) {
              close_it = true;
              break;
            }
          }
        } catch (const std::exception& e) {
          std::fprintf(stderr, "receiver: conn %d: invalid msgpack: %s\n", c.id, e.what());
          close_it = true;
        }
      }
      if (close_it) {
        ::close(c.fd);
        conns.erase(fds[i].fd);
      }
    }
  }
  for (auto& [fd, c] : conns) ::close(fd);
  std::fclose(g_out);
  if (!unix_path.empty()) ::unlink(unix_path.c_str());
  return 0;
}
