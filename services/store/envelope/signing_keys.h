// signing_keys.h: where coffer-store gets the SigV4 signing keys that verify
// the calls coffer-gateway makes for signed callers (libs/runtime/
// signed_callers.h): coffer-kms's GetSigningKey, over the store's mTLS
// channel to the KMS. Wrap it in runtime::CachingSigningKeySource.
//
//   auto kms_keys = MakeKmsSigningKeySource(kms_channel, absl::Seconds(2));
//   auto keys = runtime::CachingSigningKeySource(kms_keys.get(), absl::Minutes(1),
//                                                absl::Seconds(10), 10000);
#pragma once

#include <memory>

#include "absl/time/time.h"
#include "libs/runtime/signed_callers.h"

namespace grpc {
class Channel;
}

namespace coffer::store {

std::unique_ptr<runtime::SigningKeySource> MakeKmsSigningKeySource(
    std::shared_ptr<grpc::Channel> channel, absl::Duration timeout);

}  // namespace coffer::store
