// [log] validation (daemon/config/log_config.cc through LoadConfig).
#include <catch2/catch.hpp>

#include "tests/support/config_loader.h"

using namespace warden;
using warden::testing::LoadedConfig;
using warden::testing::LoadSection;

namespace {

using Loaded = LoadedConfig;

// [log] is line 6 of the config, its first key line 7.
Loaded Load(const std::string& body) { return LoadSection("log", body); }

}  // namespace

TEST_CASE("log: defaults: journal auto, journald's socket", "[config][log]") {
  Loaded l = Load("level = debug\n");
  INFO(l.All());
  REQUIRE(l.config);
  CHECK(l.config->log.level == "debug");
  CHECK(l.config->log.journal == LogConfig::Journal::kAuto);
  CHECK(l.config->log.journal_socket == "/run/systemd/journal/socket");
}

TEST_CASE("log: journal and journal_socket", "[config][log]") {
  Loaded l = Load("journal = yes\njournal_socket = /tmp/j.sock\n");
  INFO(l.All());
  REQUIRE(l.config);
  CHECK(l.config->log.journal == LogConfig::Journal::kYes);
  CHECK(l.config->log.journal_socket == "/tmp/j.sock");
  l = Load("journal = no\n");
  REQUIRE(l.config);
  CHECK(l.config->log.journal == LogConfig::Journal::kNo);
  // auto with a file: the file (the journal is only chosen for stderr).
  l = Load("journal = auto\nfile = /tmp/wardend.log\n");
  REQUIRE(l.config);
  CHECK(l.config->log.journal == LogConfig::Journal::kAuto);
}

TEST_CASE("log: bad journal values say where", "[config][log]") {
  Loaded l = Load("journal = maybe\n");
  INFO(l.All());
  CHECK_FALSE(l.config);
  CHECK(l.Has(":7:"));
  CHECK(l.Has("journal"));

  l = Load("journal_socket = run/journal.sock\n");
  CHECK_FALSE(l.config);
  CHECK(l.Has(":7: journal_socket must be an absolute path"));

  l = Load("journal_socket = /" + std::string(120, 'x') + "\n");
  CHECK_FALSE(l.config);
  CHECK(l.Has(":7: journal_socket: the path is longer than 107 bytes"));

  l = Load("file = /tmp/wardend.log\njournal = yes\n");
  CHECK_FALSE(l.config);
  CHECK(l.Has(":8: journal = yes and file = /tmp/wardend.log both say where the log goes"));

  l = Load("journal_sock = /tmp/x\n");
  CHECK_FALSE(l.config);
  CHECK(l.Has(":7:"));
  CHECK(l.Has("journal_sock"));
}
