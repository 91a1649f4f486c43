#include "libs/common/paging.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"

namespace coffer {

absl::StatusOr<int> PageSize(int requested, PageLimits limits, PagingErrors errors) {
  if (requested == 0) return limits.default_size;
  if (requested < 1 || requested > limits.max) {
    return Error(errors.reason, absl::StrCat(errors.field, ": must be between 1 and ", limits.max),
                 "", errors.field);
  }
  return requested;
}

std::string EncodePageToken(absl::string_view kind, absl::string_view payload) {
  return absl::WebSafeBase64Escape(absl::StrCat(kind, ":", payload));
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view kind, absl::string_view token,
                                            PagingErrors errors) {
  if (token.empty()) return std::string();
  std::string raw;
  const std::string prefix = absl::StrCat(kind, ":");
  if (token.size() > kMaxPageTokenBytes || !absl::WebSafeBase64Unescape(token, &raw) ||
      !absl::StartsWith(raw, prefix) || raw.size() == prefix.size()) {
    return Error(errors.reason,
                 absl::StrCat(errors.field, ": is not a token returned by this operation"), "",
                 errors.field);
  }
  return raw.substr(prefix.size());
}

}  // namespace coffer
