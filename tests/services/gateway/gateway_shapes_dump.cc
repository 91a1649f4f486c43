// gateway_shapes_dump: prints, as one JSON document, what coffer-gateway
// reads and writes for every AWS operation — the request members it accepts
// and the response members it writes (AwsRequestShape, AwsResponseShape),
// the response ResponseToAwsJson writes for a message with every field set,
// and whether a request with every accepted member set is read — plus the
// error types it can answer per service. aws_model_test.py checks all of it
// against botocore's models.
//
//   gateway_shapes_dump > shapes.json
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "libs/common/json.h"
#include "services/gateway/aws_json.h"
#include "services/gateway/aws_shapes.h"
#include "tests/services/gateway/sample_messages.h"

namespace {

using coffer::JsonQuote;
using namespace coffer::gateway;  // NOLINT: a small tool

std::string List(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ",";
    out += JsonQuote(items[i]);
  }
  return out + "]";
}

std::string ServiceName(Backend b) {
  return b == Backend::kSecrets  ? "secretsmanager"
         : b == Backend::kParams ? "AmazonSSM"
                                 : "TrentService";
}

}  // namespace

int main() {
  std::string out = "{\"operations\":[";
  bool first = true;
  for (const AwsOperation& op : AllAwsOperations()) {
    std::unique_ptr<google::protobuf::Message> full(
        google::protobuf::MessageFactory::generated_factory()
            ->GetPrototype(op.method->output_type())
            ->New());
    testing::FillEveryField(full.get());
    absl::StatusOr<std::string> sample = ResponseToAwsJson(op, *full);
    if (!sample.ok()) {
      std::fprintf(stderr, "%s: %s\n", op.target.c_str(), sample.status().ToString().c_str());
      return 1;
    }
    AwsShape request = AwsRequestShape(op);
    std::string body = testing::SampleRequestJson(request);
    absl::Status read = RequestFromAwsJson(op, body).status();

    if (!first) out += ",";
    first = false;
    absl::StrAppend(
        &out, "\n{\"target\":", JsonQuote(op.target),
        ",\"signing_service\":", JsonQuote(op.signing_service),
        ",\"method\":", JsonQuote(op.method->full_name()), ",\"request\":", AwsShapeJson(request),
        ",\"response\":", AwsShapeJson(AwsResponseShape(op)), ",\"sample_response\":", *sample,
        ",\"sample_request\":", body,
        ",\"sample_request_error\":", JsonQuote(read.ok() ? "" : std::string(read.message())), "}");
  }
  out += "\n],\"errors\":{";
  for (Backend b : {Backend::kSecrets, Backend::kParams, Backend::kKms}) {
    absl::StrAppend(&out, JsonQuote(ServiceName(b)), ":", List(AwsErrorTypes(b)), ",");
  }
  absl::StrAppend(&out, "\"common\":", List(AwsCommonErrorTypes()), "}}\n");
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}
