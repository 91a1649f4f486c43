// page_token_fuzz: DecodePageToken on fuzzed token text, for the token
// kinds the list calls use (and "<kind>\n<token>" inputs for any kind).
// Properties: an error carries the given reason; a token that decodes has a
// non-empty payload and re-encodes to a token decoding to the same payload;
// encoding any payload decodes back to it under its kind only.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "libs/common/paging.h"

namespace {

constexpr coffer::PagingErrors kErrors{"next_token", coffer::reason::kInvalidNextToken};

void Decode(absl::string_view kind, absl::string_view token) {
  absl::StatusOr<std::string> payload = coffer::DecodePageToken(kind, token, kErrors);
  if (!payload.ok()) {
    FUZZ_CHECK(coffer::ErrorReason(payload.status()) == kErrors.reason, "error reason");
    FUZZ_CHECK(!token.empty(), "an empty token is the first page");
    return;
  }
  if (token.empty()) {
    FUZZ_CHECK(payload->empty(), "the first page has no payload");
    return;
  }
  FUZZ_CHECK(token.size() <= coffer::kMaxPageTokenBytes, "long tokens are refused");
  FUZZ_CHECK(!payload->empty(), "a token has a payload");
  absl::StatusOr<std::string> again =
      coffer::DecodePageToken(kind, coffer::EncodePageToken(kind, *payload), kErrors);
  FUZZ_CHECK(again.ok() && *again == *payload, "re-encoded token decodes the same");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text = coffer::fuzz::AsText(data, size);
  // The kinds the list calls issue (secrets, parameters, KMS), and "".
  for (absl::string_view kind : {"list", "versions", "schedules", "r", "o", "d", "h", "m1", ""}) {
    Decode(kind, text);
  }
  const size_t nl = text.find('\n');
  if (nl != absl::string_view::npos) Decode(text.substr(0, nl), text.substr(nl + 1));

  // The input as a payload.
  if (!text.empty()) {
    const std::string token = coffer::EncodePageToken("list", text);
    absl::StatusOr<std::string> back = coffer::DecodePageToken("list", token, kErrors);
    if (token.size() <= coffer::kMaxPageTokenBytes) {
      FUZZ_CHECK(back.ok() && *back == text, "payload round trip");
      absl::StatusOr<std::string> other = coffer::DecodePageToken("versions", token, kErrors);
      FUZZ_CHECK(!other.ok() || *other != text, "another call's token is refused");
    } else {
      FUZZ_CHECK(!back.ok(), "over-long tokens are refused");
    }
  }
  return 0;
}
