// A real etcd (Debian's etcd-server, /usr/bin/etcd) for unit tests: one
// member on loopback, in a temporary directory, on free ports; stopped (and
// its directory removed) on destruction. Also a canned HTTP server for the
// answers a healthy etcd never gives (error bodies, garbage, silence), and a
// small private PKI for TLS tests.
//
// The helpers here block (libcurl easy API, threads): tests only.
#pragma once

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "daemon/io/etcd_client.h"
#include "tests/support/local_socket.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace warden::testing {

inline constexpr const char* kEtcdBinary = "/usr/bin/etcd";

struct BlockingAnswer {
  long status = 0;  // 0: no answer (error says why)
  std::string body;
  std::string error;
};

struct TlsFiles {
  std::string ca, cert, key;  // for a client: CA, client certificate, its key
};

// One blocking POST with libcurl (never through the code under test).
inline BlockingAnswer BlockingPost(const std::string& url, const std::string& body,
                                   const TlsFiles* tls = nullptr, long timeout_ms = 5000) {
  BlockingAnswer out;
  CURL* e = curl_easy_init();
  if (e == nullptr) {
    out.error = "curl_easy_init";
    return out;
  }
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  if (tls != nullptr) {
    curl_easy_setopt(e, CURLOPT_CAINFO, tls->ca.c_str());
    if (!tls->cert.empty()) curl_easy_setopt(e, CURLOPT_SSLCERT, tls->cert.c_str());
    if (!tls->key.empty()) curl_easy_setopt(e, CURLOPT_SSLKEY, tls->key.c_str());
  }
  curl_easy_setopt(
      e, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* user) {
        static_cast<std::string*>(user)->append(data, size * n);
        return size * n;
      });
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &out.body);
  CURLcode rc = curl_easy_perform(e);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out.status);
  } else {
    out.error = curl_easy_strerror(rc);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(e);
  return out;
}

// A CA, a server certificate for 127.0.0.1 and a client certificate, all
// signed by the CA, written into `dir` (openssl, about a second).
struct TestPki {
  std::string ca, server_cert, server_key, client_cert, client_key;
};

inline TestPki MakeTestPki(const std::string& dir) {
  TestPki p{dir + "/ca.pem",          dir + "/server.pem", dir + "/server.key",
            dir + "/client.pem",      dir + "/client.key"};
  std::string q = " >/dev/null 2>&1";
  std::string ext = dir + "/san.ext";
  std::string cmd =
      "set -e; cd " + dir +
      "; openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=warden-test-ca"
      " -keyout ca.key -out ca.pem" + q +
      "; printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > " +
      ext +
      "; openssl req -new -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key"
      " -out server.csr" + q +
      "; openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
      " -extfile " + ext + " -out server.pem" + q +
      "; openssl req -new -newkey rsa:2048 -nodes -subj /CN=warden-client -keyout client.key"
      " -out client.csr" + q +
      "; openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
      " -extfile " + ext + " -out client.pem" + q;
  REQUIRE(std::system(cmd.c_str()) == 0);
  return p;
}

// One etcd member on 127.0.0.1. Start() blocks until it answers (or fails
// the test); Stop() terminates it and waits. The data survives a restart.
class EtcdTestServer {
 public:
  struct Options {
    bool start = true;
    // TLS on the client port, clients must present a certificate from the CA.
    const TestPki* tls = nullptr;
  };

  EtcdTestServer() : EtcdTestServer(Options{}) {}
  explicit EtcdTestServer(Options options)
      : options_(options),
        client_port_(FreeLoopbackPort()),
        peer_port_(FreeLoopbackPort()) {
    if (options_.tls) {
      client_tls_ = {options_.tls->ca, options_.tls->client_cert, options_.tls->client_key};
    }
    if (options_.start) Start();
  }
  ~EtcdTestServer() { Stop(); }
  EtcdTestServer(const EtcdTestServer&) = delete;
  EtcdTestServer& operator=(const EtcdTestServer&) = delete;

  static bool Available() { return ::access(kEtcdBinary, X_OK) == 0; }

  std::string endpoint() const {
    return std::string(options_.tls ? "https" : "http") + "://127.0.0.1:" +
           std::to_string(client_port_);
  }
  const std::string& dir() const { return dir_.path(); }
  bool running() const { return pid_ > 0; }

  void Start() {
    REQUIRE(Available());
    REQUIRE(pid_ <= 0);
    std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {
        kEtcdBinary,
        "--name", "warden-test",
        "--data-dir", dir_ / "data",
        "--listen-client-urls", endpoint(),
        "--advertise-client-urls", endpoint(),
        "--listen-peer-urls", peer,
        "--initial-advertise-peer-urls", peer,
        "--initial-cluster", "warden-test=" + peer,
        "--initial-cluster-state", "new",
        "--initial-cluster-token", "warden-test-" + std::to_string(client_port_),
    };
    if (options_.tls) {
      for (const std::string& a :
           {std::string("--cert-file"), options_.tls->server_cert, std::string("--key-file"),
            options_.tls->server_key, std::string("--client-cert-auth"),
            std::string("--trusted-ca-file"), options_.tls->ca}) {
        args.push_back(a);
      }
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    std::string log = dir_ / "etcd.log";
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    int rc = posix_spawn(&pid_, kEtcdBinary, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (true) {
      BlockingAnswer a = Post("/v3/kv/range", R"({"key":"AA=="})", 1000);
      if (a.status == 200) break;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_ ||
          std::chrono::steady_clock::now() > deadline) {
        pid_ = -1;
        FAIL("etcd did not start; see " << log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (true) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      // ECHILD: libev's SIGCHLD watcher on EV_DEFAULT reaped it.
      if (r == pid_ || (r < 0 && errno == ECHILD)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }

  // Direct gateway calls (independent of EtcdClient).
  BlockingAnswer Post(const std::string& path, const std::string& body,
                      long timeout_ms = 5000) const {
    return BlockingPost(endpoint() + path, body, options_.tls ? &client_tls_ : nullptr,
                        timeout_ms);
  }
  void Put(const std::string& key, const std::string& value) const {
    nlohmann::json body = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
    BlockingAnswer a = Post("/v3/kv/put", body.dump());
    INFO(a.body << a.error);
    REQUIRE(a.status == 200);
  }
  void Delete(const std::string& key) const {
    nlohmann::json body = {{"key", Base64Encode(key)}};
    BlockingAnswer a = Post("/v3/kv/deleterange", body.dump());
    INFO(a.body << a.error);
    REQUIRE(a.status == 200);
  }
  // The value, or nullopt when the key does not exist.
  std::optional<std::string> Get(const std::string& key) const {
    nlohmann::json body = {{"key", Base64Encode(key)}};
    BlockingAnswer a = Post("/v3/kv/range", body.dump());
    INFO(a.body << a.error);
    REQUIRE(a.status == 200);
    auto doc = nlohmann::json::parse(a.body);
    if (!doc.contains("kvs")) return std::nullopt;
    return Base64Decode(doc["kvs"][0].value("value", "")).value_or("?");
  }
  // header.cluster_id as the gateway prints it (decimal).
  std::string ClusterId() const {
    BlockingAnswer a = Post("/v3/kv/range", R"({"key":"AA=="})");
    REQUIRE(a.status == 200);
    return nlohmann::json::parse(a.body)["header"]["cluster_id"].get<std::string>();
  }

 private:
  Options options_;
  TempDir dir_;
  int client_port_;
  int peer_port_;
  TlsFiles client_tls_;
  pid_t pid_ = -1;
};

// An HTTP/1.1 server on 127.0.0.1 (a thread) that answers every request with
// the same canned response, for the answers a healthy etcd never gives.
class CannedHttpServer {
 public:
  enum class Mode {
    kAnswer,  // status + body
    kHang,    // read the request, never answer (the connection stays open)
    kClose,   // read the request, close without a word
  };

  CannedHttpServer() {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(listener_, 16) == 0);
    socklen_t len = sizeof a;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedHttpServer() {
    stop_ = true;
    thread_.join();
    close(listener_);
    for (int fd : held_) close(fd);
  }
  CannedHttpServer(const CannedHttpServer&) = delete;
  CannedHttpServer& operator=(const CannedHttpServer&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void Set(Mode mode, int status = 200, std::string body = "") {
    std::lock_guard<std::mutex> lock(mu_);
    mode_ = mode;
    status_ = status;
    body_ = std::move(body);
  }
  void Answer(int status, std::string body) { Set(Mode::kAnswer, status, std::move(body)); }

  int requests() const { return requests_.load(); }
  // Request bodies received so far.
  std::vector<std::string> bodies() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 50) != 1) continue;
      int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Handle(fd);
    }
  }

  void Handle(int fd) {
    // One request per connection: headers, then Content-Length bytes.
    std::string in;
    size_t need = std::string::npos;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!stop_ && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) != 1) continue;
      char buf[4096];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      size_t end = in.find("\r\n\r\n");
      if (end != std::string::npos && need == std::string::npos) {
        size_t length = 0;
        size_t cl = in.find("Content-Length:");
        if (cl == std::string::npos) cl = in.find("content-length:");
        if (cl != std::string::npos && cl < end) length = std::strtoul(in.c_str() + cl + 15, nullptr, 10);
        need = end + 4 + length;
      }
      if (need != std::string::npos && in.size() >= need) break;
    }
    Mode mode;
    int status;
    std::string body;
    {
      std::lock_guard<std::mutex> lock(mu_);
      mode = mode_;
      status = status_;
      body = body_;
      size_t end = in.find("\r\n\r\n");
      bodies_.push_back(end == std::string::npos ? "" : in.substr(end + 4));
    }
    ++requests_;
    if (mode == Mode::kHang) {
      held_.push_back(fd);
      return;
    }
    if (mode == Mode::kAnswer) {
      std::string out = "HTTP/1.1 " + std::to_string(status) + " Canned\r\n" +
                        "Content-Type: application/json\r\nConnection: close\r\n" +
                        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      size_t off = 0;
      while (off < out.size()) {
        ssize_t n = write(fd, out.data() + off, out.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
    }
    close(fd);
  }

  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  Mode mode_ = Mode::kAnswer;
  int status_ = 200;
  std::string body_;
  std::vector<std::string> bodies_;
  std::vector<int> held_;  // kHang connections (server thread only until join)
};

}  // namespace warden::testing
