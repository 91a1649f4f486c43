// api_world.cc: the in-process world of the API fuzz targets, its fixtures,
// the answer checks and the input driver (api_world.h).
#include "fuzz/api_world.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <system_error>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "google/protobuf/stubs/logging.h"
#include "libs/common/errors.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/runtime/inline_actions.h"
#include "services/store/envelope/data_key_cache.h"
#include "services/store/envelope/envelope.h"
#include "services/store/schema.h"
#include "tests/services/store/in_process_kms.h"

namespace coffer::fuzz {
namespace {

namespace fs = std::filesystem;
namespace sm = ::coffer::secrets::v1;
namespace pm = ::coffer::params::v1;
namespace kv1 = ::coffer::kms::v1;
namespace rot = ::coffer::rotation::v1;

constexpr char kDirPrefix[] = "coffer-api-fuzz.";
constexpr absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);  // 2023-11-14

// The identity policy of every non-trusted caller.
constexpr char kPolicy[] = R"json({"statements": [
  {"sid": "app-secrets", "effect": "Allow", "principals": ["spiffe://coffer.local/app/fuzz"],
   "actions": ["secretsmanager:*"], "resources": ["fz/*"]},
  {"sid": "app-keeps", "effect": "Deny", "principals": ["spiffe://coffer.local/app/fuzz"],
   "actions": ["secretsmanager:DeleteSecret", "secretsmanager:PutResourcePolicy"],
   "resources": ["fz/keep/*"]},
  {"sid": "app-anywhere", "effect": "Allow", "principals": ["spiffe://coffer.local/app/fuzz"],
   "actions": ["secretsmanager:GetRandomPassword", "secretsmanager:ValidateResourcePolicy",
               "kms:GenerateRandom", "kms:ListKeys", "kms:ListAliases", "kms:CreateKey"],
   "resources": ["*"]},
  {"sid": "app-params", "effect": "Allow", "principals": ["spiffe://coffer.local/app/fuzz"],
   "actions": ["ssm:*"], "resources": ["/fz/*"]},
  {"sid": "app-kms", "effect": "Allow", "principals": ["spiffe://coffer.local/app/fuzz"],
   "actions": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
               "kms:DescribeKey", "kms:TagResource", "kms:ListResourceTags"],
   "resources": ["alias/fz/*", "alias/coffer/*"]},
  {"sid": "app-kms-tier", "effect": "Deny", "principals": ["spiffe://coffer.local/app/fuzz"],
   "actions": ["kms:*"], "resources": ["*"],
   "condition": {"StringLike": {"kms:EncryptionContext:tier": "secret*"}}},
  {"sid": "rotator", "effect": "Allow", "principals": ["spiffe://coffer.local/rotator"],
   "actions": ["rotation:*", "secretsmanager:DescribeSecret", "secretsmanager:ListSecrets"],
   "resources": ["*"]},
  {"sid": "workers", "effect": "Allow", "principals": ["spiffe://coffer.local/worker/*"],
   "actions": ["secretsmanager:GetRandomPassword"], "resources": ["*"]},
  {"sid": "worker-reads-master", "effect": "Allow",
   "principals": ["spiffe://coffer.local/worker/fuzz"],
   "actions": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
   "resources": ["fz/master"]},
  {"sid": "store", "effect": "Allow", "principals": ["spiffe://coffer.local/store"],
   "actions": ["kms:*"], "resources": ["*"]}
]})json";

constexpr char kPublicPolicy[] = R"json({"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Principal": "*",
   "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
   "Resource": "*"}]})json";

// A fixture that does not build is a harness bug: say what and stop.
void Must(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "api fuzz fixture failed: %s: %s\n", what, status.ToString().c_str());
  std::abort();
}
template <typename T>
T Must(absl::StatusOr<T> result, const char* what) {
  Must(result.status(), what);
  return *std::move(result);
}

// Directories of processes that died without cleaning up (a crash ends a
// fuzzer with _exit).
void RemoveStaleDirs() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, kDirPrefix)) continue;
    int pid = 0;
    if (!absl::SimpleAtoi(name.substr(sizeof(kDirPrefix) - 1), &pid) || pid <= 0) continue;
    if (pid == getpid() || (kill(pid, 0) != 0 && errno == ESRCH)) fs::remove_all(entry.path(), ec);
  }
}

// The reason/code table of docs/api.md#errors: ReasonCode's code, but for
// the reasons documented with more than one.
bool CodeFitsReason(absl::StatusCode code, const std::string& r) {
  using C = absl::StatusCode;
  if (r == reason::kEncryptionFailure) {
    return code == C::kUnavailable || code == C::kFailedPrecondition;
  }
  if (r == reason::kDecryptionFailure) {
    return code == C::kDataLoss || code == C::kUnavailable || code == C::kFailedPrecondition;
  }
  if (r == reason::kPreconditionNotMet) {
    return code == C::kAborted || code == C::kFailedPrecondition;
  }
  if (r == reason::kInternal || r == reason::kInternalServerError) {
    return code == C::kInternal || code == C::kAborted;
  }
  if (r == reason::kKmsInternal) return true;  // the storage error's code
  // Unknown reasons map to INTERNAL.
  const C want = ReasonCode(r);
  return want != C::kInternal && want == code;
}

// The input being run (RunInput), for the replay record.
absl::string_view g_input;

std::string Describe(const absl::Status& status, const Caller& caller, absl::string_view method) {
  return absl::StrCat(method, " as ", caller.name, " answered ", status.ToString(), " (reason '",
                      ErrorReason(status), "')");
}

}  // namespace

// ---- the world ----

ApiWorld& ApiWorld::Get() {
  static ApiWorld* const world = [] {
    auto* w = new ApiWorld();
    std::atexit([] {
      ApiWorld& self = Get();
      self.Teardown();
      std::error_code ec;
      fs::remove_all(self.base_dir_, ec);
    });
    return w;
  }();
  return *world;
}

ApiWorld::ApiWorld() : clock_(kStart) {
  RemoveStaleDirs();
  base_dir_ = absl::StrCat("/tmp/", kDirPrefix, getpid());
  std::error_code ec;
  fs::create_directories(base_dir_, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create %s: %s\n", base_dir_.c_str(), ec.message().c_str());
    std::abort();
  }
  authorizer_ = std::make_unique<authz::Authorizer>(
      Must(authz::Policy::Parse(kPolicy, authz::Policy::kIdentity), "the identity policy"));
  app_ = std::make_unique<authz::Access>(authorizer_.get(), kAppPrincipal);
  worker_ = std::make_unique<authz::Access>(authorizer_.get(), kWorkerPrincipal);
  rotator_ = std::make_unique<authz::Access>(authorizer_.get(), kRotatorPrincipal);
  store_ = std::make_unique<authz::Access>(authorizer_.get(), kStorePrincipal);
  outsider_ = std::make_unique<authz::Access>(authorizer_.get(), kOutsiderPrincipal);
  Rebuild();
}

const authz::Access& ApiWorld::worker() {
  worker_->set_rotation_token(pending_token_);
  return *worker_;
}

void ApiWorld::BeginInput() {
  // Counted from the world's start, so that a replay (which starts with a
  // new world) refreshes and rebuilds where the recorded run did.
  if (inputs_ > 0 && inputs_ % kInputsPerEpoch == 0) {
    if (inputs_ == kInputsPerEpoch * kEpochsPerRebuild) {
      Rebuild();
    } else {
      Refresh();
    }
  }
  ++inputs_;
  clock_.Advance(absl::Milliseconds(1));
  if (record_.size() + g_input.size() + 4 <= kMaxRecord) {
    const uint32_t n = static_cast<uint32_t>(g_input.size());
    const char length[4] = {static_cast<char>(n), static_cast<char>(n >> 8),
                            static_cast<char>(n >> 16), static_cast<char>(n >> 24)};
    record_.append(length, 4);
    record_.append(g_input.data(), g_input.size());
  } else {
    record_complete_ = false;
  }
}

void ApiWorld::SaveRecord() {
  const std::string path = absl::StrCat(artifact_prefix_, "replay-", getpid());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << record_;
  out.close();
  std::fprintf(stderr,
               "the inputs since this world was built%s are in %s (replay them in order: "
               "<target> --replay=%s)\n",
               record_complete_ ? "" : " (the first ones only)", path.c_str(), path.c_str());
}

void ApiWorld::Rebuild() {
  const absl::Time started = absl::Now();
  Teardown();
  ++generation_;
  clock_.Set(kStart);
  inputs_ = 0;
  record_.clear();
  record_complete_ = true;
  const std::string dir = absl::StrCat(base_dir_, "/", generation_);
  kms::KeyManagerOptions kms_options;
  kms_options.db_path = dir + "/kms";
  kms_options.sync_writes = false;
  kms_options.clock = &clock_;
  kms_options.max_keys = 1000;
  kms_options.max_key_versions = 40;
  keys_ = Must(kms::KeyManager::Open(kms_options, crypto::SecureBuffer::Random(32)), "KMS open");
  kms_ = std::make_unique<store::InProcessKeyService>(keys_.get());
  storage::DatabaseOptions db_options;
  db_options.path = dir + "/store";
  db_options.column_families = store::schema::ColumnFamilies();
  db_options.sync_writes = false;
  db_ = Must(storage::Database::Open(db_options), "store open");
  OpenStore();
  Must(Seed(), "seeding a new world");
  if (std::getenv("COFFER_API_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr, "world %llu built in %s\n", static_cast<unsigned long long>(generation_),
                 absl::FormatDuration(absl::Now() - started).c_str());
  }
}

void ApiWorld::Refresh() {
  CloseStore();
  for (const std::string& family : store::schema::ColumnFamilies()) {
    storage::WriteBatch batch;
    Must(db_->Scan(family, {},
                   [&](absl::string_view key, absl::string_view) {
                     batch.Delete(family, key);
                     return true;
                   }),
         "scanning the store");
    if (!batch.empty()) Must(db_->Write(batch), "wiping the store");
  }
  OpenStore();
  const absl::Status seeded = Seed();
  if (seeded.ok()) return;
  // The KMS is in a state only a new world fixes (e.g. a trusted caller
  // disabled a built-in key, or the key limit is reached).
  if (std::getenv("COFFER_API_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr, "refresh failed (%s): rebuilding\n", seeded.ToString().c_str());
  }
  Rebuild();
}

void ApiWorld::OpenStore() {
  changes_ = Must(store::LocalChangeLog::Open(db_.get(), /*capacity=*/500), "change log");
  cache_ = std::make_unique<store::DataKeyCache>(
      store::DataKeyCacheOptions{100, absl::Minutes(5), &clock_});
  envelope_ = std::make_unique<store::Envelope>(kms_.get(), cache_.get());
  store::SecretStoreOptions secret_options;
  secret_options.clock = &clock_;
  secret_options.changes = changes_.get();
  // Small bounds, so that the limits and page budgets are reached.
  secret_options.list_scan_budget = 40;
  secret_options.max_versions_per_secret = 24;
  records_ = std::make_unique<store::SecretRecords>(db_.get(), envelope_.get(), secret_options);
  Must(records_->Load(), "secret records");
  secrets_ = std::make_unique<store::SecretStore>(records_.get());
  rotation_ = std::make_unique<store::SecretRotation>(records_.get());
  store::ParamStoreOptions param_options;
  param_options.clock = &clock_;
  param_options.changes = changes_.get();
  param_options.scan_budget = 40;
  params_ = std::make_unique<store::ParamStore>(db_.get(), envelope_.get(), param_options);
}

void ApiWorld::CloseStore() {
  params_.reset();
  rotation_.reset();
  secrets_.reset();
  records_.reset();
  envelope_.reset();
  cache_.reset();
  changes_.reset();
  lease_id_.clear();
  pending_token_.clear();
  next_token_.clear();
}

void ApiWorld::Teardown() {
  CloseStore();
  db_.reset();
  kms_.reset();
  keys_.reset();
  fixture_keys_.clear();
  fixture_ciphertexts_.clear();
  std::error_code ec;
  if (generation_ > 0) fs::remove_all(absl::StrCat(base_dir_, "/", generation_), ec);
}

int ApiWorld::KeyCount() const {
  int n = 0;
  for (const auto& [state, count] : keys_->CountKeysByState()) n += count;
  return n;
}

void ApiWorld::SetKmsDown(bool down) { kms_->down = down; }

void ApiWorld::Sweep(absl::Duration advance) {
  static const Caller kSweeper{"sweeper", Caller::kTrusted, &authz::Access::Trusted()};
  clock_.Advance(advance);
  CheckAnswer(records_->PurgeExpired().status(), kSweeper, "PurgeExpired");
  CheckAnswer(params_->RunPolicies().status(), kSweeper, "RunPolicies");
  CheckAnswer(keys_->RunMaintenance().status(), kSweeper, "RunMaintenance");
  CheckAnswer(changes_->Trim().status(), kSweeper, "ChangeLog::Trim");
}

// ---- fixtures ----

absl::Status ApiWorld::Seed() {
  COFFER_RETURN_IF_ERROR(SeedKms());
  COFFER_RETURN_IF_ERROR(SeedSecrets());
  return SeedParams();
}

// New keys under the fixture aliases each time (an epoch may have disabled,
// deleted or re-pointed the old ones; the old keys stay, like any other).
absl::Status ApiWorld::SeedKms() {
  fixture_keys_.clear();
  fixture_ciphertexts_.clear();
  auto create = [&](const char* description, const char* alias) -> absl::StatusOr<std::string> {
    kv1::CreateKeyRequest create;
    create.set_description(description);
    auto* tag = create.add_tags();
    tag->set_tag_key("team");
    tag->set_tag_value("fuzz");
    COFFER_ASSIGN_OR_RETURN(auto created, keys_->CreateKey(create));
    const std::string id = created.key_metadata().key_id();
    kv1::DeleteAliasRequest drop;
    drop.set_alias_name(alias);
    (void)keys_->DeleteAlias(drop);
    kv1::CreateAliasRequest alias_request;
    alias_request.set_alias_name(alias);
    alias_request.set_target_key_id(id);
    COFFER_RETURN_IF_ERROR(keys_->CreateAlias(alias_request).status());
    fixture_keys_.push_back(id);
    return id;
  };
  auto encrypt = [&](const std::string& key, const char* plaintext,
                     bool with_context) -> absl::StatusOr<std::string> {
    kv1::EncryptRequest encrypt;
    encrypt.set_key_id(key);
    encrypt.set_plaintext(plaintext);
    if (with_context) (*encrypt.mutable_encryption_context())["purpose"] = "fuzz";
    COFFER_ASSIGN_OR_RETURN(auto sealed, keys_->Encrypt(encrypt));
    return sealed.ciphertext_blob();
  };

  COFFER_ASSIGN_OR_RETURN(const std::string one, create("fuzz: enabled", "alias/fz/one"));
  COFFER_ASSIGN_OR_RETURN(std::string c0, encrypt(one, "fuzz-plaintext-0", true));
  COFFER_ASSIGN_OR_RETURN(std::string c1, encrypt("alias/fz/one", "fuzz-plaintext-1", false));
  kv1::EnableKeyRotationRequest rotate;
  rotate.set_key_id(one);
  rotate.set_rotation_period_in_days(90);
  COFFER_RETURN_IF_ERROR(keys_->EnableKeyRotation(rotate).status());

  COFFER_ASSIGN_OR_RETURN(const std::string disabled,
                          create("fuzz: disabled", "alias/fz/disabled"));
  COFFER_ASSIGN_OR_RETURN(std::string c3, encrypt(disabled, "fuzz-plaintext-3", false));
  kv1::DisableKeyRequest disable;
  disable.set_key_id(disabled);
  COFFER_RETURN_IF_ERROR(keys_->DisableKey(disable).status());

  COFFER_ASSIGN_OR_RETURN(const std::string doomed,
                          create("fuzz: pending deletion", "alias/fz/doomed"));
  kv1::ScheduleKeyDeletionRequest schedule;
  schedule.set_key_id(doomed);
  schedule.set_pending_window_in_days(7);
  COFFER_RETURN_IF_ERROR(keys_->ScheduleKeyDeletion(schedule).status());

  // The built-in key comes into being on first use (and is there after).
  COFFER_ASSIGN_OR_RETURN(std::string c2, encrypt("alias/coffer/fz", "fuzz-plaintext-2", true));
  kv1::DescribeKeyRequest describe;
  describe.set_key_id("alias/coffer/fz");
  COFFER_ASSIGN_OR_RETURN(auto builtin, keys_->DescribeKey(describe));
  fixture_keys_.push_back(builtin.key_metadata().key_id());
  fixture_ciphertexts_ = {std::move(c0), std::move(c1), std::move(c2), std::move(c3)};
  return absl::OkStatus();
}

absl::Status ApiWorld::SeedSecrets() {
  auto create = [&](const char* name, const char* token, const char* value) {
    sm::CreateSecretRequest create;
    create.set_name(name);
    create.set_client_request_token(token);
    create.set_description("fuzz fixture");
    if (value != nullptr) create.set_secret_string(value);
    auto* tag = create.add_tags();
    tag->set_key("team");
    tag->set_value("fuzz");
    return secrets_->CreateSecret(create).status();
  };
  COFFER_RETURN_IF_ERROR(
      create("fz/db", "fz-token-0000000000000000000000000001", "{\"user\":\"fz\",\"pw\":\"one\"}"));
  sm::PutSecretValueRequest put;
  put.set_secret_id("fz/db");
  put.set_client_request_token("fz-token-0000000000000000000000000002");
  put.set_secret_string("{\"user\":\"fz\",\"pw\":\"two\"}");
  COFFER_RETURN_IF_ERROR(secrets_->PutSecretValue(put).status());

  sm::CreateSecretRequest binary;
  binary.set_name("fz/binary");
  binary.set_secret_binary(std::string("\0\1\2\3fuzz", 8));
  COFFER_RETURN_IF_ERROR(secrets_->CreateSecret(binary).status());

  sm::CreateSecretRequest own_key;
  own_key.set_name("fz/kms-one");
  own_key.set_kms_key_id("alias/fz/one");
  own_key.set_secret_string("under alias/fz/one");
  COFFER_RETURN_IF_ERROR(secrets_->CreateSecret(own_key).status());

  COFFER_RETURN_IF_ERROR(create("fz/empty", "fz-token-0000000000000000000000000003", nullptr));
  COFFER_RETURN_IF_ERROR(
      create("fz/master", "fz-token-0000000000000000000000000004", "master-password"));
  COFFER_RETURN_IF_ERROR(create("fz/keep/one", "fz-token-0000000000000000000000000005", "kept"));
  COFFER_RETURN_IF_ERROR(
      create("other/secret", "fz-token-0000000000000000000000000006", "not the app's"));

  COFFER_RETURN_IF_ERROR(
      create("fz/public", "fz-token-0000000000000000000000000007", "public value"));
  sm::PutResourcePolicyRequest policy;
  policy.set_secret_id("fz/public");
  policy.set_resource_policy(kPublicPolicy);
  COFFER_RETURN_IF_ERROR(secrets_->PutResourcePolicy(policy).status());

  COFFER_RETURN_IF_ERROR(
      create("fz/deleted", "fz-token-0000000000000000000000000008", "deleted soon"));
  sm::DeleteSecretRequest remove;
  remove.set_secret_id("fz/deleted");
  remove.set_recovery_window_in_days(7);
  COFFER_RETURN_IF_ERROR(secrets_->DeleteSecret(remove).status());

  // A rotation in progress, leased by the rotator for the worker.
  COFFER_RETURN_IF_ERROR(
      create("fz/rotating", "fz-token-0000000000000000000000000009", "rotating v1"));
  sm::RotateSecretRequest rotate;
  rotate.set_secret_id("fz/rotating");
  rotate.set_client_request_token("fz-token-0000000000000000000000000010");
  rotate.set_rotation_worker("fz-worker");
  rotate.mutable_rotation_rules()->set_automatically_after_days(30);
  COFFER_RETURN_IF_ERROR(rotation_->RotateSecret(rotate).status());
  rot::AcquireRotationLeaseRequest acquire;
  acquire.set_secret_id("fz/rotating");
  acquire.set_holder("fz-rotator");
  acquire.mutable_lease_duration()->set_seconds(600);
  (*acquire.mutable_worker_spiffe_ids())["fz-worker"] = kWorkerPrincipal;
  COFFER_ASSIGN_OR_RETURN(auto lease, rotation_->AcquireRotationLease(acquire, *rotator_));
  RememberLease(lease.lease_id(), lease.client_request_token());
  return absl::OkStatus();
}

absl::Status ApiWorld::SeedParams() {
  auto put = [&](const char* name, pm::ParameterType type, const char* value) {
    pm::PutParameterRequest put;
    put.set_name(name);
    put.set_type(type);
    put.set_value(value);
    put.set_overwrite(true);
    return put;
  };
  COFFER_RETURN_IF_ERROR(
      params_->PutParameter(put("/fz/app/host", pm::PARAMETER_TYPE_STRING, "db1.internal"))
          .status());
  COFFER_RETURN_IF_ERROR(
      params_->PutParameter(put("/fz/app/host", pm::PARAMETER_TYPE_STRING, "db2.internal"))
          .status());
  pm::LabelParameterVersionRequest label;
  label.set_name("/fz/app/host");
  label.set_parameter_version(1);
  label.add_labels("stable");
  COFFER_RETURN_IF_ERROR(params_->LabelParameterVersion(label).status());
  COFFER_RETURN_IF_ERROR(
      params_
          ->PutParameter(
              put("/fz/app/password", pm::PARAMETER_TYPE_SECURE_STRING, "fuzz-param-secret"))
          .status());
  pm::PutParameterRequest own_key =
      put("/fz/app/own-key", pm::PARAMETER_TYPE_SECURE_STRING, "under alias/fz/one");
  own_key.set_key_id("alias/fz/one");
  COFFER_RETURN_IF_ERROR(params_->PutParameter(own_key).status());
  pm::PutParameterRequest list = put("/fz/list", pm::PARAMETER_TYPE_STRING_LIST, "a,b,c");
  list.set_overwrite(false);
  auto* tag = list.add_tags();
  tag->set_key("team");
  tag->set_value("fuzz");
  COFFER_RETURN_IF_ERROR(params_->PutParameter(list).status());
  // Expires in 30 days; notified 2 hours before, and after a day unchanged.
  pm::PutParameterRequest advanced = put("/fz/advanced", pm::PARAMETER_TYPE_STRING, "expiring");
  advanced.set_tier(pm::PARAMETER_TIER_ADVANCED);
  advanced.set_policies(
      absl::StrCat(R"([{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":")",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", clock_.Now() + absl::Hours(24 * 30),
                                    absl::UTCTimeZone()),
                   R"("}},{"Type":"ExpirationNotification","Version":"1.0",)",
                   R"("Attributes":{"Before":"2","Unit":"Hours"}},)",
                   R"({"Type":"NoChangeNotification","Version":"1.0",)",
                   R"("Attributes":{"After":"1","Unit":"Days"}}])"));
  COFFER_RETURN_IF_ERROR(params_->PutParameter(advanced).status());
  pm::PutParameterRequest pattern = put("/fz/pattern", pm::PARAMETER_TYPE_STRING, "abc");
  pattern.set_allowed_pattern("^[a-z]+$");
  COFFER_RETURN_IF_ERROR(params_->PutParameter(pattern).status());
  COFFER_RETURN_IF_ERROR(
      params_->PutParameter(put("flat-name", pm::PARAMETER_TYPE_STRING, "flat")).status());
  return params_->PutParameter(put("/other/x", pm::PARAMETER_TYPE_STRING, "not the app's"))
      .status();
}

// ---- placeholders ----

void ApiWorld::ReplaceKeyIds(std::string* field) const {
  if (field->find("#k") == std::string::npos) return;
  for (int i = 0; i < kFixtureKeys; ++i) {
    absl::StrReplaceAll({{absl::StrCat("#k", i), fixture_keys_[i]}}, field);
  }
}

void ApiWorld::ReplaceCiphertext(std::string* blob) const {
  if (blob->size() < 3 || blob->compare(0, 2, "#c") != 0) return;
  const int i = (*blob)[2] - '0';
  if (i < 0 || i >= kFixtureCiphertexts) return;
  *blob = fixture_ciphertexts_[i] + blob->substr(3);
}

void ApiWorld::ReplaceLease(std::string* lease_id) const {
  if (*lease_id == "#lease") *lease_id = lease_id_;
}

// ---- checks ----

// COFFER_API_FUZZ_STATS: how often each method answered each code, by
// caller, printed at exit (is a method's success path reached at all?).
void CountAnswer(const absl::Status& status, const Caller& caller, absl::string_view method) {
  using Counts = std::map<std::string, std::map<std::string, uint64_t>>;
  static Counts* const counts = [] {
    auto* c = new Counts();
    std::atexit([] {
      for (const auto& [call, codes] : *counts) {
        std::string line = call;
        for (const auto& [code, n] : codes) absl::StrAppend(&line, " ", code, "=", n);
        std::fprintf(stderr, "%s\n", line.c_str());
      }
    });
    return c;
  }();
  ++(*counts)[absl::StrCat(method, " as ", caller.name)][absl::StatusCodeToString(status.code())];
}

void CheckAnswer(const absl::Status& status, const Caller& caller, absl::string_view method) {
  static const bool verbose = std::getenv("COFFER_API_FUZZ_VERBOSE") != nullptr;
  static const bool stats = std::getenv("COFFER_API_FUZZ_STATS") != nullptr;
  if (verbose) std::fprintf(stderr, "%s\n", Describe(status, caller, method).c_str());
  if (stats) CountAnswer(status, caller, method);
  if (status.ok()) return;
  using C = absl::StatusCode;
  const C code = status.code();
  const std::string r = ErrorReason(status);
  FUZZ_CHECK(!status.message().empty(),
             Describe(status, caller, method).append(": an error has a message").c_str());
  FUZZ_CHECK(!r.empty(),
             Describe(status, caller, method).append(": an error has a reason").c_str());
  FUZZ_CHECK(CodeFitsReason(code, r),
             Describe(status, caller, method)
                 .append(": the reason is documented with this code (docs/api.md#errors)")
                 .c_str());
  FUZZ_CHECK(code != C::kInternal && code != C::kUnknown && code != C::kDataLoss,
             Describe(status, caller, method).append(": a server fault").c_str());
  FUZZ_CHECK(code != C::kUnavailable || caller.kms_down,
             Describe(status, caller, method).append(": UNAVAILABLE with the KMS up").c_str());
  FUZZ_CHECK(code != C::kAborted || r == reason::kPreconditionNotMet,
             Describe(status, caller, method)
                 .append(": ABORTED without a writer to race (single-threaded)")
                 .c_str());
}

bool InlineFirst(absl::string_view action) { return runtime::InlineFirstAction(action); }

// ---- the driver ----

void Initialize(int* argc, char*** argv, const std::vector<Method>& methods,
                const std::vector<Caller>& callers) {
  // Requests with strings that are not UTF-8 do not parse, and protobuf logs
  // an ERROR line for each; Coffer's own Info/Warn lines are noise here.
  google::protobuf::SetLogHandler(nullptr);
  log::SetLevel(log::Level::kError);
  std::string dir;
  std::string replay;
  bool leaks_flag = false;
  ApiWorld& world = ApiWorld::Get();
  for (int i = 1; i < *argc; ++i) {
    absl::string_view arg = (*argv)[i];
    if (absl::ConsumePrefix(&arg, "--write_seeds=")) dir = std::string(arg);
    if (absl::ConsumePrefix(&arg, "--replay=")) replay = std::string(arg);
    if (absl::ConsumePrefix(&arg, "-artifact_prefix=")) world.artifact_prefix_ = std::string(arg);
    leaks_flag |= absl::StartsWith(arg, "-detect_leaks=");
  }
  on_check_failure = [] { ApiWorld::Get().SaveRecord(); };
  if (!replay.empty()) {
    std::ifstream in(replay, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t at = 0;
    int n = 0;
    while (at + 4 <= bytes.size()) {
      const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + at);
      const size_t size = p[0] | p[1] << 8 | p[2] << 16 | static_cast<size_t>(p[3]) << 24;
      if (at + 4 + size > bytes.size()) break;
      RunInput(methods, callers, p + 4, size);
      at += 4 + size;
      ++n;
    }
    std::fprintf(stderr, "replayed %d inputs from %s: no finding\n", n, replay.c_str());
    std::exit(0);
  }
  if (!leaks_flag) {
    // libFuzzer reads its flags after this returns. Its leak check after an
    // input that allocated more than it freed scans the whole heap, and here
    // the world keeps what an input allocates (memtables, caches): nearly
    // every write would pay a full scan. Leaks are still found at exit, once
    // the world is torn down (ASAN_OPTIONS=detect_leaks=1, the default).
    static std::vector<char*> args;
    args.assign(*argv, *argv + *argc);
    static char kNoLeakCheck[] = "-detect_leaks=0";
    args.push_back(kNoLeakCheck);
    args.push_back(nullptr);
    *argv = args.data();
    ++*argc;
  }
  if (dir.empty()) return;
  std::error_code ec;
  fs::create_directories(dir, ec);
  const size_t n = methods.size();
  int written = 0;
  for (size_t m = 0; m < n; ++m) {
    for (size_t c = 0; c < callers.size() && m + n * c < 256; ++c) {
      for (size_t s = 0; s < methods[m].seeds.size(); ++s) {
        const std::string path =
            absl::StrCat(dir, "/", m < 10 ? "0" : "", m, "-", methods[m].name, "-", s,
                         c == 0 ? "" : absl::StrCat("-", callers[c].name));
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << static_cast<char>(m + n * c) << methods[m].seeds[s];
        if (!out) {
          std::fprintf(stderr, "cannot write %s\n", path.c_str());
          std::exit(1);
        }
        ++written;
      }
    }
  }
  std::fprintf(stderr, "wrote %d seeds into %s\n", written, dir.c_str());
  std::exit(0);
}

int RunInput(const std::vector<Method>& methods, const std::vector<Caller>& callers,
             const uint8_t* data, size_t size) {
  if (size == 0) return -1;
  g_input = absl::string_view(reinterpret_cast<const char*>(data), size);
  const Method& method = methods[data[0] % methods.size()];
  const Caller& caller = callers[(data[0] / methods.size()) % callers.size()];
  const absl::string_view request(reinterpret_cast<const char*>(data + 1), size - 1);
  return method.run(request, caller) ? 0 : -1;
}

}  // namespace coffer::fuzz
