#!/usr/bin/env bash
# Installs what is missing, builds, makes a development PKI, and starts the
# Coffer stack on loopback with data under ./var. Ctrl-C stops everything.
# Running it again reuses the data and certificates.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

coffer_install_packages "${COFFER_PACKAGES[@]}"
coffer_build

VAR="$COFFER_ROOT/var"
mkdir -p "$VAR/data" "$VAR/log"
chmod 700 "$VAR/data"
coffer_certs "$VAR/certs"

pids=()
stopping=0
stop() {
  stopping=1
  trap - INT TERM EXIT
  echo
  echo "==> stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "==> stopped"
}
trap stop INT TERM EXIT

start() {  # start <name> <binary> <args...>
  local name=$1 bin=$2
  shift 2
  "$COFFER_BUILD/$bin" "$@" 2>>"$VAR/log/$name.log" &
  pids+=($!)
  echo "==> $name started (pid $!, log var/log/$name.log)"
}

wait_for_port() {  # wait_for_port <name> <port>
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "error: $1 did not open port $2; see var/log/$1.log" >&2
  exit 1
}

start kms services/kms/coffer-kms \
  --listen_address=127.0.0.1:7701 --metrics_address=127.0.0.1:9701 \
  --data_dir="$VAR/data/kms" --dev_mode \
  --tls_ca="$VAR/certs/ca.crt" --tls_cert="$VAR/certs/kms.crt" --tls_key="$VAR/certs/kms.key"
wait_for_port kms 7701

start store services/store/coffer-store \
  --listen_address=127.0.0.1:7702 --metrics_address=127.0.0.1:9702 \
  --data_dir="$VAR/data/store" --kms_address=localhost:7701 \
  --tls_ca="$VAR/certs/ca.crt" --tls_cert="$VAR/certs/store.crt" --tls_key="$VAR/certs/store.key"
wait_for_port store 7702

cat <<INFO

Coffer is running on loopback:
  coffer-kms     grpc 127.0.0.1:7701 (mTLS)   metrics http://127.0.0.1:9701/metrics
  coffer-store   grpc 127.0.0.1:7702 (mTLS)   metrics http://127.0.0.1:9702/metrics

Use cofferctl from another shell (it reads ./var/certs by default):
  export PATH="$COFFER_BUILD/tools/cofferctl:\$PATH"
  cofferctl secrets create-secret --name demo/db --secret-string 's3cr3t'
  cofferctl secrets get-secret-value --secret-id demo/db
  cofferctl params put-parameter --name /demo/url --value https://example.test --type STRING
  cofferctl watch params --path / --recursive
  cofferctl kms list-keys

Press Ctrl-C to stop.
INFO

# Wait until a service exits or Ctrl-C arrives.
wait -n "${pids[@]}" || true
if [ "$stopping" = 0 ]; then
  echo "a service exited unexpectedly; see var/log/" >&2
  exit 1
fi
