// aws_shapes.h: the JSON shapes the translator reads and writes for each
// operation, as data — what the model check (tests/services/gateway,
// gateway_aws_model_check) compares with botocore's service models, and a
// readable answer to "what does the gateway accept for X?".
//
//   AwsShape in = AwsRequestShape(*FindAwsOperation("TrentService.Encrypt"));
//   // in.members: KeyId (string), Plaintext (blob), EncryptionContext (map of
//   // string), GrantTokens (list of string, note "ignored"), ...
//   std::string json = AwsShapeJson(in);
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "services/gateway/aws_json.h"

namespace coffer::gateway {

struct AwsShape {
  // "structure", "list", "map", "string", "boolean", "integer", "number",
  // "timestamp" or "blob".
  std::string type;
  // A string that carries one of these (an enum), in declaration order.
  std::vector<std::string> enum_values;
  // A structure's members, in the order they are written.
  std::vector<std::pair<std::string, AwsShape>> members;
  // A list's member or a map's value: exactly one for lists and maps.
  std::vector<AwsShape> element;
  // Responses: the member is sent even when empty, zero or false (else it
  // is left out then, as AWS leaves out absent members).
  bool always_sent = false;
  // Requests: "ignored", "only empty", "only <value>" or "alias of <field>"
  // for the AWS members Coffer lacks; responses: "derived". Else "".
  std::string note;
};

AwsShape AwsRequestShape(const AwsOperation& op);
AwsShape AwsResponseShape(const AwsOperation& op);

// {"type":"structure","members":{"KeyId":{"type":"string"},...}}; "enum",
// "member" (list/map element), "always" and "note" appear when set.
std::string AwsShapeJson(const AwsShape& shape);

// The error types AwsErrorFromStatus can answer for operations of `backend`
// beyond the common ones, and the common ones (any service, or no operation).
std::vector<std::string> AwsErrorTypes(Backend backend);
std::vector<std::string> AwsCommonErrorTypes();

}  // namespace coffer::gateway
