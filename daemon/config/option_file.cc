#include "daemon/config/option_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "daemon/base/units.h"

namespace warden {
namespace {

std::string Normalise(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return c == '-' ? '_' : static_cast<char>(std::tolower(c));
  });
  if (name.rfind("loose_", 0) == 0) name.erase(0, 6);
  return name;
}

// A value as the client reads it: quoted (with escapes) or bare, up to a
// " #" comment.
bool Value(std::string_view raw, std::string* out) {
  raw = Trim(raw);
  out->clear();
  if (!raw.empty() && (raw.front() == '"' || raw.front() == '\'')) {
    const char quote = raw.front();
    for (std::size_t i = 1; i < raw.size(); ++i) {
      char c = raw[i];
      if (c == '\\' && i + 1 < raw.size()) {
        char n = raw[++i];
        *out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
      } else if (c == quote) {
        std::string_view rest = Trim(raw.substr(i + 1));
        return rest.empty() || rest.front() == '#';
      } else {
        *out += c;
      }
    }
    return false;   // no closing quote
  }
  if (auto hash = raw.find(" #"); hash != std::string_view::npos) raw = Trim(raw.substr(0, hash));
  *out = std::string(raw);
  return true;
}

class Reader {
 public:
  explicit Reader(std::string group) : group_(Normalise(std::move(group))) {}

  Status Read(const std::string& path, int depth) {
    if (depth > 10) return Status::Error(path + ": includes nested more than 10 deep");
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) {
      return Status::Error("cannot read " + path + ": " + std::strerror(errno));
    }
    if ((sb.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(sb.st_mode & 07777));
      return Status::Error(path + " is mode " + mode + ": an option file holds a password and "
                           "must not be readable by group or others (chmod 600 " + path + ")");
    }
    std::ifstream in(path);
    if (!in) return Status::Error("cannot read " + path + ": " + std::strerror(errno));
    std::string line;
    bool in_group = false;
    for (int n = 1; std::getline(in, line); ++n) {
      const std::string where = path + ":" + std::to_string(n);
      std::string_view t = Trim(line);
      if (t.empty() || t.front() == '#' || t.front() == ';') continue;
      if (t.rfind("!includedir", 0) == 0 || t.rfind("!include", 0) == 0) {
        const bool dir = t.rfind("!includedir", 0) == 0;
        std::string target(Trim(t.substr(dir ? 11 : 8)));
        if (target.empty()) return Status::Error(where + ": " + std::string(t) + " names nothing");
        if (!dir) {
          if (Status s = Read(target, depth + 1); !s.ok()) return s;
          continue;
        }
        std::vector<std::string> files;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(target, ec)) {
          if (e.path().extension() == ".cnf") files.push_back(e.path().string());
        }
        if (ec) return Status::Error(where + ": cannot read " + target + ": " + ec.message());
        std::sort(files.begin(), files.end());
        for (const auto& f : files) {
          if (Status s = Read(f, depth + 1); !s.ok()) return s;
        }
        continue;
      }
      if (t.front() == '[') {
        if (t.back() != ']') return Status::Error(where + ": a group header must end with ']'");
        in_group = Normalise(std::string(Trim(t.substr(1, t.size() - 2)))) == group_;
        if (in_group) found_ = true;
        continue;
      }
      if (!in_group) continue;
      std::string name, value;
      if (auto eq = t.find('='); eq == std::string_view::npos) {
        name = std::string(t);
        value = "1";
      } else {
        name = std::string(Trim(t.substr(0, eq)));
        if (!Value(t.substr(eq + 1), &value)) {
          return Status::Error(where + ": a quoted value without its closing quote");
        }
      }
      if (name.empty()) return Status::Error(where + ": an option without a name");
      keys_[Normalise(name)] = OptionValue{value, where};
    }
    return Status::Ok();
  }

  bool found() const { return found_; }
  std::map<std::string, OptionValue>& keys() { return keys_; }

 private:
  std::string group_;
  bool found_ = false;
  std::map<std::string, OptionValue> keys_;
};

}  // namespace

Expected<std::map<std::string, OptionValue>> ReadOptionGroup(const std::string& path,
                                                             const std::string& group) {
  Reader r(group);
  if (Status s = r.Read(path, 0); !s.ok()) return s.failure();
  if (!r.found()) {
    return Expected<std::map<std::string, OptionValue>>::Error(
        path + " has no [" + group + "] group");
  }
  return std::move(r.keys());
}

}  // namespace warden
