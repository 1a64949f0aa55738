#include "daemon/control/status_page.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

namespace warden {

using nlohmann::json;

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
          out += "\xEF\xBF\xBD";   // U+FFFD
        } else {
          out += c;
        }
    }
  }
  return out;
}

void RecentEvents::Add(const json& event) {
  events_.push_back(event);
  while (events_.size() > kKeep) events_.pop_front();
}

json RecentEvents::ToJson() const {
  json out = json::array();
  for (auto it = events_.rbegin(); it != events_.rend(); ++it) out.push_back(*it);
  return out;
}

namespace {

// A member as text: a string as it is, null or absent as "", else JSON.
std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

// A member, or null when `j` is no object or has none: a status of an
// unexpected shape renders what it can and never throws.
const json& Member(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

// A member that is true.
bool Yes(const json& j, const char* key) {
  const json& v = Member(j, key);
  return v.is_boolean() && v.get<bool>();
}

// The elements of an array member (none for anything else).
const json& Items(const json& j, const char* key) {
  static const json kEmpty = json::array();
  const json& v = Member(j, key);
  return v.is_array() ? v : kEmpty;
}

// At most kMaxText characters (cut on a UTF-8 boundary), escaped.
std::string Text(std::string_view s) {
  if (s.size() <= kMaxText) return HtmlEscape(s);
  size_t cut = kMaxText;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return HtmlEscape(s.substr(0, cut)) + "\xE2\x80\xA6";   // …
}

std::string Field(const json& j, const char* key) {
  const json& v = Member(j, key);
  if (v.is_string()) return Text(v.get_ref<const std::string&>());   // no copy first
  return v.is_null() ? std::string() : Text(v.dump());
}

// "2026-11-25T17:02:44.854Z" -> ms since the epoch; nullopt if not one.
std::optional<std::int64_t> ParseTime(const std::string& t) {
  int y, mo, d, h, mi, s;
  if (t.size() < 20 || std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) != 6) {
    return std::nullopt;
  }
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::int64_t ms = static_cast<std::int64_t>(::timegm(&tm)) * 1000;
  if (t.size() >= 24 && t[19] == '.') ms += std::atoi(t.substr(20, 3).c_str());
  return ms;
}

// 42 -> "42s", 3725 -> "1h02m", 90061 -> "1d01h".
std::string Span(std::int64_t ms) {
  const long long s = std::max<long long>(0, static_cast<long long>(ms / 1000));
  char buf[48];
  if (s >= 86400) std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, s / 3600 % 24);
  else if (s >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s / 60 % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%llds", s);
  return buf;
}

// A time of the status, as "2026-11-25 17:02:44 (3m10s ago)"; "-" for none.
std::string When(const json& j, const char* key, std::int64_t now_ms) {
  const std::string t = Str(j, key);
  if (t.empty()) return "-";
  std::string out = HtmlEscape(t.size() >= 19 ? t.substr(0, 10) + " " + t.substr(11, 8) : t);
  if (auto ms = ParseTime(t)) {
    out += *ms <= now_ms ? " <span class=\"ago\">(" + Span(now_ms - *ms) + " ago)</span>"
                         : " <span class=\"ago\">(in " + Span(*ms - now_ms) + ")</span>";
  }
  return out;
}

// Worst first: what needs a person's eyes is at the top.
int Rank(const std::string& state) {
  static const char* kOrder[] = {"crit", "error", "warn", "disabled", "skipped", "pending", "ok"};
  for (int i = 0; i < 7; ++i) {
    if (state == kOrder[i]) return i;
  }
  return 7;
}

std::string StateClass(const std::string& state) {
  return Rank(state) < 7 ? "st-" + state : std::string("st-other");
}

// A state badge: colour (class) and the word, for whoever cannot tell colours apart.
std::string Badge(const std::string& cls, const std::string& label) {
  return "<span class=\"badge " + cls + "\">" + HtmlEscape(label) + "</span>";
}

constexpr const char* kStyle = R"(
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1c2330}
header{background:#1c2330;color:#fff;padding:12px 20px}
header h1{margin:0;font-size:20px}
header .meta{color:#c5ccd8;font-size:13px}
main{padding:12px 20px}
section{margin:0 0 18px}
h2{font-size:15px;margin:0 0 6px;text-transform:uppercase;letter-spacing:.04em;color:#4a5568}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{background:#eef0f4;font-weight:600;font-size:12px;color:#4a5568}
td.err,td.detail{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word}
.badge{display:inline-block;min-width:64px;text-align:center;border-radius:3px;padding:1px 6px;font-weight:700;font-size:12px;color:#fff}
.st-ok{background:#2f855a}.st-warn{background:#c27803}.st-crit{background:#c53030}
.st-error{background:#6b21a8}.st-pending,.st-skipped,.st-other{background:#718096}
.st-disabled{background:#4a5568}.st-off{background:#a0aec0}
.ago{color:#718096;font-size:12px}
td.nw{white-space:nowrap}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;background:#fff;padding:8px 12px;box-shadow:0 1px 2px #0002}
.facts div:nth-child(odd){font-weight:600;color:#4a5568}
.none{color:#718096}
footer{padding:8px 20px;color:#718096;font-size:12px}
)";

void Facts(std::string& o, const json& s, std::int64_t now_ms) {
  o += "<section id=\"automation\"><h2>Automation</h2><div class=\"facts\">";
  // The host pause, then every other pause in force.
  const json& pause = Member(s, "pause");
  o += "<div>pause</div><div id=\"pause\">";
  if (Yes(pause, "paused")) {
    o += Badge("st-crit", "PAUSED") + " " + Field(pause, "reason") + " <span class=\"ago\">by " +
         Field(pause, "by") + ", since " + When(pause, "since", now_ms) + ", " +
         (Yes(pause, "no_expiry") ? std::string("NO EXPIRY")
                                          : "until " + When(pause, "until", now_ms)) +
         "</span>";
  } else {
    o += Badge("st-ok", "no");
  }
  o += "</div>";
  for (const auto& p : Items(s, "pauses")) {
    if (Str(p, "scope") == "host") continue;
    o += "<div>pause " + Field(p, "scope") + "</div><div>" + Badge("st-warn", "PAUSED") + " " +
         Field(p, "name") + ": " + Field(p, "reason") + " <span class=\"ago\">by " +
         Field(p, "by") + ", " +
         (Yes(p, "no_expiry") ? std::string("NO EXPIRY")
                                      : "until " + When(p, "until", now_ms)) +
         "</span></div>";
  }
  const json& halt = Member(s, "halt");
  o += "<div>halt</div><div id=\"halt\">";
  o += Yes(halt, "halted") ? Badge("st-crit", "HALTED") + " " + Field(halt, "reason")
                                   : Badge("st-ok", "no");
  o += "</div>";
  const json& mutex = Member(s, "mutex");
  const std::string ms = Str(mutex, "state");
  const std::string cls = ms == "clear" ? "st-ok" : ms == "off" ? "st-off" : "st-crit";
  o += "<div>mutex</div><div id=\"mutex\">" + Badge(cls, ms.empty() ? "?" : ms) + " " +
       Field(mutex, "reason") + "</div>";
  const json& events = Member(s, "events");
  if (events.contains("fluentd")) {
    const json& f = events["fluentd"];
    o += "<div>fluentd</div><div>" +
         (Yes(f, "connected") ? Badge("st-ok", "connected")
                                      : Badge("st-crit", "NOT CONNECTED")) +
         " backlog " + Field(f, "backlog_events") + " events</div>";
  }
  // The daemon's own problems: a file it cannot write, an endpoint it cannot serve.
  const std::pair<const json*, const char*> problems[] = {
      {&events, "file_error"},        {&Member(s, "jobs"), "journal_error"},
      {&s, "state_save_error"},       {&s, "state_error"},
      {&s, "control_error"},          {&s, "metrics_error"},
      {&s, "metrics_textfile_error"}};
  for (const auto& [where, problem] : problems) {
    if (Str(*where, problem).empty()) continue;
    const std::string label = where == &events ? "events_file_error" : problem;
    o += "<div>" + label + "</div><div>" + Badge("st-error", "ERROR") + " " +
         Field(*where, problem) + "</div>";
  }
  o += "</div></section>";
}

void Checks(std::string& o, const json& s, std::int64_t now_ms) {
  struct Row {
    int rank;
    std::string name;
    const json* check;
  };
  std::vector<Row> rows;
  for (const auto& c : Items(s, "checks")) rows.push_back({Rank(Str(c, "state")), Str(c, "name"), &c});
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.rank != b.rank ? a.rank < b.rank : a.name < b.name;
  });
  o.reserve(o.size() + rows.size() * 600);
  o += "<section><h2>Checks (" + std::to_string(rows.size()) + ")</h2>";
  o += "<table id=\"checks\"><thead><tr><th>check</th><th>state</th><th>value</th>"
       "<th>threshold</th><th>since</th><th>last run</th><th>last error</th></tr></thead><tbody>";
  for (const Row& row : rows) {
    const json& c = *row.check;
    const std::string state = Str(c, "state");
    std::string threshold;
    if (!Str(c, "warn").empty()) threshold += "warn " + Field(c, "warn");
    if (!Str(c, "crit").empty()) threshold += (threshold.empty() ? "" : "<br>") + ("crit " + Field(c, "crit"));
    std::string name = Field(c, "name");
    if (Member(c, "disabled").is_object()) {
      name += " <span class=\"ago\">(disabled: " + Field(c["disabled"], "reason") + ")</span>";
    }
    o += "<tr class=\"check\" data-state=\"" + HtmlEscape(state) + "\"><td class=\"name\">" + name +
         "</td><td class=\"state\">" + Badge(StateClass(state), state) + "</td><td>" +
         Field(c, "value") + "</td><td class=\"nw\">" + (threshold.empty() ? "-" : threshold) +
         "</td><td class=\"nw\">" + When(c, "since", now_ms) + "</td><td class=\"nw\">" +
         When(c, "last_run", now_ms) +
         "</td><td class=\"err\">" + Field(c, "last_error") + "</td></tr>";
  }
  if (rows.empty()) o += "<tr><td colspan=\"7\" class=\"none\">no checks</td></tr>";
  o += "</tbody></table></section>";
}

void Jobs(std::string& o, const json& s, std::int64_t now_ms) {
  const json& jobs = Member(s, "jobs");
  o += "<section id=\"jobs\"><h2>Jobs</h2><div class=\"facts\"><div>running</div><div id=\"job\">";
  const json& run = Member(jobs, "running");
  if (run.is_object()) {
    o += "<b>" + Field(run, "job") + "</b> " + Field(run, "phase") + ": step " +
         Field(run, "step_index") + "/" + Field(run, "steps") + " <b>" + Field(run, "step") + "</b>";
    if (run.contains("step_elapsed_ms") && run["step_elapsed_ms"].is_number()) {
      o += " for " + Span(run["step_elapsed_ms"].get<std::int64_t>());
    }
    if (run.contains("elapsed_ms") && run["elapsed_ms"].is_number()) {
      o += " (job " + Span(run["elapsed_ms"].get<std::int64_t>()) + " of " + Field(run, "timeout") + ")";
    }
    if (run.contains("paused")) o += " " + Badge("st-warn", "PAUSED") + " " + Field(run["paused"], "reason");
  } else {
    o += "<span class=\"none\">none</span>";
  }
  o += "</div><div>queue</div><div id=\"queue\">";
  const json& queue = Items(jobs, "queue");
  if (queue.empty()) o += "<span class=\"none\">empty</span>";
  bool first = true;
  for (const auto& q : queue) {
    o += (first ? "" : ", ") + Field(q, "job") + " <span class=\"ago\">(" + Field(q, "trigger") +
         ", queued " + When(q, "queued", now_ms) + ")</span>";
    first = false;
  }
  o += "</div></div></section>";
}

// The members an event's line shows after its subject, when present.
constexpr const char* kEventDetail[] = {"state",  "prev_state", "result", "reason", "value",
                                        "threshold", "step", "by", "trigger", "error"};

void Events(std::string& o, const json& s) {
  const json& events = Items(s, "recent_events");
  o += "<section><h2>Last events</h2><table id=\"events\"><thead><tr><th>time</th><th>seq</th>"
       "<th>event</th><th>subject</th><th>detail</th></tr></thead><tbody>";
  for (const auto& e : events) {
    std::string subject;
    for (const char* key : {"check", "action", "job", "name"}) {
      if (!Str(e, key).empty()) {
        subject = Field(e, key);
        break;
      }
    }
    std::string detail;
    for (const char* key : kEventDetail) {
      const std::string v = Str(e, key);
      if (v.empty()) continue;
      detail += (detail.empty() ? "" : "  ") + std::string(key) + "=" + Text(v);
    }
    const std::string t = Str(e, "time");
    o += "<tr><td class=\"nw\">" + HtmlEscape(t.size() >= 19 ? t.substr(0, 10) + " " + t.substr(11, 8) : t) +
         "</td><td>" + Field(e, "seq") + "</td><td>" + Field(e, "event") + "</td><td>" + subject +
         "</td><td class=\"detail\">" + detail + "</td></tr>";
  }
  if (events.empty()) o += "<tr><td colspan=\"5\" class=\"none\">none since wardend started</td></tr>";
  o += "</tbody></table></section>";
}

}  // namespace

std::string RenderStatusPage(const json& s, std::int64_t now_ms) {
  std::string o;
  o.reserve(16 * 1024);
  const std::string host = Field(s, "host");
  o += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<meta http-equiv=\"refresh\" content=\"" + std::to_string(kStatusPageRefresh) + "\">"
       "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
       "<meta name=\"referrer\" content=\"no-referrer\">"
       "<title>warden " + host + "</title><style>" + kStyle + "</style></head><body>";
  std::string uptime = "?";
  if (auto started = ParseTime(Str(s, "started"))) uptime = Span(now_ms - *started);
  o += "<header><h1 id=\"host\">" + host + "</h1><div class=\"meta\">wardend <span id=\"version\">" +
       Field(s, "version") + "</span> &middot; pid " + Field(s, "pid") + " &middot; up <span id=\"uptime\">" +
       uptime + "</span> &middot; config digest " + Field(s, "config_digest") + "</div></header><main>";
  Facts(o, s, now_ms);
  Checks(o, s, now_ms);
  Jobs(o, s, now_ms);
  Events(o, s);
  o += "</main><footer>read-only; refreshes every " + std::to_string(kStatusPageRefresh) +
       " s; the same data as JSON: <a href=\"status.json\">status.json</a></footer></body></html>\n";
  return o;
}

}  // namespace warden
