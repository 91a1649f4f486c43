// aws_json_fuzz: coffer-gateway's AWS JSON 1.1 reader on fuzzed bodies, for
// every operation (the first byte picks it; the rest is the body). A body
// is either read into the operation's request message or refused as
// INVALID_ARGUMENT with a SerializationException or the service's
// validation type, which AwsErrorFromStatus answers with HTTP 400 and a
// non-empty "__type"; a message read must serialize and parse back, its
// operation's (empty) response must be written as a JSON object, and
// wiping either message must leave no string or bytes value behind.
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "fuzz/fuzz_check.h"
#include "services/gateway/aws_json.h"

namespace {

namespace gw = coffer::gateway;
namespace pb = google::protobuf;

// True when no string or bytes field of `m` (recursively) holds a non-zero
// byte.
bool Wiped(const pb::Message& m) {
  const pb::Reflection* r = m.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f->is_map()) continue;  // left alone by design (contexts, stages)
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING) {
      const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
      for (int i = 0; i < n; ++i) {
        const std::string v = f->is_repeated() ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
        if (v.find_first_not_of('\0') != std::string::npos) return false;
      }
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
      for (int i = 0; i < n; ++i) {
        if (!Wiped(f->is_repeated() ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f))) {
          return false;
        }
      }
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto& operations = gw::AllAwsOperations();
  FUZZ_CHECK(!operations.empty(), "no operations");
  const gw::AwsOperation& op = operations[data[0] % operations.size()];
  FUZZ_CHECK(gw::FindAwsOperation(op.target) == &op, "an operation is not found by its target");
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);

  absl::StatusOr<std::unique_ptr<pb::Message>> request = gw::RequestFromAwsJson(op, body);
  if (!request.ok()) {
    FUZZ_CHECK(request.status().code() == absl::StatusCode::kInvalidArgument,
               "a refused body is not INVALID_ARGUMENT");
    const gw::AwsError error = gw::AwsErrorFromStatus(&op, request.status());
    FUZZ_CHECK(error.http_status == 400, "a refused body is not HTTP 400");
    FUZZ_CHECK(!error.type.empty(), "a refused body has no __type");
    const std::string error_body = gw::AwsErrorBody(error);
    FUZZ_CHECK(absl::StartsWith(error_body, "{\"__type\":"), "the error body is not AWS's shape");
    return 0;
  }
  FUZZ_CHECK((*request)->GetDescriptor() == op.method->input_type(),
             "the message read is not the method's request type");
  std::string bytes;
  FUZZ_CHECK((*request)->SerializeToString(&bytes), "the request does not serialize");
  std::unique_ptr<pb::Message> again((*request)->New());
  FUZZ_CHECK(again->ParseFromString(bytes), "the request does not parse back");

  std::unique_ptr<pb::Message> response(
      pb::MessageFactory::generated_factory()->GetPrototype(op.method->output_type())->New());
  absl::StatusOr<std::string> json = gw::ResponseToAwsJson(op, *response);
  FUZZ_CHECK(json.ok() && absl::StartsWith(*json, "{") && absl::EndsWith(*json, "}"),
             "an empty response is not written as a JSON object");

  gw::WipeMessage(request->get());
  FUZZ_CHECK(Wiped(**request), "WipeMessage left a value behind");
  return 0;
}
