// inline_actions.h: the actions CallGate tries on gRPC's callback thread
// first (call_gate.h, libs/common/blocking.h): reads that change nothing they
// could not change again, and whose errors pass through unchanged, so that a
// would-block status is seen, never answered. Header-only and free of gRPC,
// so that the API fuzz targets (fuzz/api_world.cc) run reads the same way.
//
//   if (InlineFirstAction("kms:Decrypt")) { NonBlockingScope scope; ... }
#pragma once

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace coffer::runtime {

inline bool InlineFirstAction(absl::string_view action) {
  static const auto* const actions = new absl::flat_hash_set<std::string>{
      "secretsmanager:GetSecretValue",
      "secretsmanager:DescribeSecret",
      "secretsmanager:ListSecretVersionIds",
      "secretsmanager:GetResourcePolicy",
      "ssm:GetParameter",
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncrypt",
      "kms:GenerateRandom",
      "kms:DescribeKey",
  };
  return actions->contains(action);
}

}  // namespace coffer::runtime
