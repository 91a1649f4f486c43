// health.h: grpc.health.v1.Health served by Coffer itself.
//
// One HealthStatus is shared by the mTLS server and the optional
// plaintext health-only listener, so both report the same thing.
//
//   coffer::rpc::HealthStatus health;
//   health.Set("coffer.kms.v1.KeyManagement", false);   // NOT_SERVING
//   ... keystore unsealed ...
//   health.Set("coffer.kms.v1.KeyManagement", true);    // SERVING
//   health.Set("", true);                               // server overall
//
// Check on an unknown service is NOT_FOUND; Watch streams the current
// status and every change until the call ends or Shutdown() is called.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace coffer::rpc {

class HealthStatus final : public grpc::health::v1::Health::CallbackService {
 public:
  // At most `max_watchers` Watch streams are open at once (on the mTLS and
  // the plaintext health-only port together); more get RESOURCE_EXHAUSTED:
  // anyone who reaches the health-only port may open them.
  explicit HealthStatus(size_t max_watchers = 1000);
  ~HealthStatus() override;

  void Set(const std::string& service, bool serving);
  // Current status; SERVICE_UNKNOWN for a service never Set.
  grpc::health::v1::HealthCheckResponse::ServingStatus Get(const std::string& service) const;
  // Every service NOT_SERVING from now on and open Watch streams end.
  void Shutdown();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  class Watcher;
  // Called from a Watcher's OnDone.
  void RemoveWatcher(Watcher* watcher);
  const size_t max_watchers_;
  mutable absl::Mutex mu_;
  std::map<std::string, bool> status_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::multimap<std::string, Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::rpc
