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

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

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
};

// The whole page, at wall-clock `now_ms`.
std::string RenderMetrics(const MetricsSources& sources, std::int64_t now_ms);

// The exposition format's escaping (label values: backslash, double
// quote, newline; HELP text: backslash, newline).
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view text);
// A sample value as the format writes it: shortest round-trip decimal,
// NaN, +Inf, -Inf.
std::string FormatSampleValue(double value);
// A check's value when it is a number (the whole text, finite or not).
std::optional<double> NumericValue(std::string_view text);

// Builds a page family by family. Each family is declared once (HELP and
// TYPE) before its samples.
class Exposition {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, Labels labels, double value);
  void Reserve(size_t bytes) { out_.reserve(out_.size() + bytes); }
  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// The endpoint and the textfile. `render` makes the page (the daemon's
// RenderMetrics over its current objects). With ServeStatus and
// [metrics] status_page (the default), the listener also serves the status
// page (daemon/control/status_page.h) at GET / and its data at GET
// /status.json, each rendered at most every kReuse like /metrics.
class MetricsExporter {
 public:
  using Render = std::function<std::string()>;
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
  std::shared_ptr<const std::string> Page();
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
  std::shared_ptr<const std::string> page_;
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
