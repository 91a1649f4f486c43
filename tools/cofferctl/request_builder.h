// request_builder.h: turns `--field=value` flags into a request message, by
// protobuf reflection, so every RPC of every linked service can be called
// from the command line without per-RPC code.
//
//   absl::StatusOr<std::unique_ptr<google::protobuf::Message>> request =
//       coffer::cofferctl::BuildRequest(*method->input_type(),
//                                       {"--key-id=alias/app", "--plaintext-file=pw.txt",
//                                        "--encryption-context", "app=catagram"});
//
// Flag names are field names with '-' or '_' (--key-id == --key_id). Values:
//   string             as given
//   integers, floats   parsed strictly; the error names the flag
//   bool               --flag, --flag=true, --flag=false
//   enum               value name, full (KEY_SPEC_SYMMETRIC_DEFAULT) or without
//                      the enum's prefix (symmetric_default), any case; also
//                      without underscores when that is unambiguous
//                      (SecureString for PARAMETER_TYPE_SECURE_STRING)
//   bytes              standard base64 (padding optional)
//   map                repeatable --field key=value, or a JSON object
//   repeated scalar    repeatable flag or comma-separated values
//   message            JSON object; a message of exactly two string fields
//                      also takes "a=b" (--tags env=prod -> tag_key, tag_value);
//                      google.protobuf.Timestamp takes RFC 3339
//   repeated message   repeatable flag, or a JSON array
// Any value can instead come from a file or stdin, so that no secret has to
// be on a command line (where `ps` and shell history show it):
//   file://<path>      the file's content; string and bytes fields take it
//                      exactly (every byte, a final newline included), other
//                      fields parse it as if typed, surrounding whitespace
//                      ignored
//   fileb://<path>     the same, for bytes fields only (AWS's spelling for
//                      binary)
//   -                  standard input, read to its end, by one flag at most
//   --<field>-file=<path>  (string and bytes fields) as file://<path>
// String fields take UTF-8 text only, wherever it comes from.
// --cli-input-json='{...}' (or =file://<path>, or =-) gives the whole request as
// proto3 JSON; it is applied first, and a field named by a flag replaces
// what the JSON said about it. A value may follow its flag as the next
// argument (--key-id alias/app) except for bools.
//
// Every problem is INVALID_ARGUMENT with a message that names the flag and
// never quotes the value (it may be a secret given to the wrong flag).
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace coffer::cofferctl {

// The path that stands for standard input.
inline constexpr char kStdinPath[] = "-";

// Reads a whole file (or, for kStdinPath, standard input) for file://,
// fileb://, -, --<field>-file and --cli-input-json.
using FileReader = std::function<absl::StatusOr<std::string>(const std::string& path)>;

// Reads a file from disk; NOT_FOUND / PERMISSION_DENIED... naming the path.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);
// ReadWholeFile, or all of standard input for kStdinPath.
absl::StatusOr<std::string> ReadInput(const std::string& path);

// Fills `request` (normally empty) from `args`.
absl::Status FillRequest(const std::vector<std::string>& args, google::protobuf::Message& request,
                         const FileReader& read_file = ReadInput);

// A new message of `type` (which must be in the generated pool) filled
// from `args`.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> BuildRequest(
    const google::protobuf::Descriptor& type, const std::vector<std::string>& args,
    const FileReader& read_file = ReadInput);

// The fields (proto names) that flags in `args` set, --<field>-file
// included and --cli-input-json not; the errors of FillRequest for a flag
// that names no field. Reads no file.
absl::StatusOr<std::set<std::string>> FieldsNamedByFlags(const google::protobuf::Descriptor& type,
                                                         const std::vector<std::string>& args);

// Per field (for --help): the flag with the shape of its value, "(required)"
// for the fields in `required` (by field name); the field's type, its enum
// values, and how to repeat it; the field's comment in the .proto. Fields in
// `omitted` are left out (a short form's presets).
std::string RequestFlagsUsage(const google::protobuf::Descriptor& type,
                              const std::set<std::string>& required = {},
                              const std::set<std::string>& omitted = {});

// Enum value names without their common prefix: DATA_KEY_SPEC_AES_256 ->
// "AES_256". Exposed for help texts and tests.
std::string EnumShortName(const google::protobuf::EnumValueDescriptor& value);

}  // namespace coffer::cofferctl
