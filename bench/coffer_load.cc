// coffer_load: a load generator for Coffer and its baselines. Drives one
// operation with --in_flight calls outstanding at all times (gRPC's async
// CompletionQueue API: no thread per call) over mTLS like a real client, for
// --duration or --count calls after --warmup, and prints the throughput and
// the latency percentiles as a markdown table row and as JSON.
//
//   build/bench/coffer_load --target=localhost:7702 --tls_ca=pki/ca.crt
//     --tls_cert=pki/cofferctl.crt --tls_key=pki/cofferctl.key
//     --expected_spiffe_id=spiffe://coffer.local/store
//     --op=get_secret_value --keys=1000 --setup --in_flight=64 --duration=10s
//     --json_out=gsv.json
//   | get_secret_value | 64 | 123456 | 0 | 12345.6/s | 4.81 | 6.02 | 8.90 | 12.4 |
//
// Operations (--op):
//   echo                    coffer.bench.v1.Echo/Echo (bench/echo_server), --value_size bytes
//   get_secret_value        GetSecretValue of "<prefix>NNNNN", N = call % --keys
//   describe_secret         DescribeSecret, the same names
//   put_secret_value        PutSecretValue on the same names (a new version each call)
//   create_secret           CreateSecret of a new name every call (--without_value: no
//                           version, so no KMS call; --value_template: a value per name)
//   rotate_secret           RotateSecret of "<prefix>NNNNN" with --rotation_worker and
//                           --rotation_schedule; --rotate_immediately=false only turns
//                           rotation on (the next rotation lands in a future window)
//   get_parameter           GetParameter (--param_type=String|SecureString, --with_decryption)
//   get_parameters_by_path  GetParametersByPath of "<prefix>NNNNN" holding 10 parameters
//   put_parameter           PutParameter with Overwrite; --keys=0: a new name every call
//                           ("<prefix>NNNNN": with --name_prefix=/a/p- all under /a)
//   kms_decrypt             Decrypt of --keys ciphertexts made at setup (GenerateDataKey)
//   kms_generate_data_key   GenerateDataKey (AES_256) under a key made at setup
//   etcd_range              etcd KV Range of one key "<prefix>NNNNN" (linearizable)
//   etcd_put                etcd KV Put; --keys=0: a new key every call
//   aws_get_secret_value    GetSecretValue of "<prefix>NNNNN" through coffer-gateway: AWS
//                           JSON 1.1 over HTTPS (--target is the gateway, --tls_ca its CA;
//                           no client certificate), each request SigV4-signed when sent
//                           with the access key of --aws_key_file; HTTP/1.1 keep-alive, so
//                           --in_flight threads each with its own connection (--threads
//                           and --channels do not apply). A call succeeds on HTTP 200
//                           holding the expected SecretString; --setup creates the
//                           secrets through the gateway (CreateSecret; existing ones kept)
// --setup first makes what the operation reads (secrets, parameters, KMS key
// and ciphertexts, etcd keys), --in_flight at a time; existing ones are
// reused, so a second run against the same server may skip it. Reads check
// what they get (value size, result count); every non-OK status is counted
// by code, printed, and fails the run (exit 1) unless --allow_errors.
// Names of distinct-name operations carry a random run token, so runs never
// collide (unless --name_prefix is given: then call i makes "<prefix>NNNNN",
// and --count=N --warmup=0s makes exactly the names 0..N-1, which is how
// bench/scale.sh fills a store with a million secrets).
// AWS errors are counted under the gRPC code of their kind (NOT_FOUND for
// ResourceNotFoundException...; aws_json_client.h), with the HTTP status
// and the AWS error type in the message.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/aws_json_client.h"
#include "bench/proto/echo.grpc.pb.h"
#include "coffer/kms/v1/kms.grpc.pb.h"
#include "coffer/params/v1/params.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/tls.h"

ABSL_FLAG(std::string, target, "", "host:port of the server (required)");
ABSL_FLAG(std::string, tls_ca, "var/certs/ca.crt", "CA bundle the server must chain to");
ABSL_FLAG(std::string, tls_cert, "var/certs/cofferctl.crt", "client certificate (PEM)");
ABSL_FLAG(std::string, tls_key, "var/certs/cofferctl.key", "client private key (PEM)");
ABSL_FLAG(std::string, expected_spiffe_id, "",
          "SPIFFE ID the server must present (checked in the handshake, as libs/rpc does); "
          "empty: check the host name of --target");
ABSL_FLAG(std::string, authority, "", "name to verify in the server certificate instead");
ABSL_FLAG(std::string, op, "", "operation to drive (see the file comment)");
ABSL_FLAG(std::string, label, "", "name of this measurement in the outputs (default: --op)");
ABSL_FLAG(int, in_flight, 64, "calls outstanding at all times");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "how long to measure (unless --count)");
ABSL_FLAG(int64_t, count, 0, "measure exactly this many calls instead of --duration");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(2), "calls made before measuring starts");
ABSL_FLAG(int, value_size, 200, "bytes of each value / payload");
ABSL_FLAG(int, keys, 1,
          "distinct names the calls go round (call i uses name i % keys); 0 with put_parameter "
          "or etcd_put: a new name every call");
ABSL_FLAG(std::string, name_prefix, "", "prefix of the names (default: one per operation)");
ABSL_FLAG(bool, setup, false, "make what the operation needs first");
ABSL_FLAG(int, setup_puts, 0,
          "with --setup and a secrets operation: PutSecretValue calls on each secret after "
          "creating it (a secret with many versions)");
ABSL_FLAG(bool, without_value, false,
          "create_secret: no secret_string (a secret without versions: no KMS call)");
ABSL_FLAG(std::string, value_template, "",
          "create_secret, put_secret_value: this value, every \"{i}\" replaced by the name's "
          "number (NNNNN), instead of --value_size bytes");
ABSL_FLAG(std::string, rotation_worker, "", "rotate_secret: the worker name (required)");
ABSL_FLAG(std::string, rotation_schedule, "rate(30 days)",
          "rotate_secret: rotation_rules.schedule_expression");
ABSL_FLAG(bool, rotate_immediately, true,
          "rotate_secret: start a rotation now (false: only turn rotation on)");
ABSL_FLAG(std::string, param_type, "String", "String, StringList or SecureString");
ABSL_FLAG(bool, with_decryption, false, "GetParameter*: decrypt SecureString values");
ABSL_FLAG(std::string, kms_key_id, "", "KMS operations: this key instead of one made at setup");
ABSL_FLAG(bool, etcd_serializable, false, "etcd_range: serializable instead of linearizable");
ABSL_FLAG(int, threads, 1, "client completion-queue threads");
ABSL_FLAG(int, channels, 1, "gRPC channels (TCP connections); calls are spread over them");
ABSL_FLAG(absl::Duration, call_timeout, absl::Seconds(10), "deadline of each call");
ABSL_FLAG(std::string, json_out, "", "write the JSON result here (default: a line on stdout)");
ABSL_FLAG(bool, allow_errors, false, "exit 0 even when calls failed");
ABSL_FLAG(bool, header, false, "print the table header before the row");
ABSL_FLAG(std::string, aws_key_file, "",
          "aws_* operations: a file holding \"<access key id> <secret access key>\" (what "
          "cofferctl access-keys create --output text prints); empty: AWS_ACCESS_KEY_ID and "
          "AWS_SECRET_ACCESS_KEY");
ABSL_FLAG(std::string, aws_region, "local", "aws_* operations: the region signed for");

namespace coffer::bench {
namespace {

namespace kv1 = ::coffer::kms::v1;
namespace pv1 = ::coffer::params::v1;
namespace sv1 = ::coffer::secrets::v1;
namespace ev1 = ::coffer::bench::v1;
namespace epb = ::etcdserverpb;

// ---------------------------------------------------------------------------
// One outstanding call. A Slot is reused for call after call; it belongs to
// one completion queue, whose thread is the only one that touches it.

class Slot {
 public:
  virtual ~Slot() = default;
  // Sends call number `seq`; its completion comes back on `cq` tagged `this`.
  virtual void Start(int64_t seq, grpc::CompletionQueue* cq) = 0;
  // Once completed: OK, the call's error, or what the response lacked.
  virtual absl::Status Result() = 0;

  int64_t seq = 0;
  bool measured = false;
  absl::Time started;
  grpc::CompletionQueue* cq = nullptr;
};

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// A unary call of any generated stub: `fill` writes request number `seq`,
// `check` inspects the response (and may keep what setup needs from it).
template <typename Stub, typename Request, typename Response>
class UnaryCall final : public Slot {
 public:
  using Prepare = std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> (Stub::*)(
      grpc::ClientContext*, const Request&, grpc::CompletionQueue*);
  using Fill = std::function<void(int64_t, Request*)>;
  using Check = std::function<absl::Status(int64_t, const Response&)>;

  UnaryCall(Stub* stub, Prepare prepare, Fill fill, Check check, absl::Duration timeout)
      : stub_(stub),
        prepare_(prepare),
        fill_(std::move(fill)),
        check_(std::move(check)),
        timeout_(timeout) {}

  void Start(int64_t n, grpc::CompletionQueue* queue) override {
    seq = n;
    context_.emplace();
    context_->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    request_.Clear();
    fill_(n, &request_);
    response_.Clear();
    reader_ = (stub_->*prepare_)(&*context_, request_, queue);
    reader_->StartCall();
    reader_->Finish(&response_, &status_, this);
  }

  absl::Status Result() override {
    if (!status_.ok()) return FromGrpc(status_);
    return check_ ? check_(seq, response_) : absl::OkStatus();
  }

 private:
  Stub* stub_;
  Prepare prepare_;
  Fill fill_;
  Check check_;
  absl::Duration timeout_;
  std::optional<grpc::ClientContext> context_;
  Request request_;
  Response response_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader_;
};

// Makes the slot for the i-th outstanding call (spread over channels).
using SlotFactory = std::function<std::unique_ptr<Slot>(int index)>;

// ---------------------------------------------------------------------------
// Running slots and measuring.

struct RunOptions {
  int in_flight = 64;
  int threads = 1;
  absl::Duration warmup = absl::ZeroDuration();
  absl::Duration duration = absl::Seconds(10);
  int64_t count = 0;  // > 0: exactly this many measured calls
};

struct Result {
  int64_t ok = 0;
  int64_t errors = 0;
  std::map<std::string, int64_t> errors_by_code;
  std::map<std::string, std::string> first_error;  // code -> first message
  std::vector<int64_t> latencies_ns;               // successful measured calls
  double elapsed_s = 0;

  double throughput() const { return elapsed_s > 0 ? static_cast<double>(ok) / elapsed_s : 0; }
  // Latency quantile in milliseconds (nearest rank); needs sorted latencies.
  double QuantileMs(double q) const {
    if (latencies_ns.empty()) return 0;
    size_t rank = static_cast<size_t>(q * static_cast<double>(latencies_ns.size()));
    rank = std::min(rank, latencies_ns.size() - 1);
    return static_cast<double>(latencies_ns[rank]) / 1e6;
  }
  double MeanMs() const {
    if (latencies_ns.empty()) return 0;
    long double sum = 0;
    for (int64_t l : latencies_ns) sum += l;
    return static_cast<double>(sum / latencies_ns.size()) / 1e6;
  }
};

// What one thread saw of its measured calls.
struct ThreadStats {
  int64_t ok = 0, errors = 0;
  std::map<std::string, int64_t> errors_by_code;
  std::map<std::string, std::string> first_error;
  std::vector<int64_t> latencies_ns;
  absl::Time last_completion = absl::InfinitePast();

  void Record(const absl::Status& status, absl::Time started, absl::Time done) {
    if (status.ok()) {
      ++ok;
      latencies_ns.push_back(absl::ToInt64Nanoseconds(done - started));
    } else {
      ++errors;
      const std::string code = absl::StatusCodeToString(status.code());
      ++errors_by_code[code];
      first_error.emplace(code, std::string(status.message()));
    }
    last_completion = std::max(last_completion, done);
  }
};

// All threads' calls; throughput over measure_start .. the last completion.
Result Merge(const std::vector<ThreadStats>& per_thread, absl::Time measure_start) {
  Result merged;
  absl::Time last = measure_start;
  for (const ThreadStats& s : per_thread) {
    merged.ok += s.ok;
    merged.errors += s.errors;
    for (const auto& [code, n] : s.errors_by_code) merged.errors_by_code[code] += n;
    for (const auto& [code, msg] : s.first_error) merged.first_error.emplace(code, msg);
    merged.latencies_ns.insert(merged.latencies_ns.end(), s.latencies_ns.begin(),
                               s.latencies_ns.end());
    last = std::max(last, s.last_completion);
  }
  std::sort(merged.latencies_ns.begin(), merged.latencies_ns.end());
  merged.elapsed_s = absl::ToDoubleSeconds(last - measure_start);
  return merged;
}

class Driver {
 public:
  Driver(RunOptions options, SlotFactory factory)
      : options_(options), factory_(std::move(factory)) {}

  Result Run() {
    const int threads = std::max(1, options_.threads);
    const int in_flight = std::max(1, options_.in_flight);
    std::vector<std::unique_ptr<grpc::CompletionQueue>> queues;
    for (int t = 0; t < threads; ++t) queues.push_back(std::make_unique<grpc::CompletionQueue>());
    std::vector<std::unique_ptr<Slot>> slots;
    for (int i = 0; i < in_flight; ++i) {
      slots.push_back(factory_(i));
      slots.back()->cq = queues[i % threads].get();
    }
    per_thread_.resize(threads);
    start_ = absl::Now();
    measure_start_ = start_ + options_.warmup;
    measure_end_ = measure_start_ + options_.duration;
    active_ = in_flight;
    for (auto& slot : slots) {
      if (!Issue(slot.get())) Retire(queues);
    }
    std::vector<std::thread> pollers;
    for (int t = 0; t < threads; ++t) {
      pollers.emplace_back([this, t, &queues] { Poll(t, queues); });
    }
    for (auto& p : pollers) p.join();
    return Merge(per_thread_, measure_start_);
  }

 private:
  // Starts the slot's next call; false when no more calls are to be made.
  bool Issue(Slot* slot) {
    const absl::Time now = absl::Now();
    const bool measured = now >= measure_start_;
    if (options_.count > 0) {
      if (measured && measured_issued_.fetch_add(1) >= options_.count) return false;
    } else if (now >= measure_end_) {
      return false;
    }
    slot->measured = measured;
    slot->started = now;
    slot->Start(next_seq_.fetch_add(1), slot->cq);
    return true;
  }

  // A slot has stopped for good; the last one ends every poller.
  void Retire(std::vector<std::unique_ptr<grpc::CompletionQueue>>& queues) {
    if (active_.fetch_sub(1) == 1) {
      for (auto& q : queues) q->Shutdown();
    }
  }

  void Poll(int t, std::vector<std::unique_ptr<grpc::CompletionQueue>>& queues) {
    ThreadStats& stats = per_thread_[t];
    void* tag;
    bool ok;
    while (queues[t]->Next(&tag, &ok)) {
      const absl::Time done = absl::Now();
      auto* slot = static_cast<Slot*>(tag);
      if (slot->measured) {
        stats.Record(ok ? slot->Result() : absl::InternalError("completion failed"), slot->started,
                     done);
      }
      if (!Issue(slot)) Retire(queues);
    }
  }

  RunOptions options_;
  SlotFactory factory_;
  absl::Time start_, measure_start_, measure_end_;
  std::atomic<int64_t> next_seq_{0};
  std::atomic<int64_t> measured_issued_{0};
  std::atomic<int> active_{0};
  std::vector<ThreadStats> per_thread_;
};

// ---------------------------------------------------------------------------
// Blocking calls (HTTP/1.1: one request per connection at a time): one
// thread per call in flight, each calling, waiting and calling again, under
// the same warm-up, duration and count rules as Driver.

class BlockingCall {
 public:
  virtual ~BlockingCall() = default;
  // Makes call number `seq` and waits for its outcome.
  virtual absl::Status Call(int64_t seq) = 0;
};

using BlockingFactory = std::function<std::unique_ptr<BlockingCall>(int index)>;

class BlockingDriver {
 public:
  BlockingDriver(RunOptions options, BlockingFactory factory)
      : options_(options), factory_(std::move(factory)) {}

  Result Run() {
    const int n = std::max(1, options_.in_flight);
    std::vector<std::unique_ptr<BlockingCall>> callers;
    for (int i = 0; i < n; ++i) callers.push_back(factory_(i));
    std::vector<ThreadStats> per_thread(static_cast<size_t>(n));
    const absl::Time start = absl::Now();
    measure_start_ = start + options_.warmup;
    measure_end_ = measure_start_ + options_.duration;
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([this, caller = callers[static_cast<size_t>(i)].get(),
                            stats = &per_thread[static_cast<size_t>(i)]] {
        for (;;) {
          const absl::Time started = absl::Now();
          const bool measured = started >= measure_start_;
          if (options_.count > 0) {
            if (measured && measured_issued_.fetch_add(1) >= options_.count) return;
          } else if (started >= measure_end_) {
            return;
          }
          absl::Status status = caller->Call(next_seq_.fetch_add(1));
          if (measured) stats->Record(status, started, absl::Now());
        }
      });
    }
    for (auto& t : threads) t.join();
    return Merge(per_thread, measure_start_);
  }

 private:
  RunOptions options_;
  BlockingFactory factory_;
  absl::Time measure_start_, measure_end_;
  std::atomic<int64_t> next_seq_{0};
  std::atomic<int64_t> measured_issued_{0};
};

// ---------------------------------------------------------------------------
// Operations.

std::string RandomToken() {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  uint64_t x = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^
               (static_cast<uint64_t>(getpid()) << 32);
  for (int i = 0; i < 6; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    out.push_back(kChars[(x >> 33) % (sizeof(kChars) - 1)]);
  }
  return out;
}

// The value of every secret, parameter and payload: --value_size bytes a-z.
std::string BenchValue() {
  std::string value(static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_value_size))), 'v');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + i % 26);
  return value;
}

std::string Indexed(const std::string& prefix, int64_t i) {
  return absl::StrFormat("%s%05d", prefix, i);
}

absl::Status Expect(bool condition, absl::string_view what) {
  return condition ? absl::OkStatus() : absl::DataLossError(absl::StrCat("bad response: ", what));
}

// How Load::Setup runs its calls.
struct SetupOptions {
  // ALREADY_EXISTS is fine (a second run on the same data).
  bool exists_ok = false;
  // Calls that fail ABORTED (write conflicts on one record) are made again
  // (setup puts on one secret: which call lands does not matter).
  bool retry_aborted = false;
  int in_flight = 0;  // 0: --in_flight
};

// What every operation shares: channels, stubs, flags, setup products.
class Load {
 public:
  absl::Status Init() {
    op_ = absl::GetFlag(FLAGS_op);
    keys_ = absl::GetFlag(FLAGS_keys);
    value_ = BenchValue();
    token_ = RandomToken();
    timeout_ = absl::GetFlag(FLAGS_call_timeout);
    without_value_ = absl::GetFlag(FLAGS_without_value);
    value_template_ = absl::GetFlag(FLAGS_value_template);
    rotation_worker_ = absl::GetFlag(FLAGS_rotation_worker);
    rotation_schedule_ = absl::GetFlag(FLAGS_rotation_schedule);
    if (op_ == "rotate_secret" && rotation_worker_.empty()) {
      return absl::InvalidArgumentError("rotate_secret needs --rotation_worker");
    }
    const std::string type = absl::GetFlag(FLAGS_param_type);
    if (type == "String") {
      param_type_ = pv1::PARAMETER_TYPE_STRING;
    } else if (type == "StringList") {
      param_type_ = pv1::PARAMETER_TYPE_STRING_LIST;
    } else if (type == "SecureString") {
      param_type_ = pv1::PARAMETER_TYPE_SECURE_STRING;
    } else {
      return absl::InvalidArgumentError("--param_type must be String, StringList or SecureString");
    }
    const bool secure = param_type_ == pv1::PARAMETER_TYPE_SECURE_STRING;
    prefix_ = absl::GetFlag(FLAGS_name_prefix);
    if (prefix_.empty()) {
      if (op_ == "create_secret") {
        prefix_ = absl::StrCat("bench/new-", token_, "-");
      } else if (op_ == "get_parameter") {
        prefix_ = secure ? "/bench/secure/p-" : "/bench/string/p-";
      } else if (op_ == "get_parameters_by_path") {
        prefix_ = secure ? "/bench/secure-dir-" : "/bench/string-dir-";
      } else if (op_ == "put_parameter") {
        prefix_ = keys_ == 0 ? absl::StrCat("/bench/put-", token_, "/p-") : "/bench/put/p-";
      } else if (op_ == "etcd_range" || op_ == "etcd_put") {
        prefix_ = keys_ == 0 ? absl::StrCat("bench/new-", token_, "-") : "bench/k-";
      } else {
        prefix_ = "bench/s-";
      }
    }
    if (keys_ < 0 || (keys_ == 0 && op_ != "put_parameter" && op_ != "etcd_put" &&
                      op_ != "create_secret" && op_ != "kms_generate_data_key" && op_ != "echo")) {
      return absl::InvalidArgumentError("--keys must be >= 1 for this operation");
    }

    rpc::TlsFiles tls{absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert),
                      absl::GetFlag(FLAGS_tls_key)};
    auto creds = rpc::MakeChannelCredentials(tls, absl::GetFlag(FLAGS_expected_spiffe_id));
    if (!creds.ok()) return creds.status();
    const int channels = std::max(1, absl::GetFlag(FLAGS_channels));
    for (int c = 0; c < channels; ++c) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(16 << 20);
      // A distinct argument per channel: gRPC would otherwise share one
      // connection between channels of equal arguments.
      args.SetInt("coffer_load.channel", c);
      if (!absl::GetFlag(FLAGS_authority).empty()) {
        args.SetSslTargetNameOverride(absl::GetFlag(FLAGS_authority));
      }
      auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), *creds, args);
      if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(10)))) {
        return absl::UnavailableError(absl::StrCat(
            "cannot connect to ", absl::GetFlag(FLAGS_target), " (TLS handshake or server down)"));
      }
      channels_.push_back(channel);
      echo_.push_back(ev1::Echo::NewStub(channel));
      secrets_.push_back(sv1::SecretsManager::NewStub(channel));
      params_.push_back(pv1::ParameterStore::NewStub(channel));
      kms_.push_back(kv1::KeyManagement::NewStub(channel));
      etcd_.push_back(epb::KV::NewStub(channel));
    }
    return absl::OkStatus();
  }

  // The measured operation's slots.
  absl::StatusOr<SlotFactory> Measured() {
    const int n = keys_;
    if (op_ == "echo") {
      return Factory<ev1::Echo::Stub, ev1::EchoRequest, ev1::EchoResponse>(
          echo_, &ev1::Echo::Stub::PrepareAsyncEcho,
          [this](int64_t, ev1::EchoRequest* r) { r->set_payload(value_); },
          [this](int64_t, const ev1::EchoResponse& r) {
            return Expect(r.payload().size() == value_.size(), "payload size");
          });
    }
    if (op_ == "get_secret_value") {
      return Factory<sv1::SecretsManager::Stub, sv1::GetSecretValueRequest,
                     sv1::GetSecretValueResponse>(
          secrets_, &sv1::SecretsManager::Stub::PrepareAsyncGetSecretValue,
          [this, n](int64_t i, sv1::GetSecretValueRequest* r) {
            r->set_secret_id(Indexed(prefix_, i % n));
          },
          [this](int64_t, const sv1::GetSecretValueResponse& r) {
            return Expect(r.secret_string().size() == value_.size(), "secret_string size");
          });
    }
    if (op_ == "describe_secret") {
      return Factory<sv1::SecretsManager::Stub, sv1::DescribeSecretRequest,
                     sv1::DescribeSecretResponse>(
          secrets_, &sv1::SecretsManager::Stub::PrepareAsyncDescribeSecret,
          [this, n](int64_t i, sv1::DescribeSecretRequest* r) {
            r->set_secret_id(Indexed(prefix_, i % n));
          },
          [](int64_t, const sv1::DescribeSecretResponse& r) {
            return Expect(!r.arn().empty(), "arn");
          });
    }
    if (op_ == "put_secret_value") return PutSecretValue(n);
    if (op_ == "create_secret") return CreateSecret();
    if (op_ == "rotate_secret") return RotateSecret(n);
    if (op_ == "get_parameter") {
      const bool check_value =
          param_type_ != pv1::PARAMETER_TYPE_SECURE_STRING || absl::GetFlag(FLAGS_with_decryption);
      return Factory<pv1::ParameterStore::Stub, pv1::GetParameterRequest,
                     pv1::GetParameterResponse>(
          params_, &pv1::ParameterStore::Stub::PrepareAsyncGetParameter,
          [this, n](int64_t i, pv1::GetParameterRequest* r) {
            r->set_name(Indexed(prefix_, i % n));
            r->set_with_decryption(absl::GetFlag(FLAGS_with_decryption));
          },
          [this, check_value](int64_t, const pv1::GetParameterResponse& r) {
            if (!check_value) return Expect(!r.parameter().value().empty(), "value");
            return Expect(r.parameter().value().size() == value_.size(), "value size");
          });
    }
    if (op_ == "get_parameters_by_path") {
      return Factory<pv1::ParameterStore::Stub, pv1::GetParametersByPathRequest,
                     pv1::GetParametersByPathResponse>(
          params_, &pv1::ParameterStore::Stub::PrepareAsyncGetParametersByPath,
          [this, n](int64_t i, pv1::GetParametersByPathRequest* r) {
            r->set_path(Indexed(prefix_, i % n));
            r->set_max_results(kPathChildren);
            r->set_with_decryption(absl::GetFlag(FLAGS_with_decryption));
          },
          [](int64_t, const pv1::GetParametersByPathResponse& r) {
            return Expect(r.parameters_size() == kPathChildren, "10 parameters");
          });
    }
    if (op_ == "put_parameter") return PutParameter(n, /*path_children=*/false);
    if (op_ == "kms_decrypt") {
      return Factory<kv1::KeyManagement::Stub, kv1::DecryptRequest, kv1::DecryptResponse>(
          kms_, &kv1::KeyManagement::Stub::PrepareAsyncDecrypt,
          [this](int64_t i, kv1::DecryptRequest* r) {
            r->set_ciphertext_blob(ciphertexts_[static_cast<size_t>(i) % ciphertexts_.size()]);
            (*r->mutable_encryption_context())["purpose"] = "coffer-bench";
          },
          [](int64_t, const kv1::DecryptResponse& r) {
            return Expect(r.plaintext().size() == 32, "32-byte plaintext");
          });
    }
    if (op_ == "kms_generate_data_key") return GenerateDataKey(nullptr);
    if (op_ == "etcd_range") {
      return Factory<epb::KV::Stub, epb::RangeRequest, epb::RangeResponse>(
          etcd_, &epb::KV::Stub::PrepareAsyncRange,
          [this, n](int64_t i, epb::RangeRequest* r) {
            r->set_key(Indexed(prefix_, i % n));
            r->set_serializable(absl::GetFlag(FLAGS_etcd_serializable));
          },
          [this](int64_t, const epb::RangeResponse& r) {
            return Expect(r.kvs_size() == 1 && r.kvs(0).value().size() == value_.size(),
                          "one key with the value");
          });
    }
    if (op_ == "etcd_put") return EtcdPut(n);
    return absl::InvalidArgumentError(absl::StrCat("unknown --op '", op_, "'"));
  }

  // Makes what the measured operation reads.
  absl::Status Setup() {
    const int n = keys_;
    if (op_ == "get_secret_value" || op_ == "describe_secret" || op_ == "put_secret_value" ||
        op_ == "rotate_secret") {
      SetupOptions creates;
      creates.exists_ok = true;
      COFFER_RETURN_IF_ERROR(SetupRun("create secrets", n, CreateSecret(), creates));
      if (absl::GetFlag(FLAGS_setup_puts) > 0) {
        const int64_t puts = static_cast<int64_t>(n) * absl::GetFlag(FLAGS_setup_puts);
        // Puts on few secrets conflict: a few at a time, conflicts retried.
        SetupOptions versions;
        versions.retry_aborted = true;
        versions.in_flight = std::min(8, 2 * n);
        return SetupRun("put secret values", puts, PutSecretValue(n), versions);
      }
      return absl::OkStatus();
    }
    if (op_ == "get_parameter") return SetupRun("put parameters", n, PutParameter(n, false));
    if (op_ == "get_parameters_by_path") {
      return SetupRun("put parameters", static_cast<int64_t>(n) * kPathChildren,
                      PutParameter(n, true));
    }
    if (op_ == "kms_decrypt" || op_ == "kms_generate_data_key") {
      if (absl::GetFlag(FLAGS_kms_key_id).empty()) {
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
        kv1::CreateKeyRequest req;
        req.set_description("coffer_load benchmark key");
        kv1::CreateKeyResponse resp;
        grpc::Status s = kms_[0]->CreateKey(&ctx, req, &resp);
        if (!s.ok()) return FromGrpc(s);
        key_id_ = resp.key_metadata().key_id();
        std::fprintf(stderr, "coffer_load: setup: created KMS key %s\n", key_id_.c_str());
      }
      if (op_ == "kms_decrypt") {
        ciphertexts_.assign(static_cast<size_t>(n), "");
        return SetupRun("generate data keys", n, GenerateDataKey(&ciphertexts_));
      }
      return absl::OkStatus();
    }
    if (op_ == "etcd_range") return SetupRun("put etcd keys", n, EtcdPut(n));
    return absl::OkStatus();
  }

  absl::Status CheckReady() {
    if ((op_ == "kms_decrypt" || op_ == "kms_generate_data_key") && key_id_.empty()) {
      return absl::FailedPreconditionError(
          "KMS operations need --setup (a key and ciphertexts are made then) or --kms_key_id");
    }
    if (op_ == "kms_decrypt" && ciphertexts_.empty()) {
      return absl::FailedPreconditionError("kms_decrypt needs --setup (ciphertexts)");
    }
    return absl::OkStatus();
  }

  void SetKeyId(const std::string& id) { key_id_ = id; }
  const std::string& op() const { return op_; }

 private:
  static constexpr int kPathChildren = 10;

  template <typename Stub, typename Request, typename Response>
  SlotFactory Factory(const std::vector<std::unique_ptr<Stub>>& stubs,
                      typename UnaryCall<Stub, Request, Response>::Prepare prepare,
                      typename UnaryCall<Stub, Request, Response>::Fill fill,
                      typename UnaryCall<Stub, Request, Response>::Check check) {
    return [&stubs, prepare, fill, check, timeout = timeout_](int i) -> std::unique_ptr<Slot> {
      return std::make_unique<UnaryCall<Stub, Request, Response>>(
          stubs[static_cast<size_t>(i) % stubs.size()].get(), prepare, fill, check, timeout);
    };
  }

  // Call i creates "<prefix>i": the setup's names 0..n-1, or (create_secret,
  // whose prefix carries the run token) a new name per call.
  // --without_value: a secret with no version at all (no data key, no KMS).
  SlotFactory CreateSecret() {
    return Factory<sv1::SecretsManager::Stub, sv1::CreateSecretRequest, sv1::CreateSecretResponse>(
        secrets_, &sv1::SecretsManager::Stub::PrepareAsyncCreateSecret,
        [this](int64_t i, sv1::CreateSecretRequest* r) {
          r->set_name(Indexed(prefix_, i));
          if (!without_value_) r->set_secret_string(ValueOf(i));
        },
        [this](int64_t, const sv1::CreateSecretResponse& r) {
          if (without_value_) return Expect(!r.arn().empty() && r.version_id().empty(), "arn only");
          return Expect(!r.version_id().empty(), "version_id");
        });
  }

  // Turns on rotation of "<prefix>i % n" (and, --rotate_immediately, starts one).
  SlotFactory RotateSecret(int n) {
    const bool immediately = absl::GetFlag(FLAGS_rotate_immediately);
    return Factory<sv1::SecretsManager::Stub, sv1::RotateSecretRequest, sv1::RotateSecretResponse>(
        secrets_, &sv1::SecretsManager::Stub::PrepareAsyncRotateSecret,
        [this, n, immediately](int64_t i, sv1::RotateSecretRequest* r) {
          r->set_secret_id(Indexed(prefix_, i % n));
          r->set_rotation_worker(rotation_worker_);
          r->mutable_rotation_rules()->set_schedule_expression(rotation_schedule_);
          r->set_rotate_immediately(immediately);
        },
        [immediately](int64_t, const sv1::RotateSecretResponse& r) {
          if (immediately) return Expect(!r.version_id().empty(), "the pending version_id");
          return Expect(!r.arn().empty() && r.version_id().empty(), "arn, no pending version");
        });
  }

  // The value of name number i: --value_template with "{i}" replaced, or
  // the --value_size bytes.
  std::string ValueOf(int64_t i) const {
    if (value_template_.empty()) return value_;
    return absl::StrReplaceAll(value_template_, {{"{i}", absl::StrFormat("%05d", i)}});
  }

  SlotFactory PutSecretValue(int n) {
    return Factory<sv1::SecretsManager::Stub, sv1::PutSecretValueRequest,
                   sv1::PutSecretValueResponse>(
        secrets_, &sv1::SecretsManager::Stub::PrepareAsyncPutSecretValue,
        [this, n](int64_t i, sv1::PutSecretValueRequest* r) {
          r->set_secret_id(Indexed(prefix_, i % n));
          r->set_secret_string(ValueOf(i % n));
        },
        [](int64_t, const sv1::PutSecretValueResponse& r) {
          return Expect(!r.version_id().empty(), "version_id");
        });
  }

  // n == 0: a new name per call. path_children: the names of
  // get_parameters_by_path's setup, kPathChildren under each of n paths.
  SlotFactory PutParameter(int n, bool path_children) {
    return Factory<pv1::ParameterStore::Stub, pv1::PutParameterRequest, pv1::PutParameterResponse>(
        params_, &pv1::ParameterStore::Stub::PrepareAsyncPutParameter,
        [this, n, path_children](int64_t i, pv1::PutParameterRequest* r) {
          if (path_children) {
            r->set_name(absl::StrFormat("%s/p-%02d", Indexed(prefix_, i / kPathChildren),
                                        i % kPathChildren));
          } else {
            r->set_name(Indexed(prefix_, n == 0 ? i : i % n));
          }
          r->set_value(value_);
          r->set_type(param_type_);
          r->set_overwrite(true);
        },
        [](int64_t, const pv1::PutParameterResponse& r) {
          return Expect(r.version() > 0, "version");
        });
  }

  // Keeps each ciphertext in (*out)[seq] when `out` is set (setup).
  SlotFactory GenerateDataKey(std::vector<std::string>* out) {
    return Factory<kv1::KeyManagement::Stub, kv1::GenerateDataKeyRequest,
                   kv1::GenerateDataKeyResponse>(
        kms_, &kv1::KeyManagement::Stub::PrepareAsyncGenerateDataKey,
        [this](int64_t, kv1::GenerateDataKeyRequest* r) {
          r->set_key_id(key_id_);
          r->set_key_spec(kv1::DATA_KEY_SPEC_AES_256);
          (*r->mutable_encryption_context())["purpose"] = "coffer-bench";
        },
        [out](int64_t i, const kv1::GenerateDataKeyResponse& r) {
          if (out != nullptr && static_cast<size_t>(i) < out->size()) {
            (*out)[static_cast<size_t>(i)] = r.ciphertext_blob();
          }
          return Expect(r.plaintext().size() == 32 && !r.ciphertext_blob().empty(),
                        "a 32-byte data key and its ciphertext");
        });
  }

  SlotFactory EtcdPut(int n) {
    return Factory<epb::KV::Stub, epb::PutRequest, epb::PutResponse>(
        etcd_, &epb::KV::Stub::PrepareAsyncPut,
        [this, n](int64_t i, epb::PutRequest* r) {
          r->set_key(Indexed(prefix_, n == 0 ? i : i % n));
          r->set_value(value_);
        },
        [](int64_t, const epb::PutResponse& r) {
          return Expect(r.header().revision() > 0, "header revision");
        });
  }

  // Runs `count` calls (sequence numbers 0..count-1, no warm-up).
  absl::Status SetupRun(const std::string& what, int64_t count, const SlotFactory& factory,
                        SetupOptions setup = {}) {
    const absl::Time start = absl::Now();
    int64_t remaining = count;
    int64_t retried = 0;
    for (int round = 0; remaining > 0; ++round) {
      RunOptions options;
      options.in_flight =
          std::max(1, setup.in_flight > 0 ? setup.in_flight : absl::GetFlag(FLAGS_in_flight));
      options.threads = absl::GetFlag(FLAGS_threads);
      options.count = remaining;
      Result r = Driver(options, factory).Run();
      int64_t errors = r.errors;
      if (setup.exists_ok) errors -= r.errors_by_code["ALREADY_EXISTS"];
      remaining = 0;
      if (setup.retry_aborted && round < 100) {
        remaining = r.errors_by_code["ABORTED"];
        errors -= remaining;
        retried += remaining;
      }
      if (errors > 0) {
        std::string detail;
        for (const auto& [code, k] : r.errors_by_code) {
          absl::StrAppend(&detail, " ", code, " x", k, " (", r.first_error[code], ")");
        }
        return absl::InternalError(absl::StrCat("setup (", what, ") failed:", detail));
      }
    }
    std::fprintf(stderr, "coffer_load: setup: %s: %lld calls in %.1fs%s\n", what.c_str(),
                 static_cast<long long>(count), absl::ToDoubleSeconds(absl::Now() - start),
                 retried > 0 ? absl::StrCat(" (", retried, " retried after ABORTED)").c_str() : "");
    return absl::OkStatus();
  }

  std::string op_;
  int keys_ = 1;
  std::string value_;
  std::string token_;
  std::string prefix_;
  absl::Duration timeout_;
  bool without_value_ = false;
  std::string value_template_;
  std::string rotation_worker_;
  std::string rotation_schedule_;
  pv1::ParameterType param_type_ = pv1::PARAMETER_TYPE_STRING;
  std::string key_id_;
  std::vector<std::string> ciphertexts_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<ev1::Echo::Stub>> echo_;
  std::vector<std::unique_ptr<sv1::SecretsManager::Stub>> secrets_;
  std::vector<std::unique_ptr<pv1::ParameterStore::Stub>> params_;
  std::vector<std::unique_ptr<kv1::KeyManagement::Stub>> kms_;
  std::vector<std::unique_ptr<epb::KV::Stub>> etcd_;
};

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<int>(c));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

// `threads` and `channels`: the client's, as the operation used them.
std::string ToJson(const std::string& label, const Result& r, int threads, int channels) {
  std::vector<std::string> codes;
  for (const auto& [code, n] : r.errors_by_code) {
    codes.push_back(absl::StrCat(JsonString(code), ":", n));
  }
  std::vector<std::string> firsts;
  for (const auto& [code, msg] : r.first_error) {
    firsts.push_back(absl::StrCat(JsonString(code), ":", JsonString(msg)));
  }
  return absl::StrFormat(
      "{\"label\":%s,\"op\":%s,\"target\":%s,\"in_flight\":%d,\"threads\":%d,\"channels\":%d,"
      "\"value_size\":%d,\"keys\":%d,\"warmup_s\":%.3f,\"elapsed_s\":%.3f,\"calls\":%d,"
      "\"ok\":%d,\"errors\":%d,\"errors_by_code\":{%s},\"first_error\":{%s},"
      "\"throughput\":%.1f,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
      "\"p999_ms\":%.3f,\"max_ms\":%.3f}",
      JsonString(label), JsonString(absl::GetFlag(FLAGS_op)),
      JsonString(absl::GetFlag(FLAGS_target)), absl::GetFlag(FLAGS_in_flight), threads, channels,
      absl::GetFlag(FLAGS_value_size), absl::GetFlag(FLAGS_keys),
      absl::ToDoubleSeconds(absl::GetFlag(FLAGS_warmup)), r.elapsed_s, r.ok + r.errors, r.ok,
      r.errors, absl::StrJoin(codes, ","), absl::StrJoin(firsts, ","), r.throughput(), r.MeanMs(),
      r.QuantileMs(0.50), r.QuantileMs(0.90), r.QuantileMs(0.99), r.QuantileMs(0.999),
      r.latencies_ns.empty() ? 0.0 : r.latencies_ns.back() / 1e6);
}

// ---------------------------------------------------------------------------
// aws_* operations: coffer-gateway's AWS JSON 1.1 over HTTPS, SigV4-signed.

constexpr char kSecretsService[] = "secretsmanager";

// GetSecretValue of "<prefix>NNNNN", N = seq % keys: HTTP 200 holding the
// expected SecretString, or an error.
class AwsGetSecretValue final : public BlockingCall {
 public:
  AwsGetSecretValue(const AwsEndpoint& endpoint, std::string prefix, int keys,
                    const std::string& value)
      : client_(endpoint),
        prefix_(std::move(prefix)),
        keys_(keys),
        expected_(absl::StrCat("\"SecretString\":", JsonString(value))) {}

  absl::Status Call(int64_t seq) override {
    absl::StatusOr<AwsAnswer> answer = client_.Call(
        kSecretsService, "secretsmanager.GetSecretValue",
        absl::StrCat("{\"SecretId\":", JsonString(Indexed(prefix_, seq % keys_)), "}"));
    if (!answer.ok()) return answer.status();
    if (answer->http_status != 200) return AwsErrorStatus(*answer);
    return Expect(absl::StrContains(answer->body, expected_), "the SecretString");
  }

 private:
  AwsJsonClient client_;
  std::string prefix_;
  int keys_;
  std::string expected_;
};

// CreateSecret of "<prefix>NNNNN" (setup): HTTP 200 with an ARN, or an error
// (ALREADY_EXISTS for ResourceExistsException).
class AwsCreateSecret final : public BlockingCall {
 public:
  AwsCreateSecret(const AwsEndpoint& endpoint, std::string prefix, const std::string& value)
      : client_(endpoint), prefix_(std::move(prefix)), value_(JsonString(value)) {}

  absl::Status Call(int64_t seq) override {
    absl::StatusOr<AwsAnswer> answer =
        client_.Call(kSecretsService, "secretsmanager.CreateSecret",
                     absl::StrCat("{\"Name\":", JsonString(Indexed(prefix_, seq)),
                                  ",\"SecretString\":", value_, "}"));
    if (!answer.ok()) return answer.status();
    if (answer->http_status != 200) return AwsErrorStatus(*answer);
    return Expect(absl::StrContains(answer->body, "\"ARN\":"), "an ARN");
  }

 private:
  AwsJsonClient client_;
  std::string prefix_;
  std::string value_;
};

absl::StatusOr<Result> RunAws(const RunOptions& options) {
  const std::string op = absl::GetFlag(FLAGS_op);
  if (op != "aws_get_secret_value") {
    return absl::InvalidArgumentError(absl::StrCat("unknown --op '", op, "'"));
  }
  const int keys = absl::GetFlag(FLAGS_keys);
  if (keys < 1) return absl::InvalidArgumentError("--keys must be >= 1 for this operation");
  COFFER_ASSIGN_OR_RETURN(AwsEndpoint endpoint, ParseAwsTarget(absl::GetFlag(FLAGS_target)));
  COFFER_ASSIGN_OR_RETURN(endpoint.credentials,
                          LoadAwsCredentials(absl::GetFlag(FLAGS_aws_key_file)));
  endpoint.ca_file = absl::GetFlag(FLAGS_tls_ca);
  endpoint.region = absl::GetFlag(FLAGS_aws_region);
  endpoint.timeout = absl::GetFlag(FLAGS_call_timeout);
  const std::string prefix = absl::GetFlag(FLAGS_name_prefix).empty()
                                 ? std::string("bench/s-")
                                 : absl::GetFlag(FLAGS_name_prefix);
  const std::string value = BenchValue();

  if (absl::GetFlag(FLAGS_setup)) {
    const absl::Time start = absl::Now();
    RunOptions setup;
    setup.in_flight = std::min(keys, std::max(1, options.in_flight));
    setup.count = keys;
    Result r = BlockingDriver(setup, [&](int) -> std::unique_ptr<BlockingCall> {
                 return std::make_unique<AwsCreateSecret>(endpoint, prefix, value);
               }).Run();
    const int64_t errors = r.errors - r.errors_by_code["ALREADY_EXISTS"];
    if (errors > 0) {
      std::string detail;
      for (const auto& [code, k] : r.errors_by_code) {
        absl::StrAppend(&detail, " ", code, " x", k, " (", r.first_error[code], ")");
      }
      return absl::InternalError(absl::StrCat("setup (create secrets) failed:", detail));
    }
    std::fprintf(stderr,
                 "coffer_load: setup: create secrets (through the gateway): %d calls in %.1fs\n",
                 keys, absl::ToDoubleSeconds(absl::Now() - start));
  }
  return BlockingDriver(options,
                        [&](int) -> std::unique_ptr<BlockingCall> {
                          return std::make_unique<AwsGetSecretValue>(endpoint, prefix, keys, value);
                        })
      .Run();
}

int Main() {
  if (absl::GetFlag(FLAGS_target).empty() || absl::GetFlag(FLAGS_op).empty()) {
    std::fprintf(stderr, "coffer_load: --target and --op are required (see --help)\n");
    return 2;
  }
  RunOptions options;
  options.in_flight = absl::GetFlag(FLAGS_in_flight);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.warmup = absl::GetFlag(FLAGS_warmup);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.count = absl::GetFlag(FLAGS_count);
  const std::string op = absl::GetFlag(FLAGS_op);
  Result r;
  // The client's threads and connections, as the JSON reports them.
  int threads = options.threads;
  int channels = absl::GetFlag(FLAGS_channels);
  if (absl::StartsWith(op, "aws_")) {
    absl::StatusOr<Result> aws = RunAws(options);
    if (!aws.ok()) {
      std::fprintf(stderr, "coffer_load: %s\n", aws.status().ToString().c_str());
      return 2;
    }
    r = *std::move(aws);
    threads = channels = std::max(1, options.in_flight);
  } else {
    Load load;
    absl::Status s = load.Init();
    if (s.ok()) {
      if (!absl::GetFlag(FLAGS_kms_key_id).empty()) load.SetKeyId(absl::GetFlag(FLAGS_kms_key_id));
      if (absl::GetFlag(FLAGS_setup)) s = load.Setup();
    }
    if (s.ok()) s = load.CheckReady();
    absl::StatusOr<SlotFactory> factory = s.ok() ? load.Measured() : s;
    if (!factory.ok()) {
      std::fprintf(stderr, "coffer_load: %s\n", factory.status().ToString().c_str());
      return 2;
    }
    r = Driver(options, *std::move(factory)).Run();
  }

  const std::string label = absl::GetFlag(FLAGS_label).empty() ? op : absl::GetFlag(FLAGS_label);
  if (absl::GetFlag(FLAGS_header)) {
    std::printf(
        "| measurement | in flight | calls | errors | throughput | p50 ms | p90 ms | p99 ms "
        "| p99.9 ms |\n|---|---|---|---|---|---|---|---|---|\n");
  }
  std::printf("| %s | %d | %lld | %lld | %.1f/s | %.3f | %.3f | %.3f | %.3f |\n", label.c_str(),
              options.in_flight, static_cast<long long>(r.ok + r.errors),
              static_cast<long long>(r.errors), r.throughput(), r.QuantileMs(0.50),
              r.QuantileMs(0.90), r.QuantileMs(0.99), r.QuantileMs(0.999));
  const std::string json = ToJson(label, r, threads, channels);
  const std::string json_out = absl::GetFlag(FLAGS_json_out);
  if (json_out.empty()) {
    std::printf("%s\n", json.c_str());
  } else {
    FILE* f = std::fopen(json_out.c_str(), "w");
    if (f == nullptr || std::fprintf(f, "%s\n", json.c_str()) < 0 || std::fclose(f) != 0) {
      std::fprintf(stderr, "coffer_load: cannot write %s\n", json_out.c_str());
      return 2;
    }
  }
  std::fflush(stdout);
  if (r.ok + r.errors == 0) {
    std::fprintf(stderr, "coffer_load: ERROR: no call completed in the measurement\n");
    return 1;
  }
  if (r.errors > 0) {
    std::fprintf(stderr, "coffer_load: ERRORS: %lld of %lld calls of %s failed:\n",
                 static_cast<long long>(r.errors), static_cast<long long>(r.ok + r.errors),
                 label.c_str());
    for (const auto& [code, n] : r.errors_by_code) {
      std::fprintf(stderr, "  %-20s %8lld  first: %s\n", code.c_str(), static_cast<long long>(n),
                   r.first_error[code].c_str());
    }
    if (!absl::GetFlag(FLAGS_allow_errors)) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace coffer::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "coffer_load --target=host:port --op=<operation> [--setup] [--in_flight=64] "
      "[--duration=10s | --count=N] (see the header of bench/coffer_load.cc)");
  absl::ParseCommandLine(argc, argv);
  return coffer::bench::Main();
}
