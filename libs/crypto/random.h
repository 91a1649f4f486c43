// random.h: the CSPRNG (libsodium randombytes).
//
//   std::string nonce = coffer::crypto::RandomString(24);
//   uint32_t i = coffer::crypto::RandomUniform(62);   // 0..61, no modulo bias
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace coffer::crypto {

void RandomBytes(void* out, size_t n);
std::string RandomString(size_t n);
// Uniform in [0, upper_bound), upper_bound >= 1, without modulo bias.
uint32_t RandomUniform(uint32_t upper_bound);

}  // namespace coffer::crypto
