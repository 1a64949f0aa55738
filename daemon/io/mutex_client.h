// The fleet-wide mutex over HTTP (docs/mutex.md, "HTTP protocol"): GET
// <url> with `X-Warden-Host: <host_id>` (and `Authorization: Bearer <token>`
// when a token is configured).
//
// Fail-closed: the answer is clear ONLY for a 200 (or a file:// URL that was
// read) whose body is a JSON object with "held": false. "held": true is held
// with the server's "reason" (a string; else "held"). Anything else is held,
// the reason saying why: "HTTP 503", "timed out after 2000 ms", "connection
// refused: ...", "connection closed without an answer", a TLS error,
// "malformed answer: ...", "body over 64 KB". A held answer whose object
// also has "terminate": true (exactly that boolean) asks every host to stop
// what is running too (MutexAnswer::terminate). Reasons are bounded (256
// bytes) and free of control characters; a clear answer's reason is "clear"
// ("mutex off" with mode = off, which never does any I/O).
//
// backend = etcd (mode kEtcd, docs/mutex.md, "etcd backend"): each fetch is ONE txn with
// two linearizable range ops, <prefix>/armed and <prefix>/mutex, through
// EtcdClient (daemon/io/etcd_client.h: endpoints, failover, TLS, cluster_id).
// Held while <prefix>/mutex exists, its value the reason (bounded as above;
// an empty value reads "<prefix>/mutex is set"). A value that is a JSON
// object with a string "reason" (what `wardenctl fleet halt --terminate`
// writes) is read as the HTTP body is: its reason, and terminate when it has
// "terminate": true. Clear ("clear") only while
// <prefix>/armed exists and <prefix>/mutex does not: a missing sentinel is
// held with "etcd mutex not armed: <prefix>/armed is missing (etcdctl put
// <prefix>/armed yes)", and every etcd error (unreachable, timeout, non-200,
// no header, not JSON, wrong cluster_id) is held with its one-line message.
// Cache, poll, joining and on_change work exactly as for HTTP.
//
// Watch (backend = etcd, watch = yes): after each successful poll at
// revision R while no watch runs, ONE watch on <prefix>/ starts at R + 1
// (EtcdWatch, daemon/io/etcd_watch.h) on the endpoint that answered, so
// nothing between the poll and the watch is missed. Its PUT / DELETE events
// of <prefix>/armed and <prefix>/mutex update the state at once (on_change
// fires from the watch; other keys under the prefix are ignored). The poll
// goes on at `poll` while the watch is up: it is what bounds a silent watch
// (a black-holed connection) to `poll` + `timeout` of believing "clear".
// Ordering: every answer carries etcd's revision; an answer older than what
// the other source already reported never replaces it. A poll that fails
// (held) also ends the watch; a watch that ends (closed, canceled, compacted,
// malformed, no "created" within `timeout`), or that a poll shows missed a
// change for a whole poll interval, is restarted after a backoff of 1 s
// doubling to 60 s, each wait drawn from [d/2, d] (jitter), by a poll
// that then starts it. The backoff starts over once a watch is created.
//
// Poll jitter: each interval is drawn from [0.8 x poll, poll] (never
// longer than poll). Endpoints: the first one tried is chosen by a hash of
// host_id (EtcdConfig::first), so hosts with the same list spread over the
// members; a watch that broke moves on to the next endpoint.
//
// Cache: a clear answer is reused for `cache` after its request was SENT
// (never longer), with from_cache = true. A held answer is never reused: the
// next Query asks again. Queries made while a request is in flight join it:
// one request, one callback each.
//
// Poll: after Start(), a request every `poll` (the first one at once); every
// fresh answer, polled or queried, whose held flag, terminate flag or reason differs from
// the previous one (the first one always does) calls the on_change callback
// before the Query callbacks of that answer. Cached answers never do.
//
// Threads: loop thread only; callbacks run on the loop, never inside Query()
// or Start() (at the earliest on the loop's next iteration). Nothing blocks.
// Ownership: holds its own copy of the config; the loop must outlive it.
// Destruction drops pending Query callbacks WITHOUT calling them (and
// cancels the request): an owner that swaps clients on reload should keep
// the old one until !busy(), or re-ask.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/units.h"
#include "daemon/io/etcd_client.h"
#include "daemon/io/etcd_watch.h"
#include "daemon/io/http_client.h"

struct ev_loop;
struct ev_timer;

namespace warden {

struct MutexConfig {
  enum class Mode { kHttp, kEtcd, kOff };
  Mode mode = Mode::kHttp;
  std::string url;                 // kHttp: http(s):// or file://
  Duration timeout{2000};          // kHttp (kEtcd: etcd.timeout)
  Duration cache{5000};
  Duration poll{15'000};
  std::string token;               // kHttp: from token_file; never logged
  std::string ca_file;             // kHttp (kEtcd: etcd.ca_file)
  // kEtcd (backend = etcd): held while <prefix>/mutex exists, clear only
  // while <prefix>/armed exists too (daemon/io/mutex_client.h). The connection
  // (endpoints, timeout, connect_timeout, ca_file, cert_file, key_file,
  // cluster_id) and prefix are [fleet]'s keys, read by the same code.
  EtcdConfig etcd;
  std::string prefix = "/warden";
  bool watch = true;  // kEtcd: keep a watch on <prefix>/ (above)
};

struct MutexAnswer {
  bool held = true;
  std::string reason;
  // Held, and what is running must stop too (a terminating halt).
  bool terminate = false;
  // When this answer came back (for a cached answer: when it originally did).
  std::chrono::steady_clock::time_point at{};
  bool from_cache = false;
};

// The answer of one HTTP response (the rules above; pure, for tests and the
// fuzzer). is_file: the URL is file://, whose read has no status (0 is 200).
MutexAnswer InterpretMutexResponse(const HttpResponse& response, bool is_file);

// The answer of the etcd txn that reads <prefix>/armed and <prefix>/mutex,
// in that order (the rules above; pure).
MutexAnswer InterpretEtcdMutex(const EtcdResult<EtcdTxnResult>& result, const std::string& prefix);
// The same from the two keys as known (nullptr: absent).
MutexAnswer EtcdMutexAnswer(const EtcdKv* armed, const EtcdKv* mutex, const std::string& prefix);

// The state of the watch, for status and logs.
struct MutexWatchState {
  bool enabled = false;     // backend = etcd and watch = yes
  bool up = false;          // created, events flowing
  std::string endpoint;     // of the current or last watch
  std::string last_error;   // why the last one ended ("" = never ended)
  std::int64_t revision = 0;     // the highest revision it covered
  std::uint64_t started = 0;     // watches started so far
  std::uint64_t events = 0;      // events of the two keys applied
  std::optional<Duration> retry_in;  // waiting to restart: after this
};

class MutexClient {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void(MutexAnswer)>;

  MutexClient(struct ev_loop* loop, const MutexConfig& config, std::string host_id);
  ~MutexClient();
  MutexClient(const MutexClient&) = delete;
  MutexClient& operator=(const MutexClient&) = delete;

  // Asks the mutex (or reuses a clear answer still within `cache`); `done`
  // runs exactly once, on the loop, unless the client is destroyed first.
  void Query(Callback done);

  // Called on every change of held/reason (see above). Set before Start().
  void SetOnChange(Callback on_change) { on_change_ = std::move(on_change); }
  // Called when the watch comes up (error "") or ends (error says why).
  void SetOnWatch(std::function<void(const MutexWatchState&)> on_watch) {
    on_watch_ = std::move(on_watch);
  }
  MutexWatchState watch_state() const;
  // Called with the key of every other key's change the watch sees under
  // the prefix (the rollouts listen: daemon/jobs/rollout_agent.h). It must
  // not destroy this client.
  void SetOnKey(std::function<void(const std::string& key)> on_key) { on_key_ = std::move(on_key); }

  // Starts / stops the background poll. Start() twice restarts the period.
  // With mode = off, Start() reports the "mutex off" answer once as a change.
  void Start();
  void Stop();

  // For status: the latest fresh answer (none before the first), and its age.
  const std::optional<MutexAnswer>& last() const { return last_; }
  std::optional<Duration> last_age() const;
  // A request in flight or callbacks waiting to run.
  bool busy() const { return request_ != 0 || !waiters_.empty() || !deferred_.empty(); }
  // Requests sent so far (diagnostics, tests).
  std::uint64_t requests() const { return requests_; }

 private:
  void Fetch();  // sends a request unless one is in flight
  void OnResponse(const HttpResponse& response);
  void OnEtcdPoll(const EtcdResult<EtcdTxnResult>& result);
  // The etcd keys as the watch knows them.
  struct Keys {
    std::optional<EtcdKv> armed;
    std::optional<EtcdKv> mutex;
    bool SameState(const Keys& o) const;
  };
  MutexAnswer KeysAnswer(const Keys& keys) const;
  void StartWatch(std::int64_t revision, const Keys& keys);
  void OnWatchResponse(const EtcdWatchResponse& response);
  void OnWatchEnd(const std::string& error);
  // Ends the watch (if any) and arms the backoff before the next one.
  void WatchFailed(const std::string& error);
  void ArmPoll(bool now);
  Duration NextPollDelay();
  double Random01();  // [0, 1)
  static void OnWatchRetry(struct ev_loop* loop, ev_timer* w, int revents);
  // Records a fresh answer and calls the waiters.
  void Answer(MutexAnswer answer);
  // Records a fresh answer as last_, calling on_change_ when it changed.
  // Returns false when a callback destroyed this client.
  bool Record(const MutexAnswer& answer);
  void Defer(std::function<void()> fn);
  static void OnPoll(struct ev_loop* loop, ev_timer* w, int revents);
  static void OnDeferred(struct ev_loop* loop, ev_timer* w, int revents);

  // Constant after construction.
  struct ev_loop* loop_;
  const MutexConfig config_;
  const std::string host_id_;
  const bool is_file_;  // url is file://: no HTTP status, a read is a 200

  HttpClient http_;
  std::unique_ptr<EtcdClient> etcd_;  // backend = etcd only
  std::unique_ptr<ev_timer> poll_;
  std::unique_ptr<ev_timer> deferred_timer_;  // 0 s: runs deferred_
  bool polling_ = false;                      // between Start() and Stop()

  // The watch (backend = etcd, watch = yes).
  std::unique_ptr<EtcdWatch> watch_;
  std::unique_ptr<ev_timer> watch_retry_;  // backoff before the next watch
  std::function<void(const MutexWatchState&)> on_watch_;
  std::function<void(const std::string&)> on_key_;
  Keys watch_keys_;                  // the keys as of watch_rev_
  std::int64_t watch_rev_ = 0;       // highest revision the watch covered
  bool watch_up_ = false;            // "created" seen
  std::int64_t poll_rev_ = 0;        // revision of the last successful poll
  std::int64_t suspect_rev_ = 0;     // a poll at this revision saw a change the watch had not
  unsigned watch_failures_ = 0;      // since the last created watch: backoff and endpoint
  std::string watch_error_;
  std::string watch_endpoint_;
  std::uint64_t watch_started_ = 0;
  std::uint64_t watch_events_ = 0;
  std::uint64_t rng_;                // poll and backoff jitter (splitmix64)

  Callback on_change_;
  std::optional<MutexAnswer> last_;
  Clock::time_point last_sent_{};      // when last_'s request was sent
  std::uint64_t request_ = 0;          // in flight (HTTP or etcd id), or 0
  Clock::time_point sent_{};           // when request_ was sent
  std::vector<Callback> waiters_;      // for request_
  std::vector<std::function<void()>> deferred_;
  std::uint64_t requests_ = 0;
  std::shared_ptr<bool> alive_;  // reset on destruction, for re-entrancy
};

}  // namespace warden
