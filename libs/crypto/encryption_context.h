// encryption_context.h: canonical bytes of an encryption context.
//
// An encryption context (a string map) is the AEAD associated data of KMS
// ciphertexts and of store values. Its encoding must be canonical and
// unambiguous: entries sorted by key (bytewise), every string length-prefixed,
// so that no two different maps encode to the same bytes.
//
//   std::map<std::string, std::string> ctx{{"SecretARN", arn},
//                                          {"SecretVersionId", version}};
//   std::string ad = coffer::crypto::EncodeEncryptionContext(ctx);
//
// Format: u32 count, then per entry u32 key length, key, u32 value length,
// value; integers big-endian.
#pragma once

#include <map>
#include <string>

namespace coffer::crypto {

std::string EncodeEncryptionContext(const std::map<std::string, std::string>& context);

}  // namespace coffer::crypto
