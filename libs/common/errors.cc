#include "libs/common/errors.h"

#include <cstdio>
#include <cstdlib>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "coffer/v1/error.pb.h"
#include "libs/common/status_macros.h"
#include "libs/common/utf8.h"

namespace coffer {
namespace internal {
void CheckFailed(const char* file, int line, const char* cond, const char* msg) {
  std::fprintf(stderr, "{\"level\":\"fatal\",\"message\":\"check failed: %s (%s) at %s:%d\"}\n",
               cond, msg, file, line);
  std::abort();
}
}  // namespace internal

absl::StatusCode ReasonCode(absl::string_view r) {
  using C = absl::StatusCode;
  static const auto* const kTable = new absl::flat_hash_map<std::string, C>{
      {reason::kValidation, C::kInvalidArgument},
      {reason::kAccessDenied, C::kPermissionDenied},
      {reason::kLimitExceeded, C::kResourceExhausted},
      {reason::kThrottling, C::kResourceExhausted},
      {reason::kInternal, C::kInternal},
      {reason::kUnavailable, C::kUnavailable},
      {reason::kNotFound, C::kNotFound},
      {reason::kAlreadyExists, C::kAlreadyExists},
      {reason::kDisabled, C::kFailedPrecondition},
      {reason::kInvalidState, C::kFailedPrecondition},
      {reason::kInvalidCiphertext, C::kInvalidArgument},
      {reason::kIncorrectKey, C::kInvalidArgument},
      {reason::kInvalidAliasName, C::kInvalidArgument},
      {reason::kInvalidMarker, C::kInvalidArgument},
      {reason::kTag, C::kInvalidArgument},
      {reason::kKmsInternal, C::kInternal},
      {reason::kUnsupportedOperation, C::kFailedPrecondition},
      {reason::kResourceNotFound, C::kNotFound},
      {reason::kResourceExists, C::kAlreadyExists},
      {reason::kInvalidParameter, C::kInvalidArgument},
      {reason::kInvalidRequest, C::kFailedPrecondition},
      {reason::kInvalidNextToken, C::kInvalidArgument},
      {reason::kPreconditionNotMet, C::kFailedPrecondition},
      {reason::kMalformedPolicyDocument, C::kInvalidArgument},
      {reason::kPublicPolicy, C::kInvalidArgument},
      {reason::kEncryptionFailure, C::kUnavailable},
      {reason::kDecryptionFailure, C::kDataLoss},
      {reason::kParameterNotFound, C::kNotFound},
      {reason::kParameterVersionNotFound, C::kNotFound},
      {reason::kParameterAlreadyExists, C::kAlreadyExists},
      {reason::kParameterMaxVersionLimitExceeded, C::kFailedPrecondition},
      {reason::kParameterVersionLabelLimitExceeded, C::kResourceExhausted},
      {reason::kTooManyTagsError, C::kResourceExhausted},
      {reason::kInternalServerError, C::kInternal},
      // The remaining SSM validation reasons are all INVALID_ARGUMENT.
      {reason::kHierarchyLevelLimitExceeded, C::kInvalidArgument},
      {reason::kParameterPatternMismatch, C::kInvalidArgument},
      {reason::kInvalidAllowedPattern, C::kInvalidArgument},
      {reason::kInvalidPolicyType, C::kInvalidArgument},
      {reason::kInvalidPolicyAttribute, C::kInvalidArgument},
      {reason::kIncompatiblePolicy, C::kInvalidArgument},
      {reason::kSsmInvalidNextToken, C::kInvalidArgument},
      {reason::kInvalidFilterKey, C::kInvalidArgument},
      {reason::kInvalidFilterOption, C::kInvalidArgument},
      {reason::kInvalidFilterValue, C::kInvalidArgument},
      {reason::kUnsupportedParameterType, C::kInvalidArgument},
      {reason::kInvalidKeyId, C::kInvalidArgument},
      {reason::kInvalidResourceType, C::kInvalidArgument},
      {reason::kInvalidResourceId, C::kInvalidArgument},
      {reason::kNoSuchEntity, C::kNotFound},
      {reason::kIamLimitExceeded, C::kResourceExhausted},
  };
  auto it = kTable->find(std::string(r));
  return it == kTable->end() ? C::kInternal : it->second;
}

absl::Status Error(absl::string_view reason, absl::string_view message, absl::string_view resource,
                   absl::string_view field) {
  return ErrorWithCode(ReasonCode(reason), reason, message, resource, field);
}

absl::Status ErrorWithCode(absl::StatusCode code, absl::string_view reason,
                           absl::string_view message, absl::string_view resource,
                           absl::string_view field) {
  COFFER_CHECK(code != absl::StatusCode::kOk, "an error needs a non-OK code");
  absl::Status status(code, message);
  SetErrorDetail(status,
                 ErrorDetail{std::string(reason), std::string(resource), std::string(field)});
  return status;
}

absl::Status InvalidField(absl::string_view field, absl::string_view problem,
                          absl::string_view reason) {
  return Error(reason, absl::StrCat(field, ": ", problem), "", field);
}

void SetErrorDetail(absl::Status& status, const ErrorDetail& detail) {
  coffer::v1::ErrorInfo info;
  // proto3 strings must be UTF-8, or the payload would not parse again.
  info.set_reason(ValidUtf8(detail.reason));
  info.set_resource(ValidUtf8(detail.resource));
  info.set_field(ValidUtf8(detail.field));
  status.SetPayload(kErrorInfoTypeUrl, absl::Cord(info.SerializeAsString()));
}

std::optional<ErrorDetail> GetErrorDetail(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorInfoTypeUrl);
  if (!payload.has_value()) return std::nullopt;
  coffer::v1::ErrorInfo info;
  if (!info.ParseFromString(std::string(*payload))) return std::nullopt;
  return ErrorDetail{info.reason(), info.resource(), info.field()};
}

std::string ErrorReason(const absl::Status& status) {
  auto detail = GetErrorDetail(status);
  return detail ? detail->reason : std::string();
}

}  // namespace coffer
