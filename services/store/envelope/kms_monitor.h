// kms_monitor.h: watches whether coffer-kms answers, so coffer-store can
// report NOT_SERVING while it cannot reach the KMS and SERVING again as soon
// as it can, without a restart.
//
//   KmsMonitor monitor(channel, absl::Seconds(1),
//                      [&](bool up) { health.Set("coffer.secrets.v1.SecretsManager", up); });
//   monitor.Start();   // checks now, then every interval, on its own thread
//   ...
//   monitor.Stop();
//
// A check is grpc.health.v1.Health/Check("coffer.kms.v1.KeyManagement") with
// a short deadline; `on_change` runs on the monitor thread after the first
// check and whenever the answer changes.
#pragma once

#include <functional>
#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace coffer::store {

class KmsMonitor {
 public:
  KmsMonitor(std::shared_ptr<grpc::Channel> channel, absl::Duration interval,
             std::function<void(bool reachable)> on_change);
  ~KmsMonitor();  // Stop()s

  void Start();
  void Stop();
  // The last answer (false before the first check).
  bool reachable() const;
  // One check now, on the caller's thread; does not call on_change.
  bool CheckNow();

 private:
  void Loop();
  // One Health/Check; when `cancellable`, Stop() cancels it if in flight.
  bool Check(bool cancellable);

  std::shared_ptr<grpc::Channel> channel_;
  const absl::Duration interval_;
  std::function<void(bool)> on_change_;
  mutable absl::Mutex mu_;
  bool reachable_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* in_flight_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace coffer::store
