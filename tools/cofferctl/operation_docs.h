// operation_docs.h: what the descriptors do not say about an operation —
// examples, the request fields it cannot do without, what `--output=text`
// prints and which columns `--output=table` shows — in one table keyed by the
// method's full name. cofferctl_test checks that every method of every
// linked service has an entry and that each example builds a request with
// the required fields.
//
//   const OperationDoc& doc = DocFor(*method);
//   COFFER_RETURN_IF_ERROR(CheckRequired(*request, doc));   // before any call
//   doc.examples[0] == "cofferctl secrets get-secret-value --secret-id prod/orders/db ..."
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace coffer::cofferctl {

struct OperationDoc {
  // Whole command lines as a shell would take them ("cofferctl kms ...").
  std::vector<std::string> examples;
  // Request fields (proto names) every call needs; the server refuses a
  // request without them, so cofferctl does before connecting.
  std::vector<std::string> required;
  // The response field --output=text prints alone (bytes in base64), as a
  // path ("parameter.value"); "a|b" prints the first of them that is set;
  // "a,b" prints both on one line, tab-separated (when both are set).
  // Empty: the generic tab-separated rows (output.h).
  std::string text_value;
  // For --output=table: the columns of the response's list, in order
  // (names of the list elements' fields). Empty: every column that has a
  // value in some row.
  std::vector<std::string> table_columns;
};

// Every entry, by method full name
// ("coffer.secrets.v1.SecretsManager.GetSecretValue").
const std::map<std::string, OperationDoc>& OperationDocs();

// The entry of `method`; an empty entry for a method without one (the test
// keeps that from happening for the linked services).
const OperationDoc& DocFor(const google::protobuf::MethodDescriptor& method);

// INVALID_ARGUMENT "--secret-id: required" for the first required field of
// `doc` that `request` leaves unset (empty, zero, no elements).
absl::Status CheckRequired(const google::protobuf::Message& request, const OperationDoc& doc);

}  // namespace coffer::cofferctl
