// One etcd watch through the v3 JSON gateway (POST /v3/watch) on the libev
// loop: a streaming HTTP request whose answer is a stream of JSON objects,
// one per line ({"result": {...}} or {"error": ...}), read through
// HttpClient's on_data as it arrives. Used by the etcd mutex backend
// (daemon/io/mutex_client.h); it knows nothing about the mutex.
//
// Wire format (etcd 3.4, as the gateway prints it): keys and values base64,
// int64 fields as strings, empty fields omitted (an event without "type" is
// a PUT, a response without "watch_id" is watch 0). A response is
//   created:   the watch exists (the first response; nothing before it),
//   canceled:  etcd ended it (cancel_reason; compact_revision when the
//              requested start revision was compacted),
//   events:    PUT / DELETE of keys in the range, in revision order,
//   none of those: a progress notification (every event up to
//              header.revision was sent).
//
// Decoding is strict and bounded: a line longer than the limit (1 MB), a
// line that is not a JSON object, a field of the wrong type, bad base64 or
// int64 ends the watch with a one-line error.
//
// Threads: loop thread only. Callbacks run on the loop, never inside
// Start(); on_response for every response in order, then on_end exactly
// once when the watch ends by itself (never after Stop() or destruction).
// Either callback may Stop or destroy the watch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/io/etcd_client.h"
#include "daemon/io/http_client.h"

struct ev_loop;
struct ev_timer;

namespace warden {

struct EtcdWatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  EtcdKv kv;  // for a DELETE: key and mod_revision (the deletion's)
};

struct EtcdWatchResponse {
  EtcdHeader header;
  std::int64_t watch_id = 0;
  bool created = false;
  bool canceled = false;
  std::string cancel_reason;
  std::int64_t compact_revision = 0;
  bool fragment = false;
  std::vector<EtcdWatchEvent> events;
  // No events, not created, not canceled: a progress notification.
  bool progress() const { return !created && !canceled && events.empty(); }
};

// One line of the stream (without its '\n'): the response, or what is wrong
// with it. What cannot be read is invalid: "not JSON (...)", "no
// \"result\"", a bad field. An error that etcd sent in the stream ("etcd
// error: <message> (code N)") has the code of its gRPC code (transient for
// Unavailable, refused for most: etcd_json.h's GrpcStatusCode), never
// invalid, and that gRPC code as its peer code. Pure.
Expected<EtcdWatchResponse> ParseEtcdWatchLine(std::string_view line);

// Splits the stream into lines and parses them. Pure (tests, fuzzer).
class EtcdWatchDecoder {
 public:
  static constexpr std::size_t kMaxLine = 1024 * 1024;
  explicit EtcdWatchDecoder(std::size_t max_line = kMaxLine) : max_line_(max_line) {}
  // Appends the responses completed by `piece` to *out. Returns ok, or the
  // failure of the first line that failed (ParseEtcdWatchLine; a line over
  // the limit is invalid); after a failure the stream is dead and every
  // Feed returns it. Empty lines (and a '\r' before '\n') are skipped.
  Status Feed(std::string_view piece, std::vector<EtcdWatchResponse>* out);
  std::size_t buffered() const { return buffer_.size(); }

 private:
  std::size_t max_line_;
  std::string buffer_;  // an incomplete line
  Status error_;  // the stream's failure, once it failed
};

class EtcdWatch {
 public:
  using OnResponse = std::function<void(const EtcdWatchResponse&)>;
  // One line naming the endpoint, e.g. "etcd watch http://10.0.0.1:2379:
  // stream ended", "...: canceled: mvcc: required revision has been
  // compacted (compacted at 41)", "...: no answer within 2000 ms".
  using OnEnd = std::function<void(const std::string& error)>;

  // Uses config's TLS files, connect_timeout, cluster_id; `timeout` bounds
  // the wait for the "created" answer (the stream itself has no limit).
  EtcdWatch(struct ev_loop* loop, const EtcdConfig& config);
  ~EtcdWatch();  // stops without calling back
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

  // Watches [key, range_end) from start_revision (0: from now) on
  // config.endpoints[endpoint % size], asking for progress notifications.
  // A running watch is stopped first.
  void Start(std::size_t endpoint, const std::string& key, const std::string& range_end,
             std::int64_t start_revision, OnResponse on_response, OnEnd on_end);
  void Stop();
  bool active() const { return request_ != 0 || !queue_.empty(); }
  bool created() const { return created_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  bool OnData(long status, std::string_view piece);  // inside HttpClient
  void OnDone(const HttpResponse& response);
  void Drain();  // delivers queue_, then the end if one is due
  static void OnKick(struct ev_loop* loop, ev_timer* w, int revents);
  static void OnCreateTimeout(struct ev_loop* loop, ev_timer* w, int revents);
  void End(std::string error);  // stops and reports once, from the loop

  struct ev_loop* loop_;
  const EtcdConfig config_;
  HttpClient http_;
  HttpClient::RequestId request_ = 0;
  std::string endpoint_;
  std::string where_;  // "etcd watch <endpoint>: "
  EtcdWatchDecoder decoder_;
  long status_ = 0;
  std::string error_body_;  // a non-200's body, bounded
  bool created_ = false;
  std::vector<EtcdWatchResponse> queue_;
  std::string pending_end_;  // set: End() once queue_ is delivered
  bool ending_ = false;
  std::uint64_t generation_ = 0;  // Stop() counts
  OnResponse on_response_;
  OnEnd on_end_;
  std::unique_ptr<ev_timer> kick_;            // 0 s: Drain from the loop
  std::unique_ptr<ev_timer> create_timeout_;  // no "created" within timeout
  std::shared_ptr<bool> alive_;
};

}  // namespace warden
