// paging.h: the one page-size rule and the one page-token codec of every
// list call (secrets, parameters, rotation schedules, KMS keys).
//
// A page token is opaque to callers: base64url of "<kind>:<payload>", where
// `kind` names the operation that issued it, so a token of one call is
// refused by another. Tokens longer than kMaxPageTokenBytes are refused
// before they are decoded.
//
//   COFFER_ASSIGN_OR_RETURN(int max, PageSize("max_results", req.max_results(), {100, 100}));
//   COFFER_ASSIGN_OR_RETURN(std::string after,
//                           DecodePageToken("versions", req.next_token(), kSecretsTokenError));
//   ...
//   resp.set_next_token(EncodePageToken("versions", last_id));
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace coffer {

inline constexpr size_t kMaxPageTokenBytes = 4096;

// How a page size is checked: 0 means `default_size`; otherwise 1..max.
struct PageLimits {
  int max = 100;
  int default_size = 100;
};

// How a bad request is reported: the field and the API's reason.
struct PagingErrors {
  absl::string_view field;   // "max_results", "limit", "next_token", "marker"
  absl::string_view reason;  // e.g. reason::kInvalidParameter
};

// The page size to use, or an error naming `errors.field`.
absl::StatusOr<int> PageSize(int requested, PageLimits limits, PagingErrors errors);

std::string EncodePageToken(absl::string_view kind, absl::string_view payload);

// The payload of a token issued by EncodePageToken(kind, ...); "" for an
// empty token (the first page). A token that is too long, not base64url, of
// another kind or with an empty payload is an error with `errors.reason`
// naming `errors.field`.
absl::StatusOr<std::string> DecodePageToken(absl::string_view kind, absl::string_view token,
                                            PagingErrors errors);

}  // namespace coffer
