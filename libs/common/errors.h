// errors.h: Coffer's error model.
//
// Every error a service returns carries a stable machine-readable reason, the
// AWS exception name ("ResourceNotFoundException", "DisabledException"...),
// plus the resource and the request field it is about. The reason decides the
// canonical status code through one table (ReasonCode below); libs/rpc turns
// the result into a gRPC status whose details hold a coffer.v1.ErrorInfo.
//
//   return coffer::Error(coffer::reason::kNotFound,
//                        absl::StrCat("Key '", id, "' does not exist"), id);
//   return coffer::InvalidField("plaintext", "must be 1-4096 bytes");
//
//   if (coffer::ErrorReason(status) == coffer::reason::kDisabled) ...
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace coffer {

namespace reason {
// Shared.
inline constexpr char kValidation[] = "ValidationException";
inline constexpr char kAccessDenied[] = "AccessDeniedException";
inline constexpr char kLimitExceeded[] = "LimitExceededException";
// Too many calls at once or too fast: retry with backoff (every AWS API's
// name for it, which SDKs retry).
inline constexpr char kThrottling[] = "ThrottlingException";
inline constexpr char kInternal[] = "InternalServiceError";
inline constexpr char kUnavailable[] = "ServiceUnavailableException";
// KMS.
inline constexpr char kNotFound[] = "NotFoundException";
inline constexpr char kAlreadyExists[] = "AlreadyExistsException";
inline constexpr char kDisabled[] = "DisabledException";
inline constexpr char kInvalidState[] = "KMSInvalidStateException";
inline constexpr char kInvalidCiphertext[] = "InvalidCiphertextException";
inline constexpr char kIncorrectKey[] = "IncorrectKeyException";
inline constexpr char kInvalidAliasName[] = "InvalidAliasNameException";
inline constexpr char kInvalidMarker[] = "InvalidMarkerException";
inline constexpr char kTag[] = "TagException";
inline constexpr char kKmsInternal[] = "KMSInternalException";
inline constexpr char kUnsupportedOperation[] = "UnsupportedOperationException";
// Secrets Manager.
inline constexpr char kResourceNotFound[] = "ResourceNotFoundException";
inline constexpr char kResourceExists[] = "ResourceExistsException";
inline constexpr char kInvalidParameter[] = "InvalidParameterException";
inline constexpr char kInvalidRequest[] = "InvalidRequestException";
inline constexpr char kInvalidNextToken[] = "InvalidNextTokenException";
inline constexpr char kPreconditionNotMet[] = "PreconditionNotMetException";
inline constexpr char kMalformedPolicyDocument[] = "MalformedPolicyDocumentException";
inline constexpr char kPublicPolicy[] = "PublicPolicyException";
inline constexpr char kEncryptionFailure[] = "EncryptionFailure";
inline constexpr char kDecryptionFailure[] = "DecryptionFailure";
// Parameter Store (the services/store/params/param_rules.h names).
inline constexpr char kParameterNotFound[] = "ParameterNotFound";
inline constexpr char kParameterVersionNotFound[] = "ParameterVersionNotFound";
inline constexpr char kParameterAlreadyExists[] = "ParameterAlreadyExists";
inline constexpr char kParameterMaxVersionLimitExceeded[] = "ParameterMaxVersionLimitExceeded";
inline constexpr char kParameterVersionLabelLimitExceeded[] = "ParameterVersionLabelLimitExceeded";
inline constexpr char kTooManyTagsError[] = "TooManyTagsError";
inline constexpr char kInternalServerError[] = "InternalServerError";
inline constexpr char kHierarchyLevelLimitExceeded[] = "HierarchyLevelLimitExceededException";
inline constexpr char kParameterPatternMismatch[] = "ParameterPatternMismatchException";
inline constexpr char kInvalidAllowedPattern[] = "InvalidAllowedPatternException";
inline constexpr char kInvalidPolicyType[] = "InvalidPolicyTypeException";
inline constexpr char kInvalidPolicyAttribute[] = "InvalidPolicyAttributeException";
inline constexpr char kIncompatiblePolicy[] = "IncompatiblePolicyException";
inline constexpr char kSsmInvalidNextToken[] = "InvalidNextToken";
inline constexpr char kInvalidFilterKey[] = "InvalidFilterKey";
inline constexpr char kInvalidFilterOption[] = "InvalidFilterOption";
inline constexpr char kInvalidFilterValue[] = "InvalidFilterValue";
inline constexpr char kUnsupportedParameterType[] = "UnsupportedParameterType";
inline constexpr char kInvalidKeyId[] = "InvalidKeyId";
inline constexpr char kInvalidResourceType[] = "InvalidResourceType";
inline constexpr char kInvalidResourceId[] = "InvalidResourceId";
// Access keys (IAM's names; SigV4's own are in libs/sigv4/sigv4_error.h).
inline constexpr char kNoSuchEntity[] = "NoSuchEntity";
inline constexpr char kIamLimitExceeded[] = "LimitExceeded";
}  // namespace reason

// The canonical code for a reason. Unknown reasons map to INTERNAL.
absl::StatusCode ReasonCode(absl::string_view reason);

// An error with `reason`, the code from ReasonCode, and optionally the
// resource and the request field it concerns.
absl::Status Error(absl::string_view reason, absl::string_view message,
                   absl::string_view resource = "", absl::string_view field = "");

// As Error, with an explicit code for reasons that have more than one
// (EncryptionFailure: UNAVAILABLE or FAILED_PRECONDITION...).
absl::Status ErrorWithCode(absl::StatusCode code, absl::string_view reason,
                           absl::string_view message, absl::string_view resource = "",
                           absl::string_view field = "");

// ValidationException (INVALID_ARGUMENT) naming the field:
// "<field>: <problem>".
absl::Status InvalidField(absl::string_view field, absl::string_view problem,
                          absl::string_view reason = reason::kValidation);

struct ErrorDetail {
  std::string reason;
  std::string resource;
  std::string field;
};

// The detail attached by Error(); nullopt for statuses made elsewhere.
std::optional<ErrorDetail> GetErrorDetail(const absl::Status& status);

// The reason of `status`, or "" when it has none (or is OK).
std::string ErrorReason(const absl::Status& status);

// Attaches a detail to any status (used when converting foreign statuses).
void SetErrorDetail(absl::Status& status, const ErrorDetail& detail);

// The type URL under which the detail is stored in the status payload and in
// gRPC status details.
inline constexpr char kErrorInfoTypeUrl[] = "type.googleapis.com/coffer.v1.ErrorInfo";

}  // namespace coffer
