#include "daemon/config/option_file.h"

#include <catch2/catch.hpp>

#include <string>

#include "tests/support/temp_dir.h"

using warden::ReadOptionGroup;
using warden::testing::TempDir;

TEST_CASE("option files: a group's keys, as the mysql client reads them", "[option_file]") {
  TempDir dir;
  std::string extra = dir.Write("extra.cnf", "[client]\nport = 3307\n");
  std::string path = dir.Write("my.cnf",
                               "# a comment\n"
                               "[mysqld]\n"
                               "user = mysql\n"
                               "[client]\n"
                               "user=warden\n"
                               "password = \"s3 cr\\\"et\"   # quoted, with an escape\n"
                               "loose-ssl-ca = /etc/ssl/ca.pem\n"
                               "ssl_verify_server_cert\n"
                               "host = 10.0.0.5 # trailing comment\n"
                               "!include " + extra + "\n"
                               "[mysql]\n"
                               "user = someone-else\n");
  auto keys = ReadOptionGroup(path, "client");
  REQUIRE(keys);
  CHECK(keys->at("user").value == "warden");
  CHECK(keys->at("user").where == path + ":5");
  CHECK(keys->at("password").value == "s3 cr\"et");
  CHECK(keys->at("ssl_ca").value == "/etc/ssl/ca.pem");
  CHECK(keys->at("ssl_verify_server_cert").value == "1");
  CHECK(keys->at("host").value == "10.0.0.5");
  CHECK(keys->at("port").value == "3307");
  CHECK(keys->at("port").where == extra + ":2");
  CHECK(keys->count("mysqld") == 0);
}

TEST_CASE("option files: a missing group, a bad line and an open mode are errors",
          "[option_file]") {
  TempDir dir;
  std::string path = dir.Write("my.cnf", "[client]\nuser = w\n");
  auto none = ReadOptionGroup(path, "warden");
  REQUIRE_FALSE(none);
  CHECK(none.error() == path + " has no [warden] group");

  std::string open = dir.Write("open.cnf", "[client]\npassword = x\n", 0644);
  auto loose = ReadOptionGroup(open, "client");
  REQUIRE_FALSE(loose);
  CHECK(loose.error().find("is mode 0644: an option file holds a password") != std::string::npos);

  std::string bad = dir.Write("bad.cnf", "[client]\npassword = \"unterminated\n");
  auto unterminated = ReadOptionGroup(bad, "client");
  REQUIRE_FALSE(unterminated);
  CHECK(unterminated.error() == bad + ":2: a quoted value without its closing quote");

  auto missing = ReadOptionGroup(dir / "nowhere.cnf", "client");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().find("cannot read") != std::string::npos);
}
