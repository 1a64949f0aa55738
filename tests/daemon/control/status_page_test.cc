// The status page (daemon/control/status_page.cc): escaping, the order of
// the checks, bounded texts, the recent events; and the exporter serving
// it at / and /status.json (and not with status_page = no), through the
// real HTTP server on a private loop, asked by the real HTTP client.
#include "daemon/control/status_page.h"

#include <ev.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <map>

#include "daemon/base/disk_writer.h"
#include "daemon/control/metrics.h"
#include "daemon/io/http_client.h"

using namespace warden;
using nlohmann::json;

namespace {

json Sample() {
  return json{
      {"host", "db-1"},
      {"version", "9.9.9"},
      {"pid", 42},
      {"started", "2026-01-01T00:00:00.000Z"},
      {"config_digest", "abc"},
      {"checks",
       json::array({
           {{"name", "zz_ok"}, {"state", "ok"}, {"value", "3"}, {"warn", "> 5"}, {"crit", nullptr},
            {"since", "2026-01-01T00:10:00.000Z"}, {"last_run", nullptr}, {"last_error", ""}},
           {{"name", "aa_pending"}, {"state", "pending"}, {"value", ""}},
           {{"name", "mm_crit"}, {"state", "crit"}, {"value", "99"}, {"crit", "> 50"}},
           {{"name", "bad"}, {"state", "error"}, {"value", ""},
            {"last_error", "<script>document.title='owned'</script><img src=x onerror=alert(1)>"}},
       })},
      {"pause", {{"paused", true}, {"reason", "<b>upgrade</b>"}, {"by", "root"}, {"no_expiry", true}}},
      {"halt", {{"halted", false}, {"reason", ""}}},
      {"events", {{"file_error", "events.jsonl: No space left on device"}}},
      {"state_save_error", "state.json: <read-only>"},
      {"mutex", {{"state", "clear"}, {"reason", "ok"}}},
      {"jobs", {{"running", {{"job", "failover"}, {"phase", "running"}, {"step", "promote"},
                             {"step_index", 2}, {"steps", 3}, {"elapsed_ms", 125000},
                             {"step_elapsed_ms", 5000}, {"timeout", "1h"}}},
                {"queue", json::array({{{"job", "rotate"}, {"trigger", "schedule"},
                                        {"queued", "2026-01-01T00:59:00.000Z"}}})}}},
      {"recent_events", json::array({{{"event", "check.state"}, {"seq", 7}, {"check", "mm_crit"},
                                      {"state", "crit"}, {"time", "2026-01-01T00:59:59.000Z"}}})},
  };
}

constexpr std::int64_t kNow = 1767229200000;   // 2026-01-01T01:00:00Z

}  // namespace

TEST_CASE("status page: HtmlEscape leaves no markup and no control character", "[status_page]") {
  CHECK(HtmlEscape("<a href=\"x\">'&'</a>") ==
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  CHECK(HtmlEscape("tab\tnl\n") == "tab\tnl\n");
  CHECK(HtmlEscape(std::string("a\0b\x1b", 4)) == "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
  CHECK(HtmlEscape("grüße") == "grüße");
}

TEST_CASE("status page: checks bad-first, every value escaped, the facts shown", "[status_page]") {
  const std::string page = RenderStatusPage(Sample(), kNow);
  // Order: crit, error, pending, ok.
  const size_t crit = page.find(">mm_crit<"), bad = page.find(">bad<"),
               pending = page.find(">aa_pending<"), ok = page.find(">zz_ok<");
  REQUIRE(crit != std::string::npos);
  REQUIRE(bad != std::string::npos);
  REQUIRE(pending != std::string::npos);
  REQUIRE(ok != std::string::npos);
  CHECK(crit < bad);
  CHECK(bad < pending);
  CHECK(pending < ok);
  // The error text is text: no tag of it survives.
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("<img") == std::string::npos);
  CHECK(page.find("&lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;&lt;img src=x "
                  "onerror=alert(1)&gt;") != std::string::npos);
  CHECK(page.find("&lt;b&gt;upgrade&lt;/b&gt;") != std::string::npos);
  CHECK(page.find("NO EXPIRY") != std::string::npos);
  CHECK(page.find("<div>events_file_error</div><div><span class=\"badge st-error\">ERROR</span> "
                  "events.jsonl: No space left on device</div>") != std::string::npos);
  CHECK(page.find("state.json: &lt;read-only&gt;") != std::string::npos);
  // State as colour and as a word.
  CHECK(page.find("<span class=\"badge st-crit\">crit</span>") != std::string::npos);
  CHECK(page.find("warn &gt; 5") != std::string::npos);
  CHECK(page.find("crit &gt; 50") != std::string::npos);
  CHECK(page.find("up <span id=\"uptime\">1h00m</span>") != std::string::npos);
  CHECK(page.find("(50m00s ago)") != std::string::npos);   // zz_ok's since
  CHECK(page.find("<b>failover</b>") != std::string::npos);
  CHECK(page.find("<b>promote</b> for 5s (job 2m05s of 1h)") != std::string::npos);
  CHECK(page.find("rotate") != std::string::npos);
  CHECK(page.find("check.state") != std::string::npos);
  CHECK(page.find("http-equiv=\"refresh\"") != std::string::npos);
  // Nothing from elsewhere.
  CHECK(page.find("http://") == std::string::npos);
  CHECK(page.find("https://") == std::string::npos);
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("<form") == std::string::npos);
}

TEST_CASE("status page: a long text is cut, an empty status still renders", "[status_page]") {
  json s = Sample();
  s["checks"][0]["last_error"] = std::string(1 << 20, 'x');
  const std::string page = RenderStatusPage(s, kNow);
  CHECK(page.size() < 64 * 1024);
  CHECK(page.find(std::string(kMaxText, 'x') + "\xE2\x80\xA6") != std::string::npos);
  CHECK(page.find(std::string(kMaxText + 1, 'x')) == std::string::npos);
  const std::string empty = RenderStatusPage(json::object(), kNow);
  CHECK(empty.find("no checks") != std::string::npos);
  CHECK(empty.find("none since wardend started") != std::string::npos);
  CHECK(RenderStatusPage(json::array(), kNow).find("</html>") != std::string::npos);
}

TEST_CASE("status page: the recent events keep the last 20, newest first", "[status_page]") {
  RecentEvents r;
  CHECK(r.ToJson() == json::array());
  for (int i = 1; i <= 25; ++i) r.Add({{"seq", i}});
  const json j = r.ToJson();
  REQUIRE(j.size() == RecentEvents::kKeep);
  CHECK(j.front()["seq"] == 25);
  CHECK(j.back()["seq"] == 6);
}

namespace {

struct PrivateLoop {
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  ~PrivateLoop() { ev_loop_destroy(loop); }
};

struct Served {
  std::map<std::string, HttpResponse> got;
};

Served Ask(bool status_page, bool with_source) {
  PrivateLoop lr;
  MetricsConfig mc;
  mc.enabled = true;
  mc.listen = "127.0.0.1:0";
  mc.host = "127.0.0.1";
  mc.status_page = status_page;
  DiskWriter writer(lr.loop);
  MetricsExporter exporter(lr.loop, mc, &writer, [] { return std::string("warden_up 1\n"); });
  if (with_source) exporter.ServeStatus([] { return Sample(); });
  REQUIRE(exporter.Start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(exporter.port());
  HttpClient client(lr.loop);
  Served s;
  const std::vector<std::pair<HttpRequest::Method, std::string>> asks = {
      {HttpRequest::Method::kGet, "/"}, {HttpRequest::Method::kGet, "/status.json"},
      {HttpRequest::Method::kPost, "/"}, {HttpRequest::Method::kGet, "/metrics"},
      {HttpRequest::Method::kGet, "/index.html"}};
  for (const auto& [m, path] : asks) {
    HttpRequest r;
    r.method = m;
    r.url = base + path;
    r.timeout = Duration(5000);
    const std::string key = std::string(m == HttpRequest::Method::kGet ? "GET " : "POST ") + path;
    client.Start(r, [&s, key](HttpResponse resp) { s.got[key] = std::move(resp); });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  ev_timer tick;
  ev_timer_init(&tick, [](struct ev_loop*, ev_timer*, int) {}, 0.02, 0.02);
  ev_timer_start(lr.loop, &tick);
  while (s.got.size() < asks.size() && std::chrono::steady_clock::now() < deadline) {
    ev_run(lr.loop, EVRUN_ONCE);
  }
  ev_timer_stop(lr.loop, &tick);
  REQUIRE(s.got.size() == asks.size());
  return s;
}

}  // namespace

TEST_CASE("status page: served at / and /status.json beside /metrics", "[status_page][http]") {
  Served s = Ask(true, true);
  CHECK(s.got["GET /"].http_status == 200);
  CHECK(s.got["GET /"].body.find("<h1 id=\"host\">db-1</h1>") != std::string::npos);
  CHECK(s.got["GET /status.json"].http_status == 200);
  const json j = json::parse(s.got["GET /status.json"].body);
  CHECK(j["host"] == "db-1");
  CHECK(j["checks"].size() == 4);
  CHECK(s.got["POST /"].http_status == 405);
  CHECK(s.got["GET /metrics"].http_status == 200);
  CHECK(s.got["GET /index.html"].http_status == 404);
}

TEST_CASE("status page: status_page = no, or no source, leaves only /metrics", "[status_page][http]") {
  for (auto [page, source] : {std::pair{false, true}, std::pair{true, false}}) {
    Served s = Ask(page, source);
    CHECK(s.got["GET /"].http_status == 404);
    CHECK(s.got["GET /status.json"].http_status == 404);
    CHECK(s.got["POST /"].http_status == 404);
    CHECK(s.got["GET /metrics"].http_status == 200);
    CHECK(s.got["GET /metrics"].body == "warden_up 1\n");
  }
}
