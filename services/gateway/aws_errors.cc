// AwsErrorFromStatus and AwsErrorBody: Coffer's errors in each AWS
// service's vocabulary (aws_json.h has the tables in prose).

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/json.h"
#include "services/gateway/aws_json.h"
#include "services/gateway/aws_names.h"
#include "services/gateway/aws_shapes.h"

namespace coffer::gateway {
namespace {

struct ErrorName {
  const char* type;
  int http_status;
};

// Answered by every AWS JSON service whatever the operation: SigV4's four
// (libs/sigv4/sigv4_error.h), the protocol's own, and the generic server
// errors botocore retries (503, 500, RequestTimeoutException).
constexpr ErrorName kCommon[] = {
    {"AccessDeniedException", 400},
    {"ThrottlingException", 400},
    {"SerializationException", 400},
    {"UnknownOperationException", 400},
    {"MissingAuthenticationTokenException", 400},
    {"IncompleteSignatureException", 400},
    {"InvalidSignatureException", 400},
    {"UnrecognizedClientException", 400},
    {"ServiceUnavailable", 503},
    {"InternalFailure", 500},
    {"RequestTimeoutException", 504},
};

// Each service's own exception names (its botocore model) that Coffer can
// produce, with the models' server faults as 500 (503 for KMS's timeout).
constexpr ErrorName kSecrets[] = {
    {"DecryptionFailure", 400},           {"EncryptionFailure", 400},
    {"InternalServiceError", 500},        {"InvalidNextTokenException", 400},
    {"InvalidParameterException", 400},   {"InvalidRequestException", 400},
    {"LimitExceededException", 400},      {"MalformedPolicyDocumentException", 400},
    {"PreconditionNotMetException", 400}, {"PublicPolicyException", 400},
    {"ResourceExistsException", 400},     {"ResourceNotFoundException", 400},
};

constexpr ErrorName kParams[] = {
    {"ValidationException", 400},
    {"ParameterNotFound", 400},
    {"ParameterVersionNotFound", 400},
    {"ParameterAlreadyExists", 400},
    {"ParameterLimitExceeded", 400},
    {"ParameterMaxVersionLimitExceeded", 400},
    {"ParameterVersionLabelLimitExceeded", 400},
    {"ParameterPatternMismatchException", 400},
    {"HierarchyLevelLimitExceededException", 400},
    {"HierarchyTypeMismatchException", 400},
    {"InvalidAllowedPatternException", 400},
    {"InvalidPolicyTypeException", 400},
    {"InvalidPolicyAttributeException", 400},
    {"IncompatiblePolicyException", 400},
    {"PoliciesLimitExceededException", 400},
    {"UnsupportedParameterType", 400},
    {"InvalidKeyId", 400},
    {"InvalidNextToken", 400},
    {"InvalidFilterKey", 400},
    {"InvalidFilterOption", 400},
    {"InvalidFilterValue", 400},
    {"InvalidResourceType", 400},
    {"InvalidResourceId", 400},
    {"TooManyTagsError", 400},
    {"TooManyUpdates", 400},
    {"InternalServerError", 500},
};

constexpr ErrorName kKms[] = {
    {"ValidationException", 400},           {"NotFoundException", 400},
    {"AlreadyExistsException", 400},        {"DisabledException", 400},
    {"KMSInvalidStateException", 400},      {"InvalidCiphertextException", 400},
    {"IncorrectKeyException", 400},         {"InvalidAliasNameException", 400},
    {"InvalidArnException", 400},           {"InvalidMarkerException", 400},
    {"InvalidKeyUsageException", 400},      {"InvalidGrantTokenException", 400},
    {"LimitExceededException", 400},        {"TagException", 400},
    {"UnsupportedOperationException", 400}, {"MalformedPolicyDocumentException", 400},
    {"KMSInternalException", 500},          {"KeyUnavailableException", 500},
    {"DependencyTimeoutException", 503},
};

template <size_t N>
const ErrorName* Find(const ErrorName (&table)[N], absl::string_view type) {
  for (const ErrorName& e : table) {
    if (type == e.type) return &e;
  }
  return nullptr;
}

const ErrorName* FindForService(const AwsOperation* op, absl::string_view type) {
  if (const ErrorName* e = Find(kCommon, type)) return e;
  if (op == nullptr) return nullptr;
  switch (op->backend) {
    case Backend::kSecrets:
      return Find(kSecrets, type);
    case Backend::kParams:
      return Find(kParams, type);
    case Backend::kKms:
      return Find(kKms, type);
  }
  return nullptr;
}

// The type for a status whose reason this service's clients would not know.
const char* TypeForCode(const AwsOperation* op, absl::StatusCode code) {
  using C = absl::StatusCode;
  const std::optional<Backend> b =
      op == nullptr ? std::nullopt : std::optional<Backend>(op->backend);
  auto pick = [&](const char* secrets, const char* params, const char* kms,
                  const char* none) -> const char* {
    if (!b) return none;
    return *b == Backend::kSecrets ? secrets : *b == Backend::kParams ? params : kms;
  };
  switch (code) {
    case C::kInvalidArgument:
    case C::kOutOfRange:
      return pick("InvalidParameterException", "ValidationException", "ValidationException",
                  "ValidationException");
    case C::kNotFound:
      return pick("ResourceNotFoundException", "ParameterNotFound", "NotFoundException",
                  "UnknownOperationException");
    case C::kAlreadyExists:
      return pick("ResourceExistsException", "ParameterAlreadyExists", "AlreadyExistsException",
                  "ValidationException");
    case C::kFailedPrecondition:
      return pick("InvalidRequestException", "ValidationException", "KMSInvalidStateException",
                  "ValidationException");
    case C::kResourceExhausted:
      return pick("LimitExceededException", "ThrottlingException", "LimitExceededException",
                  "ThrottlingException");
    case C::kAborted:
      return pick("ThrottlingException", "TooManyUpdates", "ThrottlingException",
                  "ThrottlingException");
    case C::kPermissionDenied:
      return "AccessDeniedException";
    case C::kUnauthenticated:
      return "UnrecognizedClientException";
    case C::kUnimplemented:
      return "UnknownOperationException";
    case C::kUnavailable:
      return "ServiceUnavailable";
    case C::kDeadlineExceeded:
      return pick("RequestTimeoutException", "RequestTimeoutException",
                  "DependencyTimeoutException", "RequestTimeoutException");
    default:
      return pick("InternalServiceError", "InternalServerError", "KMSInternalException",
                  "InternalFailure");
  }
}

constexpr size_t kMaxMessage = 1024;

}  // namespace

AwsError AwsErrorFromStatus(const AwsOperation* op, const absl::Status& status) {
  const absl::StatusCode code =
      status.ok() ? absl::StatusCode::kInternal : status.code();  // OK is not an error
  std::string message =
      status.ok() ? "the call failed without an error" : std::string(status.message());

  std::optional<ErrorDetail> detail = GetErrorDetail(status);
  const ErrorName* known = detail ? FindForService(op, detail->reason) : nullptr;
  std::string type = known != nullptr ? known->type : TypeForCode(op, code);
  if (known == nullptr) known = FindForService(op, type);

  int http_status = known != nullptr ? known->http_status : 400;
  if (code == absl::StatusCode::kUnavailable) http_status = 503;  // retryable, whatever the reason

  // "secret_id: must be ..." -> "SecretId: must be ...".
  if (op != nullptr && detail && !detail->field.empty() &&
      absl::StartsWith(message, detail->field + ":")) {
    if (const google::protobuf::FieldDescriptor* f =
            op->method->input_type()->FindFieldByName(detail->field)) {
      std::string member = internal::MemberName(op->backend, f);
      if (!member.empty()) message.replace(0, detail->field.size(), member);
    }
  }
  if (message.size() > kMaxMessage) message.resize(kMaxMessage);
  return AwsError{http_status, std::move(type), std::move(message)};
}

std::string AwsErrorBody(const AwsError& error) {
  return absl::StrCat("{\"__type\":", JsonQuote(error.type),
                      ",\"message\":", JsonQuote(error.message), "}");
}

std::vector<std::string> AwsErrorTypes(Backend backend) {
  std::vector<std::string> out;
  auto add = [&](const auto& table) {
    for (const ErrorName& e : table) out.push_back(e.type);
  };
  switch (backend) {
    case Backend::kSecrets:
      add(kSecrets);
      break;
    case Backend::kParams:
      add(kParams);
      break;
    case Backend::kKms:
      add(kKms);
      break;
  }
  // And whatever TypeForCode names for this service.
  AwsOperation probe{"", "", backend, nullptr};
  for (int c = 1; c <= 16; ++c) {
    std::string t = TypeForCode(&probe, static_cast<absl::StatusCode>(c));
    if (Find(kCommon, t) == nullptr && std::find(out.begin(), out.end(), t) == out.end()) {
      out.push_back(t);
    }
  }
  return out;
}

std::vector<std::string> AwsCommonErrorTypes() {
  std::vector<std::string> out;
  for (const ErrorName& e : kCommon) out.push_back(e.type);
  return out;
}

}  // namespace coffer::gateway
