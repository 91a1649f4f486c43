// secret_names.h: names, ARNs and the field rules shared by every secrets
// operation (secrets-api.md). Pure functions; errors are
// InvalidParameterException (INVALID_ARGUMENT) naming the field.
//
//   ArnConfig arns;                                    // coffer / local / 000000000000
//   COFFER_RETURN_IF_ERROR(ValidateSecretName("name", "prod/db-password"));
//   std::string arn = SecretArn(arns, "prod/db-password", RandomAlnum(6));
//   // arn:coffer:secretsmanager:local:000000000000:secret:prod/db-password-a1B2c3
//
//   COFFER_ASSIGN_OR_RETURN(SecretRef ref, ParseSecretId(arns, "secret_id", secret_id));
//   for (const auto& c : ref.candidates) {   // try in order
//     record = lookup(c.name);
//     if (record && (c.required_arn.empty() || record->arn() == c.required_arn)) break;
//   }
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "google/protobuf/repeated_field.h"

namespace coffer::store {

struct ArnConfig {
  std::string partition = "coffer";
  std::string region = "local";
  std::string account = "000000000000";
};

inline constexpr size_t kMaxSecretNameLength = 512;
inline constexpr size_t kArnSuffixLength = 6;

// 1-512 characters of [A-Za-z0-9/_+=.@-].
absl::Status ValidateSecretName(absl::string_view field, absl::string_view name);

// "arn:<partition>:secretsmanager:<region>:<account>:secret:"
std::string SecretArnPrefix(const ArnConfig& config);
// SecretArnPrefix + name + "-" + suffix.
std::string SecretArn(const ArnConfig& config, absl::string_view name, absl::string_view suffix);

// A secret_id resolved into the names to look up, in order.
struct SecretRef {
  struct Candidate {
    std::string name;
    // When non-empty, the record found must have exactly this ARN.
    std::string required_arn;
  };
  std::vector<Candidate> candidates;
};

// Accepts a name, a full ARN (…:secret:<name>-<6 alnum>) or a partial ARN
// (…:secret:<name>). Text shaped like a full ARN is only that full ARN (a
// stale ARN never resolves to another secret). An ARN of another partition/region/account yields no
// candidates (the caller reports ResourceNotFoundException). Empty or
// over-long ids (> 2048) are InvalidParameterException.
absl::StatusOr<SecretRef> ParseSecretId(const ArnConfig& config, absl::string_view field,
                                        absl::string_view secret_id);

// client_request_token / version ids: 32-64 printable ASCII characters
// without spaces.
absl::Status ValidateVersionId(absl::string_view field, absl::string_view id);
// One staging label: 1-256 characters.
absl::Status ValidateStage(absl::string_view field, absl::string_view stage);
// 0-20 labels, each valid, no duplicates. (1-20 when `required`.)
absl::Status ValidateStages(absl::string_view field,
                            const google::protobuf::RepeatedPtrField<std::string>& stages,
                            bool required);
// 0-2048 characters.
absl::Status ValidateDescription(absl::string_view field, absl::string_view description);
// Tag keys 1-128 (not starting with "aws:"), values 0-256, unique keys, at
// most `max` tags.
absl::Status ValidateTags(absl::string_view field,
                          const google::protobuf::RepeatedPtrField<secrets::v1::Tag>& tags,
                          int max = 50);
// 1-50 keys, each 1-128 characters.
absl::Status ValidateTagKeys(absl::string_view field,
                             const google::protobuf::RepeatedPtrField<std::string>& keys);
// A value: at most 65,536 bytes. `both_set` / `none_set` checks are the
// caller's (the fields differ per operation).
absl::Status ValidateValueSize(absl::string_view field, size_t size);

}  // namespace coffer::store
