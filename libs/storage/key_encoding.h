// key_encoding.h: order-preserving pieces of RocksDB keys.
//
// An unsigned integer written big-endian sorts bytewise in numeric order, so
// keys that start with one (times, sequence numbers, versions) scan in order.
//
//   std::string key = coffer::storage::BigEndian64(micros) + name;
//   uint64_t micros = coffer::storage::ReadBigEndian64(key);   // first 8 bytes
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace coffer::storage {

inline void AppendBigEndian64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

inline std::string BigEndian64(uint64_t v) {
  std::string out;
  out.reserve(8);
  AppendBigEndian64(v, &out);
  return out;
}

// The first 8 bytes of `bytes` (which must hold at least 8).
inline uint64_t ReadBigEndian64(absl::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

}  // namespace coffer::storage
