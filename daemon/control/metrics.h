// Prometheus metrics: what the daemon knows, rendered in the text
// exposition format (version 0.0.4), served at GET /metrics ([metrics]
// listen) and written for node_exporter's textfile collector ([metrics]
// textfile). The names, types, labels and meanings are docs/metrics.md's.
//
// RenderMetrics only reads: the scheduler's check states and counters, the
// executor's action counters, the guard (pause, halt), the job runner, the
// mutex client's last answer and the fluentd sender's stats. It runs on
// the loop, once per scrape at most every kReuse (a page younger than that
// is served again: a thousand scrapers cost one render), unless an event
// came in between (Changed: a state seen in an event is on the next page).
//
// Threads: loop thread only. The textfile is written on the disk writer's
// thread (daemon/base/disk_writer.h), atomically (a reader sees the old or
// the new file, never half of one).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/disk_writer.h"
#include "daemon/base/status.h"
#include "daemon/config/config.h"
#include "daemon/io/http_server.h"

struct ev_loop;
struct ev_timer;

namespace warden {

class Scheduler;
class Executor;
class Guard;
class JobRunner;
class MutexClient;
class ForwardSender;

class MetricsCache;

// What a render reads; each pointer may be null (that part is left out).
struct MetricsSources {
  const Config* config = nullptr;
  const Scheduler* scheduler = nullptr;
  const Executor* executor = nullptr;
  const Guard* guard = nullptr;
  const JobRunner* jobs = nullptr;
  const MutexClient* mutex = nullptr;
  const ForwardSender* fluentd = nullptr;
  std::string host;
  std::string version;
  std::int64_t started_ms = 0;   // wall clock
  // What the last page rendered of each check, reused where the check did
  // not change (null: everything rendered afresh, the same page).
  MetricsCache* cache = nullptr;
};

// A page as pieces sent one after the other: the families a MetricsCache
// kept whole are pieces of their own, shared with the cache (and with an
// answer still being sent), not copied into the page at each scrape.
struct MetricsPage {
  std::vector<std::shared_ptr<const std::string>> pieces;
  MetricsPage() = default;
  MetricsPage(std::string text)   // NOLINT: one piece (a page made elsewhere, tests)
      : pieces{std::make_shared<const std::string>(std::move(text))} {}
  std::size_t size() const;
  std::string Join() const;
};

// The whole page, at wall-clock `now_ms`: as pieces, and joined.
MetricsPage RenderMetricsPieces(const MetricsSources& sources, std::int64_t now_ms);
std::string RenderMetrics(const MetricsSources& sources, std::int64_t now_ms);

// The checks' series of the last page, kept for the next (one per
// exporter, on the loop). At a scrape a second most of a check's twelve
// series show what they showed a second ago (its seven state series, its
// last change, its errors, often its value): each series is copied from
// the last page when what it shows is the same (the check's name, state,
// since, value, errors), and rendered only when it changed (its last run
// and runs, which change at every run, are rendered at every page); a check renamed, added or removed by a reload is just
// different. The families of states, last changes and errors are kept
// whole too, and are pieces of the page as they are (MetricsPage, sent
// without a copy) while the scheduler's counts of state changes and error
// results (Scheduler::state_changes, error_results) are those they were
// rendered at. What is rendered afresh goes into the memory of the last
// page's pieces once no answer holds them. Timestamps are rendered with one
// steady-to-wall offset, kept while the two clocks agree with it within
// kOffsetSlackMs (a step of the wall clock renders them all again).
class MetricsCache {
 public:
  static constexpr std::int64_t kOffsetSlackMs = 10;
  // Series rendered afresh and copied from the last page (a family kept
  // whole counts one), since the cache was made (for tests).
  std::uint64_t rendered() const { return rendered_; }
  std::uint64_t reused() const { return reused_; }

 private:
  friend struct MetricsCacheAccess;   // metrics.cc's renderer
  friend MetricsPage RenderMetricsPieces(const MetricsSources& sources, std::int64_t now_ms);
  template <class Key>
  struct Series {
    Key key{};
    bool set = false;
    std::string text;   // whole lines; "" when the series is absent
  };
  // A check's series that do not change at every run (its last run and
  // runs do: they are rendered at each page).
  struct OneCheck {
    std::string label;   // the escaped name
    // The start of its last-run and runs lines, up to the value.
    std::string last_run_prefix, runs_prefix;
    Series<std::string> value;
    std::string name;
    Series<int> states;                                     // key: CheckState
    Series<std::pair<std::int64_t, std::int64_t>> since;   // key: steady ms, offset
    Series<std::uint64_t> errors;
  };
  std::vector<OneCheck> checks_;
  // A family's samples, whole, and what they were rendered at: the
  // scheduler, its state changes and a second count (the offset, the
  // error results). The text is a piece of the pages that show it: while
  // one is still being sent, a new rendering goes into a new string.
  struct Block {
    const void* scheduler = nullptr;
    std::uint64_t changes = 0;
    std::int64_t second = 0;
    bool set = false;
    std::shared_ptr<std::string> text = std::make_shared<std::string>();
    // The text emptied to be rendered again (a new string while a page
    // holds the old one).
    std::string& Fresh() {
      if (text.use_count() > 1) text = std::make_shared<std::string>();
      else std::atomic_thread_fence(std::memory_order_acquire);   // (as Exposition's spares)
      text->clear();
      return *text;
    }
    bool Same(const void* s, std::uint64_t c, std::int64_t x) const {
      return set && scheduler == s && changes == c && second == x;
    }
    void Mark(const void* s, std::uint64_t c, std::int64_t x) {
      scheduler = s;
      changes = c;
      second = x;
      set = true;
    }
  };
  Block states_, since_, errors_;
  std::int64_t offset_ms_ = 0;   // wall ms - steady ms of the timestamps
  bool has_offset_ = false;
  // The pieces rendered afresh for the last page (not the blocks), by
  // place: one no page holds any more is rendered into again, its memory
  // kept (a fresh 600 KB a scrape cost page faults at each).
  std::vector<std::shared_ptr<std::string>> spare_;
  std::uint64_t rendered_ = 0, reused_ = 0;
};

// The exposition format's escaping (label values: backslash, double
// quote, newline; HELP text: backslash, newline).
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view text);
// A sample value as the format writes it: shortest round-trip decimal,
// NaN, +Inf, -Inf.
std::string FormatSampleValue(double value);
// Milliseconds as seconds, exactly as FormatSampleValue(ms / 1000.0).
std::string FormatMillis(std::int64_t ms);
// A check's value when it is a number (the whole text, finite or not).
std::optional<double> NumericValue(std::string_view text);

// Builds a page family by family. Each family is declared once (HELP and
// TYPE) before its samples.
class Exposition {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;
  Exposition() = default;
  // Rendering into `spare` strings (cleared, their memory kept), one per
  // piece, and into new ones when they run out (MetricsCache's).
  explicit Exposition(std::vector<std::shared_ptr<std::string>>* spare) : spare_(spare) {}
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, Labels labels, double value);
  // Lines rendered before (MetricsCache), appended as they are.
  void Lines(std::string_view lines) { out().append(lines); }
  // Lines rendered before, a piece of the page as they are (not copied).
  void Piece(std::shared_ptr<const std::string> lines);
  // The page so far (tests).
  std::string text() const;
  std::string Take() { return text(); }
  std::vector<std::shared_ptr<const std::string>> TakePieces();

 private:
  friend struct MetricsCacheAccess;   // appends series to the page in place
  std::string& out();                 // the piece being rendered
  std::vector<std::shared_ptr<std::string>>* spare_ = nullptr;
  std::size_t next_spare_ = 0;
  std::vector<std::shared_ptr<const std::string>> pieces_;
  std::shared_ptr<std::string> out_;   // null until something is rendered after the last piece
};

// The endpoint and the textfile. `render` makes the page (the daemon's
// RenderMetrics over its current objects). With ServeStatus and
// [metrics] status_page (the default), the listener also serves the status
// page (daemon/control/status_page.h) at GET / and its data at GET
// /status.json, each rendered at most every kReuse like /metrics.
class MetricsExporter {
 public:
  using Render = std::function<MetricsPage()>;
  MetricsExporter(struct ev_loop* loop, MetricsConfig config, DiskWriter* writer, Render render);
  ~MetricsExporter();
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  // Listens (when `listen` is set) and writes the textfile now and every
  // `interval` (when `textfile` is set). An address that cannot be served
  // is the error; the textfile goes on regardless.
  Status Start();
  // What / and /status.json show: the status (wardenctl status --json)
  // with "recent_events". Called before Start; without it, or with
  // status_page = no, both paths are 404.
  using StatusSource = std::function<nlohmann::json()>;
  void ServeStatus(StatusSource source) { status_source_ = std::move(source); }
  int port() const { return server_ ? server_->port() : 0; }
  // Something the page shows has changed (an event): the next scrape
  // renders afresh instead of serving a page up to kReuse old.
  void Changed() {
    page_.reset();
    status_json_.reset();
    status_html_.reset();
  }
  // The last textfile write's error, "" when it worked (wardenctl status).
  const std::string& textfile_error() const { return textfile_error_; }

  static constexpr double kReuse = 0.5;   // seconds a rendered page is served again
  // The HTTP server's limits (daemon/io/http_server.h): connections at
  // once (Prometheus needs one; more wait in the kernel's backlog), seconds
  // a connection may make no progress, bytes a request may take.
  static constexpr unsigned kMaxConnections = 64;
  static constexpr unsigned kTimeout = 5;
  static constexpr std::size_t kRequestMemory = 16 * 1024;

 private:
  HttpServer::Reply Serve(std::string_view method, std::string_view path);
  const MetricsPage& Page();
  // The status page's two renderings, made together from one status.
  void StatusPages();
  void WriteTextfile();
  static void OnTextfileTimer(struct ev_loop* loop, ev_timer* w, int revents);

  struct ev_loop* loop_;
  MetricsConfig config_;
  DiskWriter* writer_;
  Render render_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<ev_timer> textfile_timer_;
  std::optional<MetricsPage> page_;
  double page_at_ = -1;   // ev_now of page_
  StatusSource status_source_;
  std::shared_ptr<const std::string> status_json_, status_html_;
  double status_at_ = -1;   // ev_now of both
  std::string textfile_error_;
  bool textfile_failing_ = false;
  // Expires with this exporter: a writer's completion that comes later is dropped.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace warden
