// sample_messages.h: messages and request bodies with every field set, for
// gateway_test and gateway_shapes_dump (the model check's input).
//
//   secrets::v1::DescribeSecretResponse r;
//   FillEveryField(&r);   // every field non-default, one element per list, one map entry
//   std::string body = SampleRequestJson(AwsRequestShape(op));
#pragma once

#include <string>

#include "google/protobuf/message.h"
#include "services/gateway/aws_shapes.h"

namespace coffer::gateway::testing {

// Sets every field of `m` (recursively) to a non-default value: strings to
// their field's name ("arn" fields to a well-formed ARN), bytes to a few
// binary bytes, numbers to 7, booleans to true, enums to their last value,
// timestamps to 1700000000.123456789; one element per repeated field and
// one entry ("k") per map.
void FillEveryField(google::protobuf::Message* m);

// An AWS JSON request body with every member of `shape` set: a member that
// is another name of one already there ("alias of") is left out, and a
// member Coffer accepts only empty or with one value gets exactly that.
std::string SampleRequestJson(const AwsShape& shape);

}  // namespace coffer::gateway::testing
