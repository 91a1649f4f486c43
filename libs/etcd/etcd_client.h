// etcd_client.h: a small etcd v3 KV and Watch client over gRPC with mTLS
// (etcd's own API, proto/etcd/, generated as coffer::etcd_proto). The first
// brick of Coffer on etcd (issue 15): reads, writes, compare-and-set
// transactions on mod_revision, and watches that resume.
//
//   coffer::etcd::EtcdOptions options;
//   options.endpoints = {"10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"};
//   options.tls = {"/certs/ca.crt", "/certs/store.crt", "/certs/store.key"};
//   COFFER_ASSIGN_OR_RETURN(auto etcd, coffer::etcd::EtcdClient::Create(std::move(options)));
//
//   COFFER_ASSIGN_OR_RETURN(int64_t rev, etcd->Put("/coffer/a", "1"));
//   COFFER_ASSIGN_OR_RETURN(std::optional<KeyValue> kv, etcd->Get("/coffer/a"));
//   // Compare-and-set: write only if nobody changed the key since we read it.
//   COFFER_ASSIGN_OR_RETURN(TxnResult txn, etcd->Txn(coffer::etcd::TxnBuilder()
//       .If(Compare::ModRevision("/coffer/a", CompareOp::kEqual, kv->mod_revision))
//       .Then(Op::Put("/coffer/a", "2"))
//       .Else(Op::Get(KeyRange::Key("/coffer/a")))));
//   if (!txn.succeeded) { /* conflict: txn.responses[0].kvs is the current pair */ }
//
//   auto watcher = etcd->Watch(KeyRange::Prefix("/coffer/"), rev + 1,
//       [](absl::StatusOr<WatchEvent> e) { ... });   // on the watcher's thread
//   watcher->Stop();
//
// Endpoints: calls go to one endpoint while it answers; on UNAVAILABLE the
// endpoint is set aside for `retry_failed_after` (then reconnected on a
// fresh channel) and the call moves to the next one, within the call's one
// deadline. Reads (Range, and a Txn whose operations are all Ranges) are
// retried on the next endpoint for any unavailability. Writes (Put, Delete,
// Txn, Compact) move on only when no
// connection could be made (the request surely was not sent); etcd's own
// "no leader" / "request timed out", a reset connection or the deadline on
// a write is returned as UNAVAILABLE "... (it may have been applied)" at
// once, as etcd's clientv3 does (the caller re-reads: a CAS on mod_revision
// tells whether its write went in).
//
// Errors: UNAVAILABLE naming etcd when no endpoint answers in time, when
// the deadline passes, or when etcd lost its quorum; RESOURCE_EXHAUSTED for
// a request above etcd's request limit (1.5 MiB by default), refused here
// before it is sent; OUT_OF_RANGE for a revision that was compacted or is
// in the future; etcd's other errors keep their gRPC code, with a message
// starting "etcd: ".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/rpc/tls.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace coffer::etcd {

// etcd's default --max-request-bytes.
inline constexpr int64_t kDefaultMaxRequestBytes = 1536 * 1024;

struct EtcdOptions {
  // host:port of each member's client URL (https), in order of preference.
  std::vector<std::string> endpoints;
  // CA that signed etcd's server certificates (checked against the host name
  // or IP of each endpoint; no SPIFFE pin), and this client's certificate
  // and key (etcd runs with --client-cert-auth).
  rpc::TlsFiles tls;
  // Deadline of each call, over all the endpoints it tries.
  absl::Duration timeout = absl::Seconds(5);
  // How long an endpoint that failed is passed over.
  absl::Duration retry_failed_after = absl::Seconds(1);
  // Requests larger than this are refused locally (etcd's server flag).
  int64_t max_request_bytes = kDefaultMaxRequestBytes;
  // Responses up to this size are accepted.
  int max_receive_message_bytes = 64 << 20;
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  // 1 at creation, +1 on each modification.
  int64_t version = 0;
};

// A key, a prefix, or [start, end).
struct KeyRange {
  std::string key;
  // Empty: only `key`.
  std::string range_end;

  static KeyRange Key(std::string key);
  // Every key starting with `prefix` ("" : every key).
  static KeyRange Prefix(const std::string& prefix);
  // [start, end); end "" : every key >= start.
  static KeyRange Between(std::string start, std::string end);
};

struct RangeOptions {
  // 0: no limit.
  int64_t limit = 0;
  // 0: the newest; else a past revision (OUT_OF_RANGE once compacted).
  int64_t revision = 0;
  // false: linearizable (goes through the leader); true: the member's own
  // possibly stale view.
  bool serializable = false;
  // Keys in descending order (etcd's sort by key); with `limit`, the last
  // `limit` keys of the range.
  bool descending = false;
  // Only the count (and revision): no pairs.
  bool count_only = false;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  // More keys in the range than `limit` returned.
  bool more = false;
  // Keys in the range regardless of limit.
  int64_t count = 0;
  // The store's revision the read saw.
  int64_t revision = 0;
};

struct DeleteResult {
  int64_t deleted = 0;
  int64_t revision = 0;
};

enum class CompareOp { kEqual, kNotEqual, kLess, kGreater };

// One guard of a transaction: a field of `key` compared with a value. A
// missing key has mod_revision 0 and version 0.
struct Compare {
  enum class Target { kModRevision, kVersion, kValue };
  Target target = Target::kModRevision;
  CompareOp op = CompareOp::kEqual;
  std::string key;
  int64_t number = 0;  // kModRevision, kVersion
  std::string value;   // kValue

  static Compare ModRevision(std::string key, CompareOp op, int64_t mod_revision);
  static Compare Version(std::string key, CompareOp op, int64_t version);
  static Compare Value(std::string key, CompareOp op, std::string value);
};

// One operation of a transaction branch.
struct Op {
  enum class Kind { kPut, kDelete, kRange };
  Kind kind = Kind::kRange;
  KeyRange range;     // kPut: range.key only
  std::string value;  // kPut
  int64_t limit = 0;  // kRange

  static Op Put(std::string key, std::string value);
  static Op Delete(KeyRange range);
  static Op Get(KeyRange range, int64_t limit = 0);
};

class TxnBuilder {
 public:
  // All compares must hold for the Then branch to run, else Else runs.
  TxnBuilder& If(Compare compare);
  TxnBuilder& Then(Op op);
  TxnBuilder& Else(Op op);

  const std::vector<Compare>& compares() const { return compares_; }
  const std::vector<Op>& success() const { return success_; }
  const std::vector<Op>& failure() const { return failure_; }

 private:
  std::vector<Compare> compares_;
  std::vector<Op> success_;
  std::vector<Op> failure_;
};

// The answer to one op of the branch that ran.
struct OpResult {
  Op::Kind kind = Op::Kind::kRange;
  // kRange: the pairs read, `more` as in RangeResult.
  std::vector<KeyValue> kvs;
  bool more = false;
  // kDelete: keys deleted.
  int64_t deleted = 0;
};

struct TxnResult {
  // Whether the compares held (the Then branch ran).
  bool succeeded = false;
  // One per op of the branch that ran, in order.
  std::vector<OpResult> responses;
  // The store's revision after the transaction.
  int64_t revision = 0;
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // kDelete: key and mod_revision (the deletion's revision) only.
  KeyValue kv;
};

// Called on the watcher's thread, one event at a time in revision order.
// An error status ends the watch: OUT_OF_RANGE when the revision to resume
// from was compacted (re-read the state, then watch from its revision + 1).
using WatchCallback = std::function<void(absl::StatusOr<WatchEvent>)>;

class EtcdClient;

// A watch kept open on its own thread: through one endpoint, and on that
// endpoint's failure through the next, from the last revision delivered + 1,
// so no event is missed or repeated. Stop() (or the destructor) ends it and
// joins the thread; no callback runs after Stop() returns.
class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void Stop() = 0;
  // The endpoint the watch stream goes through now ("" between streams).
  virtual std::string endpoint() const = 0;
};

class EtcdClient {
 public:
  // INVALID_ARGUMENT without endpoints or with unreadable TLS files.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // The key's pair, or nullopt when it does not exist (linearizable).
  absl::StatusOr<std::optional<KeyValue>> Get(const std::string& key);
  absl::StatusOr<RangeResult> Range(const KeyRange& range, const RangeOptions& options = {});
  // The revision of the write.
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value);
  absl::StatusOr<DeleteResult> Delete(const KeyRange& range);
  absl::StatusOr<TxnResult> Txn(const TxnBuilder& txn);
  // Drops the history before `revision` (waits until it is applied).
  absl::Status Compact(int64_t revision);

  // Events of `range` from `start_revision` (inclusive; 0: from now). The
  // watcher must be stopped (or destroyed) before this client, and never
  // from its own callback.
  std::unique_ptr<Watcher> Watch(const KeyRange& range, int64_t start_revision,
                                 WatchCallback callback);

 private:
  struct Endpoint;
  struct Candidate;
  class WatcherImpl;
  friend class WatcherImpl;
  explicit EtcdClient(EtcdOptions options);

  // The endpoints to try for one call, best first, with their channels and
  // KV stubs (a failed endpoint whose pause is over gets a fresh channel).
  std::vector<Candidate> Candidates();
  void MarkFailed(size_t index);
  void MarkAnswered(size_t index);
  const std::string& EndpointName(size_t index) const;
  // Runs `attempt` on candidates until one answers, as described above.
  template <typename Resp, typename Attempt>
  absl::StatusOr<Resp> Call(const char* what, size_t request_bytes, bool is_write, Attempt attempt);

  const EtcdOptions options_;
  std::vector<std::string> names_;  // endpoints' host:port, fixed at Create
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_ ABSL_GUARDED_BY(mu_);
  size_t preferred_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace coffer::etcd
