// The config parser and validator (daemon/config/config.h, LoadConfig over
// daemon/base/ini.h). Input: the text of warden.ini, written to a private temp
// dir and loaded without ownership checks, secrets or includes (a fuzz input
// must not make it read the machine's files).
//
// Properties: a config is returned exactly when there is no problem; every
// problem names the file (and mostly the line); a returned config refers
// only to objects it defines.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "daemon/config/config.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

namespace {

const std::string& ConfigPath() {
  static const std::string path = [] {
    std::string dir = (std::filesystem::temp_directory_path() / "warden-fuzz-config-XXXXXX").string();
    if (::mkdtemp(dir.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    static const std::string remove = dir;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(remove, ec);
    });
    return dir + "/warden.ini";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = ConfigPath();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    FUZZ_CHECK(out.good(), "cannot write " + path);
  }
  LoadOptions options;
  options.check_ownership = false;
  options.read_secrets = false;
  options.follow_includes = false;
  Diagnostics diag;
  auto config = LoadConfig(path, options, diag);

  FUZZ_CHECK((config != nullptr) == diag.ok(), "a config with problems, or none without");
  for (const auto& e : diag.errors()) {
    FUZZ_CHECK(e.rfind(path + ":", 0) == 0, "a problem that does not name the file: " + e);
  }
  if (!config) return 0;

  auto is_action_or_job = [&](const std::string& n) {
    return config->FindAction(n) != nullptr || config->FindJob(n) != nullptr;
  };
  for (const auto& c : config->checks) {
    for (const auto& d : c.depends) FUZZ_CHECK(config->FindCheck(d) != nullptr, d);
    for (const auto* hooks : {&c.on_warn, &c.on_crit, &c.on_error, &c.on_recover}) {
      for (const auto& n : *hooks) FUZZ_CHECK(is_action_or_job(n), "hook " + n);
    }
    FUZZ_CHECK(c.impl != nullptr && c.type != nullptr, c.common.name);
  }
  for (const auto& a : config->actions) FUZZ_CHECK(a.impl != nullptr && a.type != nullptr, "action");
  for (const auto& j : config->jobs) {
    for (const auto& s : j.steps) {
      FUZZ_CHECK(config->FindAction(s) != nullptr || config->FindWait(s) != nullptr, "step " + s);
    }
  }
  for (const auto& w : config->waits) {
    for (const auto& n : w.checks) FUZZ_CHECK(config->FindCheck(n) != nullptr, "wait " + n);
  }
  return 0;
}
