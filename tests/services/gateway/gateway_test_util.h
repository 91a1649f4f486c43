// gateway_test_util.h: the few helpers every gateway_test file uses — find
// an operation, read a request body into its proto, write a response.
//
//   auto req = ReadRequest<secrets::v1::GetSecretValueRequest>(
//       "secretsmanager.GetSecretValue", R"({"SecretId":"prod/db"})");
//   EXPECT_EQ(WriteResponse("secretsmanager.GetSecretValue", resp), R"({"ARN":...})");
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "libs/common/errors.h"
#include "services/gateway/aws_json.h"

namespace coffer::gateway::testing {

inline const AwsOperation& Op(absl::string_view target) {
  const AwsOperation* op = FindAwsOperation(target);
  if (op == nullptr) {
    ADD_FAILURE() << "no operation " << target;
    return AllAwsOperations().front();
  }
  return *op;
}

// The request `body` read for `target`, as T; a failed read is a test failure.
template <typename T>
T ReadRequest(absl::string_view target, absl::string_view body) {
  T out;
  auto read = RequestFromAwsJson(Op(target), body);
  EXPECT_TRUE(read.ok()) << target << ": " << read.status();
  if (read.ok()) out.CopyFrom(**read);
  return out;
}

// The error reading `body` for `target` (OK when it was read).
inline absl::Status ReadError(absl::string_view target, absl::string_view body) {
  return RequestFromAwsJson(Op(target), body).status();
}

inline std::string WriteResponse(absl::string_view target,
                                 const google::protobuf::Message& response) {
  auto json = ResponseToAwsJson(Op(target), response);
  EXPECT_TRUE(json.ok()) << json.status();
  return json.ok() ? *json : "";
}

template <typename T>
T Proto(const std::string& text) {
  T out;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &out)) << text;
  return out;
}

inline ::testing::AssertionResult ProtoEq(const google::protobuf::Message& expected,
                                          const google::protobuf::Message& actual) {
  std::string diff;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  if (d.Compare(expected, actual)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << diff << "\nactual: " << actual.ShortDebugString();
}

// "<reason>: <message>" of an error, for compact expectations.
inline std::string Described(const absl::Status& status) {
  return ErrorReason(status) + ": " + std::string(status.message());
}

}  // namespace coffer::gateway::testing
