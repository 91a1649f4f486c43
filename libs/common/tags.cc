#include "libs/common/tags.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"

namespace coffer {

size_t Utf8Length(absl::string_view text) {
  size_t n = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

absl::Status ValidateTagKey(absl::string_view field, absl::string_view key, const TagRules& rules) {
  const size_t n = Utf8Length(key);
  if (n < 1 || n > kMaxTagKeyChars) {
    return Error(rules.invalid_reason,
                 absl::StrCat(field, ": tag keys must be 1-", kMaxTagKeyChars, " characters"), "",
                 field);
  }
  if (absl::StartsWithIgnoreCase(key, "aws:")) {
    return Error(rules.invalid_reason,
                 absl::StrCat(field, ": tag keys starting with 'aws:' are reserved"), "", field);
  }
  return absl::OkStatus();
}

absl::Status ValidateTags(absl::string_view field, const std::vector<TagView>& tags,
                          const TagRules& rules) {
  if (static_cast<int>(tags.size()) > rules.max_tags) {
    return Error(rules.too_many_reason, absl::StrCat(field, ": at most ", rules.max_tags, " tags"),
                 "", field);
  }
  std::set<absl::string_view> seen;
  for (const TagView& tag : tags) {
    if (absl::Status s = ValidateTagKey(field, tag.key, rules); !s.ok()) return s;
    if (Utf8Length(tag.value) > kMaxTagValueChars) {
      return Error(
          rules.invalid_reason,
          absl::StrCat(field, ": tag values must be at most ", kMaxTagValueChars, " characters"),
          "", field);
    }
    if (!seen.insert(tag.key).second) {
      return Error(rules.invalid_reason, absl::StrCat(field, ": duplicate tag key '", tag.key, "'"),
                   "", field);
    }
  }
  return absl::OkStatus();
}

}  // namespace coffer
