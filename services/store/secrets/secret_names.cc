#include "services/store/secrets/secret_names.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"
#include "libs/common/tags.h"

namespace coffer::store {

namespace {

constexpr size_t kMaxSecretIdLength = 2048;
constexpr size_t kMinVersionIdLength = 32;
constexpr size_t kMaxVersionIdLength = 64;
constexpr size_t kMaxStageLength = 256;
constexpr int kMaxStagesPerRequest = 20;
constexpr size_t kMaxDescriptionLength = 2048;
constexpr int kMaxTagKeysPerRequest = 50;
constexpr size_t kMaxValueBytes = 65536;

// Secrets Manager reports every tag problem as InvalidParameterException.
constexpr TagRules kSecretTagRules{50, reason::kInvalidParameter, reason::kInvalidParameter};

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return InvalidField(field, problem, reason::kInvalidParameter);
}

// Limits are in characters, as in AWS; strings arrive as UTF-8 (proto3
// guarantees it), so count code points, not bytes.
size_t CharCount(absl::string_view s) { return Utf8Length(s); }

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '+' ||
         c == '=' || c == '.' || c == '@' || c == '-';
}

// "<name>-<6 alphanumerics>" with a non-empty name.
bool HasArnSuffix(absl::string_view rest) {
  if (rest.size() <= kArnSuffixLength + 1) return false;
  if (rest[rest.size() - kArnSuffixLength - 1] != '-') return false;
  for (char c : rest.substr(rest.size() - kArnSuffixLength)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateSecretName(absl::string_view field, absl::string_view name) {
  if (name.empty()) return Invalid(field, "is required");
  if (name.size() > kMaxSecretNameLength) {
    return Invalid(field, absl::StrCat("must be at most ", kMaxSecretNameLength, " characters"));
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return Invalid(field, "may contain only ASCII letters, digits and /_+=.@-");
    }
  }
  return absl::OkStatus();
}

std::string SecretArnPrefix(const ArnConfig& config) {
  return absl::StrCat("arn:", config.partition, ":secretsmanager:", config.region, ":",
                      config.account, ":secret:");
}

std::string SecretArn(const ArnConfig& config, absl::string_view name, absl::string_view suffix) {
  return absl::StrCat(SecretArnPrefix(config), name, "-", suffix);
}

absl::StatusOr<SecretRef> ParseSecretId(const ArnConfig& config, absl::string_view field,
                                        absl::string_view secret_id) {
  if (secret_id.empty()) return Invalid(field, "is required");
  if (secret_id.size() > kMaxSecretIdLength) {
    return Invalid(field, absl::StrCat("must be at most ", kMaxSecretIdLength, " characters"));
  }
  SecretRef ref;
  // Names cannot contain ':', so anything starting with "arn:" is an ARN.
  if (!absl::StartsWith(secret_id, "arn:")) {
    ref.candidates.push_back({std::string(secret_id), ""});
    return ref;
  }
  const std::string prefix = SecretArnPrefix(config);
  if (!absl::StartsWith(secret_id, prefix)) return ref;  // another partition/region/account
  absl::string_view rest = secret_id.substr(prefix.size());
  if (rest.empty()) return ref;
  // Text shaped like a full ARN is only ever that full ARN: a stale ARN (its
  // secret deleted, or re-created with another suffix) must not resolve to a
  // secret that happens to be named "<name>-xxxxxx". As in AWS, a partial ARN
  // of a name ending in "-" and six letters or digits is read as a full ARN.
  if (HasArnSuffix(rest)) {
    ref.candidates.push_back(
        {std::string(rest.substr(0, rest.size() - kArnSuffixLength - 1)), std::string(secret_id)});
    return ref;
  }
  ref.candidates.push_back({std::string(rest), ""});
  return ref;
}

absl::Status ValidateVersionId(absl::string_view field, absl::string_view id) {
  if (id.size() < kMinVersionIdLength || id.size() > kMaxVersionIdLength) {
    return Invalid(field, absl::StrCat("must be ", kMinVersionIdLength, "-", kMaxVersionIdLength,
                                       " characters"));
  }
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return Invalid(field, "may contain only printable ASCII characters without spaces");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateStage(absl::string_view field, absl::string_view stage) {
  size_t n = CharCount(stage);
  if (n < 1 || n > kMaxStageLength) {
    return Invalid(field,
                   absl::StrCat("staging labels must be 1-", kMaxStageLength, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ValidateStages(absl::string_view field,
                            const google::protobuf::RepeatedPtrField<std::string>& stages,
                            bool required) {
  if (required && stages.empty()) return Invalid(field, "at least one staging label is required");
  if (stages.size() > kMaxStagesPerRequest) {
    return Invalid(field, absl::StrCat("at most ", kMaxStagesPerRequest, " staging labels"));
  }
  std::set<absl::string_view> seen;
  for (const std::string& stage : stages) {
    COFFER_RETURN_IF_ERROR(ValidateStage(field, stage));
    if (!seen.insert(stage).second) {
      return Invalid(field, absl::StrCat("duplicate staging label '", stage, "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateDescription(absl::string_view field, absl::string_view description) {
  if (CharCount(description) > kMaxDescriptionLength) {
    return Invalid(field, absl::StrCat("must be at most ", kMaxDescriptionLength, " characters"));
  }
  return absl::OkStatus();
}

namespace {}  // namespace

absl::Status ValidateTags(absl::string_view field,
                          const google::protobuf::RepeatedPtrField<secrets::v1::Tag>& tags,
                          int max) {
  TagRules rules = kSecretTagRules;
  rules.max_tags = max;
  return ::coffer::ValidateTags(field, TagViews(tags), rules);
}

absl::Status ValidateTagKeys(absl::string_view field,
                             const google::protobuf::RepeatedPtrField<std::string>& keys) {
  if (keys.empty() || keys.size() > kMaxTagKeysPerRequest) {
    return Invalid(field, absl::StrCat("must hold 1-", kMaxTagKeysPerRequest, " tag keys"));
  }
  for (const std::string& key : keys) {
    COFFER_RETURN_IF_ERROR(ValidateTagKey(field, key, kSecretTagRules));
  }
  return absl::OkStatus();
}

absl::Status ValidateValueSize(absl::string_view field, size_t size) {
  if (size > kMaxValueBytes) {
    return Invalid(field, absl::StrCat("must be at most ", kMaxValueBytes, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace coffer::store
