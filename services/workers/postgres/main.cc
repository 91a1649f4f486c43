// coffer-worker-postgres: the built-in PostgreSQL rotation worker.
//
//   coffer-worker-postgres --strategy=single-user --store_address=localhost:7702
//       --tls_ca=var/certs/ca.crt --tls_cert=var/certs/worker-postgres.crt
//       --tls_key=var/certs/worker-postgres.key [--pg_ssl_root_cert=db-ca.crt]
//
// Serves coffer.rotation.v1.RotationWorker on --listen_address (default
// 127.0.0.1:7711), metrics on --metrics_address (default 127.0.0.1:9711).
#include <unistd.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "libs/worker/run_worker.h"
#include "services/workers/postgres/postgres_rotation.h"

ABSL_FLAG(std::string, strategy, "single-user", "single-user or alternating-users");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(5),
          "libpq connect_timeout of every database login");
ABSL_FLAG(int, password_length, 32, "length of generated passwords (1-4096)");
ABSL_FLAG(std::string, pg_ssl_root_cert, "",
          "CA file (PEM) for the database servers' certificates; when set, a secret without "
          "\"sslmode\" connects with verify-full, otherwise with require");

int main(int argc, char** argv) {
  return coffer::worker::RunWorker(
      argc, argv, {"worker-postgres", 7711, 9711},
      []() -> absl::StatusOr<std::unique_ptr<coffer::worker::RotationHandler>> {
        absl::StatusOr<coffer::workers::PostgresStrategy> strategy =
            coffer::workers::ParseStrategy(absl::GetFlag(FLAGS_strategy));
        if (!strategy.ok()) return strategy.status();
        const int length = absl::GetFlag(FLAGS_password_length);
        if (length < 1 || length > 4096) {
          return absl::InvalidArgumentError("--password_length must be 1-4096");
        }
        const std::string ca = absl::GetFlag(FLAGS_pg_ssl_root_cert);
        if (!ca.empty() && ::access(ca.c_str(), R_OK) != 0) {
          return absl::InvalidArgumentError(absl::StrCat("--pg_ssl_root_cert: cannot read ", ca));
        }
        coffer::workers::PostgresRotationOptions options;
        options.ssl_root_cert = ca;
        options.strategy = *strategy;
        options.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
        options.password_length = length;
        return std::make_unique<coffer::workers::PostgresRotation>(std::move(options));
      });
}
