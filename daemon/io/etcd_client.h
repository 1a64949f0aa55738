// A client for etcd's v3 HTTP/JSON gateway (POST /v3/kv/range, /v3/kv/txn,
// /v3/kv/put, /v3/kv/deleterange) on the libev loop, through HttpClient.
// Used by the etcd mutex backend (daemon/io/mutex_client.h) and meant for the
// fleet slots. It knows nothing about either: keys are whole keys (no prefix
// is added), values are bytes.
//
// Wire format: keys and values are base64 in both directions (strict
// decoding); int64 fields (revision, create_revision, mod_revision, version,
// count, deleted) come back as JSON strings and are parsed strictly (a JSON
// integer is accepted too); fields etcd leaves empty are omitted and read as
// 0 / "" / false / []. Reads are always linearizable (a range never sets
// `serializable`; a txn goes through raft).
//
// Endpoints: tried in order starting with the one that last worked (at first,
// config.first: a per-host rotation). A
// request moves on to the next endpoint when nothing was sent (refused, DNS,
// connect timeout, TLS handshake failure). A READ (Range, or a Txn whose ops
// are all ranges) also moves on after a timeout, a closed connection or an
// HTTP 5xx (a member that lost quorum answers 503). A WRITE never does once
// it was sent: its outcome is then unknown (EtcdError::maybe_applied) and the
// caller must re-read before deciding. `timeout` bounds the whole call,
// failover included: a write's attempt gets all that is left of it, a
// read's attempt an equal share of what is left among the endpoints not
// yet tried (so a member that accepts and never answers cannot eat the
// whole budget); each at most `connect_timeout` to connect.
//
// Errors: one line for an operator, naming the endpoint, e.g.
//   "etcd http://127.0.0.1:2379: connection refused"
//   "etcd http://127.0.0.1:2379: timed out after 2000 ms"
//   "etcd http://127.0.0.1:2379: HTTP 503: etcdserver: request timed out (code 14)"
//   "etcd http://127.0.0.1:2379: malformed answer: no \"header\""
//   "etcd http://127.0.0.1:2379: cluster_id 123 is not the configured 456"
// several attempts are joined with "; ".
//
// Threads: loop thread only. Callbacks run on the loop, never inside the call
// that started the request, exactly once unless cancelled (Cancel or
// destruction of the client, which drops them without calling them).
// A callback may destroy the client.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/units.h"
#include "daemon/io/http_client.h"

struct ev_loop;
struct ev_timer;

namespace warden {

struct EtcdConfig {
  // "http(s)://host:port", at least one (validated by the config loader).
  std::vector<std::string> endpoints;
  Duration timeout{2000};          // a whole call, failover included; > 0
  Duration connect_timeout{1000};  // one connect (TCP + TLS); capped by what is left
  std::string ca_file;             // PEM CA bundle; "" = the system's
  std::string cert_file;           // client certificate (PEM), with key_file
  std::string key_file;
  // When set: every answer's header.cluster_id must be this (decimal, as
  // the gateway prints it); anything else is an error (a wrong cluster).
  std::string cluster_id;
  std::size_t max_body = 1024 * 1024;
  // Index of the endpoint tried first (modulo their number): a per-host
  // rotation, so that hosts with the same list spread over the members.
  std::size_t first = 0;
  bool operator==(const EtcdConfig&) const = default;
};

// base64 (RFC 4648, standard alphabet, padded), as the gateway encodes bytes.
std::string Base64Encode(std::string_view bytes);
// Strict: length a multiple of 4, '=' only as the last one or two characters,
// no whitespace, unused bits zero. nullopt otherwise.
std::optional<std::string> Base64Decode(std::string_view text);
// An int64 as the gateway prints it: optional '-', decimal digits, nothing
// else, in range. nullopt otherwise.
std::optional<std::int64_t> ParseEtcdInt64(std::string_view text);
// A cluster id as configured: decimal, or hex with 0x (etcdctl prints hex,
// the gateway decimal). Returns the decimal form.
Expected<std::string> ParseEtcdClusterId(std::string_view text);
// An endpoint as configured: http://HOST:PORT or https://HOST:PORT (HOST a
// name, an IPv4 address or [IPv6]), an optional trailing '/', nothing else.
// Returns it without the trailing '/'.
Expected<std::string> ParseEtcdEndpoint(std::string_view text);
// The range_end that makes a range cover every key starting with `prefix`
// (etcd's rule: the last byte below 0xff incremented, the rest dropped;
// "\0" for an empty or all-0xff prefix, meaning "to the end").
std::string EtcdPrefixEnd(std::string_view prefix);
// A stable hash of a host id (FNV-1a, 64 bits), for EtcdConfig::first:
// the per-host endpoint rotation.
std::uint64_t HostHash(std::string_view host_id);

struct EtcdError {
  enum class Kind {
    kUnreachable,  // no request reached any endpoint: nothing was applied
    kNoAnswer,     // sent, then a timeout, a closed connection, an oversized body
    kHttp,         // a non-200 answer (etcd's error in message/code)
    kMalformed,    // a 200 whose body is not a gateway answer
    kWrongCluster  // header.cluster_id is not the configured one
  };
  Kind kind = Kind::kUnreachable;
  std::string message;   // one line, see above
  long http_status = 0;  // kHttp
  int code = -1;         // kHttp: etcd's (gRPC) code from the body, -1 if none
  // A write may have taken effect (it was sent and no clear "no" came back:
  // a timeout, a closed connection, a 5xx, a malformed 200, a wrong cluster).
  // False for kUnreachable and 4xx.
  bool maybe_applied = false;
};

// A value or an EtcdError.
template <typename T>
class [[nodiscard]] EtcdResult {
 public:
  EtcdResult(T value) : v_(std::move(value)) {}        // NOLINT: implicit on purpose
  EtcdResult(EtcdError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const EtcdError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, EtcdError> v_;
};

struct EtcdKv {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
};

struct EtcdHeader {
  std::int64_t revision = 0;
  std::string cluster_id;  // decimal
};

struct EtcdRange {
  EtcdHeader header;
  std::vector<EtcdKv> kvs;
  std::int64_t count = 0;
};

// One comparison of a Txn. Build with the helpers.
struct EtcdCompare {
  enum class Target { kVersion, kCreate, kMod, kValue };
  enum class Result { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  Target target = Target::kCreate;
  Result result = Result::kEqual;
  std::int64_t number = 0;  // for kVersion, kCreate, kMod
  std::string value;        // for kValue

  // The key does not exist (create_revision == 0).
  static EtcdCompare Missing(std::string key);
  // The key exists and holds exactly `value`.
  static EtcdCompare ValueIs(std::string key, std::string value);
  static EtcdCompare Revision(std::string key, Target target, Result result, std::int64_t n);
};

// One operation of a Txn branch. Build with the helpers.
struct EtcdOp {
  enum class Kind { kRange, kPut, kDelete };
  Kind kind = Kind::kRange;
  std::string key;
  std::string range_end;  // kRange, kDelete: "" = the key alone
  std::string value;      // kPut
  std::int64_t lease = 0; // kPut: the lease the key is attached to (0: none)

  static EtcdOp Range(std::string key, std::string range_end = "");
  static EtcdOp RangePrefix(std::string prefix);
  static EtcdOp Put(std::string key, std::string value, std::int64_t lease = 0);
  static EtcdOp Delete(std::string key, std::string range_end = "");
};

// The result of one op of the branch that ran, in order.
struct EtcdOpResult {
  EtcdOp::Kind kind = EtcdOp::Kind::kRange;
  std::vector<EtcdKv> kvs;   // kRange
  std::int64_t count = 0;    // kRange: keys in the range
  std::int64_t deleted = 0;  // kDelete
};

struct EtcdTxnResult {
  EtcdHeader header;
  bool succeeded = false;  // the compares held: `success` ran, else `failure`
  std::vector<EtcdOpResult> responses;
};

struct EtcdPutResult {
  EtcdHeader header;
};

// A lease (POST /v3/lease/grant, /v3/lease/keepalive): keys put with it
// are deleted by etcd when it is not kept alive within its TTL.
struct EtcdLeaseResult {
  EtcdHeader header;
  std::int64_t id = 0;
  std::int64_t ttl = 0;  // seconds left; 0 from a keepalive: the lease has expired
};

struct EtcdDeleteResult {
  EtcdHeader header;
  std::int64_t deleted = 0;
};

// Reads the body of a 200 answer to a txn whose branches have these ops:
// its header and the results of the branch that ran, or an invalid failure
// saying what is wrong with it, as EtcdClient reports it after "malformed
// answer: ". Pure (tests, fuzzer); the cluster_id is not compared here.
Expected<EtcdTxnResult> ParseEtcdTxnAnswer(std::string_view body,
                                           const std::vector<EtcdOp::Kind>& success,
                                           const std::vector<EtcdOp::Kind>& failure);

class EtcdClient {
 public:
  using RequestId = std::uint64_t;  // never 0
  template <typename T>
  using Callback = std::function<void(EtcdResult<T>)>;

  EtcdClient(struct ev_loop* loop, EtcdConfig config);
  ~EtcdClient();  // drops every pending callback
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // Keys in [key, range_end) ("" = the key alone; EtcdPrefixEnd for a prefix).
  RequestId Range(std::string key, std::string range_end, Callback<EtcdRange> done);
  // If every compare holds, runs `success`, else `failure`; atomically.
  RequestId Txn(std::vector<EtcdCompare> compares, std::vector<EtcdOp> success,
                std::vector<EtcdOp> failure, Callback<EtcdTxnResult> done);
  RequestId Put(std::string key, std::string value, Callback<EtcdPutResult> done);
  RequestId Delete(std::string key, std::string range_end, Callback<EtcdDeleteResult> done);
  // A new lease of `ttl_seconds` (etcd's id). A write: never retried once sent.
  RequestId LeaseGrant(std::int64_t ttl_seconds, Callback<EtcdLeaseResult> done);
  // One keepalive of lease `id` (the gateway's stream, one request and its
  // one answer): ttl 0 when the lease no longer exists.
  RequestId LeaseKeepAlive(std::int64_t id, Callback<EtcdLeaseResult> done);

  // Drops a request: its callback will not run (an HTTP request already
  // sent may still take effect). False when unknown or already called back.
  bool Cancel(RequestId id);

  // The endpoint the next request tries first (the last one that answered).
  const std::string& current_endpoint() const;
  std::size_t current_index() const { return current_; }
  std::size_t in_flight() const { return calls_.size(); }

 private:
  struct Call;  // one request and its attempts (etcd_client.cc)
  RequestId Begin(std::unique_ptr<Call> call);
  // Sends the call to its next endpoint, or fails it when none is left.
  // Returns false when a callback destroyed this client.
  bool Attempt(RequestId id);
  void OnHttp(RequestId id, std::size_t index, const HttpResponse& response);
  // Runs the call's callback; false when it destroyed this client.
  bool Finish(RequestId id, const EtcdError* error);
  static void OnKick(struct ev_loop* loop, ev_timer* w, int revents);

  struct ev_loop* loop_;
  const EtcdConfig config_;
  const Duration budget_;  // config_.timeout, at least 1 ms
  HttpClient http_;
  std::size_t current_ = 0;  // index into config_.endpoints
  std::map<RequestId, std::unique_ptr<Call>> calls_;
  RequestId next_id_ = 1;
  // 0 s: fails calls that cannot start (no endpoint) from the loop, never
  // inside the method that started them.
  std::unique_ptr<ev_timer> kick_;
  std::vector<RequestId> unstartable_;
  std::shared_ptr<bool> alive_;  // false once destroyed, for re-entrancy
};

}  // namespace warden
