// The status page: what `wardenctl status --json` says, as one HTML page
// for a person with a browser, served at GET / on the metrics listener
// ([metrics] status_page; MetricsExporter serves it, and the same data as
// JSON at GET /status.json). docs/metrics.md describes it.
//
// Safe on an unauthenticated port: every value from the status is
// HTML-escaped (a check's error text is the outside world's: a server's
// message, a command's output), the page has no script, form or link
// that changes anything, and kStatusPageCsp forbids scripts, frames and
// every external load (it refreshes by <meta http-equiv="refresh">, which
// a CSP does not govern). Secrets never reach it: the status already has
// every configured password and token redacted and holds no action's
// command or SQL.
//
// Cost: one pass over the status; each shown text is cut at kMaxText
// characters, so a check with a megabyte of error text costs a line.
//
// Threads: any (pure functions); RecentEvents on the loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace warden {

// <, >, &, " and ' as entities; control characters but tab and newline
// as U+FFFD (HTML has no way to show them).
std::string HtmlEscape(std::string_view text);

// The page, from the status (ControlCommands::StatusJson without "ok")
// with "recent_events" (RecentEvents::ToJson) added, at wall-clock `now_ms`.
std::string RenderStatusPage(const nlohmann::json& status, std::int64_t now_ms);

// The headers every answer of the status page carries (and /status.json):
// no script, style only inline, no image but data:, nothing framed or
// posted, no referrer; the browser must not guess the type.
inline constexpr const char* kStatusPageCsp =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

// Seconds between the page's refreshes.
inline constexpr int kStatusPageRefresh = 5;
// Characters of one value the page shows at most (the rest: "…").
inline constexpr std::size_t kMaxText = 300;

// The last kKeep events, newest first: fed every event on the loop, so
// the page does not read the events file.
class RecentEvents {
 public:
  static constexpr std::size_t kKeep = 20;
  void Add(const nlohmann::json& event);
  nlohmann::json ToJson() const;   // an array, newest first

 private:
  std::deque<nlohmann::json> events_;   // oldest first
};

}  // namespace warden
