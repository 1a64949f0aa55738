#include "daemon/base/ini.h"

#include <glob.h>
#include <ini.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "daemon/base/units.h"

namespace warden {
namespace {

constexpr int kMaxIncludeDepth = 8;

// "[check x]  ; note" -> "check x". nullopt when the line is a header
// with no closing ']' or with something but a comment after it.
std::optional<std::string> HeaderInner(std::string_view t) {
  if (t.empty() || t.front() != '[') return std::nullopt;
  size_t close = t.find(']');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = Trim(t.substr(close + 1));
  if (!rest.empty() && rest.front() != ';' && rest.front() != '#') return std::nullopt;
  return std::string(Trim(t.substr(1, close - 1)));
}

struct ParseState {
  std::string file;
  std::string text;
  size_t pos = 0;
  int line = 0;                 // number of the line the reader handed out last
  bool line_indented = false;
  int header_line = 0;          // line of the last section header read
  std::vector<RawSection>* sections = nullptr;
  Diagnostics* diag = nullptr;
  std::set<int> reported_lines;  // lines we already explained
};

// inih reader: hands out one line at a time so that the handler knows the
// line number, and explains lines inih would cut or reject.
char* Reader(char* buf, int num, void* stream) {
  auto* st = static_cast<ParseState*>(stream);
  if (st->pos >= st->text.size()) return nullptr;
  size_t end = st->text.find('\n', st->pos);
  if (end == std::string::npos) end = st->text.size();
  std::string_view raw(st->text.data() + st->pos, end - st->pos);
  st->pos = end + 1;
  ++st->line;
  if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
  st->line_indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
  Location where{st->file, st->line};
  std::string_view t = Trim(raw);
  if (raw.size() + 1 >= static_cast<size_t>(num)) {
    st->diag->Error(where, "line is longer than " + std::to_string(num - 2) +
                               " characters; continue a long value on indented lines");
    st->reported_lines.insert(st->line);
    buf[0] = '\0';
    return buf;
  }
  if (raw.find('\0') != std::string_view::npos) {
    st->diag->Error(where, "line contains a NUL byte");
    st->reported_lines.insert(st->line);
    buf[0] = '\0';
    return buf;
  }
  bool comment = t.empty() || t.front() == ';' || t.front() == '#';
  if (!comment && !st->line_indented && t.front() != '[' &&
      t.find_first_of("=:") == std::string_view::npos) {
    st->diag->Error(where, "expected 'key = value', '[section]' or a comment, got '" +
                               std::string(t) + "'");
    st->reported_lines.insert(st->line);
    buf[0] = '\0';
    return buf;
  }
  if (!comment && t.front() == '[' && !HeaderInner(t)) {
    st->diag->Error(where, "section header '" + std::string(t) +
                               "' has no closing ']' (or text after it)");
    st->reported_lines.insert(st->line);
    buf[0] = '\0';
    return buf;
  }
  if (!comment && t.front() == '[') st->header_line = st->line;
  std::memcpy(buf, raw.data(), raw.size());
  buf[raw.size()] = '\0';
  return buf;
}

int Handler(void* user, const char* section, const char* name, const char* value) {
  auto* st = static_cast<ParseState*>(user);
  Location where{st->file, st->line};
  if (name == nullptr) {
    // A new section starts (inih >= 42 calls with name == NULL when
    // INI_CALL_HANDLER_ON_NEW_SECTION is set; we do not rely on that).
    return 1;
  }
  std::string sec(section);
  std::string_view s = Trim(sec);
  std::string kind, obj;
  {
    std::istringstream in{std::string(s)};
    in >> kind >> obj;
    std::string extra;
    if (in >> extra) {
      if (st->reported_lines.insert(st->line).second)
        st->diag->Error(where, "section [" + sec + "] has more than a kind and a name");
      return 1;
    }
  }
  if (kind.empty()) {
    if (st->reported_lines.insert(st->line).second)
      st->diag->Error(where, "key '" + std::string(name) + "' is outside any section");
    return 1;
  }
  auto& sections = *st->sections;
  if (sections.empty() || sections.back().kind != kind || sections.back().name != obj ||
      sections.back().where.file != st->file) {
    sections.push_back(RawSection{kind, obj, Location{st->file, st->header_line}, {}});
  }
  RawSection& cur = sections.back();
  if (st->line_indented && !cur.entries.empty() && cur.entries.back().key == name) {
    ConfigEntry& e = cur.entries.back();
    e.value += "\n";
    e.value += value;
    if (e.continued_at == 0) e.continued_at = st->line;
    return 1;
  }
  for (const auto& e : cur.entries) {
    if (e.key == name) {
      st->diag->Error(where, "key '" + std::string(name) + "' is set twice in " + cur.title() +
                                 " (first at line " + std::to_string(e.where.line) + ")");
      return 1;
    }
  }
  cur.entries.push_back(ConfigEntry{name, value, where, 0});
  return 1;
}

bool CheckFile(const std::string& path, const IniOptions& options, const Location* from,
               Diagnostics& diag, std::string* text) {
  auto report = [&](const std::string& msg) {
    if (from) diag.Error(*from, msg);
    else diag.Error(path + ": " + msg);
  };
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0) {
    report("cannot read config file " + path + ": " + std::strerror(errno));
    return false;
  }
  if (!S_ISREG(sb.st_mode)) {
    report("config file " + path + " is not a regular file");
    return false;
  }
  if (options.check_ownership) {
    if ((sb.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
      report("refusing config file " + path +
             ": it is writable by group or others (it names commands run as root); chmod go-w it");
      return false;
    }
    if (sb.st_uid != ::geteuid() && sb.st_uid != 0) {
      report("refusing config file " + path + ": owned by uid " + std::to_string(sb.st_uid) +
             ", not by this user (uid " + std::to_string(::geteuid()) + ") or root");
      return false;
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    report("cannot read config file " + path + ": " + std::strerror(errno));
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *text = ss.str();
  return true;
}

void ReadOne(const std::string& path, const IniOptions& options, const Location* from, int depth,
             std::set<std::string>& seen, std::vector<RawSection>& out, Diagnostics& diag) {
  std::error_code ec;
  std::string canon = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) canon = path;
  if (!seen.insert(canon).second) {
    if (from) diag.Error(*from, "config file " + path + " is included more than once");
    return;
  }
  ParseState st;
  st.file = path;
  st.sections = &out;
  st.diag = &diag;
  if (!CheckFile(path, options, from, diag, &st.text)) return;
  size_t first_new = out.size();
  int rc = ini_parse_stream(Reader, &st, Handler, &st);
  if (rc > 0 && !st.reported_lines.count(rc)) {
    diag.Error(Location{path, rc}, "syntax error");
  } else if (rc < 0) {
    diag.Error(path + ": cannot parse (inih error " + std::to_string(rc) + ")");
  }
  // Sections with no keys never reach the handler; find their headers so
  // an empty [mutex] still counts as present.
  {
    std::istringstream in(st.text);
    std::string line;
    int n = 0;
    size_t idx = first_new;
    while (std::getline(in, line)) {
      ++n;
      auto inner = HeaderInner(Trim(line));
      if (!inner) continue;
      std::istringstream w(*inner);
      std::string kind, name, extra;
      w >> kind >> name;
      if (w >> extra || kind.empty()) continue;
      // Is there a section in out (from this file) starting here?
      bool found = false;
      for (size_t i = first_new; i < out.size(); ++i) {
        if (out[i].kind == kind && out[i].name == name && out[i].where.file == path) {
          found = true;
          break;
        }
      }
      if (!found) {
        out.push_back(RawSection{kind, name, Location{path, n}, {}});
      }
    }
    (void)idx;
  }
  // Includes named in this file's [daemon] section.
  if (depth >= kMaxIncludeDepth || !options.follow_includes) return;
  std::vector<std::pair<std::string, Location>> includes;
  for (size_t i = first_new; i < out.size(); ++i) {
    if (out[i].kind != "daemon") continue;
    for (const auto& e : out[i].entries) {
      if (e.key == "include") includes.emplace_back(e.value, e.where);
    }
  }
  std::filesystem::path base = std::filesystem::path(path).parent_path();
  for (const auto& [pattern_list, where] : includes) {
    std::istringstream words(pattern_list);
    std::string pattern;
    while (words >> pattern) {
      if (!pattern.empty() && pattern.back() == ',') pattern.pop_back();
      if (pattern.empty()) continue;
      std::string full = std::filesystem::path(pattern).is_absolute()
                             ? pattern
                             : (base / pattern).string();
      glob_t g{};
      int grc = ::glob(full.c_str(), GLOB_ERR, nullptr, &g);
      std::vector<std::string> files;
      if (grc == 0) {
        for (size_t k = 0; k < g.gl_pathc; ++k) files.emplace_back(g.gl_pathv[k]);
      }
      ::globfree(&g);
      bool wildcard = pattern.find_first_of("*?[") != std::string::npos;
      if (grc == GLOB_NOMATCH && !wildcard) {
        diag.Error(where, "include '" + pattern + "': no such file " + full);
      } else if (grc != 0 && grc != GLOB_NOMATCH) {
        diag.Error(where, "include '" + pattern + "': cannot read " + full);
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) ReadOne(f, options, &where, depth + 1, seen, out, diag);
    }
  }
}

}  // namespace

std::vector<RawSection> ReadIniFiles(const std::string& path, const IniOptions& options,
                                     Diagnostics& diag) {
  std::vector<RawSection> out;
  std::set<std::string> seen;
  ReadOne(path, options, nullptr, 0, seen, out, diag);
  // The same object defined twice (in one file or across includes).
  std::map<std::pair<std::string, std::string>, Location> first;
  std::vector<RawSection> merged;
  for (auto& s : out) {
    auto key = std::make_pair(s.kind, s.name);
    auto it = first.find(key);
    if (it != first.end()) {
      // inih reports a repeated header as one section when adjacent; here a
      // header that reappears later is a second definition.
      diag.Error(s.where, s.title() + " is defined twice (first at " + it->second.str() + ")");
      continue;
    }
    first.emplace(key, s.where);
    merged.push_back(std::move(s));
  }
  return merged;
}

}  // namespace warden
