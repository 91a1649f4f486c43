// ids.h: identifiers.
//
//   std::string key_id = coffer::NewUuid();          // "3f2b...-4...-..."
//   std::string suffix = coffer::RandomAlnum(6);      // ARN suffix "aB3xQ9"
//   bool ok = coffer::IsUuid(key_id);
//
// Randomness comes from the kernel (getrandom(2)); ids are unpredictable but
// are not secrets.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace coffer {

// A random (version 4) UUID in canonical lower-case form.
std::string NewUuid();

// True for a canonical 36-character UUID (any version, lower or upper case).
bool IsUuid(absl::string_view s);

// `n` characters chosen uniformly from [A-Za-z0-9].
std::string RandomAlnum(size_t n);

// Fills `out` with kernel randomness. Crashes if the kernel refuses.
void KernelRandomBytes(void* out, size_t n);

}  // namespace coffer
