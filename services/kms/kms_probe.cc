#include "services/kms/kms_probe.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace coffer::kms {

KmsProbe::KmsProbe(prometheus::Registry& registry)
    : crypto_ops_(prometheus::BuildCounter()
                      .Name("coffer_kms_crypto_operations_total")
                      .Help("Cryptographic operations served, by operation and result")
                      .Register(registry)),
      keys_(prometheus::BuildGauge()
                .Name("coffer_kms_keys")
                .Help("Keys in the keystore, by state")
                .Register(registry)),
      maintenance_(prometheus::BuildCounter()
                       .Name("coffer_kms_maintenance_runs_total")
                       .Help("Runs of the deletion and rotation sweeper, by result")
                       .Register(registry)) {}

void KmsProbe::CryptoOperation(const std::string& operation, bool ok) {
  crypto_ops_.Add({{"operation", operation}, {"result", ok ? "success" : "failure"}}).Increment();
}

void KmsProbe::SetKeyCounts(const std::map<v1::KeyState, int>& counts) {
  for (v1::KeyState state :
       {v1::KEY_STATE_ENABLED, v1::KEY_STATE_DISABLED, v1::KEY_STATE_PENDING_DELETION}) {
    auto it = counts.find(state);
    std::string name = v1::KeyState_Name(state).substr(10);  // strip KEY_STATE_
    keys_.Add({{"state", name}}).Set(it == counts.end() ? 0 : it->second);
  }
}

void KmsProbe::MaintenanceRun(bool ok) {
  maintenance_.Add({{"result", ok ? "success" : "failure"}}).Increment();
}

}  // namespace coffer::kms
