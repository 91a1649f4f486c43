// aws_names.h: the per-service tables behind aws_json.h — member names,
// enum spellings, which response members are always sent, which are
// derived, and the AWS request members Coffer lacks. Internal to
// gateway_core (aws_json.cc, aws_shapes.cc); aws_json.h's header comment is
// their documentation.
//
//   std::string name = internal::MemberName(Backend::kSecrets, field);  // "" = not exposed
//   const internal::EnumTable& t = internal::EnumTableFor(Backend::kKms, enum_descriptor);
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "services/gateway/aws_json.h"

namespace coffer::gateway::internal {

// The AWS service behind a backend.
struct ServiceInfo {
  Backend backend;
  const char* target_prefix;    // "secretsmanager", "AmazonSSM", "TrentService"
  const char* signing_service;  // "secretsmanager", "ssm", "kms"
  const google::protobuf::ServiceDescriptor* service;
};
const std::vector<ServiceInfo>& Services();
const ServiceInfo& ServiceFor(Backend backend);

// The AWS member name of a proto field in `backend`'s dialect, or "" when
// the field is Coffer's alone and never on the wire.
std::string MemberName(Backend backend, const google::protobuf::FieldDescriptor* field);

// The field of `type` whose AWS member name is `member`, or nullptr.
const google::protobuf::FieldDescriptor* FieldByMember(Backend backend,
                                                       const google::protobuf::Descriptor* type,
                                                       absl::string_view member);

// An enum's AWS spellings: (AWS string, value) for every value but
// *_UNSPECIFIED, in declaration order.
struct EnumTable {
  std::vector<std::pair<std::string, const google::protobuf::EnumValueDescriptor*>> values;
  // "" for *_UNSPECIFIED and values the table does not know.
  absl::string_view Name(const google::protobuf::EnumValueDescriptor* value) const;
  const google::protobuf::EnumValueDescriptor* Find(absl::string_view aws) const;
  std::string List() const;  // "String, StringList, SecureString"
};
const EnumTable& EnumTableFor(const google::protobuf::EnumDescriptor* type);

// Response fields AWS sends even when empty, zero or false.
bool AlwaysSent(const google::protobuf::FieldDescriptor* field);

// A map value message that is only a list (VersionStages): written and read
// as the JSON array of its one repeated field. nullptr when `type` is not
// such a message.
const google::protobuf::FieldDescriptor* ListWrapperField(const google::protobuf::Descriptor* type);

// AWS request members Coffer lacks (aws_json.h's table).
enum class ExtraPolicy {
  kIgnore,     // type-checked, then ignored
  kOnlyEmpty,  // only "", false, [] or null
  kOnlyValue,  // only the string `value`
  kAliasOf,    // another name of the field `value` (not both)
};
struct ExtraMember {
  const char* message;  // request message full name
  const char* member;   // AWS member name
  const char* kind;     // "string", "boolean", "list<string>", "list<structure>"
  ExtraPolicy policy;
  const char* value;  // kOnlyValue: the accepted string; kAliasOf: the proto field name
};
// The extras of one request message (empty for most).
std::vector<const ExtraMember*> ExtraMembersOf(const google::protobuf::Descriptor* message);

// Members computed from a response message rather than stored in it.
struct DerivedMember {
  const char* message;  // response message full name
  const char* member;
  const char* kind;                      // "string" or "boolean"
  std::vector<std::string> enum_values;  // when AWS's member is an enum
  // The member's JSON literal for `m` (quoted when a string), or nullopt to
  // leave it out.
  std::optional<std::string> (*value)(const google::protobuf::Message& m);
};
std::vector<const DerivedMember*> DerivedMembersOf(const google::protobuf::Descriptor* message);

// Table entries naming a message or field the protos do not have (a proto
// change the tables missed); gateway_test checks there are none.
std::vector<std::string> UnresolvedTableEntries();

// The AWS JSON of any message of `backend`, as ResponseToAwsJson writes it
// but without its type check (aws_json.cc); gateway_test writes requests
// with it to read them back.
std::string MessageToAwsJson(Backend backend, const google::protobuf::Message& message);

// Reads any message of `backend` as RequestFromAwsJson reads a request
// (aws_json.cc); gateway_test checks timestamps with it, which no request
// of the three APIs has.
absl::Status MessageFromAwsJson(Backend backend, absl::string_view body,
                                google::protobuf::Message* message);

// The type a service uses for request validation errors:
// InvalidParameterException (Secrets Manager), ValidationException (SSM, KMS).
const char* ValidationType(Backend backend);

}  // namespace coffer::gateway::internal
