// tests/data/mutex_server.py as a child process, for tests of the HTTP and
// mutex clients: a real HTTP(S) server on loopback whose answer a test sets
// through a control file, and which logs every request it got.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/local_socket.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace warden::testing {

// tests/data/mutex_server.py as a child process; killed on destruction.
class TestServer {
 public:
  // With a certificate and key, the server speaks HTTPS.
  explicit TestServer(const std::string& cert = "", const std::string& key = "") {
    dir_.Write("control", "clear");
    int out[2];
    REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::string script = std::string(WARDEN_TEST_DATA) + "/mutex_server.py";
    std::string control = dir_ / "control";
    std::string log = dir_ / "requests.log";
    std::vector<char*> argv = {const_cast<char*>("python3"), script.data(), control.data(),
                               log.data()};
    std::string cert_arg = cert, key_arg = key;
    if (!cert.empty()) {
      argv.push_back(cert_arg.data());
      argv.push_back(key_arg.data());
    }
    argv.push_back(nullptr);
    int rc = posix_spawnp(&pid_, "python3", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    REQUIRE(rc == 0);
    std::string line;
    pollfd p{out[0], POLLIN, 0};
    while (line.find('\n') == std::string::npos && poll(&p, 1, 20'000) == 1) {
      char buf[64];
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);
    port_ = std::atoi(line.c_str());
    REQUIRE(port_ > 0);
  }
  ~TestServer() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);  // ECHILD if libev's SIGCHLD watcher reaped it
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  void SetMode(const std::string& mode) { dir_.Write("control", mode); }
  std::string Url(const std::string& scheme = "http", const std::string& path = "/mutex.json") const {
    return scheme + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<nlohmann::json> Requests() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(dir_ / "requests.log");
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A port on loopback where nothing listens (bound, then closed).
inline int UnusedPort() { return FreeLoopbackPort(); }

}  // namespace warden::testing
