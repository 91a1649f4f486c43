#include "services/kms/kms_access.h"

#include "absl/strings/match.h"
#include "libs/common/errors.h"
#include "services/kms/access_keys.h"
#include "services/kms/ciphertext.h"

namespace coffer::kms {
namespace {

// Encryption-context keys that name a secret version or a parameter (AWS's
// own names, as Secrets Manager and Parameter Store use them).
bool NamesStoredValue(const KmsAccess::ProtoContext& context) {
  return context.count("SecretARN") != 0 || context.count("SecretVersionId") != 0 ||
         context.count("PARAMETER_ARN") != 0;
}

// Operations that change a key's state or metadata: refused on built-in keys.
bool ChangesKey(absl::string_view action) {
  static const char* const kChanges[] = {"kms:DisableKey",          "kms:EnableKey",
                                         "kms:RotateKeyOnDemand",   "kms:EnableKeyRotation",
                                         "kms:DisableKeyRotation",  "kms:TagResource",
                                         "kms:UntagResource",       "kms:UpdateKeyDescription",
                                         "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
                                         "kms:CreateAlias",         "kms:UpdateAlias",
                                         "kms:DeleteAlias"};
  for (const char* a : kChanges) {
    if (action == a) return true;
  }
  return false;
}

bool MayCreateBuiltin(absl::string_view action) {
  return action == "kms:Encrypt" || action == "kms:GenerateDataKey" ||
         action == "kms:GenerateDataKeyWithoutPlaintext" || action == "kms:ReEncryptTo";
}

}  // namespace

std::string KmsAccess::KeyOfCiphertext(const std::string& key_id, absl::string_view blob) {
  if (!key_id.empty()) return key_id;
  auto parsed = ParseCiphertext(blob);
  return parsed.ok() ? parsed->key_id : "";
}

absl::Status KmsAccess::Check(const authz::Access& access, absl::string_view action,
                              absl::string_view key_ref, const ProtoContext* context) const {
  const bool store = !access.trusted() && !options_.store_spiffe_id.empty() &&
                     access.principal() == options_.store_spiffe_id;
  if (context != nullptr && NamesStoredValue(*context) && !access.trusted() && !store) {
    return authz::AccessDenied(access.principal(), action, key_ref.empty() ? "*" : key_ref,
                               "only coffer-store may use a secret's or parameter's encryption "
                               "context");
  }
  if (context != nullptr && context->count(kAccessKeyContextKey) != 0 && !access.trusted()) {
    return authz::AccessDenied(access.principal(), action, key_ref.empty() ? "*" : key_ref,
                               "access-key secrets are sealed and opened inside coffer-kms only");
  }
  KeyManager::KeyNames names;
  if (!key_ref.empty()) names = keys_->NamesOf(key_ref);
  if (names.coffer_managed && ChangesKey(action)) {
    return authz::AccessDenied(access.principal(), action, key_ref,
                               "built-in keys are managed by Coffer alone");
  }
  if (names.arn.empty() && absl::StartsWith(names.alias, "alias/coffer/") &&
      MayCreateBuiltin(action) && !access.trusted() && !store) {
    return authz::AccessDenied(access.principal(), action, key_ref,
                               "only the owning service may cause a built-in key's creation");
  }
  authz::Context ctx;
  if (context != nullptr) ctx.insert(context->begin(), context->end());
  const authz::Resource resource(key_ref.empty() ? absl::string_view("*") : key_ref, names.arn,
                                 names.alias);
  return access.Check(action, resource, context != nullptr ? &ctx : nullptr);
}

}  // namespace coffer::kms
