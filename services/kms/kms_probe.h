// kms_probe.h: coffer-kms's domain metrics in one place (Redpanda's probe
// pattern), so metric code stays out of the key store and the handlers.
//
//   KmsProbe probe(*metrics->registry());
//   probe.CryptoOperation("Encrypt", /*ok=*/true);
//   probe.SetKeyCounts(store.CountKeysByState());
//
// Labels are bounded: operation names, results and key states only.
#pragma once

#include <map>
#include <string>

#include "coffer/kms/v1/kms.pb.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Gauge;
}  // namespace prometheus

namespace coffer::kms {

class KmsProbe {
 public:
  explicit KmsProbe(prometheus::Registry& registry);

  // coffer_kms_crypto_operations_total{operation,result="success"|"failure"}
  void CryptoOperation(const std::string& operation, bool ok);
  // coffer_kms_keys{state}
  void SetKeyCounts(const std::map<v1::KeyState, int>& counts);
  // coffer_kms_maintenance_runs_total{result}
  void MaintenanceRun(bool ok);

 private:
  prometheus::Family<prometheus::Counter>& crypto_ops_;
  prometheus::Family<prometheus::Gauge>& keys_;
  prometheus::Family<prometheus::Counter>& maintenance_;
};

}  // namespace coffer::kms
