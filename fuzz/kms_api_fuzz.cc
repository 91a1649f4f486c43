// kms_api_fuzz: every method of the KMS API (kms::KeyManager,
// coffer.kms.v1) and a Sweep (due deletions and rotations), on fuzzed
// requests over the real KMS logic in-process (api_world.h for the world,
// the input format and the placeholders: "#k0".."#k3" in key ids, "#c0"..
// "#c3" at the start of a ciphertext blob).
//
// Callers: trusted (the method is called directly, as the KeyManager's own
// tests do), the store (kms:* on everything), the app (crypto on
// alias/fz/* and alias/coffer/*, a few calls on "*", denied under a
// "tier": "secret*" context), an outsider the policy grants nothing, and
// the store with the CallGate's inline-first reads (GateCall). For the three
// principals the call is first authorized exactly as kms_service.cc does,
// with KmsAccess (key policies, the rules on secrets' contexts and on
// built-in keys), and made only when that allows it.
//
// Properties, beyond no crash and no sanitizer report: every answer passes
// CheckAnswer; the outsider is always refused; no principal changes a
// built-in key (KEY_MANAGER_COFFER, as DescribeKey resolved it before the
// call) and only the store uses a context naming a secret or parameter or
// causes a built-in key's creation; what Encrypt, ReEncrypt and
// GenerateDataKey* return decrypts (under its context) to the plaintext
// and under the key they name, and neither under another context nor
// altered; data keys and random bytes have the length asked for; each
// state, description, rotation, alias and tag change shows in DescribeKey /
// GetKeyRotationStatus / ListResourceTags next; pages hold at most `limit`
// entries in order, truncated exactly when they carry a marker.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fuzz/api_world.h"
#include "google/protobuf/duration.pb.h"
#include "services/kms/kms_access.h"

namespace {

namespace kv1 = ::coffer::kms::v1;
using coffer::authz::Access;
using coffer::fuzz::ApiWorld;
using coffer::fuzz::Caller;
using coffer::fuzz::CheckAnswer;
using coffer::fuzz::Followed;
using coffer::fuzz::MakeMethod;
using coffer::fuzz::Method;
using coffer::kms::KmsAccess;
using Context = google::protobuf::Map<std::string, std::string>;

ApiWorld& W() { return ApiWorld::Get(); }

constexpr char kKeyArnPrefix[] = "arn:coffer:kms:local:000000000000:key/";

// ---- follow-up reads (trusted) ----

const kv1::KeyMetadata* DescribeKey(const std::string& ref, kv1::KeyMetadata* out) {
  kv1::DescribeKeyRequest request;
  request.set_key_id(ref);
  auto described = W().keys().DescribeKey(request);
  if (!Followed(described, "DescribeKey (follow-up)")) return nullptr;
  *out = described->key_metadata();
  return out;
}

bool IsBuiltin(const std::string& ref) {
  kv1::DescribeKeyRequest request;
  request.set_key_id(ref);
  auto described = W().keys().DescribeKey(request);
  return described.ok() && described->key_metadata().key_manager() == kv1::KEY_MANAGER_COFFER;
}

bool NamesStoredValue(const Context& c) {
  return c.count("SecretARN") || c.count("SecretVersionId") || c.count("PARAMETER_ARN");
}

// A fresh ciphertext decrypts to its plaintext under the key answered, and
// only under its own context and unaltered.
void CheckDecrypts(const std::string& blob, const Context& context, const std::string& key_arn,
                   const std::string& plaintext) {
  kv1::DecryptRequest request;
  request.set_ciphertext_blob(blob);
  *request.mutable_encryption_context() = context;
  auto out = W().keys().Decrypt(request);
  FUZZ_CHECK(Followed(out, "Decrypt (follow-up)") != nullptr, "a fresh ciphertext decrypts");
  FUZZ_CHECK(out->plaintext() == plaintext, "it decrypts to the plaintext");
  FUZZ_CHECK(out->key_id() == key_arn, "under the key answered");

  kv1::DecryptRequest other = request;
  if (context.empty()) {
    (*other.mutable_encryption_context())["purpose"] = "other";
  } else {
    other.clear_encryption_context();
  }
  auto refused = W().keys().Decrypt(other);
  CheckAnswer(refused.status(), {"trusted"}, "Decrypt (follow-up, other context)");
  FUZZ_CHECK(absl::IsInvalidArgument(refused.status()), "another context does not decrypt");
  other = request;
  other.mutable_ciphertext_blob()->back() ^= 1;
  refused = W().keys().Decrypt(other);
  CheckAnswer(refused.status(), {"trusted"}, "Decrypt (follow-up, altered)");
  FUZZ_CHECK(absl::IsInvalidArgument(refused.status()), "an altered ciphertext does not decrypt");
}

void CheckMetadata(const kv1::KeyMetadata& md) {
  FUZZ_CHECK(!md.key_id().empty() && md.arn() == kKeyArnPrefix + md.key_id(), "key id and ARN");
  FUZZ_CHECK(md.enabled() == (md.key_state() == kv1::KEY_STATE_ENABLED), "enabled = ENABLED");
  FUZZ_CHECK(md.current_key_material_version() >= 1, "a key has material");
  FUZZ_CHECK(md.has_deletion_date() == (md.key_state() == kv1::KEY_STATE_PENDING_DELETION),
             "a deletion date exactly while pending deletion");
}

template <typename Response>
void CheckPage(const Response& out, int count, int limit) {
  W().RememberToken(out.next_marker());
  FUZZ_CHECK(count <= limit, "at most `limit` entries");
  FUZZ_CHECK(out.truncated() == !out.next_marker().empty(), "truncated exactly with a marker");
}

// ---- the calls ----

// What the call is, for the rules KmsAccess enforces and this target
// checks independently: the references to keys it changes (the built-in
// rule), the contexts it uses (the secrets' context rule) and whether it
// may create a built-in key.
struct Effects {
  std::vector<std::string> changes;
  std::vector<const Context*> contexts;
  bool may_create = false;
};

template <typename Request, typename Response>
Method Kms(std::string name, std::vector<Request> seeds, std::function<void(Request&)> prepare,
           std::function<absl::Status(const KmsAccess&, const Access&, const Request&)> authorize,
           std::function<Effects(const Request&)> effects,
           std::function<absl::StatusOr<Response>(const Request&)> call,
           std::function<void(const Request&, const Response&, const Caller&)> check) {
  const std::string method = name;
  return MakeMethod<Request>(
      std::move(name), std::move(seeds), [=](Request& request, const Caller& caller) {
        prepare(request);
        const Effects fx = effects(request);
        const bool principal = caller.kind != Caller::kTrusted;
        const bool store = principal && caller.access->principal() == coffer::fuzz::kStorePrincipal;
        std::vector<bool> builtin;
        if (principal) {
          for (const std::string& ref : fx.changes) builtin.push_back(IsBuiltin(ref));
        }
        const bool count_keys = principal && !store && fx.may_create;
        const int keys_before = count_keys ? W().KeyCount() : 0;
        if (principal) {
          const KmsAccess guard(&W().keys(), coffer::kms::KmsAccessOptions());
          absl::Status allowed = authorize(guard, *caller.access, request);
          CheckAnswer(allowed, caller, method + " (authorization)");
          FUZZ_CHECK(allowed.ok() || absl::IsPermissionDenied(allowed),
                     "authorization allows or denies");
          if (caller.kind == Caller::kOutsider) {
            FUZZ_CHECK(!allowed.ok(), "an outsider is refused");
          }
          if (!allowed.ok()) return;
        }
        absl::StatusOr<Response> answer = coffer::fuzz::GateCall<Response>(
            caller, "kms:" + method, [&] { return call(request); });
        CheckAnswer(answer.status(), caller, method);
        if (!answer.ok()) return;
        if (principal) {
          for (size_t i = 0; i < builtin.size(); ++i) {
            FUZZ_CHECK(!builtin[i], absl::StrCat(method, " by ", caller.name,
                                                 " changed the built-in key ", fx.changes[i])
                                        .c_str());
          }
          if (!store) {
            for (const Context* c : fx.contexts) {
              FUZZ_CHECK(!NamesStoredValue(*c), "only the store uses a secret's context");
            }
            if (count_keys) {
              FUZZ_CHECK(W().KeyCount() == keys_before, "only the store creates built-in keys");
            }
          }
        }
        check(request, *answer, caller);
      });
}

template <typename Request, typename = void>
struct HasMarker : std::false_type {};
template <typename Request>
struct HasMarker<Request, std::void_t<decltype(std::declval<Request>().marker())>>
    : std::true_type {};

template <typename Request>
void KeyIdPlaceholder(Request& r) {
  W().ReplaceKeyIds(r.mutable_key_id());
  if constexpr (HasMarker<Request>::value) W().ReplaceToken(r.mutable_marker());
}

// Authorization of a call on the key in key_id, as kms_service.cc does.
template <typename Request>
std::function<absl::Status(const KmsAccess&, const Access&, const Request&)> OnKey(
    const std::string& action) {
  return [action](const KmsAccess& guard, const Access& access, const Request& r) {
    return guard.Check(access, action, r.key_id());
  };
}
// ... and of one on no key.
template <typename Request>
std::function<absl::Status(const KmsAccess&, const Access&, const Request&)> OnNoKey(
    const std::string& action) {
  return [action](const KmsAccess& guard, const Access& access, const Request&) {
    return guard.Check(access, action, "");
  };
}

template <typename Request>
Effects Changes(const Request& r) {
  return Effects{{r.key_id()}, {}, false};
}
template <typename Request>
Effects NoEffects(const Request&) {
  return Effects();
}

// A call on one key (key_id) that changes it when `changes`.
template <typename Request, typename Response>
Method OnOneKey(const std::string& name, std::vector<Request> seeds, bool changes,
                std::function<absl::StatusOr<Response>(const Request&)> call,
                std::function<void(const Request&, const Response&, const Caller&)> check) {
  return Kms<Request, Response>(
      name, std::move(seeds), KeyIdPlaceholder<Request>, OnKey<Request>("kms:" + name),
      changes ? Changes<Request> : NoEffects<Request>, std::move(call), std::move(check));
}

template <typename Request, typename Response>
void Nothing(const Request&, const Response&, const Caller&) {}

int DataKeyBytes(int number_of_bytes, kv1::DataKeySpec spec) {
  if (spec == kv1::DATA_KEY_SPEC_AES_256) return 32;
  if (spec == kv1::DATA_KEY_SPEC_AES_128) return 16;
  return number_of_bytes;
}

std::vector<Method> Methods() {
  std::vector<Method> m;

  kv1::CreateKeyRequest create;
  create.set_description("fuzz key");
  auto* tag = create.add_tags();
  tag->set_tag_key("team");
  tag->set_tag_value("fuzz");
  m.push_back(Kms<kv1::CreateKeyRequest, kv1::CreateKeyResponse>(
      "CreateKey", {create}, [](auto&) {}, OnNoKey<kv1::CreateKeyRequest>("kms:CreateKey"),
      NoEffects<kv1::CreateKeyRequest>, [](const auto& r) { return W().keys().CreateKey(r); },
      [](const auto& r, const auto& out, const Caller&) {
        const kv1::KeyMetadata& md = out.key_metadata();
        CheckMetadata(md);
        FUZZ_CHECK(md.key_state() == kv1::KEY_STATE_ENABLED &&
                       md.key_manager() == kv1::KEY_MANAGER_CUSTOMER &&
                       md.current_key_material_version() == 1 &&
                       md.description() == r.description(),
                   "a new customer key, enabled, at version 1");
        kv1::KeyMetadata again;
        FUZZ_CHECK(DescribeKey(md.key_id(), &again) != nullptr, "a new key can be described");
      }));

  kv1::DescribeKeyRequest describe;
  describe.set_key_id("alias/fz/one");
  kv1::DescribeKeyRequest describe_arn;
  describe_arn.set_key_id(absl::StrCat(kKeyArnPrefix, "#k2"));
  m.push_back(OnOneKey<kv1::DescribeKeyRequest, kv1::DescribeKeyResponse>(
      "DescribeKey", {describe, describe_arn}, false,
      [](const auto& r) { return W().keys().DescribeKey(r); },
      [](const auto&, const auto& out, const Caller&) { CheckMetadata(out.key_metadata()); }));

  kv1::ListKeysRequest list_keys;
  list_keys.set_limit(2);
  kv1::ListKeysRequest list_keys_next = list_keys;
  list_keys_next.set_marker("#next");
  m.push_back(Kms<kv1::ListKeysRequest, kv1::ListKeysResponse>(
      "ListKeys", {list_keys, list_keys_next},
      [](auto& r) { W().ReplaceToken(r.mutable_marker()); },
      OnNoKey<kv1::ListKeysRequest>("kms:ListKeys"), NoEffects<kv1::ListKeysRequest>,
      [](const auto& r) { return W().keys().ListKeys(r); },
      [](const auto& r, const auto& out, const Caller&) {
        CheckPage(out, out.keys_size(), r.limit() == 0 ? 100 : r.limit());
        for (int i = 0; i < out.keys_size(); ++i) {
          FUZZ_CHECK(out.keys(i).key_arn() == kKeyArnPrefix + out.keys(i).key_id(), "key ARN");
          if (i > 0) FUZZ_CHECK(out.keys(i - 1).key_id() < out.keys(i).key_id(), "key id order");
        }
      }));

  kv1::UpdateKeyDescriptionRequest update;
  update.set_key_id("#k0");
  update.set_description("updated");
  m.push_back(OnOneKey<kv1::UpdateKeyDescriptionRequest, kv1::UpdateKeyDescriptionResponse>(
      "UpdateKeyDescription", {update}, true,
      [](const auto& r) { return W().keys().UpdateKeyDescription(r); },
      [](const auto& r, const auto&, const Caller&) {
        kv1::KeyMetadata md;
        FUZZ_CHECK(DescribeKey(r.key_id(), &md) && md.description() == r.description(),
                   "the description just set");
      }));

  kv1::EnableKeyRequest enable;
  enable.set_key_id("alias/fz/disabled");
  m.push_back(OnOneKey<kv1::EnableKeyRequest, kv1::EnableKeyResponse>(
      "EnableKey", {enable}, true, [](const auto& r) { return W().keys().EnableKey(r); },
      [](const auto& r, const auto&, const Caller&) {
        kv1::KeyMetadata md;
        FUZZ_CHECK(DescribeKey(r.key_id(), &md) && md.key_state() == kv1::KEY_STATE_ENABLED,
                   "an enabled key is enabled");
      }));

  kv1::DisableKeyRequest disable;
  disable.set_key_id("#k0");
  m.push_back(OnOneKey<kv1::DisableKeyRequest, kv1::DisableKeyResponse>(
      "DisableKey", {disable}, true, [](const auto& r) { return W().keys().DisableKey(r); },
      [](const auto& r, const auto&, const Caller&) {
        kv1::KeyMetadata md;
        FUZZ_CHECK(DescribeKey(r.key_id(), &md) && md.key_state() == kv1::KEY_STATE_DISABLED,
                   "a disabled key is disabled");
      }));

  kv1::ScheduleKeyDeletionRequest schedule;
  schedule.set_key_id("alias/fz/one");
  schedule.set_pending_window_in_days(7);
  m.push_back(OnOneKey<kv1::ScheduleKeyDeletionRequest, kv1::ScheduleKeyDeletionResponse>(
      "ScheduleKeyDeletion", {schedule}, true,
      [](const auto& r) { return W().keys().ScheduleKeyDeletion(r); },
      [](const auto& r, const auto& out, const Caller&) {
        const int days = r.pending_window_in_days() == 0 ? 30 : r.pending_window_in_days();
        FUZZ_CHECK(out.pending_window_in_days() == days &&
                       out.key_state() == kv1::KEY_STATE_PENDING_DELETION,
                   "the window asked for");
        kv1::KeyMetadata md;
        FUZZ_CHECK(DescribeKey(r.key_id(), &md) &&
                       md.key_state() == kv1::KEY_STATE_PENDING_DELETION &&
                       md.arn() == out.key_id() &&
                       md.deletion_date().seconds() == out.deletion_date().seconds(),
                   "a key scheduled for deletion is pending deletion at the date answered");
      }));

  kv1::CancelKeyDeletionRequest cancel;
  cancel.set_key_id("alias/fz/doomed");
  m.push_back(OnOneKey<kv1::CancelKeyDeletionRequest, kv1::CancelKeyDeletionResponse>(
      "CancelKeyDeletion", {cancel}, true,
      [](const auto& r) { return W().keys().CancelKeyDeletion(r); },
      [](const auto& r, const auto&, const Caller&) {
        kv1::KeyMetadata md;
        FUZZ_CHECK(DescribeKey(r.key_id(), &md) && md.key_state() == kv1::KEY_STATE_DISABLED,
                   "a key whose deletion is cancelled is disabled");
      }));

  kv1::EnableKeyRotationRequest enable_rotation;
  enable_rotation.set_key_id("#k0");
  enable_rotation.set_rotation_period_in_days(100);
  m.push_back(OnOneKey<kv1::EnableKeyRotationRequest, kv1::EnableKeyRotationResponse>(
      "EnableKeyRotation", {enable_rotation}, true,
      [](const auto& r) { return W().keys().EnableKeyRotation(r); },
      [](const auto& r, const auto&, const Caller&) {
        kv1::GetKeyRotationStatusRequest request;
        request.set_key_id(r.key_id());
        auto status = W().keys().GetKeyRotationStatus(request);
        const int days = r.rotation_period_in_days() == 0 ? 365 : r.rotation_period_in_days();
        FUZZ_CHECK(Followed(status, "GetKeyRotationStatus (follow-up)") &&
                       status->key_rotation_enabled() && status->rotation_period_in_days() == days,
                   "rotation is on with the period asked for");
      }));

  kv1::DisableKeyRotationRequest disable_rotation;
  disable_rotation.set_key_id("alias/fz/one");
  m.push_back(OnOneKey<kv1::DisableKeyRotationRequest, kv1::DisableKeyRotationResponse>(
      "DisableKeyRotation", {disable_rotation}, true,
      [](const auto& r) { return W().keys().DisableKeyRotation(r); },
      [](const auto& r, const auto&, const Caller&) {
        kv1::GetKeyRotationStatusRequest request;
        request.set_key_id(r.key_id());
        auto status = W().keys().GetKeyRotationStatus(request);
        FUZZ_CHECK(
            Followed(status, "GetKeyRotationStatus (follow-up)") && !status->key_rotation_enabled(),
            "rotation is off");
      }));

  kv1::GetKeyRotationStatusRequest rotation_status;
  rotation_status.set_key_id("alias/coffer/fz");
  m.push_back(OnOneKey<kv1::GetKeyRotationStatusRequest, kv1::GetKeyRotationStatusResponse>(
      "GetKeyRotationStatus", {rotation_status}, false,
      [](const auto& r) { return W().keys().GetKeyRotationStatus(r); },
      [](const auto&, const auto& out, const Caller&) {
        FUZZ_CHECK(absl::StartsWith(out.key_id(), kKeyArnPrefix), "the key's ARN");
        if (out.key_rotation_enabled()) {
          FUZZ_CHECK(out.rotation_period_in_days() >= 90 && out.rotation_period_in_days() <= 2560 &&
                         out.has_next_rotation_date(),
                     "a rotation period and a next date");
        }
      }));

  kv1::RotateKeyOnDemandRequest rotate;
  rotate.set_key_id("alias/fz/one");
  m.push_back(OnOneKey<kv1::RotateKeyOnDemandRequest, kv1::RotateKeyOnDemandResponse>(
      "RotateKeyOnDemand", {rotate}, true,
      [](const auto& r) { return W().keys().RotateKeyOnDemand(r); },
      [](const auto& r, const auto& out, const Caller&) {
        kv1::KeyMetadata md;
        FUZZ_CHECK(DescribeKey(r.key_id(), &md) && md.arn() == out.key_id() &&
                       md.current_key_material_version() == out.key_material_version() &&
                       out.key_material_version() >= 2,
                   "the new material version is current");
      }));

  kv1::ListKeyRotationsRequest rotations;
  rotations.set_key_id("#k0");
  rotations.set_limit(1);
  m.push_back(OnOneKey<kv1::ListKeyRotationsRequest, kv1::ListKeyRotationsResponse>(
      "ListKeyRotations", {rotations}, false,
      [](const auto& r) { return W().keys().ListKeyRotations(r); },
      [](const auto& r, const auto& out, const Caller&) {
        CheckPage(out, out.rotations_size(), r.limit() == 0 ? 100 : r.limit());
        for (int i = 1; i < out.rotations_size(); ++i) {
          FUZZ_CHECK(
              out.rotations(i - 1).key_material_version() < out.rotations(i).key_material_version(),
              "rotations oldest first");
        }
      }));

  // Alias changes name two things: the alias and the key it points at.
  auto alias_authorize = [](const std::string& action) {
    return [action](const KmsAccess& guard, const Access& access, const auto& r) {
      absl::Status on_alias = guard.Check(access, action, r.alias_name());
      if (!on_alias.ok()) return on_alias;
      return guard.Check(access, action, r.target_key_id());
    };
  };
  auto alias_check = [](const auto& r, const auto&, const Caller&) {
    kv1::KeyMetadata by_alias, by_target;
    FUZZ_CHECK(DescribeKey(r.alias_name(), &by_alias) &&
                   DescribeKey(r.target_key_id(), &by_target) &&
                   by_alias.key_id() == by_target.key_id(),
               "the alias names its target");
  };
  kv1::CreateAliasRequest create_alias;
  create_alias.set_alias_name("alias/fz/two");
  create_alias.set_target_key_id("#k0");
  m.push_back(Kms<kv1::CreateAliasRequest, kv1::CreateAliasResponse>(
      "CreateAlias", {create_alias}, [](auto& r) { W().ReplaceKeyIds(r.mutable_target_key_id()); },
      alias_authorize("kms:CreateAlias"),
      [](const auto& r) {
        return Effects{{r.alias_name(), r.target_key_id()}, {}, false};
      },
      [](const auto& r) { return W().keys().CreateAlias(r); }, alias_check));

  kv1::UpdateAliasRequest update_alias;
  update_alias.set_alias_name("alias/fz/one");
  update_alias.set_target_key_id(absl::StrCat(kKeyArnPrefix, "#k1"));
  m.push_back(Kms<kv1::UpdateAliasRequest, kv1::UpdateAliasResponse>(
      "UpdateAlias", {update_alias}, [](auto& r) { W().ReplaceKeyIds(r.mutable_target_key_id()); },
      alias_authorize("kms:UpdateAlias"),
      [](const auto& r) {
        return Effects{{r.alias_name(), r.target_key_id()}, {}, false};
      },
      [](const auto& r) { return W().keys().UpdateAlias(r); }, alias_check));

  kv1::DeleteAliasRequest delete_alias;
  delete_alias.set_alias_name("alias/fz/disabled");
  m.push_back(Kms<kv1::DeleteAliasRequest, kv1::DeleteAliasResponse>(
      "DeleteAlias", {delete_alias}, [](auto&) {},
      [](const KmsAccess& guard, const Access& access, const auto& r) {
        return guard.Check(access, "kms:DeleteAlias", r.alias_name());
      },
      [](const auto& r) {
        return Effects{{r.alias_name()}, {}, false};
      },
      [](const auto& r) { return W().keys().DeleteAlias(r); },
      [](const auto& r, const auto&, const Caller&) {
        kv1::DescribeKeyRequest request;
        request.set_key_id(r.alias_name());
        auto described = W().keys().DescribeKey(request);
        CheckAnswer(described.status(), {"trusted"}, "DescribeKey (follow-up)");
        FUZZ_CHECK(absl::IsNotFound(described.status()), "a deleted alias names nothing");
      }));

  kv1::ListAliasesRequest list_aliases;
  list_aliases.set_limit(2);
  kv1::ListAliasesRequest list_aliases_of;
  list_aliases_of.set_key_id("#k0");
  kv1::ListAliasesRequest list_aliases_next = list_aliases;
  list_aliases_next.set_marker("#next");
  m.push_back(OnOneKey<kv1::ListAliasesRequest, kv1::ListAliasesResponse>(
      "ListAliases", {list_aliases, list_aliases_of, list_aliases_next}, false,
      [](const auto& r) { return W().keys().ListAliases(r); },
      [](const auto& r, const auto& out, const Caller&) {
        CheckPage(out, out.aliases_size(), r.limit() == 0 ? 50 : r.limit());
        std::string only;
        kv1::KeyMetadata md;
        if (!r.key_id().empty() && DescribeKey(r.key_id(), &md)) only = md.key_id();
        for (int i = 0; i < out.aliases_size(); ++i) {
          const auto& a = out.aliases(i);
          FUZZ_CHECK(absl::StartsWith(a.alias_name(), "alias/") &&
                         absl::EndsWith(a.alias_arn(), ":" + a.alias_name()),
                     "an alias and its ARN");
          if (i > 0) FUZZ_CHECK(out.aliases(i - 1).alias_name() < a.alias_name(), "name order");
          if (!r.key_id().empty()) FUZZ_CHECK(a.target_key_id() == only, "only the key's aliases");
        }
      }));

  kv1::EncryptRequest encrypt;
  encrypt.set_key_id("alias/fz/one");
  encrypt.set_plaintext("hello");
  (*encrypt.mutable_encryption_context())["purpose"] = "fuzz";
  kv1::EncryptRequest encrypt_builtin;
  encrypt_builtin.set_key_id("alias/coffer/new");
  encrypt_builtin.set_plaintext("hello");
  (*encrypt_builtin.mutable_encryption_context())["SecretARN"] = "arn:x";
  m.push_back(Kms<kv1::EncryptRequest, kv1::EncryptResponse>(
      "Encrypt", {encrypt, encrypt_builtin}, KeyIdPlaceholder<kv1::EncryptRequest>,
      [](const KmsAccess& guard, const Access& access, const auto& r) {
        return guard.Check(access, "kms:Encrypt", r.key_id(), &r.encryption_context());
      },
      [](const auto& r) {
        return Effects{{}, {&r.encryption_context()}, true};
      },
      [](const auto& r) { return W().keys().Encrypt(r); },
      [](const auto& r, const auto& out, const Caller&) {
        FUZZ_CHECK(out.encryption_algorithm() == "SYMMETRIC_DEFAULT", "the algorithm");
        CheckDecrypts(out.ciphertext_blob(), r.encryption_context(), out.key_id(), r.plaintext());
      }));

  kv1::DecryptRequest decrypt;
  decrypt.set_ciphertext_blob("#c0");
  (*decrypt.mutable_encryption_context())["purpose"] = "fuzz";
  kv1::DecryptRequest decrypt_key;
  decrypt_key.set_ciphertext_blob("#c1");
  decrypt_key.set_key_id("alias/fz/one");
  m.push_back(Kms<kv1::DecryptRequest, kv1::DecryptResponse>(
      "Decrypt", {decrypt, decrypt_key},
      [](auto& r) {
        W().ReplaceKeyIds(r.mutable_key_id());
        W().ReplaceCiphertext(r.mutable_ciphertext_blob());
      },
      [](const KmsAccess& guard, const Access& access, const auto& r) {
        return guard.Check(access, "kms:Decrypt",
                           KmsAccess::KeyOfCiphertext(r.key_id(), r.ciphertext_blob()),
                           &r.encryption_context());
      },
      [](const auto& r) {
        return Effects{{}, {&r.encryption_context()}, false};
      },
      [](const auto& r) { return W().keys().Decrypt(r); },
      [](const auto& r, const auto& out, const Caller&) {
        FUZZ_CHECK(absl::StartsWith(out.key_id(), kKeyArnPrefix), "the key's ARN");
        if (!r.key_id().empty()) {
          kv1::KeyMetadata md;
          FUZZ_CHECK(DescribeKey(r.key_id(), &md) && md.arn() == out.key_id(),
                     "decrypted under the key named");
        }
      }));

  kv1::ReEncryptRequest reencrypt;
  reencrypt.set_ciphertext_blob("#c0");
  (*reencrypt.mutable_source_encryption_context())["purpose"] = "fuzz";
  reencrypt.set_destination_key_id("alias/coffer/fz");
  (*reencrypt.mutable_destination_encryption_context())["purpose"] = "moved";
  m.push_back(Kms<kv1::ReEncryptRequest, kv1::ReEncryptResponse>(
      "ReEncrypt", {reencrypt},
      [](auto& r) {
        W().ReplaceKeyIds(r.mutable_source_key_id());
        W().ReplaceKeyIds(r.mutable_destination_key_id());
        W().ReplaceCiphertext(r.mutable_ciphertext_blob());
      },
      [](const KmsAccess& guard, const Access& access, const auto& r) {
        absl::Status from =
            guard.Check(access, "kms:ReEncryptFrom",
                        KmsAccess::KeyOfCiphertext(r.source_key_id(), r.ciphertext_blob()),
                        &r.source_encryption_context());
        if (!from.ok()) return from;
        return guard.Check(access, "kms:ReEncryptTo", r.destination_key_id(),
                           &r.destination_encryption_context());
      },
      [](const auto& r) {
        return Effects{
            {}, {&r.source_encryption_context(), &r.destination_encryption_context()}, true};
      },
      [](const auto& r) { return W().keys().ReEncrypt(r); },
      [](const auto& r, const auto& out, const Caller&) {
        kv1::DecryptRequest source;
        source.set_ciphertext_blob(r.ciphertext_blob());
        *source.mutable_encryption_context() = r.source_encryption_context();
        auto plain = W().keys().Decrypt(source);
        FUZZ_CHECK(Followed(plain, "Decrypt (follow-up)") && plain->key_id() == out.source_key_id(),
                   "the source still decrypts under the source key");
        CheckDecrypts(out.ciphertext_blob(), r.destination_encryption_context(), out.key_id(),
                      plain->plaintext());
      }));

  kv1::GenerateDataKeyRequest data_key;
  data_key.set_key_id("alias/fz/one");
  (*data_key.mutable_encryption_context())["purpose"] = "fuzz";
  data_key.set_key_spec(kv1::DATA_KEY_SPEC_AES_256);
  kv1::GenerateDataKeyRequest data_key_bytes;
  data_key_bytes.set_key_id("alias/coffer/fz");
  data_key_bytes.set_number_of_bytes(7);
  m.push_back(Kms<kv1::GenerateDataKeyRequest, kv1::GenerateDataKeyResponse>(
      "GenerateDataKey", {data_key, data_key_bytes}, KeyIdPlaceholder<kv1::GenerateDataKeyRequest>,
      [](const KmsAccess& guard, const Access& access, const auto& r) {
        return guard.Check(access, "kms:GenerateDataKey", r.key_id(), &r.encryption_context());
      },
      [](const auto& r) {
        return Effects{{}, {&r.encryption_context()}, true};
      },
      [](const auto& r) { return W().keys().GenerateDataKey(r); },
      [](const auto& r, const auto& out, const Caller&) {
        FUZZ_CHECK(static_cast<int>(out.plaintext().size()) ==
                       DataKeyBytes(r.number_of_bytes(), r.key_spec()),
                   "a data key of the size asked for");
        CheckDecrypts(out.ciphertext_blob(), r.encryption_context(), out.key_id(), out.plaintext());
      }));

  kv1::GenerateDataKeyWithoutPlaintextRequest data_key_only;
  data_key_only.ParseFromString(data_key.SerializeAsString());
  m.push_back(Kms<kv1::GenerateDataKeyWithoutPlaintextRequest,
                  kv1::GenerateDataKeyWithoutPlaintextResponse>(
      "GenerateDataKeyWithoutPlaintext", {data_key_only},
      KeyIdPlaceholder<kv1::GenerateDataKeyWithoutPlaintextRequest>,
      [](const KmsAccess& guard, const Access& access, const auto& r) {
        return guard.Check(access, "kms:GenerateDataKeyWithoutPlaintext", r.key_id(),
                           &r.encryption_context());
      },
      [](const auto& r) {
        return Effects{{}, {&r.encryption_context()}, true};
      },
      [](const auto& r) { return W().keys().GenerateDataKeyWithoutPlaintext(r); },
      [](const auto& r, const auto& out, const Caller&) {
        kv1::DecryptRequest request;
        request.set_ciphertext_blob(out.ciphertext_blob());
        *request.mutable_encryption_context() = r.encryption_context();
        auto plain = W().keys().Decrypt(request);
        FUZZ_CHECK(Followed(plain, "Decrypt (follow-up)") && plain->key_id() == out.key_id() &&
                       static_cast<int>(plain->plaintext().size()) ==
                           DataKeyBytes(r.number_of_bytes(), r.key_spec()),
                   "the data key decrypts to the size asked for");
      }));

  kv1::GenerateRandomRequest random;
  random.set_number_of_bytes(16);
  m.push_back(Kms<kv1::GenerateRandomRequest, kv1::GenerateRandomResponse>(
      "GenerateRandom", {random}, [](auto&) {},
      OnNoKey<kv1::GenerateRandomRequest>("kms:GenerateRandom"),
      NoEffects<kv1::GenerateRandomRequest>,
      [](const auto& r) { return W().keys().GenerateRandom(r); },
      [](const auto& r, const auto& out, const Caller&) {
        FUZZ_CHECK(static_cast<int>(out.plaintext().size()) == r.number_of_bytes(),
                   "random bytes of the number asked for");
      }));

  kv1::TagResourceRequest tag_key;
  tag_key.set_key_id("alias/fz/one");
  auto* new_tag = tag_key.add_tags();
  new_tag->set_tag_key("env");
  new_tag->set_tag_value("fuzz");
  auto list_tags = [](const std::string& ref) {
    kv1::ListResourceTagsRequest request;
    request.set_key_id(ref);
    auto listed = W().keys().ListResourceTags(request);
    FUZZ_CHECK(Followed(listed, "ListResourceTags (follow-up)") != nullptr, "tags list");
    std::map<std::string, std::string> tags;
    for (const auto& t : listed->tags()) tags[t.tag_key()] = t.tag_value();
    return tags;
  };
  m.push_back(OnOneKey<kv1::TagResourceRequest, kv1::TagResourceResponse>(
      "TagResource", {tag_key}, true, [](const auto& r) { return W().keys().TagResource(r); },
      [list_tags](const auto& r, const auto&, const Caller&) {
        std::map<std::string, std::string> wanted;
        for (const auto& t : r.tags()) wanted[t.tag_key()] = t.tag_value();
        auto tags = list_tags(r.key_id());
        for (const auto& [k, v] : wanted) {
          FUZZ_CHECK(tags.count(k) == 1 && tags[k] == v, "a tag just set is there");
        }
      }));

  kv1::UntagResourceRequest untag;
  untag.set_key_id("#k0");
  untag.add_tag_keys("team");
  m.push_back(OnOneKey<kv1::UntagResourceRequest, kv1::UntagResourceResponse>(
      "UntagResource", {untag}, true, [](const auto& r) { return W().keys().UntagResource(r); },
      [list_tags](const auto& r, const auto&, const Caller&) {
        auto tags = list_tags(r.key_id());
        for (const auto& k : r.tag_keys()) FUZZ_CHECK(tags.count(k) == 0, "a removed tag is gone");
      }));

  kv1::ListResourceTagsRequest tags;
  tags.set_key_id("alias/fz/one");
  tags.set_limit(1);
  m.push_back(OnOneKey<kv1::ListResourceTagsRequest, kv1::ListResourceTagsResponse>(
      "ListResourceTags", {tags}, false,
      [](const auto& r) { return W().keys().ListResourceTags(r); },
      [](const auto& r, const auto& out, const Caller&) {
        CheckPage(out, out.tags_size(), r.limit() == 0 ? 50 : r.limit());
        for (int i = 1; i < out.tags_size(); ++i) {
          FUZZ_CHECK(out.tags(i - 1).tag_key() < out.tags(i).tag_key(), "tags in key order");
        }
      }));

  // Time passes (at most 40 days), then the sweepers run: due deletions and
  // automatic rotations.
  google::protobuf::Duration a_week;
  a_week.set_seconds(8 * 86400);
  m.push_back(MakeMethod<google::protobuf::Duration>(
      "Sweep", {a_week}, [](google::protobuf::Duration& d, const Caller&) {
        W().Sweep(absl::Seconds(std::clamp<int64_t>(d.seconds(), 0, 40 * 86400)));
      }));
  return m;
}

const std::vector<Method>& TheMethods() {
  static const auto* const methods = new std::vector<Method>(Methods());
  return *methods;
}

const std::vector<Caller>& TheCallers() {
  static const auto* const callers = [] {
    ApiWorld& w = W();
    return new std::vector<Caller>{
        {"trusted", Caller::kTrusted, &coffer::authz::Access::Trusted()},
        {"store", Caller::kPrincipal, &w.store()},
        {"app", Caller::kPrincipal, &w.app()},
        {"outsider", Caller::kOutsider, &w.outsider()},
        {"store-inline", Caller::kPrincipal, &w.store(), false, false, /*inline_first=*/true},
    };
  }();
  return *callers;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  coffer::fuzz::Initialize(argc, argv, TheMethods(), TheCallers());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return coffer::fuzz::RunInput(TheMethods(), TheCallers(), data, size);
}
