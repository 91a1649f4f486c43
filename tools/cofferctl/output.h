// output.h: how cofferctl prints results: JSON here, --output=table and
// --output=text in text_output.h, errors in failures.h.
//
// A response is printed (by default) as proto3 JSON with the proto field names,
// 2-space indented, default values left out, bytes as base64 (messages of a
// server stream: one compact object per line, FormatJsonLine). With
// --output-file one bytes field is written raw to a file (mode 0600) and left
// out of the JSON, so a plaintext never has to pass through a shell variable:
//
//   coffer::cofferctl::OutputOptions opts{.file = "secret.bin"};
//   absl::StatusOr<std::string> json = coffer::cofferctl::RenderResponse(*response, opts);
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "tools/cofferctl/invocation.h"

namespace coffer::cofferctl {

// `message` as proto3 JSON (proto field names, no default values), indented
// by 2 spaces, ending with a newline.
absl::StatusOr<std::string> FormatJson(const google::protobuf::Message& message);

// `message` as ONE line of compact proto3 JSON (proto field names, no
// default values, no whitespace) ending with a newline: how each message of
// a server stream is printed, so `cofferctl watch ... | jq -c` or a `while
// read` loop sees one object per line.
absl::StatusOr<std::string> FormatJsonLine(const google::protobuf::Message& message);

// Re-indents compact JSON with 2 spaces per level ("{}" and "[]" stay short).
std::string IndentJson(absl::string_view compact);

// Removes the bytes field `field_name` (or, when empty, the first singular
// bytes field in field-number order) from `message` and returns its value.
// INVALID_ARGUMENT when there is no such bytes field.
absl::StatusOr<std::string> TakeBytesField(google::protobuf::Message& message,
                                           absl::string_view field_name);

// Writes `bytes` to `path` with mode 0600 (an existing file is truncated and
// its mode set to 0600).
absl::Status WritePrivateFile(const std::string& path, absl::string_view bytes);

struct OutputOptions {
  std::string file;   // --output-file; empty: everything goes to the output
  std::string field;  // --output-field; empty: the first bytes field
  OutputFormat format = OutputFormat::kJson;
  std::string text_value;                  // OperationDoc::text_value
  std::vector<std::string> table_columns;  // OperationDoc::table_columns
};

// Writes the chosen bytes field to options.file (if any), then returns
// what is left in options.format. For text, a value that went to the file
// is not printed: the generic rows of the rest are.
absl::StatusOr<std::string> RenderResponse(google::protobuf::Message& response,
                                           const OutputOptions& options);

}  // namespace coffer::cofferctl
