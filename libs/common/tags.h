// tags.h: the one tag rule of every API (secrets, parameters, KMS keys).
//
// A tag key is 1-128 characters and does not start with "aws:" in any letter
// case (AWS reserves the prefix); a value is at most 256 characters; keys are
// unique within a request; a resource has at most `max_tags` tags.
// Characters are Unicode code points of the UTF-8 text, as AWS counts them.
// Each API keeps its own error reasons.
//
//   COFFER_RETURN_IF_ERROR(ValidateTags("tags", TagViews(request.tags()), kSecretTagRules));
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace coffer {

inline constexpr size_t kMaxTagKeyChars = 128;
inline constexpr size_t kMaxTagValueChars = 256;

struct TagRules {
  int max_tags = 50;
  absl::string_view invalid_reason;   // a malformed or duplicate tag
  absl::string_view too_many_reason;  // more than max_tags
};

struct TagView {
  absl::string_view key;
  absl::string_view value;
};

// The tags of any tag message with key()/value() accessors.
template <typename Tags>
std::vector<TagView> TagViews(const Tags& tags) {
  std::vector<TagView> views;
  views.reserve(tags.size());
  for (const auto& t : tags) views.push_back({t.key(), t.value()});
  return views;
}

// Unicode code points in UTF-8 text (continuation bytes are not counted).
size_t Utf8Length(absl::string_view text);

absl::Status ValidateTagKey(absl::string_view field, absl::string_view key, const TagRules& rules);

// Checks count, keys, values and duplicates; errors name `field`.
absl::Status ValidateTags(absl::string_view field, const std::vector<TagView>& tags,
                          const TagRules& rules);

}  // namespace coffer
