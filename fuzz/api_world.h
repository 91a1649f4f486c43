// api_world.h: what the API fuzz targets (secrets_api_fuzz, params_api_fuzz,
// kms_api_fuzz) share — the real logic of coffer-kms and coffer-store wired
// in-process as the store's unit tests wire it (tests/services/store/
// store_fixture.h: KeyManager behind InProcessKeyService, the envelope and
// data-key cache, SecretStore, SecretRotation, ParamStore, a change log, a
// fake clock), the callers, the input format and the checks every answer
// must pass.
//
// Input: the first byte b picks the method (b % methods) and the caller
// ((b / methods) % callers); the rest is the method's serialized request
// (inputs that do not parse are refused). Seeds: `<target>
// --write_seeds=<dir>` writes each method's seed requests, for every caller.
//
// State: the world lives for the whole process, over RocksDB in a
// per-process directory under /tmp removed at exit (a crashed process's
// directory is removed by the next one). Every kInputsPerEpoch inputs the
// store is emptied and everything re-seeded, and every kEpochsPerRebuild
// epochs both databases start afresh, so state, memory and disk stay
// bounded however long a run lasts. Each epoch starts from the same
// fixtures, named resources the seeds refer to: secrets under "fz/"
// (fz/db with two versions, fz/rotating with a leased rotation, fz/public
// with a resource policy, fz/deleted...), parameters under "/fz/" and
// "flat-name", KMS keys behind alias/fz/one (enabled), alias/fz/disabled,
// alias/fz/doomed (pending deletion) and the built-in alias/coffer/fz. The
// fake clock moves a millisecond per input, and more through the targets'
// Sweep method (which then runs the periodic sweepers).
//
// Random identifiers cannot be guessed by the fuzzer, so a few request
// fields take placeholders, replaced before the call: "#k0".."#k3" in a key
// id (the fixture KMS keys), a ciphertext blob starting with "#c0".."#c3"
// (a fixture ciphertext, the rest of the blob appended), the lease id
// "#lease" (the last rotation lease taken) and the page token or marker
// "#next" (the last one a list call answered, whichever call it was).
//
// A finding may need the state earlier inputs built: a failing FUZZ_CHECK
// also writes every input since the world was built to
// <artifact_prefix>replay-<pid>; `<target> --replay=<file>` runs them in
// order in a new process. COFFER_API_FUZZ_VERBOSE=1 prints every answer,
// COFFER_API_FUZZ_STATS=1 counts the answers per method, caller and code at
// exit (is a success path reached at all?).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fuzz/fuzz_check.h"
#include "libs/authz/authorizer.h"
#include "libs/common/blocking.h"
#include "libs/common/clock.h"
#include "services/kms/key_manager.h"
#include "services/store/changes/change_log.h"
#include "services/store/params/param_store.h"
#include "services/store/secrets/secret_records.h"
#include "services/store/secrets/secret_rotation.h"
#include "services/store/secrets/secret_store.h"

namespace coffer::store {
class InProcessKeyService;
class DataKeyCache;
class Envelope;
}  // namespace coffer::store

namespace coffer::fuzz {

// Principals of the fixed identity policy (kPolicy in api_world.cc).
inline constexpr char kAppPrincipal[] = "spiffe://coffer.local/app/fuzz";  // fz/ and /fz/
inline constexpr char kWorkerPrincipal[] =
    "spiffe://coffer.local/worker/fuzz";                                        // a rotation worker
inline constexpr char kRotatorPrincipal[] = "spiffe://coffer.local/rotator";    // rotation:*
inline constexpr char kStorePrincipal[] = "spiffe://coffer.local/store";        // kms:*
inline constexpr char kOutsiderPrincipal[] = "spiffe://coffer.local/outsider";  // nothing

// The fixture KMS keys: 0 enabled (alias/fz/one), 1 disabled
// (alias/fz/disabled), 2 pending deletion (alias/fz/doomed), 3 the built-in
// alias/coffer/fz.
inline constexpr int kFixtureKeys = 4;

struct Method;

// Who makes a call.
struct Caller {
  enum Kind {
    kTrusted,    // Access::Trusted()
    kPrincipal,  // a principal some statements of the policy name
    kOutsider,   // a principal the policy grants nothing
  };
  std::string name;
  Kind kind = kTrusted;
  const authz::Access* access = nullptr;
  // The KMS answers UNAVAILABLE during the call (cached data keys still work).
  bool kms_down = false;
  // `access` is ApiWorld::worker(): it presents the last leased run's token.
  bool rotation_worker = false;
  // Reads are first tried inside a NonBlockingScope, as the CallGate does
  // (GateCall).
  bool inline_first = false;
};

class ApiWorld {
 public:
  // The store is wiped and everything re-seeded after this many inputs;
  // every kEpochsPerRebuild epochs both databases start afresh.
  static constexpr uint64_t kInputsPerEpoch = 2000;
  static constexpr uint64_t kEpochsPerRebuild = 25;

  // The process's world, built on first use; torn down (and its directory
  // removed) at exit.
  static ApiWorld& Get();

  // Before each input: a millisecond passes; at an epoch's end the world is
  // refreshed (or rebuilt).
  void BeginInput();
  // The targets' Sweep method: `advance` passes, then what the services run
  // periodically (deletion purge, parameter policies, KMS maintenance,
  // change-log trim); each must succeed.
  void Sweep(absl::Duration advance);

  FakeClock& clock() { return clock_; }
  kms::KeyManager& keys() { return *keys_; }
  store::InProcessKeyService& kms() { return *kms_; }
  store::ChangeLog& changes() { return *changes_; }
  store::SecretRecords& records() { return *records_; }
  store::SecretStore& secrets() { return *secrets_; }
  store::SecretRotation& rotation() { return *rotation_; }
  store::ParamStore& params() { return *params_; }

  // The callers of the fixed policy (one Access each, for the process).
  const authz::Access& app() const { return *app_; }
  const authz::Access& rotator() const { return *rotator_; }
  const authz::Access& store() const { return *store_; }
  const authz::Access& outsider() const { return *outsider_; }
  // The worker presents the token of the last rotation run leased.
  const authz::Access& worker();

  // Fixture KMS key ids and ciphertexts (under key 0 with {"purpose":
  // "fuzz"}, key 0 without context, key 3, key 1 before it was disabled).
  const std::string& key_id(int i) const { return fixture_keys_[i]; }
  const std::string& ciphertext(int i) const { return fixture_ciphertexts_[i]; }
  static constexpr int kFixtureCiphertexts = 4;

  // The last rotation lease taken (by a fixture or an AcquireRotationLease).
  void RememberLease(const std::string& lease_id, const std::string& token) {
    lease_id_ = lease_id;
    pending_token_ = token;
  }
  const std::string& lease_id() const { return lease_id_; }

  // Keys the KMS holds, in every state.
  int KeyCount() const;
  // The in-process KMS answers UNAVAILABLE while `down` (cached keys work).
  void SetKmsDown(bool down);

  // The last page token a list call answered (any list call).
  void RememberToken(const std::string& token) {
    if (!token.empty()) next_token_ = token;
  }

  // Placeholders (see the top of this file).
  void ReplaceKeyIds(std::string* field) const;
  void ReplaceCiphertext(std::string* blob) const;
  void ReplaceLease(std::string* lease_id) const;
  void ReplaceToken(std::string* token) const {
    if (*token == "#next") *token = next_token_;
  }

 private:
  ApiWorld();
  // A new world: both databases opened afresh in a new directory, seeded.
  void Rebuild();
  // The next epoch: the store's database emptied (not reopened: opening
  // RocksDB costs a few hundred milliseconds under ASan), the store's
  // objects made again over it, new fixture KMS keys, everything seeded;
  // a Rebuild when seeding fails (the KMS may be in a state only that
  // fixes: a trusted caller disabled a built-in key, the key limit...).
  void Refresh();
  void OpenStore();
  void CloseStore();
  void Teardown();
  absl::Status Seed();
  absl::Status SeedKms();
  absl::Status SeedSecrets();
  absl::Status SeedParams();

  std::string base_dir_;
  uint64_t generation_ = 0;  // worlds built (the directory's name)
  uint64_t inputs_ = 0;      // run in this world
  FakeClock clock_;
  std::unique_ptr<authz::Authorizer> authorizer_;
  std::unique_ptr<authz::Access> app_, worker_, rotator_, store_, outsider_;

  std::unique_ptr<kms::KeyManager> keys_;
  std::unique_ptr<store::InProcessKeyService> kms_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<store::ChangeLog> changes_;
  std::unique_ptr<store::DataKeyCache> cache_;
  std::unique_ptr<store::Envelope> envelope_;
  std::unique_ptr<store::SecretRecords> records_;
  std::unique_ptr<store::SecretStore> secrets_;
  std::unique_ptr<store::SecretRotation> rotation_;
  std::unique_ptr<store::ParamStore> params_;

  // Every input run since the world was built ([u32 LE length][bytes]...),
  // saved by a failing FUZZ_CHECK: replaying them in order in a new process
  // (--replay=) rebuilds the state the failure needed.
  static constexpr size_t kMaxRecord = 64 << 20;
  std::string record_;
  bool record_complete_ = true;
  std::string artifact_prefix_ = "./";
  void SaveRecord();
  friend void Initialize(int*, char***, const std::vector<Method>&, const std::vector<Caller>&);

  std::vector<std::string> fixture_keys_;
  std::vector<std::string> fixture_ciphertexts_;
  std::string lease_id_;
  std::string pending_token_;
  std::string next_token_;
};

// ---- checks ----

// Every answer's status: an error has a message, a Coffer reason the API
// documents (docs/api.md#errors) with its code, and is never a server
// fault (INTERNAL, UNKNOWN, DATA_LOSS: every value was stored by the API
// itself) nor UNAVAILABLE while the KMS is up; ABORTED only for a lost
// rotation lease.
void CheckAnswer(const absl::Status& status, const Caller& caller, absl::string_view method);

// As CheckAnswer, for the harness's own follow-up calls (trusted, KMS up).
template <typename T>
const T* Followed(const absl::StatusOr<T>& result, absl::string_view what) {
  static const Caller kTrustedCaller{"trusted", Caller::kTrusted, &authz::Access::Trusted()};
  CheckAnswer(result.status(), kTrustedCaller, what);
  return result.ok() ? &*result : nullptr;
}

// A code an outsider may get from a single-resource method: it fails
// validation or authorization (no existence oracle, nothing done).
inline bool OutsiderRefused(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ||
         status.code() == absl::StatusCode::kPermissionDenied;
}

// ---- the methods of a target and the input format ----

struct Method {
  std::string name;
  // Parses `request` and makes the call; false when it does not parse.
  std::function<bool(absl::string_view request, const Caller& caller)> run;
  std::vector<std::string> seeds;  // serialized requests
};

template <typename Request>
Method MakeMethod(std::string name, std::vector<Request> seeds,
                  std::function<void(Request& request, const Caller& caller)> call) {
  Method m;
  m.name = std::move(name);
  for (const Request& s : seeds) m.seeds.push_back(s.SerializeAsString());
  m.run = [call = std::move(call)](absl::string_view bytes, const Caller& caller) {
    Request request;
    if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
    ApiWorld& world = ApiWorld::Get();
    world.BeginInput();
    if (caller.rotation_worker) world.worker();
    call(request, caller);
    return true;
  };
  return m;
}

// The actions CallGate tries on the callback thread first: the one list in
// libs/runtime/inline_actions.h.
bool InlineFirst(absl::string_view action);

// Makes a call as the CallGate does for `caller`: with the KMS down when
// the caller says so; an InlineFirst action of an inline caller first inside
// a NonBlockingScope (libs/common/blocking.h), and again where it may block
// only when that attempt would have blocked. Such an attempt must either
// answer like any call (its errors pass through unchanged: a would-block
// status is never wrapped into an answer) or stop having changed nothing
// (no change event, no KMS key).
template <typename Response>
absl::StatusOr<Response> GateCall(const Caller& caller, absl::string_view action,
                                  const std::function<absl::StatusOr<Response>()>& work) {
  ApiWorld& world = ApiWorld::Get();
  world.SetKmsDown(caller.kms_down);
  absl::StatusOr<Response> answer = absl::UnknownError("not called");
  bool done = false;
  if (caller.inline_first && InlineFirst(action)) {
    const uint64_t watermark = world.changes().Watermark();
    const int keys = world.KeyCount();
    {
      NonBlockingScope scope;
      answer = work();
    }
    done = !IsWouldBlock(answer.status());
    if (!done) {
      FUZZ_CHECK(world.changes().Watermark() == watermark && world.KeyCount() == keys,
                 "a call that would block changed something first");
    }
  }
  if (!done) answer = work();
  world.SetKmsDown(false);
  return answer;
}

// The shared LLVMFuzzerInitialize: quiets protobuf's and Coffer's logs,
// turns off libFuzzer's per-input leak check (leaks are still reported at
// exit) and, given --write_seeds=<dir>, writes one input per seed and
// caller into <dir> ("<method index>-<method>-<seed>[-<caller>]") and exits.
void Initialize(int* argc, char*** argv, const std::vector<Method>& methods,
                const std::vector<Caller>& callers);

// The shared LLVMFuzzerTestOneInput.
int RunInput(const std::vector<Method>& methods, const std::vector<Caller>& callers,
             const uint8_t* data, size_t size);

}  // namespace coffer::fuzz
