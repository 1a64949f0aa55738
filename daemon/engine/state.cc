#include "daemon/engine/state.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "daemon/base/atomic_file.h"
#include "daemon/engine/guard.h"

namespace warden {

using nlohmann::json;

namespace {

// The state file is written at every action and every minute: at 1,000
// checks, building it as a JSON tree and dumping that cost ~32 M
// instructions a save, more than a minute of all the checks' own work.
// So it is written straight into one string, laid out as nlohmann's
// dump(1) lays it out (keys sorted, one space per level).
class StateWriter {
 public:
  explicit StateWriter(std::string& out) : out_(out) {}

  // An object: Open, then Key and a value per member, then Close.
  void Open() {
    out_ += '{';
    ++level_;
    first_ = true;
  }
  void Key(std::string_view key) {
    out_ += first_ ? "\n" : ",\n";
    first_ = false;
    out_.append(level_, ' ');
    String(key);
    out_ += ": ";
  }
  // A member with its value.
  void Member(std::string_view key, std::string_view v) {
    Key(key);
    String(v);
  }
  void Member(std::string_view key, std::int64_t v) {
    Key(key);
    Number(v);
  }
  void Member(std::string_view key, std::uint64_t v) {
    Key(key);
    Number(v);
  }
  void Close() {
    --level_;
    if (!first_) {   // else no member: {}
      out_ += '\n';
      out_.append(level_, ' ');
    }
    out_ += '}';
    first_ = false;
  }
  template <typename T>
  void Number(T v) {
    char buf[24];
    auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    out_.append(buf, end);
  }
  void Bool(bool v) { out_ += v ? "true" : "false"; }
  void Null() { out_ += "null"; }
  void Numbers(const std::vector<std::int64_t>& v) {
    if (v.empty()) {
      out_ += "[]";
      return;
    }
    out_ += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      out_ += i == 0 ? "\n" : ",\n";
      out_.append(level_ + 1, ' ');
      Number(v[i]);
    }
    out_ += '\n';
    out_.append(level_, ' ');
    out_ += ']';
  }
  // A JSON string. The usual text (printable ASCII but `"` and `\`) as it
  // is; anything else as nlohmann escapes it, bytes that are not UTF-8
  // written as U+FFFD (a dump of the whole tree threw on them).
  void String(std::string_view s) {
    bool plain = true;
    for (unsigned char ch : s) plain = plain && ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
    if (!plain) {
      out_ += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
      return;
    }
    out_ += '"';
    out_.append(s);
    out_ += '"';
  }

 private:
  std::string& out_;
  int level_ = 0;      // of the members being written (the top level's: 1)
  bool first_ = true;  // no member written yet in the open object
};

}  // namespace

std::string PauseKey(const Pause& p) {
  return p.scope.Describe() + (p.window.empty() ? "" : " (maintenance " + p.window + ")");
}

std::string StateText(const PersistedState& s, std::int64_t saved_ms) {
  std::string out;
  out.reserve(256 + s.checks.size() * 256 + s.actions.size() * 128);
  StateWriter w(out);
  // Members in key order, as a dump of a JSON object (a std::map) has them.
  w.Open();
  w.Key("actions");
  w.Open();
  for (const auto& [name, a] : s.actions) {
    w.Key(name);
    w.Open();
    w.Key("last_end_ms");
    if (a.last_end_ms) {
      w.Number(*a.last_end_ms);
    } else {
      w.Null();
    }
    w.Key("starts_ms");
    w.Numbers(a.starts_ms);
    w.Close();
  }
  w.Close();
  w.Key("checks");
  w.Open();
  for (const auto& [name, c] : s.checks) {
    w.Key(name);
    w.Open();
    w.Member("detail", c.detail);
    w.Member("digest", c.digest);
    w.Member("error", c.error);
    w.Member("last_run_ms", c.last_run_ms);
    w.Member("overruns", c.overruns);
    w.Member("runs", c.runs);
    w.Member("since_ms", c.since_ms);
    w.Member("state", c.state);
    w.Member("unit", c.unit);
    w.Member("value", c.value);
    w.Close();
  }
  w.Close();
  auto pause_members = [&w](const Pause& p, bool with_scope) {
    w.Member("at_ms", p.at_ms);
    w.Member("by", p.by);
    if (with_scope) w.Member("name", p.scope.name);
    w.Member("pid", p.pid);
    w.Member("reason", p.reason);
    if (with_scope) w.Member("scope", ScopeKindName(p.scope.kind));
    w.Member("uid", p.uid);
    w.Member("until_ms", p.until_ms);
    if (with_scope) w.Member("window", p.window);
  };
  std::map<std::string, const Pause*> disabled;
  for (const auto& p : s.disabled) disabled[p.scope.name] = &p;
  w.Key("disabled");
  w.Open();
  for (const auto& [name, p] : disabled) {
    w.Key(name);
    w.Open();
    pause_members(*p, false);
    w.Close();
  }
  w.Close();
  w.Member("format", std::int64_t{kStateFormat});
  const Pause* host = nullptr;
  std::map<std::string, const Pause*> pauses;
  for (const auto& p : s.pauses) {
    pauses[PauseKey(p)] = &p;
    if (p.scope.kind == PauseScope::Kind::kHost && p.window.empty()) host = &p;
  }
  w.Key("pause");
  w.Open();
  w.Member("at_ms", host ? host->at_ms : std::int64_t{0});
  w.Member("by", host ? host->by : std::string());
  w.Key("paused");
  w.Bool(host != nullptr);
  w.Member("reason", host ? host->reason : std::string());
  w.Close();
  w.Key("pauses");
  w.Open();
  for (const auto& [key, p] : pauses) {
    w.Key(key);
    w.Open();
    pause_members(*p, true);
    w.Close();
  }
  w.Close();
  w.Member("saved", Rfc3339FromMs(saved_ms));
  w.Close();
  out += '\n';
  return out;
}

namespace {

// Typed access with the field's path in the error.
template <typename T>
T Field(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) throw std::runtime_error(where + "." + key + " is missing");
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) throw std::runtime_error(where + "." + key + " is not a boolean");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) throw std::runtime_error(where + "." + key + " is not a string");
  } else if constexpr (std::is_same_v<T, std::uint64_t>) {
    if (!it->is_number_unsigned()) {
      throw std::runtime_error(where + "." + key + " is not a non-negative integer");
    }
  } else {
    if (!it->is_number_integer()) throw std::runtime_error(where + "." + key + " is not an integer");
  }
  return it->get<T>();
}

const json& Object(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) throw std::runtime_error(where + "." + key + " is missing");
  if (!it->is_object()) throw std::runtime_error(where + "." + key + " is not an object");
  return *it;
}

}  // namespace

Expected<PersistedState> StateFromJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Expected<PersistedState>::Error("not valid JSON (truncated?)");
  if (!j.is_object()) return Expected<PersistedState>::Error("not a JSON object");
  PersistedState s;
  try {
    auto format = Field<std::int64_t>(j, "format", "state");
    if (format != kStateFormat) {
      return Expected<PersistedState>::Error("unknown format " + std::to_string(format) +
                                             " (this version reads " +
                                             std::to_string(kStateFormat) + ")");
    }
    const json& pause = Object(j, "pause", "state");
    // The host pause as earlier versions wrote it (and this one still does).
    const bool legacy_paused = Field<bool>(pause, "paused", "pause");
    Pause legacy;
    legacy.reason = Field<std::string>(pause, "reason", "pause");
    legacy.by = Field<std::string>(pause, "by", "pause");
    legacy.at_ms = Field<std::int64_t>(pause, "at_ms", "pause");
    auto read_pause = [](const json& p, const std::string& where, Pause& out) {
      out.reason = Field<std::string>(p, "reason", where);
      out.by = Field<std::string>(p, "by", where);
      out.at_ms = Field<std::int64_t>(p, "at_ms", where);
      out.until_ms = Field<std::int64_t>(p, "until_ms", where);
      out.uid = Field<std::int64_t>(p, "uid", where);
      out.pid = Field<std::int64_t>(p, "pid", where);
    };
    if (j.contains("pauses")) {
      for (const auto& [key, p] : Object(j, "pauses", "state").items()) {
        std::string where = "pauses." + key;
        if (!p.is_object()) throw std::runtime_error(where + " is not an object");
        Pause one;
        auto kind = ScopeKindFromName(Field<std::string>(p, "scope", where));
        if (!kind) throw std::runtime_error(where + ".scope is not host, group, action or check");
        one.scope = {*kind, Field<std::string>(p, "name", where)};
        if ((*kind == PauseScope::Kind::kHost) != one.scope.name.empty()) {
          throw std::runtime_error(where + ".name does not fit its scope");
        }
        read_pause(p, where, one);
        if (p.contains("window")) one.window = Field<std::string>(p, "window", where);
        s.pauses.push_back(std::move(one));
      }
    } else if (legacy_paused) {
      // Written by an earlier version: the host pause, no expiry.
      s.pauses.push_back(std::move(legacy));
    }
    if (j.contains("disabled")) {
      for (const auto& [name, p] : Object(j, "disabled", "state").items()) {
        std::string where = "disabled." + name;
        if (!p.is_object()) throw std::runtime_error(where + " is not an object");
        Pause one;
        one.scope = {PauseScope::Kind::kCheck, name};
        read_pause(p, where, one);
        s.disabled.push_back(std::move(one));
      }
    }
    for (const auto& [name, c] : Object(j, "checks", "state").items()) {
      std::string where = "checks." + name;
      if (!c.is_object()) throw std::runtime_error(where + " is not an object");
      CheckRecord r;
      r.state = Field<std::string>(c, "state", where);
      r.value = Field<std::string>(c, "value", where);
      r.error = Field<std::string>(c, "error", where);
      r.since_ms = Field<std::int64_t>(c, "since_ms", where);
      r.last_run_ms = Field<std::int64_t>(c, "last_run_ms", where);
      r.runs = Field<std::uint64_t>(c, "runs", where);
      r.overruns = Field<std::uint64_t>(c, "overruns", where);
      r.digest = Field<std::string>(c, "digest", where);
      // Written since the detail is kept: a file of an earlier version
      // has neither, and its checks come back with none, as they did.
      if (c.contains("unit")) r.unit = Field<std::string>(c, "unit", where);
      if (c.contains("detail")) r.detail = Field<std::string>(c, "detail", where);
      s.checks[name] = std::move(r);
    }
    for (const auto& [name, a] : Object(j, "actions", "state").items()) {
      std::string where = "actions." + name;
      if (!a.is_object()) throw std::runtime_error(where + " is not an object");
      ActionRecord r;
      auto le = a.find("last_end_ms");
      if (le == a.end()) throw std::runtime_error(where + ".last_end_ms is missing");
      if (le->is_number_integer()) {
        r.last_end_ms = le->get<std::int64_t>();
      } else if (!le->is_null()) {
        throw std::runtime_error(where + ".last_end_ms is not an integer or null");
      }
      auto st = a.find("starts_ms");
      if (st == a.end() || !st->is_array()) throw std::runtime_error(where + ".starts_ms is not a list");
      for (const auto& v : *st) {
        if (!v.is_number_integer()) throw std::runtime_error(where + ".starts_ms holds a non-integer");
        r.starts_ms.push_back(v.get<std::int64_t>());
      }
      s.actions[name] = std::move(r);
    }
  } catch (const std::exception& e) {
    return Expected<PersistedState>::Error(e.what());
  }
  return s;
}

void CaptureGuard(const Guard& guard, PersistedState& state) {
  state.actions.clear();
  for (const auto& [name, h] : guard.history()) {
    ActionRecord r;
    if (h.last_end) r.last_end_ms = SteadyToWallMs(*h.last_end);
    for (auto tp : h.starts) r.starts_ms.push_back(SteadyToWallMs(tp));
    if (!r.last_end_ms && r.starts_ms.empty()) continue;
    state.actions[name] = std::move(r);
  }
}

void RestoreGuard(const PersistedState& state, Guard& guard) {
  for (const auto& [name, r] : state.actions) {
    std::optional<std::chrono::steady_clock::time_point> last_end;
    if (r.last_end_ms) last_end = WallMsToSteady(*r.last_end_ms);
    std::deque<std::chrono::steady_clock::time_point> starts;
    for (auto ms : r.starts_ms) starts.push_back(WallMsToSteady(ms));
    guard.RestoreHistory(name, last_end, std::move(starts));
  }
}

StateFile::Loaded StateFile::Load() {
  Loaded out;
  if (::access(path_.c_str(), F_OK) != 0 && errno == ENOENT) return out;
  out.existed = true;
  auto text = ReadSmallFile(path_, 16 << 20);
  std::string error;
  if (!text.ok()) {
    error = text.error();
  } else {
    auto parsed = StateFromJson(*text);
    if (parsed.ok()) {
      out.state = std::move(*parsed);
      return out;
    }
    error = parsed.error();
  }
  out.error = path_ + ": " + error;
  // Set it aside so the next start does not trip over it again, and keep
  // it for a post-mortem.
  std::string stamp = Rfc3339FromMs(WallMsNow());
  for (char& ch : stamp) {
    if (ch == ':') ch = '-';
  }
  std::string aside = path_ + ".corrupt-" + stamp;
  if (::rename(path_.c_str(), aside.c_str()) == 0) {
    out.set_aside = aside;
  } else {
    out.error += " (and it could not be set aside: " + std::string(std::strerror(errno)) + ")";
  }
  return out;
}

Status StateFile::Save(const PersistedState& state) {
  return WriteText(path_, StateText(state, WallMsNow()));
}

Status StateFile::WriteText(const std::string& path, const std::string& text) {
  return WriteFileAtomically(path, text, 0600, 0750);
}

}  // namespace warden
