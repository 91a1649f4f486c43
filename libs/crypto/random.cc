#include "libs/crypto/random.h"

#include <sodium.h>

#include "libs/common/status_macros.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::crypto {

void RandomBytes(void* out, size_t n) {
  if (n == 0) return;
  EnsureSodiumInitialized();
  randombytes_buf(out, n);
}

std::string RandomString(size_t n) {
  std::string s(n, '\0');
  RandomBytes(s.data(), n);
  return s;
}

uint32_t RandomUniform(uint32_t upper_bound) {
  COFFER_CHECK(upper_bound >= 1, "RandomUniform needs upper_bound >= 1");
  EnsureSodiumInitialized();
  // randombytes_uniform rejects the biased top of the 32-bit range.
  return randombytes_uniform(upper_bound);
}

}  // namespace coffer::crypto
