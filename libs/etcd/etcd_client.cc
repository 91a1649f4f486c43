#include "libs/etcd/etcd_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/status.h"

namespace coffer::etcd {
namespace {

namespace pb = ::etcdserverpb;

// etcd's metadata asking a member to refuse (rather than hold) requests and
// watches while it has no leader (clientv3's WithRequireLeader).
constexpr char kRequireLeaderKey[] = "hasleader";
constexpr char kRequireLeaderValue[] = "true";

KeyValue FromProto(const ::mvccpb::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  return out;
}

std::vector<KeyValue> FromProto(const google::protobuf::RepeatedPtrField<::mvccpb::KeyValue>& kvs) {
  std::vector<KeyValue> out;
  out.reserve(kvs.size());
  for (const auto& kv : kvs) out.push_back(FromProto(kv));
  return out;
}

pb::RangeRequest RangeProto(const KeyRange& range, int64_t limit, int64_t revision,
                            bool serializable) {
  pb::RangeRequest request;
  request.set_key(range.key);
  request.set_range_end(range.range_end);
  request.set_limit(limit);
  request.set_revision(revision);
  request.set_serializable(serializable);
  return request;
}

pb::DeleteRangeRequest DeleteProto(const KeyRange& range) {
  pb::DeleteRangeRequest request;
  request.set_key(range.key);
  request.set_range_end(range.range_end);
  return request;
}

pb::Compare::CompareResult CompareResultProto(CompareOp op) {
  switch (op) {
    case CompareOp::kEqual:
      return pb::Compare::EQUAL;
    case CompareOp::kNotEqual:
      return pb::Compare::NOT_EQUAL;
    case CompareOp::kLess:
      return pb::Compare::LESS;
    case CompareOp::kGreater:
      return pb::Compare::GREATER;
  }
  return pb::Compare::EQUAL;
}

pb::RequestOp OpProto(const Op& op) {
  pb::RequestOp out;
  switch (op.kind) {
    case Op::Kind::kPut:
      out.mutable_request_put()->set_key(op.range.key);
      out.mutable_request_put()->set_value(op.value);
      break;
    case Op::Kind::kDelete:
      *out.mutable_request_delete_range() = DeleteProto(op.range);
      break;
    case Op::Kind::kRange:
      *out.mutable_request_range() = RangeProto(op.range, op.limit, 0, false);
      break;
  }
  return out;
}

pb::TxnRequest TxnProto(const TxnBuilder& txn) {
  pb::TxnRequest request;
  for (const Compare& c : txn.compares()) {
    pb::Compare* out = request.add_compare();
    out->set_key(c.key);
    out->set_result(CompareResultProto(c.op));
    switch (c.target) {
      case Compare::Target::kModRevision:
        out->set_target(pb::Compare::MOD);
        out->set_mod_revision(c.number);
        break;
      case Compare::Target::kVersion:
        out->set_target(pb::Compare::VERSION);
        out->set_version(c.number);
        break;
      case Compare::Target::kValue:
        out->set_target(pb::Compare::VALUE);
        out->set_value(c.value);
        break;
    }
  }
  for (const Op& op : txn.success()) *request.add_success() = OpProto(op);
  for (const Op& op : txn.failure()) *request.add_failure() = OpProto(op);
  return request;
}

// The key after every key with the prefix: the prefix with its last byte
// below 0xff incremented (and what follows dropped).
std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

// An error etcd itself returned (rather than the transport).
bool FromEtcd(const grpc::Status& status) {
  return absl::StartsWith(status.error_message(), "etcdserver:");
}

// A transport failure before the request left this process: no connection
// could be made (gRPC's fail-fast answer on a channel that cannot connect).
// Only then is a write surely not applied and safe to send elsewhere; a
// connection reset mid-call may have delivered it.
bool NotSent(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE || FromEtcd(status)) return false;
  const std::string& message = status.error_message();
  return absl::StrContains(message, "failed to connect") ||
         absl::StrContains(message, "Connection refused");
}

}  // namespace

KeyRange KeyRange::Key(std::string key) { return KeyRange{std::move(key), ""}; }

KeyRange KeyRange::Prefix(const std::string& prefix) {
  if (prefix.empty()) return KeyRange{std::string(1, '\0'), std::string(1, '\0')};
  return KeyRange{prefix, PrefixEnd(prefix)};
}

KeyRange KeyRange::Between(std::string start, std::string end) {
  if (end.empty()) end = std::string(1, '\0');
  return KeyRange{std::move(start), std::move(end)};
}

Compare Compare::ModRevision(std::string key, CompareOp op, int64_t mod_revision) {
  Compare c;
  c.target = Target::kModRevision;
  c.op = op;
  c.key = std::move(key);
  c.number = mod_revision;
  return c;
}

Compare Compare::Version(std::string key, CompareOp op, int64_t version) {
  Compare c;
  c.target = Target::kVersion;
  c.op = op;
  c.key = std::move(key);
  c.number = version;
  return c;
}

Compare Compare::Value(std::string key, CompareOp op, std::string value) {
  Compare c;
  c.target = Target::kValue;
  c.op = op;
  c.key = std::move(key);
  c.value = std::move(value);
  return c;
}

Op Op::Put(std::string key, std::string value) {
  Op op;
  op.kind = Kind::kPut;
  op.range = KeyRange::Key(std::move(key));
  op.value = std::move(value);
  return op;
}

Op Op::Delete(KeyRange range) {
  Op op;
  op.kind = Kind::kDelete;
  op.range = std::move(range);
  return op;
}

Op Op::Get(KeyRange range, int64_t limit) {
  Op op;
  op.kind = Kind::kRange;
  op.range = std::move(range);
  op.limit = limit;
  return op;
}

TxnBuilder& TxnBuilder::If(Compare compare) {
  compares_.push_back(std::move(compare));
  return *this;
}

TxnBuilder& TxnBuilder::Then(Op op) {
  success_.push_back(std::move(op));
  return *this;
}

TxnBuilder& TxnBuilder::Else(Op op) {
  failure_.push_back(std::move(op));
  return *this;
}

struct EtcdClient::Endpoint {
  std::shared_ptr<grpc::Channel> channel;
  // Made with the channel, once: a stub per call registers each of KV's
  // methods on the channel again.
  std::shared_ptr<pb::KV::Stub> kv;
  // Passed over until then; InfinitePast: healthy.
  absl::Time failed_until = absl::InfinitePast();
  // Failed since its channel was made: the next try gets a new channel
  // (gRPC's reconnect backoff on the old one grows to minutes).
  bool needs_new_channel = false;
};

EtcdClient::EtcdClient(EtcdOptions options) : options_(std::move(options)) {}

EtcdClient::~EtcdClient() = default;

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdOptions options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("etcd: no endpoints given");
  COFFER_RETURN_IF_ERROR(rpc::CheckTlsFiles(options.tls));
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("etcd: the call timeout must be positive");
  }
  std::unique_ptr<EtcdClient> client(new EtcdClient(std::move(options)));
  absl::MutexLock lock(&client->mu_);
  for (const std::string& target : client->options_.endpoints) {
    rpc::ChannelOptions channel;
    channel.target = target;
    channel.tls = client->options_.tls;
    channel.max_receive_message_bytes = client->options_.max_receive_message_bytes;
    COFFER_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> made,
                            rpc::MakeChannel(std::move(channel)));
    auto endpoint = std::make_unique<Endpoint>();
    endpoint->kv = pb::KV::NewStub(made);
    endpoint->channel = std::move(made);
    client->endpoints_.push_back(std::move(endpoint));
    client->names_.push_back(target);
  }
  return client;
}

const std::string& EtcdClient::EndpointName(size_t index) const { return names_[index]; }

struct EtcdClient::Candidate {
  size_t index;
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<pb::KV::Stub> kv;
};

std::vector<EtcdClient::Candidate> EtcdClient::Candidates() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  std::vector<Candidate> ready;
  std::vector<Candidate> paused;
  const size_t n = endpoints_.size();
  for (size_t i = 0; i < n; ++i) {
    const size_t index = (preferred_ + i) % n;
    Endpoint& endpoint = *endpoints_[index];
    if (endpoint.failed_until > now) {
      paused.push_back({index, endpoint.channel, endpoint.kv});
      continue;
    }
    if (endpoint.needs_new_channel) {
      rpc::ChannelOptions channel;
      channel.target = names_[index];
      channel.tls = options_.tls;
      channel.max_receive_message_bytes = options_.max_receive_message_bytes;
      absl::StatusOr<std::shared_ptr<grpc::Channel>> made = rpc::MakeChannel(std::move(channel));
      // The files were readable at Create; if they are not now, keep the
      // old channel (it fails or answers on its own).
      if (made.ok()) {
        endpoint.channel = *std::move(made);
        endpoint.kv = pb::KV::NewStub(endpoint.channel);
      }
      endpoint.needs_new_channel = false;
    }
    ready.push_back({index, endpoint.channel, endpoint.kv});
  }
  // Paused endpoints last: when every endpoint failed recently, a call still
  // tries them (an old channel that reconnected answers).
  ready.insert(ready.end(), paused.begin(), paused.end());
  return ready;
}

void EtcdClient::MarkFailed(size_t index) {
  absl::MutexLock lock(&mu_);
  Endpoint& endpoint = *endpoints_[index];
  const absl::Time now = absl::Now();
  // Inside its pause already: do not extend it, or an endpoint tried by
  // every call while all are down would never get its fresh channel.
  if (endpoint.failed_until <= now) {
    endpoint.failed_until = now + options_.retry_failed_after;
    endpoint.needs_new_channel = true;
  }
  if (preferred_ == index) preferred_ = (index + 1) % endpoints_.size();
}

void EtcdClient::MarkAnswered(size_t index) {
  absl::MutexLock lock(&mu_);
  endpoints_[index]->failed_until = absl::InfinitePast();
  // Stay on the endpoint that answers while it does.
  if (endpoints_[preferred_]->failed_until > absl::Now()) preferred_ = index;
}

template <typename Resp, typename Attempt>
absl::StatusOr<Resp> EtcdClient::Call(const char* what, size_t request_bytes, bool is_write,
                                      Attempt attempt) {
  if (static_cast<int64_t>(request_bytes) > options_.max_request_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("etcd ", what, " request of ", request_bytes,
                                                     " bytes is over etcd's request limit of ",
                                                     options_.max_request_bytes, " bytes"));
  }
  const absl::Time deadline = absl::Now() + options_.timeout;
  std::vector<Candidate> candidates = Candidates();
  std::vector<std::string> failures;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const size_t index = candidates[i].index;
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    // A read shares the time left among the endpoints left, so one member
    // that hangs does not take all of it; a write gets all of it, since it
    // can move on only when it surely was not sent.
    const absl::Time attempt_deadline =
        is_write ? deadline : now + (deadline - now) / static_cast<int64_t>(candidates.size() - i);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(attempt_deadline));
    context.AddMetadata(kRequireLeaderKey, kRequireLeaderValue);
    Resp response;
    const grpc::Status status = attempt(*candidates[i].kv, &context, &response);
    if (status.ok()) {
      MarkAnswered(index);
      return response;
    }
    const std::string& name = EndpointName(index);
    switch (status.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
      case grpc::StatusCode::DEADLINE_EXCEEDED: {
        failures.push_back(absl::StrCat(name, ": ", status.error_message()));
        MarkFailed(index);
        if (is_write && !NotSent(status)) {
          return absl::UnavailableError(absl::StrCat("etcd unavailable: ", what, " failed at ",
                                                     failures.back(),
                                                     " (it may have been applied)"));
        }
        continue;
      }
      default: {
        const absl::Status converted = rpc::FromGrpcStatus(status);
        return absl::Status(converted.code(), absl::StrCat("etcd: ", status.error_message()));
      }
    }
  }
  if (failures.empty()) failures.push_back("no endpoint tried within the deadline");
  return absl::UnavailableError(absl::StrCat("etcd unavailable: ", what, " failed within ",
                                             absl::FormatDuration(options_.timeout), " (",
                                             absl::StrJoin(failures, "; "), ")"));
}

absl::StatusOr<std::optional<KeyValue>> EtcdClient::Get(const std::string& key) {
  COFFER_ASSIGN_OR_RETURN(RangeResult result, Range(KeyRange::Key(key)));
  if (result.kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(std::move(result.kvs.front()));
}

absl::StatusOr<RangeResult> EtcdClient::Range(const KeyRange& range, const RangeOptions& options) {
  pb::RangeRequest request =
      RangeProto(range, options.limit, options.revision, options.serializable);
  if (options.descending) {
    request.set_sort_target(pb::RangeRequest::KEY);
    request.set_sort_order(pb::RangeRequest::DESCEND);
  }
  request.set_count_only(options.count_only);
  COFFER_ASSIGN_OR_RETURN(
      pb::RangeResponse response,
      (Call<pb::RangeResponse>(
          "Range", request.ByteSizeLong(), /*is_write=*/false,
          [&](pb::KV::Stub& kv, grpc::ClientContext* context, pb::RangeResponse* out) {
            return kv.Range(context, request, out);
          })));
  RangeResult result;
  result.kvs = FromProto(response.kvs());
  result.more = response.more();
  result.count = response.count();
  result.revision = response.header().revision();
  return result;
}

absl::StatusOr<int64_t> EtcdClient::Put(const std::string& key, const std::string& value) {
  pb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  COFFER_ASSIGN_OR_RETURN(
      pb::PutResponse response,
      (Call<pb::PutResponse>("Put", request.ByteSizeLong(), /*is_write=*/true,
                             [&](pb::KV::Stub& kv, grpc::ClientContext* context,
                                 pb::PutResponse* out) { return kv.Put(context, request, out); })));
  return response.header().revision();
}

absl::StatusOr<DeleteResult> EtcdClient::Delete(const KeyRange& range) {
  const pb::DeleteRangeRequest request = DeleteProto(range);
  COFFER_ASSIGN_OR_RETURN(
      pb::DeleteRangeResponse response,
      (Call<pb::DeleteRangeResponse>(
          "DeleteRange", request.ByteSizeLong(), /*is_write=*/true,
          [&](pb::KV::Stub& kv, grpc::ClientContext* context, pb::DeleteRangeResponse* out) {
            return kv.DeleteRange(context, request, out);
          })));
  DeleteResult result;
  result.deleted = response.deleted();
  result.revision = response.header().revision();
  return result;
}

absl::StatusOr<TxnResult> EtcdClient::Txn(const TxnBuilder& txn) {
  const pb::TxnRequest request = TxnProto(txn);
  // A Txn of Ranges only (whatever its compares) changes nothing: a read,
  // retried on the next member like a Range.
  auto is_range = [](const Op& op) { return op.kind == Op::Kind::kRange; };
  const bool read_only = std::all_of(txn.success().begin(), txn.success().end(), is_range) &&
                         std::all_of(txn.failure().begin(), txn.failure().end(), is_range);
  COFFER_ASSIGN_OR_RETURN(
      pb::TxnResponse response,
      (Call<pb::TxnResponse>("Txn", request.ByteSizeLong(), /*is_write=*/!read_only,
                             [&](pb::KV::Stub& kv, grpc::ClientContext* context,
                                 pb::TxnResponse* out) { return kv.Txn(context, request, out); })));
  TxnResult result;
  result.succeeded = response.succeeded();
  result.revision = response.header().revision();
  for (const pb::ResponseOp& op : response.responses()) {
    OpResult out;
    switch (op.response_case()) {
      case pb::ResponseOp::kResponseRange:
        out.kind = Op::Kind::kRange;
        out.kvs = FromProto(op.response_range().kvs());
        out.more = op.response_range().more();
        break;
      case pb::ResponseOp::kResponsePut:
        out.kind = Op::Kind::kPut;
        break;
      case pb::ResponseOp::kResponseDeleteRange:
        out.kind = Op::Kind::kDelete;
        out.deleted = op.response_delete_range().deleted();
        break;
      default:
        return absl::InternalError("etcd: a Txn answered with an op it was not asked for");
    }
    result.responses.push_back(std::move(out));
  }
  return result;
}

absl::Status EtcdClient::Compact(int64_t revision) {
  pb::CompactionRequest request;
  request.set_revision(revision);
  request.set_physical(true);
  return Call<pb::CompactionResponse>(
             "Compact", request.ByteSizeLong(), /*is_write=*/true,
             [&](pb::KV::Stub& kv, grpc::ClientContext* context, pb::CompactionResponse* out) {
               return kv.Compact(context, request, out);
             })
      .status();
}

// ---------------------------------------------------------------------------
// Watch.

class EtcdClient::WatcherImpl : public Watcher {
 public:
  WatcherImpl(EtcdClient* client, KeyRange range, int64_t start_revision, WatchCallback callback)
      : client_(client),
        range_(std::move(range)),
        next_revision_(start_revision),
        callback_(std::move(callback)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~WatcherImpl() override { Stop(); }

  void Stop() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

  std::string endpoint() const override {
    absl::MutexLock lock(&mu_);
    return endpoint_;
  }

 private:
  void Run() {
    absl::Duration backoff = absl::Milliseconds(50);
    while (true) {
      std::vector<Candidate> candidates = client_->Candidates();
      const size_t index = candidates.front().index;
      auto context = std::make_shared<grpc::ClientContext>();
      context->AddMetadata(kRequireLeaderKey, kRequireLeaderValue);
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        context_ = context;
        endpoint_ = client_->EndpointName(index);
      }
      std::unique_ptr<pb::Watch::Stub> stub = pb::Watch::NewStub(candidates.front().channel);
      std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream =
          stub->Watch(context.get());
      pb::WatchRequest request;
      pb::WatchCreateRequest* create = request.mutable_create_request();
      create->set_key(range_.key);
      create->set_range_end(range_.range_end);
      create->set_start_revision(next_revision_);
      bool streaming = stream->Write(request);
      absl::Status fatal;
      pb::WatchResponse response;
      while (streaming && stream->Read(&response)) {
        if (response.compact_revision() > 0) {
          fatal = absl::OutOfRangeError(absl::StrCat(
              "etcd: watch from revision ", next_revision_,
              " is not possible: the history was compacted up to revision ",
              response.compact_revision(), "; re-read, then watch from the read's revision + 1"));
          break;
        }
        if (response.canceled()) break;  // e.g. "etcdserver: no leader": next endpoint
        if (response.created()) {
          backoff = absl::Milliseconds(50);
          // "From now": pin now, so that a resumed stream misses nothing.
          if (next_revision_ <= 0) next_revision_ = response.header().revision() + 1;
        }
        for (const ::mvccpb::Event& event : response.events()) {
          WatchEvent out;
          out.type = event.type() == ::mvccpb::Event::DELETE ? WatchEvent::Type::kDelete
                                                             : WatchEvent::Type::kPut;
          out.kv = FromProto(event.kv());
          next_revision_ = event.kv().mod_revision() + 1;
          {
            absl::MutexLock lock(&mu_);
            if (stopping_) break;
          }
          callback_(std::move(out));
        }
      }
      context->TryCancel();
      stream->Finish().IgnoreError();
      {
        absl::MutexLock lock(&mu_);
        context_ = nullptr;
        endpoint_.clear();
        if (stopping_) return;
      }
      if (!fatal.ok()) {
        callback_(fatal);
        return;
      }
      client_->MarkFailed(index);
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopping), backoff);
      if (stopping_) return;
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
  }

  EtcdClient* const client_;
  const KeyRange range_;
  int64_t next_revision_;  // the watcher thread's
  const WatchCallback callback_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<grpc::ClientContext> context_ ABSL_GUARDED_BY(mu_);
  std::string endpoint_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

std::unique_ptr<Watcher> EtcdClient::Watch(const KeyRange& range, int64_t start_revision,
                                           WatchCallback callback) {
  return std::make_unique<WatcherImpl>(this, range, start_revision, std::move(callback));
}

}  // namespace coffer::etcd
