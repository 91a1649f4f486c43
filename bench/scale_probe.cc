// scale_probe: the sequential measurements of bench/scale.sh — one call at a
// time over mTLS like any client (coffer_load drives the bulk writes with
// many calls in flight; what is measured here is one caller's view: how long
// a page, a start-up or a read takes).
//
//   build/bench/scale_probe --target=localhost:7702 --tls_ca=pki/ca.crt
//     --tls_cert=pki/cofferctl.crt --tls_key=pki/cofferctl.key
//     --expected_spiffe_id=spiffe://coffer.local/store
//     --op=list_secrets --expect_items=1000000 --json_out=list.json
//
// Operations (--op):
//   wait_ready           calls each of --calls (health: grpc.health.v1 Check
//                        SERVING; describe_secret: DescribeSecret of
//                        --secret_id; list_secrets: ListSecrets of one entry)
//                        every --poll_interval until it succeeds; reports, per
//                        call, the seconds since --since_unix_ms (the moment
//                        the script started the server) and the attempts.
//                        Reconnects within 50 ms (gRPC's default backoff
//                        would add up to a second to a start-up).
//   list_secrets         walks every ListSecrets page (--max_results,
//                        --filter=key:value, --sort_order=asc|desc), after
//                        fetching the first page --first_page_repeats times.
//   params_by_path       walks GetParametersByPath of --path (--recursive).
//   describe_parameters  walks DescribeParameters with a Path filter on --path
//                        (option Recursive with --recursive, else OneLevel).
//   random_reads         --count calls of --calls=describe_secret or
//                        get_secret_value, each on a random "<prefix>NNNNN" of
//                        --keys.
//   rotation_report      DescribeSecret of "<prefix>NNNNN", N < --keys: every
//                        one's rotation must have SUCCEEDED and started after
//                        --since_unix_ms; reports started -> finished times.
//   dump_values          GetSecretValue (--version_stage) of "<prefix>NNNNN",
//                        N < --keys; writes "<name>\t<secret_string>" lines to
//                        --out (mode 0600).
// Walks report pages, items, pages/s, per-page latency percentiles, the first
// page's (repeated) and the "deep" pages' (the last quarter of the walk, each
// resuming from a token far into the index), and fail when an item repeats
// or --expect_items differs. Every failed call fails the run (exit 1). The
// result is one JSON object (--json_out, or a line on stdout); a summary
// goes to stderr.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coffer/params/v1/params.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "libs/common/proto_time.h"
#include "libs/rpc/tls.h"

ABSL_FLAG(std::string, target, "", "host:port of the server (required)");
ABSL_FLAG(std::string, tls_ca, "var/certs/ca.crt", "CA bundle the server must chain to");
ABSL_FLAG(std::string, tls_cert, "var/certs/cofferctl.crt", "client certificate (PEM)");
ABSL_FLAG(std::string, tls_key, "var/certs/cofferctl.key", "client private key (PEM)");
ABSL_FLAG(std::string, expected_spiffe_id, "",
          "SPIFFE ID the server must present; empty: check the host name of --target");
ABSL_FLAG(std::string, op, "", "what to do (see the file comment)");
ABSL_FLAG(std::string, label, "", "name of this measurement in the output (default: --op)");
ABSL_FLAG(std::vector<std::string>, calls, {"health"},
          "wait_ready: health, describe_secret, list_secrets; random_reads: describe_secret or "
          "get_secret_value");
ABSL_FLAG(std::string, health_service, "", "wait_ready health: the service name to check");
ABSL_FLAG(std::string, secret_id, "", "wait_ready describe_secret: the secret");
ABSL_FLAG(int64_t, since_unix_ms, 0,
          "wait_ready, rotation_report: the start (Unix ms); default: this program's start");
ABSL_FLAG(absl::Duration, poll_interval, absl::Milliseconds(20), "wait_ready: between attempts");
ABSL_FLAG(absl::Duration, timeout, absl::Minutes(10), "wait_ready: give up after this");
ABSL_FLAG(int, max_results, 0, "walks: page size (0: the API's default)");
ABSL_FLAG(std::string, filter, "", "list_secrets: one filter as key:value (e.g. name:scale/s-1)");
ABSL_FLAG(std::string, sort_order, "desc", "list_secrets: asc or desc");
ABSL_FLAG(int, first_page_repeats, 20, "walks: fetch the first page this many times first");
ABSL_FLAG(int64_t, max_pages, 0, "walks: stop after this many pages (0: walk to the end)");
ABSL_FLAG(int64_t, expect_items, -1, "walks: fail unless exactly this many items come back");
ABSL_FLAG(std::string, path, "", "params_by_path, describe_parameters: the path");
ABSL_FLAG(bool, recursive, true, "params_by_path, describe_parameters: the whole subtree");
ABSL_FLAG(std::string, name_prefix, "", "random_reads, rotation_report, dump_values: names");
ABSL_FLAG(int64_t, keys, 0, "random_reads, rotation_report, dump_values: names 0..keys-1");
ABSL_FLAG(int64_t, count, 1000, "random_reads: calls");
ABSL_FLAG(std::string, version_stage, "AWSCURRENT", "dump_values: the stage to read");
ABSL_FLAG(std::string, out, "", "dump_values: the output file");
ABSL_FLAG(absl::Duration, call_timeout, absl::Seconds(30), "deadline of each call");
ABSL_FLAG(std::string, json_out, "", "write the JSON result here (default: a line on stdout)");

namespace coffer::bench {
namespace {

namespace pv1 = ::coffer::params::v1;
namespace sv1 = ::coffer::secrets::v1;
namespace hv1 = ::grpc::health::v1;

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

std::string Indexed(const std::string& prefix, int64_t i) {
  return absl::StrFormat("%s%05d", prefix, i);
}

// Latencies in nanoseconds; quantiles in milliseconds (nearest rank).
class Latencies {
 public:
  void Add(absl::Duration d) { ns_.push_back(absl::ToInt64Nanoseconds(d)); }
  size_t size() const { return ns_.size(); }
  double QuantileMs(double q) {
    if (ns_.empty()) return 0;
    std::sort(ns_.begin(), ns_.end());
    size_t rank =
        std::min(static_cast<size_t>(q * static_cast<double>(ns_.size())), ns_.size() - 1);
    return static_cast<double>(ns_[rank]) / 1e6;
  }
  double MaxMs() { return QuantileMs(1.0); }
  double MeanMs() const {
    if (ns_.empty()) return 0;
    long double sum = 0;
    for (int64_t n : ns_) sum += n;
    return static_cast<double>(sum / ns_.size()) / 1e6;
  }
  // "<name>_p50_ms":..,"<name>_p99_ms":..,"<name>_max_ms":..
  std::string Json(absl::string_view name) {
    return absl::StrFormat(
        "\"%s_n\":%d,\"%s_mean_ms\":%.3f,\"%s_p50_ms\":%.3f,\"%s_p99_ms\":%.3f,"
        "\"%s_max_ms\":%.3f",
        name, ns_.size(), name, MeanMs(), name, QuantileMs(0.5), name, QuantileMs(0.99), name,
        MaxMs());
  }

 private:
  std::vector<int64_t> ns_;
};

class Probe {
 public:
  absl::Status Connect(bool fast_reconnect) {
    rpc::TlsFiles tls{absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert),
                      absl::GetFlag(FLAGS_tls_key)};
    auto creds = rpc::MakeChannelCredentials(tls, absl::GetFlag(FLAGS_expected_spiffe_id));
    if (!creds.ok()) return creds.status();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 << 20);
    if (fast_reconnect) {
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 50);
    }
    channel_ = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), *creds, args);
    // Measurements start on a connected channel: the TLS handshake is not
    // in the first call's time (wait_ready, which times a start-up, connects
    // as it goes).
    if (!fast_reconnect &&
        !channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(10)))) {
      return absl::UnavailableError(absl::StrCat("cannot connect to ", absl::GetFlag(FLAGS_target),
                                                 " (TLS handshake or server down)"));
    }
    secrets_ = sv1::SecretsManager::NewStub(channel_);
    params_ = pv1::ParameterStore::NewStub(channel_);
    health_ = hv1::Health::NewStub(channel_);
    return absl::OkStatus();
  }

  // One unary call with the deadline; `wait` waits for the connection.
  template <typename Stub, typename Request, typename Response>
  absl::Status Call(Stub* stub,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response, bool wait = false,
                    absl::Duration timeout = absl::ZeroDuration()) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + (timeout > absl::ZeroDuration()
                                                           ? timeout
                                                           : absl::GetFlag(FLAGS_call_timeout))));
    ctx.set_wait_for_ready(wait);
    return FromGrpc((stub->*method)(&ctx, request, response));
  }

  sv1::SecretsManager::Stub* secrets() { return secrets_.get(); }
  pv1::ParameterStore::Stub* params() { return params_.get(); }
  hv1::Health::Stub* health() { return health_.get(); }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<sv1::SecretsManager::Stub> secrets_;
  std::unique_ptr<pv1::ParameterStore::Stub> params_;
  std::unique_ptr<hv1::Health::Stub> health_;
};

// ---------------------------------------------------------------------------
// wait_ready

absl::StatusOr<std::string> WaitReady(Probe& probe, absl::Time since) {
  struct Pending {
    std::string call;
    int64_t attempts = 0;
    std::string last_error;
    double ready_s = -1;
  };
  std::vector<Pending> calls;
  for (const std::string& c : absl::GetFlag(FLAGS_calls)) {
    if (c != "health" && c != "describe_secret" && c != "list_secrets") {
      return absl::InvalidArgumentError(absl::StrCat("wait_ready: unknown call '", c, "'"));
    }
    if (c == "describe_secret" && absl::GetFlag(FLAGS_secret_id).empty()) {
      return absl::InvalidArgumentError("wait_ready describe_secret needs --secret_id");
    }
    Pending p;
    p.call = c;
    calls.push_back(std::move(p));
  }
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_timeout);
  const absl::Duration attempt_timeout = absl::Seconds(1);
  size_t left = calls.size();
  while (left > 0) {
    for (Pending& p : calls) {
      if (p.ready_s >= 0) continue;
      ++p.attempts;
      absl::Status s;
      if (p.call == "health") {
        hv1::HealthCheckRequest req;
        req.set_service(absl::GetFlag(FLAGS_health_service));
        hv1::HealthCheckResponse resp;
        s = probe.Call(probe.health(), &hv1::Health::Stub::Check, req, &resp, true,
                       attempt_timeout);
        if (s.ok() && resp.status() != hv1::HealthCheckResponse::SERVING) {
          s = absl::UnavailableError(absl::StrCat(
              "health: ", hv1::HealthCheckResponse::ServingStatus_Name(resp.status())));
        }
      } else if (p.call == "describe_secret") {
        sv1::DescribeSecretRequest req;
        req.set_secret_id(absl::GetFlag(FLAGS_secret_id));
        sv1::DescribeSecretResponse resp;
        s = probe.Call(probe.secrets(), &sv1::SecretsManager::Stub::DescribeSecret, req, &resp,
                       true, attempt_timeout);
      } else {
        sv1::ListSecretsRequest req;
        req.set_max_results(1);
        sv1::ListSecretsResponse resp;
        s = probe.Call(probe.secrets(), &sv1::SecretsManager::Stub::ListSecrets, req, &resp, true,
                       attempt_timeout);
      }
      if (s.ok()) {
        p.ready_s = absl::ToDoubleSeconds(absl::Now() - since);
        --left;
        std::fprintf(stderr, "scale_probe: %s ready after %.3fs (%lld attempts)\n", p.call.c_str(),
                     p.ready_s, static_cast<long long>(p.attempts));
      } else {
        p.last_error = s.ToString();
      }
    }
    if (left == 0) break;
    if (absl::Now() > deadline) {
      std::string why;
      for (const Pending& p : calls) {
        if (p.ready_s < 0) absl::StrAppend(&why, " ", p.call, ": ", p.last_error, ";");
      }
      return absl::DeadlineExceededError(absl::StrCat("not ready within the timeout:", why));
    }
    absl::SleepFor(absl::GetFlag(FLAGS_poll_interval));
  }
  std::vector<std::string> fields;
  for (const Pending& p : calls) {
    fields.push_back(
        absl::StrFormat("\"%s_s\":%.3f,\"%s_attempts\":%d", p.call, p.ready_s, p.call, p.attempts));
  }
  return absl::StrJoin(fields, ",");
}

// ---------------------------------------------------------------------------
// Walks

struct Page {
  std::vector<std::string> items;  // names, to count and to check for repeats
  std::string next_token;
};
using PageFn = std::function<absl::StatusOr<Page>(const std::string& token)>;

absl::StatusOr<std::string> Walk(const PageFn& page_fn) {
  Latencies first;
  for (int i = 0; i < absl::GetFlag(FLAGS_first_page_repeats); ++i) {
    const absl::Time t = absl::Now();
    absl::StatusOr<Page> p = page_fn("");
    if (!p.ok()) return p.status();
    first.Add(absl::Now() - t);
  }
  std::vector<absl::Duration> page_times;
  absl::flat_hash_set<std::string> seen;
  int64_t items = 0, empty_pages = 0, repeats = 0;
  std::string token;
  const int64_t max_pages = absl::GetFlag(FLAGS_max_pages);
  const absl::Time start = absl::Now();
  absl::Time last_report = start;
  do {
    const absl::Time t = absl::Now();
    absl::StatusOr<Page> p = page_fn(token);
    if (!p.ok()) {
      return absl::Status(p.status().code(), absl::StrCat("page ", page_times.size() + 1,
                                                          " failed: ", p.status().message()));
    }
    page_times.push_back(absl::Now() - t);
    items += static_cast<int64_t>(p->items.size());
    if (p->items.empty()) ++empty_pages;
    for (std::string& name : p->items) {
      if (!seen.insert(std::move(name)).second) ++repeats;
    }
    token = std::move(p->next_token);
    if (absl::Now() - last_report > absl::Seconds(10)) {
      last_report = absl::Now();
      std::fprintf(stderr, "scale_probe: ... %zu pages, %lld items\n", page_times.size(),
                   static_cast<long long>(items));
    }
  } while (!token.empty() &&
           (max_pages == 0 || static_cast<int64_t>(page_times.size()) < max_pages));
  const double total_s = absl::ToDoubleSeconds(absl::Now() - start);
  Latencies all, deep;
  const size_t deep_from = page_times.size() - page_times.size() / 4;
  for (size_t i = 0; i < page_times.size(); ++i) {
    all.Add(page_times[i]);
    if (i >= deep_from && i > 0) deep.Add(page_times[i]);
  }
  const int64_t pages = static_cast<int64_t>(page_times.size());
  std::fprintf(stderr,
               "scale_probe: %lld pages (%lld empty), %lld items in %.2fs: %.1f pages/s; page p50 "
               "%.2f ms p99 %.2f ms; first page p50 %.2f ms; deep pages p50 %.2f ms\n",
               static_cast<long long>(pages), static_cast<long long>(empty_pages),
               static_cast<long long>(items), total_s, pages / std::max(total_s, 1e-9),
               all.QuantileMs(0.5), all.QuantileMs(0.99), first.QuantileMs(0.5),
               deep.QuantileMs(0.5));
  if (repeats > 0) {
    return absl::DataLossError(absl::StrCat(repeats, " items came back more than once"));
  }
  const int64_t expect = absl::GetFlag(FLAGS_expect_items);
  if (expect >= 0 && items != expect && (max_pages == 0 || !token.empty())) {
    return absl::DataLossError(
        absl::StrCat("the walk returned ", items, " items, expected ", expect));
  }
  return absl::StrFormat(
      "\"pages\":%d,\"empty_pages\":%d,\"items\":%d,\"complete\":%s,\"total_s\":%.3f,"
      "\"pages_per_s\":%.1f,\"items_per_s\":%.1f,%s,%s,%s",
      pages, empty_pages, items, token.empty() ? "true" : "false", total_s,
      pages / std::max(total_s, 1e-9), items / std::max(total_s, 1e-9), all.Json("page"),
      first.Json("first_page"), deep.Json("deep_page"));
}

PageFn ListSecretsPages(Probe& probe) {
  sv1::ListSecretsRequest base;
  if (absl::GetFlag(FLAGS_max_results) > 0) base.set_max_results(absl::GetFlag(FLAGS_max_results));
  base.set_sort_order(absl::GetFlag(FLAGS_sort_order) == "asc" ? sv1::SORT_ORDER_ASC
                                                               : sv1::SORT_ORDER_DESC);
  const std::string filter = absl::GetFlag(FLAGS_filter);
  if (!filter.empty()) {
    std::vector<std::string> kv = absl::StrSplit(filter, absl::MaxSplits(':', 1));
    auto* f = base.add_filters();
    f->set_key(kv[0]);
    f->add_values(kv.size() > 1 ? kv[1] : "");
  }
  return [&probe, base](const std::string& token) -> absl::StatusOr<Page> {
    sv1::ListSecretsRequest req = base;
    req.set_next_token(token);
    sv1::ListSecretsResponse resp;
    absl::Status s =
        probe.Call(probe.secrets(), &sv1::SecretsManager::Stub::ListSecrets, req, &resp);
    if (!s.ok()) return s;
    Page page;
    for (auto& e : *resp.mutable_secret_list()) page.items.push_back(std::move(*e.mutable_name()));
    page.next_token = resp.next_token();
    return page;
  };
}

PageFn ParamsByPathPages(Probe& probe) {
  pv1::GetParametersByPathRequest base;
  base.set_path(absl::GetFlag(FLAGS_path));
  base.set_recursive(absl::GetFlag(FLAGS_recursive));
  if (absl::GetFlag(FLAGS_max_results) > 0) base.set_max_results(absl::GetFlag(FLAGS_max_results));
  return [&probe, base](const std::string& token) -> absl::StatusOr<Page> {
    pv1::GetParametersByPathRequest req = base;
    req.set_next_token(token);
    pv1::GetParametersByPathResponse resp;
    absl::Status s =
        probe.Call(probe.params(), &pv1::ParameterStore::Stub::GetParametersByPath, req, &resp);
    if (!s.ok()) return s;
    Page page;
    for (auto& p : *resp.mutable_parameters()) {
      if (p.value().empty()) return absl::DataLossError(absl::StrCat(p.name(), ": no value"));
      page.items.push_back(std::move(*p.mutable_name()));
    }
    page.next_token = resp.next_token();
    return page;
  };
}

PageFn DescribeParametersPages(Probe& probe) {
  pv1::DescribeParametersRequest base;
  auto* f = base.add_parameter_filters();
  f->set_key("Path");
  f->set_option(absl::GetFlag(FLAGS_recursive) ? "Recursive" : "OneLevel");
  f->add_values(absl::GetFlag(FLAGS_path));
  if (absl::GetFlag(FLAGS_max_results) > 0) base.set_max_results(absl::GetFlag(FLAGS_max_results));
  return [&probe, base](const std::string& token) -> absl::StatusOr<Page> {
    pv1::DescribeParametersRequest req = base;
    req.set_next_token(token);
    pv1::DescribeParametersResponse resp;
    absl::Status s =
        probe.Call(probe.params(), &pv1::ParameterStore::Stub::DescribeParameters, req, &resp);
    if (!s.ok()) return s;
    Page page;
    for (auto& p : *resp.mutable_parameters()) page.items.push_back(std::move(*p.mutable_name()));
    page.next_token = resp.next_token();
    return page;
  };
}

// ---------------------------------------------------------------------------
// random_reads, rotation_report, dump_values

absl::StatusOr<std::string> RandomReads(Probe& probe) {
  const int64_t keys = absl::GetFlag(FLAGS_keys);
  const std::vector<std::string> calls = absl::GetFlag(FLAGS_calls);
  if (keys < 1 || calls.size() != 1 ||
      (calls[0] != "describe_secret" && calls[0] != "get_secret_value")) {
    return absl::InvalidArgumentError(
        "random_reads needs --keys >= 1 and --calls=describe_secret or get_secret_value");
  }
  const bool get = calls[0] == "get_secret_value";
  std::mt19937_64 rng(static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^ ::getpid());
  std::uniform_int_distribution<int64_t> pick(0, keys - 1);
  const std::string prefix = absl::GetFlag(FLAGS_name_prefix);
  Latencies lat;
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < absl::GetFlag(FLAGS_count); ++i) {
    const std::string name = Indexed(prefix, pick(rng));
    const absl::Time t = absl::Now();
    absl::Status s;
    if (get) {
      sv1::GetSecretValueRequest req;
      req.set_secret_id(name);
      sv1::GetSecretValueResponse resp;
      s = probe.Call(probe.secrets(), &sv1::SecretsManager::Stub::GetSecretValue, req, &resp);
      if (s.ok() && !resp.has_secret_string()) s = absl::DataLossError("no secret_string");
    } else {
      sv1::DescribeSecretRequest req;
      req.set_secret_id(name);
      sv1::DescribeSecretResponse resp;
      s = probe.Call(probe.secrets(), &sv1::SecretsManager::Stub::DescribeSecret, req, &resp);
      if (s.ok() && resp.name() != name) s = absl::DataLossError("another secret's description");
    }
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat(name, ": ", s.message()));
    lat.Add(absl::Now() - t);
  }
  const double total_s = absl::ToDoubleSeconds(absl::Now() - start);
  std::fprintf(stderr, "scale_probe: %zu %s on random names of %lld: p50 %.3f ms, p99 %.3f ms\n",
               lat.size(), calls[0].c_str(), static_cast<long long>(keys), lat.QuantileMs(0.5),
               lat.QuantileMs(0.99));
  return absl::StrFormat("\"call\":\"%s\",\"keys\":%d,\"total_s\":%.3f,%s", calls[0], keys, total_s,
                         lat.Json("call"));
}

absl::StatusOr<std::string> RotationReport(Probe& probe, absl::Time since) {
  const int64_t keys = absl::GetFlag(FLAGS_keys);
  if (keys < 1) return absl::InvalidArgumentError("rotation_report needs --keys >= 1");
  const std::string prefix = absl::GetFlag(FLAGS_name_prefix);
  Latencies lat;
  absl::Time first_start = absl::InfiniteFuture(), last_finish = absl::InfinitePast();
  for (int64_t i = 0; i < keys; ++i) {
    const std::string name = Indexed(prefix, i);
    sv1::DescribeSecretRequest req;
    req.set_secret_id(name);
    sv1::DescribeSecretResponse resp;
    absl::Status s =
        probe.Call(probe.secrets(), &sv1::SecretsManager::Stub::DescribeSecret, req, &resp);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat(name, ": ", s.message()));
    const sv1::RotationState& st = resp.rotation_state();
    if (st.status() != sv1::RotationState::STATUS_SUCCEEDED) {
      return absl::FailedPreconditionError(absl::StrCat(
          name, ": rotation ", sv1::RotationState::Status_Name(st.status()), " (next step '",
          st.next_step(), "', attempts ", st.attempts(), ", last error: ", st.last_error(), ")"));
    }
    const absl::Time started = FromProto(st.started_date());
    const absl::Time finished = FromProto(st.finished_date());
    if (started < since) {
      return absl::FailedPreconditionError(
          absl::StrCat(name, ": its last rotation started before this run's"));
    }
    first_start = std::min(first_start, started);
    last_finish = std::max(last_finish, finished);
    lat.Add(finished - started);
  }
  const double span_s = absl::ToDoubleSeconds(last_finish - first_start);
  std::fprintf(stderr,
               "scale_probe: %lld rotations succeeded; first started -> last finished %.2fs; "
               "started -> finished p50 %.1f ms, p99 %.1f ms\n",
               static_cast<long long>(keys), span_s, lat.QuantileMs(0.5), lat.QuantileMs(0.99));
  return absl::StrFormat(
      "\"rotations\":%d,\"span_s\":%.3f,\"first_started_unix_ms\":%d,"
      "\"last_finished_unix_ms\":%d,%s",
      keys, span_s, absl::ToUnixMillis(first_start), absl::ToUnixMillis(last_finish),
      lat.Json("request_to_finish"));
}

absl::StatusOr<std::string> DumpValues(Probe& probe) {
  const int64_t keys = absl::GetFlag(FLAGS_keys);
  const std::string out_path = absl::GetFlag(FLAGS_out);
  if (keys < 1 || out_path.empty()) {
    return absl::InvalidArgumentError("dump_values needs --keys >= 1 and --out");
  }
  const int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", out_path));
  FILE* f = ::fdopen(fd, "w");
  const std::string prefix = absl::GetFlag(FLAGS_name_prefix);
  absl::Status status;
  for (int64_t i = 0; i < keys && status.ok(); ++i) {
    const std::string name = Indexed(prefix, i);
    sv1::GetSecretValueRequest req;
    req.set_secret_id(name);
    req.set_version_stage(absl::GetFlag(FLAGS_version_stage));
    sv1::GetSecretValueResponse resp;
    status = probe.Call(probe.secrets(), &sv1::SecretsManager::Stub::GetSecretValue, req, &resp);
    if (!status.ok()) {
      status = absl::Status(status.code(), absl::StrCat(name, ": ", status.message()));
    } else if (resp.secret_string().find_first_of("\t\n") != std::string::npos) {
      status = absl::DataLossError(absl::StrCat(name, ": a value with a tab or newline"));
    } else {
      std::fprintf(f, "%s\t%s\n", name.c_str(), resp.secret_string().c_str());
    }
  }
  if (std::fclose(f) != 0 && status.ok()) status = absl::InternalError("cannot write --out");
  if (!status.ok()) return status;
  return absl::StrFormat("\"values\":%d", keys);
}

// ---------------------------------------------------------------------------

int Main() {
  const absl::Time program_start = absl::Now();
  const std::string op = absl::GetFlag(FLAGS_op);
  if (absl::GetFlag(FLAGS_target).empty() || op.empty()) {
    std::fprintf(stderr, "scale_probe: --target and --op are required (see --help)\n");
    return 2;
  }
  const absl::Time since = absl::GetFlag(FLAGS_since_unix_ms) > 0
                               ? absl::FromUnixMillis(absl::GetFlag(FLAGS_since_unix_ms))
                               : program_start;
  Probe probe;
  absl::Status s = probe.Connect(/*fast_reconnect=*/op == "wait_ready");
  absl::StatusOr<std::string> fields = absl::UnknownError("not run");
  if (!s.ok()) {
    fields = s;
  } else {
    if (op == "wait_ready") {
      fields = WaitReady(probe, since);
    } else if (op == "list_secrets") {
      fields = Walk(ListSecretsPages(probe));
    } else if (op == "params_by_path") {
      fields = Walk(ParamsByPathPages(probe));
    } else if (op == "describe_parameters") {
      fields = Walk(DescribeParametersPages(probe));
    } else if (op == "random_reads") {
      fields = RandomReads(probe);
    } else if (op == "rotation_report") {
      fields = RotationReport(probe, since);
    } else if (op == "dump_values") {
      fields = DumpValues(probe);
    } else {
      fields = absl::InvalidArgumentError(absl::StrCat("unknown --op '", op, "'"));
    }
  }
  if (!fields.ok()) {
    std::fprintf(stderr, "scale_probe: %s: %s\n", op.c_str(), fields.status().ToString().c_str());
    return 1;
  }
  const std::string label = absl::GetFlag(FLAGS_label).empty() ? op : absl::GetFlag(FLAGS_label);
  const std::string json =
      absl::StrCat("{\"label\":\"", label, "\",\"op\":\"", op, "\",", *fields, "}");
  const std::string json_out = absl::GetFlag(FLAGS_json_out);
  if (json_out.empty()) {
    std::printf("%s\n", json.c_str());
  } else {
    FILE* f = std::fopen(json_out.c_str(), "w");
    if (f == nullptr || std::fprintf(f, "%s\n", json.c_str()) < 0 || std::fclose(f) != 0) {
      std::fprintf(stderr, "scale_probe: cannot write %s\n", json_out.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace coffer::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "scale_probe --target=host:port --op=<operation> (see the header of bench/scale_probe.cc)");
  absl::ParseCommandLine(argc, argv);
  return coffer::bench::Main();
}
