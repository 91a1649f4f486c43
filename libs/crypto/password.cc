#include "libs/crypto/password.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/common/errors.h"
#include "libs/crypto/random.h"

namespace coffer::crypto {
namespace {

constexpr int kMinLength = 1;
constexpr int kMaxLength = 4096;

constexpr absl::string_view kLowercase = "abcdefghijklmnopqrstuvwxyz";
constexpr absl::string_view kUppercase = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr absl::string_view kDigits = "0123456789";
constexpr absl::string_view kPunctuation(kPasswordPunctuation, sizeof(kPasswordPunctuation) - 1);

// The characters a password may use and, for each, the required class it
// belongs to (or kNoClass: the space is in the pool but never required).
struct Alphabet {
  static constexpr uint8_t kNoClass = 0xff;
  std::string pool;
  std::vector<uint8_t> class_of;  // parallel to `pool`
  int required_classes = 0;       // classes 0..required_classes-1
};

Alphabet BuildAlphabet(const PasswordOptions& options) {
  std::array<bool, 256> excluded{};
  for (char c : options.exclude_characters) excluded[static_cast<unsigned char>(c)] = true;

  Alphabet alphabet;
  int class_count = 0;
  auto add_class = [&](absl::string_view chars, bool required) {
    const uint8_t id = required ? static_cast<uint8_t>(class_count) : Alphabet::kNoClass;
    bool any = false;
    for (char c : chars) {
      if (excluded[static_cast<unsigned char>(c)]) continue;
      alphabet.pool.push_back(c);
      alphabet.class_of.push_back(id);
      any = true;
    }
    // A class counts only if exclude_characters left something of it.
    if (any && required) ++class_count;
  };
  if (!options.exclude_lowercase) add_class(kLowercase, true);
  if (!options.exclude_uppercase) add_class(kUppercase, true);
  if (!options.exclude_numbers) add_class(kDigits, true);
  if (!options.exclude_punctuation) add_class(kPunctuation, true);
  if (options.include_space) add_class(" ", false);
  alphabet.required_classes = class_count;
  return alphabet;
}

absl::Status InvalidParameter(absl::string_view field, absl::string_view problem) {
  return InvalidField(field, problem, reason::kInvalidParameter);
}

}  // namespace

absl::StatusOr<std::string> GeneratePassword(const PasswordOptions& options) {
  if (options.length < kMinLength || options.length > kMaxLength) {
    return InvalidParameter("password_length", absl::StrCat("must be between ", kMinLength, " and ",
                                                            kMaxLength, ", got ", options.length));
  }
  const Alphabet alphabet = BuildAlphabet(options);
  if (alphabet.pool.empty()) {
    return InvalidParameter(
        "exclude_characters",
        "every character is excluded (by exclude_characters and the exclude_* options)");
  }
  const int required = options.require_each_included_type ? alphabet.required_classes : 0;
  if (options.length < required) {
    return InvalidParameter("password_length",
                            absl::StrCat("must be at least ", required,
                                         " to include a character of every included type"));
  }

  const size_t length = static_cast<size_t>(options.length);
  const uint32_t pool_size = static_cast<uint32_t>(alphabet.pool.size());
  std::string password(length, '\0');
  // Rejection sampling: draw uniformly from the pool and start over when a
  // required class is missing. The accepted result is uniform over all
  // passwords satisfying the rule. Every required class is non-empty and
  // length >= required, so acceptance has positive probability; the worst
  // case (length 4, three classes cut down to one character each, 36
  // characters in the pool) needs about 2,200 tries of 4 characters.
  while (true) {
    uint32_t seen = 0;  // bit i: class i present
    for (size_t i = 0; i < length; ++i) {
      const uint32_t index = RandomUniform(pool_size);
      password[i] = alphabet.pool[index];
      const uint8_t cls = alphabet.class_of[index];
      if (cls != Alphabet::kNoClass) seen |= 1u << cls;
    }
    const uint32_t all = (1u << required) - 1;
    if ((seen & all) == all) return password;
  }
}

}  // namespace coffer::crypto
