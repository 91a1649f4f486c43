// password.h: the random password generator behind GetRandomPassword
// (secrets-api.md) and the rotation workers.
//
//   coffer::crypto::PasswordOptions opts;
//   opts.length = 24;
//   opts.exclude_punctuation = true;
//   absl::StatusOr<std::string> pw = coffer::crypto::GeneratePassword(opts);
//
// Characters are drawn uniformly (no modulo bias) from the union of the
// included classes (lowercase, uppercase, digits, the 32 punctuation
// characters !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~, and the space when
// include_space) minus exclude_characters. With require_each_included_type,
// the password holds at least one character of every included class that
// still has characters left; the positions of those are random too (the
// result is a uniform choice among all passwords satisfying the rule, by
// rejection sampling).
//
// Errors (InvalidParameterException, INVALID_ARGUMENT, naming the field):
// length outside 1-4096 ("password_length"); every character excluded;
// require_each_included_type with fewer positions than required classes.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace coffer::crypto {

inline constexpr char kPasswordPunctuation[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

struct PasswordOptions {
  int length = 32;
  std::string exclude_characters;
  bool exclude_numbers = false;
  bool exclude_punctuation = false;
  bool exclude_uppercase = false;
  bool exclude_lowercase = false;
  bool include_space = false;
  bool require_each_included_type = true;
};

absl::StatusOr<std::string> GeneratePassword(const PasswordOptions& options);

}  // namespace coffer::crypto
