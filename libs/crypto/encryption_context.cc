#include "libs/crypto/encryption_context.h"

#include <cstdint>
#include <limits>

#include "libs/common/status_macros.h"

namespace coffer::crypto {
namespace {

void AppendU32(std::string& out, size_t n) {
  COFFER_CHECK(n <= std::numeric_limits<uint32_t>::max(), "encryption context too large");
  const uint32_t v = static_cast<uint32_t>(n);
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

void AppendString(std::string& out, const std::string& s) {
  AppendU32(out, s.size());
  out += s;
}

}  // namespace

std::string EncodeEncryptionContext(const std::map<std::string, std::string>& context) {
  size_t total = 4;
  for (const auto& [key, value] : context) total += 8 + key.size() + value.size();
  std::string out;
  out.reserve(total);
  AppendU32(out, context.size());
  // std::map<std::string, ...> iterates in bytewise key order (std::string's
  // operator< compares char_traits<char>, i.e. as unsigned bytes).
  for (const auto& [key, value] : context) {
    AppendString(out, key);
    AppendString(out, value);
  }
  return out;
}

}  // namespace coffer::crypto
