// Coffer's errors as each service's AWS errors: type, HTTP status, message.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/json.h"
#include "services/gateway/aws_json.h"
#include "services/gateway/aws_shapes.h"
#include "tests/services/gateway/gateway_test_util.h"

namespace coffer::gateway {
namespace {

using testing::Op;

const AwsOperation* Secrets() { return &Op("secretsmanager.GetSecretValue"); }
const AwsOperation* Params() { return &Op("AmazonSSM.GetParameter"); }
const AwsOperation* Kms() { return &Op("TrentService.Decrypt"); }

std::string Brief(const AwsError& e) { return absl::StrCat(e.http_status, " ", e.type); }

TEST(AwsErrorsTest, ReasonsTheServiceKnowsPassThrough) {
  AwsError e = AwsErrorFromStatus(
      Secrets(), Error(reason::kResourceNotFound, "Secrets Manager can't find prod/db", "prod/db"));
  EXPECT_EQ(Brief(e), "400 ResourceNotFoundException");
  EXPECT_EQ(e.message, "Secrets Manager can't find prod/db");

  EXPECT_EQ(Brief(AwsErrorFromStatus(Params(), Error(reason::kParameterNotFound, "m"))),
            "400 ParameterNotFound");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Params(), Error(reason::kParameterVersionNotFound, "m"))),
            "400 ParameterVersionNotFound");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), Error(reason::kNotFound, "m"))),
            "400 NotFoundException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), Error(reason::kInvalidCiphertext, "m"))),
            "400 InvalidCiphertextException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), Error(reason::kDisabled, "m"))),
            "400 DisabledException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), Error(reason::kInvalidState, "m"))),
            "400 KMSInvalidStateException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Secrets(), Error(reason::kDecryptionFailure, "m"))),
            "400 DecryptionFailure");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Secrets(), Error(reason::kInvalidRequest, "m"))),
            "400 InvalidRequestException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Params(), Error(reason::kTooManyTagsError, "m"))),
            "400 TooManyTagsError");
}

TEST(AwsErrorsTest, AccessDeniedAndThrottlingAre400) {
  for (const AwsOperation* op :
       {Secrets(), Params(), Kms(), static_cast<const AwsOperation*>(nullptr)}) {
    EXPECT_EQ(Brief(AwsErrorFromStatus(op, Error(reason::kAccessDenied, "no"))),
              "400 AccessDeniedException");
    EXPECT_EQ(Brief(AwsErrorFromStatus(op, absl::PermissionDeniedError("no"))),
              "400 AccessDeniedException");
    EXPECT_EQ(Brief(AwsErrorFromStatus(op, ErrorWithCode(absl::StatusCode::kResourceExhausted,
                                                         "ThrottlingException", "slow"))),
              "400 ThrottlingException");
  }
}

TEST(AwsErrorsTest, ValidationInEachServicesVocabulary) {
  absl::Status v = Error(reason::kValidation, "bad");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Secrets(), v)), "400 InvalidParameterException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Params(), v)), "400 ValidationException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), v)), "400 ValidationException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(nullptr, v)), "400 ValidationException");
  // The translator's own errors keep their type.
  absl::Status s = testing::ReadError("TrentService.Encrypt", R"({"Plaintext":1})");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), s)), "400 SerializationException");
}

TEST(AwsErrorsTest, ServerFaults) {
  EXPECT_EQ(Brief(AwsErrorFromStatus(Secrets(), Error(reason::kInternal, "boom"))),
            "500 InternalServiceError");
  // A reason of another service becomes this service's name for the code.
  EXPECT_EQ(Brief(AwsErrorFromStatus(Params(), Error(reason::kInternal, "boom"))),
            "500 InternalServerError");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), Error(reason::kInternal, "boom"))),
            "500 KMSInternalException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(nullptr, absl::InternalError("boom"))), "500 InternalFailure");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Secrets(), absl::UnknownError("?"))),
            "500 InternalServiceError");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), absl::DataLossError("?"))), "500 KMSInternalException");
  // An unknown reason (ReasonCode gives INTERNAL) is not passed on.
  EXPECT_EQ(Brief(AwsErrorFromStatus(Secrets(), Error("SomethingNew", "x"))),
            "500 InternalServiceError");
}

TEST(AwsErrorsTest, UnavailableIs503WhateverTheReason) {
  for (const AwsOperation* op :
       {Secrets(), Params(), Kms(), static_cast<const AwsOperation*>(nullptr)}) {
    EXPECT_EQ(Brief(AwsErrorFromStatus(op, absl::UnavailableError("down"))),
              "503 ServiceUnavailable");
    EXPECT_EQ(
        Brief(AwsErrorFromStatus(op, ErrorWithCode(absl::StatusCode::kUnavailable,
                                                   reason::kUnavailable, "audit log unavailable"))),
        "503 ServiceUnavailable");
  }
  // The KMS behind a secret is down: the type stays, the status says retry.
  EXPECT_EQ(Brief(AwsErrorFromStatus(
                Secrets(), ErrorWithCode(absl::StatusCode::kUnavailable, reason::kEncryptionFailure,
                                         "KMS unreachable"))),
            "503 EncryptionFailure");
  // EncryptionFailure for a disabled key is the caller's problem.
  EXPECT_EQ(Brief(AwsErrorFromStatus(Secrets(),
                                     ErrorWithCode(absl::StatusCode::kFailedPrecondition,
                                                   reason::kEncryptionFailure, "key disabled"))),
            "400 EncryptionFailure");
}

TEST(AwsErrorsTest, ByCodeWithoutAReason) {
  using C = absl::StatusCode;
  struct Case {
    C code;
    const char* secrets;
    const char* params;
    const char* kms;
    const char* none;
  };
  const Case cases[] = {
      {C::kInvalidArgument, "400 InvalidParameterException", "400 ValidationException",
       "400 ValidationException", "400 ValidationException"},
      {C::kOutOfRange, "400 InvalidParameterException", "400 ValidationException",
       "400 ValidationException", "400 ValidationException"},
      {C::kNotFound, "400 ResourceNotFoundException", "400 ParameterNotFound",
       "400 NotFoundException", "400 UnknownOperationException"},
      {C::kAlreadyExists, "400 ResourceExistsException", "400 ParameterAlreadyExists",
       "400 AlreadyExistsException", "400 ValidationException"},
      {C::kFailedPrecondition, "400 InvalidRequestException", "400 ValidationException",
       "400 KMSInvalidStateException", "400 ValidationException"},
      {C::kResourceExhausted, "400 LimitExceededException", "400 ThrottlingException",
       "400 LimitExceededException", "400 ThrottlingException"},
      {C::kAborted, "400 ThrottlingException", "400 TooManyUpdates", "400 ThrottlingException",
       "400 ThrottlingException"},
      {C::kUnauthenticated, "400 UnrecognizedClientException", "400 UnrecognizedClientException",
       "400 UnrecognizedClientException", "400 UnrecognizedClientException"},
      {C::kUnimplemented, "400 UnknownOperationException", "400 UnknownOperationException",
       "400 UnknownOperationException", "400 UnknownOperationException"},
      {C::kDeadlineExceeded, "504 RequestTimeoutException", "504 RequestTimeoutException",
       "503 DependencyTimeoutException", "504 RequestTimeoutException"},
      {C::kCancelled, "500 InternalServiceError", "500 InternalServerError",
       "500 KMSInternalException", "500 InternalFailure"},
  };
  for (const Case& c : cases) {
    absl::Status s(c.code, "m");
    EXPECT_EQ(Brief(AwsErrorFromStatus(Secrets(), s)), c.secrets) << s;
    EXPECT_EQ(Brief(AwsErrorFromStatus(Params(), s)), c.params) << s;
    EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), s)), c.kms) << s;
    EXPECT_EQ(Brief(AwsErrorFromStatus(nullptr, s)), c.none) << s;
  }
}

TEST(AwsErrorsTest, CallGateOverloadIsThrottlingForSsm) {
  absl::Status overloaded = ErrorWithCode(absl::StatusCode::kResourceExhausted,
                                          reason::kLimitExceeded, "too many calls in flight");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Secrets(), overloaded)), "400 LimitExceededException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), overloaded)), "400 LimitExceededException");
  EXPECT_EQ(Brief(AwsErrorFromStatus(Params(), overloaded)), "400 ThrottlingException");
}

TEST(AwsErrorsTest, SigV4FailuresPassThroughBeforeTheOperationIsKnown) {
  for (const char* type : {"MissingAuthenticationTokenException", "IncompleteSignatureException",
                           "InvalidSignatureException", "UnrecognizedClientException"}) {
    absl::Status s = ErrorWithCode(absl::StatusCode::kUnauthenticated, type, "signature");
    EXPECT_EQ(Brief(AwsErrorFromStatus(nullptr, s)), absl::StrCat("400 ", type));
    EXPECT_EQ(Brief(AwsErrorFromStatus(Kms(), s)), absl::StrCat("400 ", type));
  }
  // A service's own names need the service.
  EXPECT_EQ(Brief(AwsErrorFromStatus(nullptr, Error(reason::kResourceNotFound, "m"))),
            "400 UnknownOperationException");
}

TEST(AwsErrorsTest, ProtoFieldNamesBecomeMemberNames) {
  AwsError e = AwsErrorFromStatus(
      Secrets(), InvalidField("secret_id", "must be 1-2048 characters", reason::kInvalidParameter));
  EXPECT_EQ(e.message, "SecretId: must be 1-2048 characters");
  e = AwsErrorFromStatus(&Op("secretsmanager.RotateSecret"),
                         InvalidField("rotation_worker", "is required"));
  EXPECT_EQ(e.message, "RotationLambdaARN: is required");
  e = AwsErrorFromStatus(&Op("TrentService.Encrypt"),
                         InvalidField("plaintext", "must be 1-4096 bytes"));
  EXPECT_EQ(e.message, "Plaintext: must be 1-4096 bytes");
  // A field of another message, or a message that does not start with it, stays.
  e = AwsErrorFromStatus(Kms(), InvalidField("plaintext", "x"));
  EXPECT_EQ(e.message, "plaintext: x");
  e = AwsErrorFromStatus(Secrets(),
                         Error(reason::kInvalidParameter, "bad secret_id", "", "secret_id"));
  EXPECT_EQ(e.message, "bad secret_id");
}

TEST(AwsErrorsTest, OkAndLongMessages) {
  EXPECT_EQ(AwsErrorFromStatus(Secrets(), absl::OkStatus()).http_status, 500);
  AwsError e = AwsErrorFromStatus(Secrets(), absl::InvalidArgumentError(std::string(5000, 'x')));
  EXPECT_EQ(e.message.size(), 1024u);
}

TEST(AwsErrorsTest, Body) {
  AwsError e{400, "ResourceNotFoundException", "can't find \"prod/db\"\n\x01"};
  std::string body = AwsErrorBody(e);
  EXPECT_EQ(body,
            R"({"__type":"ResourceNotFoundException","message":"can't find \"prod/db\"\n\u0001"})");
  auto doc = ParseJson(body);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->Find("message")->text, e.message);
  // Invalid UTF-8 in a message still makes valid JSON.
  EXPECT_TRUE(ParseJson(AwsErrorBody({500, "InternalFailure", "\xff\xfe"})).ok());
}

TEST(AwsErrorsTest, ErrorTypesListsAreWhatTheMappingAnswers) {
  std::vector<std::string> common = AwsCommonErrorTypes();
  for (const AwsOperation& op : AllAwsOperations()) {
    std::vector<std::string> types = AwsErrorTypes(op.backend);
    for (int c = 1; c <= 16; ++c) {
      AwsError e = AwsErrorFromStatus(&op, absl::Status(static_cast<absl::StatusCode>(c), "m"));
      bool listed = std::count(types.begin(), types.end(), e.type) +
                        std::count(common.begin(), common.end(), e.type) >
                    0;
      EXPECT_TRUE(listed) << op.target << " " << e.type;
    }
  }
}

}  // namespace
}  // namespace coffer::gateway
