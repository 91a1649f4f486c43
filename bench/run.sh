#!/usr/bin/env bash
# bench/run.sh: Coffer's performance, measured as ratios against baselines
# run side by side in the same run (docs/performance.md). Builds what it
# needs, makes a temp dir and a development PKI, starts coffer-kms and
# coffer-store (dev mode, the development policy, the load generator calling
# as admin/cofferctl), coffer-gateway (with an access key of admin/cofferctl),
# the echo server and etcd (TLS with client certificates, data on the same
# disk) as the scenarios need them (for the *_on_etcd scenarios also a
# coffer-kms and coffer-store running on that etcd, --storage=etcd:...),
# runs each scenario with bench/coffer_load, and prints the machine, every
# command and a markdown table: scenario | Coffer | baseline | ratio | goal | met?
#
#   bench/run.sh                       # every scenario, 10 s each (about 10 minutes)
#   bench/run.sh --quick               # 2 s each: a smoke run
#   bench/run.sh --only='get_secret|etcd' --duration=20s
#   bench/run.sh --list                # the scenario names
#
# Options: --duration=10s (each measurement), --warmup=2s, --quick (2 s, 1 s
# warm-up), --only=REGEX (scenario names, see --list), --in_flight=64,
# --value_size=200, --threads=2 and --channels=2 (coffer_load's client
# threads and connections), --results=FILE (JSON; default
# build/bench-results/run-<time>.json), --no_build, --build_dir=DIR, --keep
# (leave the temp dir). Exit status 1 when a measurement failed (errors,
# a process that did not start); goals not met do not fail the run.
# Every process started here is stopped on exit, failures included.
#
# Scale (1,000,000 secrets: start-up, paging, memory; 100,000 parameters
# under one path; the rotator with 1,000,000 schedules; PostgreSQL rotations
# end to end) is bench/scale.sh, run on its own (docs/performance.md, "Scale").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${COFFER_BUILD:-$ROOT/build}"
DURATION=10s
WARMUP=2s
QUICK=0
ONLY=""
IN_FLIGHT=64
VALUE_SIZE=200
THREADS=2
CHANNELS=2
RESULTS=""
DO_BUILD=1
KEEP=0
LIST=0

SCENARIOS=(
  echo echo_executor
  get_secret_1 get_secret_1000 get_secret_nocache get_secret_vs_etcd get_secret_on_etcd
  get_secret_gateway
  kms_decrypt kms_generate_data_key
  get_parameter_string get_parameter_secure get_parameters_by_path
  put_parameter_vs_etcd put_parameter_on_etcd create_secret_vs_etcd put_secret_value_vs_etcd
  put_secret_value_on_etcd put_secret_value_one
  versions guard rocksdb
)

for arg in "$@"; do
  case "$arg" in
    --duration=*) DURATION="${arg#*=}" ;;
    --warmup=*) WARMUP="${arg#*=}" ;;
    --quick) QUICK=1 ;;
    --only=*) ONLY="${arg#*=}" ;;
    --in_flight=*) IN_FLIGHT="${arg#*=}" ;;
    --value_size=*) VALUE_SIZE="${arg#*=}" ;;
    --threads=*) THREADS="${arg#*=}" ;;
    --channels=*) CHANNELS="${arg#*=}" ;;
    --results=*) RESULTS="${arg#*=}" ;;
    --no_build) DO_BUILD=0 ;;
    --build_dir=*) BUILD="${arg#*=}" ;;
    --keep) KEEP=1 ;;
    --list) LIST=1 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
if [[ $LIST -eq 1 ]]; then printf '%s\n' "${SCENARIOS[@]}"; exit 0; fi
if [[ $QUICK -eq 1 ]]; then
  DURATION=2s
  WARMUP=1s
fi
SECONDS_EACH=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; printf "%d", (n < 1 ? 1 : n) }')
[[ -n "$RESULTS" ]] || RESULTS="$BUILD/bench-results/run-$(date -u +%Y%m%dT%H%M%SZ).json"
mkdir -p "$(dirname "$RESULTS")"

selected() { [[ -z "$ONLY" ]] || [[ "$1" =~ $ONLY ]]; }

# ---------------------------------------------------------------------------
# Build (one build at a time on this machine: the lock is shared).
if [[ $DO_BUILD -eq 1 ]]; then
  echo "==> building in $BUILD" >&2
  (
    flock 9
    if [[ ! -f "$BUILD/build.ninja" ]]; then
      cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
    fi
    cmake --build "$BUILD" --target coffer-kms coffer-store coffer_load echo_server rocksdb_put \
      guard_bench coffer-gateway cofferctl -- -j"$(nproc)" >&2
  ) 9>/tmp/coffer-build.lock
fi
NEEDED=(services/kms/coffer-kms services/store/coffer-store bench/coffer_load bench/echo_server
        bench/rocksdb_put bench/guard_bench)
selected get_secret_gateway && NEEDED+=(services/gateway/coffer-gateway tools/cofferctl/cofferctl)
for bin in "${NEEDED[@]}"; do
  [[ -x "$BUILD/$bin" ]] || { echo "run.sh: $BUILD/$bin is not built" >&2; exit 2; }
done

# etcd (Debian's etcd-server) when a selected scenario compares with it.
for s in get_secret_vs_etcd put_parameter_vs_etcd create_secret_vs_etcd put_secret_value_vs_etcd \
         get_secret_on_etcd put_parameter_on_etcd put_secret_value_on_etcd rocksdb; do
  if selected "$s" && ! command -v etcd >/dev/null; then
    source "$ROOT/scripts/lib.sh"
    coffer_install_packages etcd-server >&2
    break
  fi
done
ETCD_VERSION=$(etcd --version 2>/dev/null | sed -n '1s/etcd Version: //p' || true)

# ---------------------------------------------------------------------------
# The run's directory: on a real disk (etcd and the stores fsync there).
BASE="${COFFER_BENCH_TMP:-${TMPDIR:-/tmp}}"
if [[ "$(stat -f -c %T "$BASE")" == tmpfs ]]; then
  BASE="$BUILD"
  echo "run.sh: ${TMPDIR:-/tmp} is a tmpfs; the run's data goes under $BUILD" >&2
fi
RUN="$(mktemp -d "$BASE/coffer-bench.XXXXXX")"
PKI="$RUN/pki"
mkdir -p "$RUN/log" "$RUN/results" "$RUN/data" "$RUN/audit"
chmod 700 "$RUN/data" "$RUN/audit"

declare -A PIDS=()
FAILED=0
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null || true; done
  for name in "${!PIDS[@]}"; do wait "${PIDS[$name]}" 2>/dev/null || true; done
  if [[ $KEEP -eq 1 ]]; then
    echo "run.sh: kept $RUN" >&2
  else
    rm -rf "$RUN"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "run.sh: $*" >&2; exit 1; }

# The dev PKI, plus a server certificate for etcd from the same CA
# (SPIFFE ID spiffe://coffer.local/bench/etcd, localhost and 127.0.0.1).
"$ROOT/deploy/certs/make-certs.sh" "$PKI" >/dev/null 2>&1 || die "make-certs.sh failed"
(
  umask 077
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/etcd.key" 2>/dev/null
  openssl req -new -sha256 -key "$PKI/etcd.key" -subj "/O=Coffer development/CN=etcd" \
    -out "$RUN/etcd.csr"
  cat >"$RUN/etcd.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = URI:spiffe://coffer.local/bench/etcd, DNS:localhost, DNS:etcd, IP:127.0.0.1
EXT
  openssl x509 -req -sha256 -days 2 -in "$RUN/etcd.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$RUN/etcd.ext" -out "$PKI/etcd.crt" 2>/dev/null
) || die "cannot make the etcd certificate"
install -m 0600 "$ROOT/deploy/policies/development.json" "$RUN/policy.json"
if selected get_secret_gateway && [[ ! -s "$PKI/gateway.crt" ]]; then
  die "make-certs.sh made no gateway certificate (get_secret_gateway needs $PKI/gateway.crt)"
fi

# ---------------------------------------------------------------------------
# Processes.

start_proc() {  # start_proc <name> <command...>: in the background, logged
  local name=$1
  shift
  "$@" >>"$RUN/log/$name.log" 2>&1 &
  PIDS[$name]=$!
  echo "\$ $*" >>"$RUN/commands.txt"
}

stop_proc() {  # stop_proc <name>
  local pid="${PIDS[$1]:-}"
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$1]"
}

running() { [[ -n "${PIDS[$1]:-}" ]] && kill -0 "${PIDS[$1]}" 2>/dev/null; }

wait_ports_file() {  # wait_ports_file <name> <file>: prints the gRPC port
  for _ in $(seq 1 300); do
    if [[ -s "$2" ]]; then
      sed -n 's/.*"grpc":\([0-9]*\).*/\1/p' "$2"
      return 0
    fi
    running "$1" || break
    sleep 0.1
  done
  tail -n 20 "$RUN/log/$1.log" >&2 || true
  die "$1 did not start (log above)"
}

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

TLS_OF() {  # TLS_OF <identity>: the TLS flags of a Coffer process
  echo "--tls_ca=$PKI/ca.crt --tls_cert=$PKI/$1.crt --tls_key=$PKI/$1.key"
}
GUARD=(--policy_file="$RUN/policy.json")

declare -A KMS_PORTS=()
# start_kms <name> <extra flags...>: a coffer-kms in dev mode (its root key
# made under its --data_dir on first start, and kept there on a restart).
start_kms() {
  local name=$1
  shift
  stop_proc "$name"
  rm -f "$RUN/$name.ports"
  start_proc "$name" "$BUILD/services/kms/coffer-kms" --dev_mode --data_dir="$RUN/data/$name" \
    --listen_address=127.0.0.1:0 --metrics_address= --ports_file="$RUN/$name.ports" \
    --log_level=warn "${GUARD[@]}" --audit_dir="$RUN/audit/$name" $(TLS_OF kms) "$@"
  KMS_PORTS[$name]=$(wait_ports_file "$name" "$RUN/$name.ports") || die "$name did not start"
}
KMS_PORT=""
need_kms() {
  running kms && return 0
  start_kms kms
  KMS_PORT=${KMS_PORTS[kms]}
}
# The process a recipe's load goes to (checked when a measurement fails).
TARGET_PROC=""

declare -A STORE_PORT=()
# start_store <name> <extra flags...>: a store with a fresh data directory,
# on the KMS "kms" (STORE_KMS=<name>: on that KMS, already started).
start_store() {
  local name=$1 kms=${STORE_KMS:-kms}
  shift
  [[ "$kms" != kms ]] || need_kms
  stop_proc "$name"
  rm -rf "$RUN/data/$name" "$RUN/$name.ports"
  start_proc "$name" "$BUILD/services/store/coffer-store" --data_dir="$RUN/data/$name" \
    --kms_address="localhost:${KMS_PORTS[$kms]}" --listen_address=127.0.0.1:0 --metrics_address= \
    --ports_file="$RUN/$name.ports" --log_level=warn "${GUARD[@]}" \
    --audit_dir="$RUN/audit/$name" $(TLS_OF store) "$@"
  STORE_PORT[$name]=$(wait_ports_file "$name" "$RUN/$name.ports") || die "$name did not start"
  TARGET_PROC=$name
}
# The read stores, started once: data-key cache on (and room for the
# versions scenario's 5,001 versions), and off.
need_store() {
  running store || start_store store --max_versions_per_secret=5001
  TARGET_PROC=store
}
need_store_nocache() {
  running store-nocache || start_store store-nocache --dek_cache_max_entries=0 --dek_cache_ttl=0s
  TARGET_PROC=store-nocache
}

declare -A ECHO_PORT=()
need_echo() {  # need_echo <name> <extra flags...>
  local name=$1
  shift
  TARGET_PROC=$name
  running "$name" && return 0
  rm -f "$RUN/$name.ports"
  start_proc "$name" "$BUILD/bench/echo_server" --listen_address=127.0.0.1:0 --metrics_address= \
    --ports_file="$RUN/$name.ports" --log_level=warn $(TLS_OF store) "$@"
  ECHO_PORT[$name]=$(wait_ports_file "$name" "$RUN/$name.ports") || die "$name did not start"
}

ETCD_PORT=""
# start_etcd: a fresh single-member etcd, TLS with client certificates.
start_etcd() {
  stop_on_etcd
  stop_proc etcd
  rm -rf "$RUN/data/etcd"
  ETCD_PORT=$(free_port)
  local peer
  peer=$(free_port)
  start_proc etcd etcd --name=bench --data-dir="$RUN/data/etcd" \
    --listen-client-urls="https://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="https://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer" \
    --initial-cluster="bench=http://127.0.0.1:$peer" \
    --client-cert-auth --trusted-ca-file="$PKI/ca.crt" \
    --cert-file="$PKI/etcd.crt" --key-file="$PKI/etcd.key" \
    --logger=zap --log-level=error
  TARGET_PROC=etcd
  for _ in $(seq 1 100); do
    if "$BUILD/bench/coffer_load" --target="127.0.0.1:$ETCD_PORT" $(TLS_OF cofferctl) \
        --op=etcd_put --count=1 --warmup=0s --in_flight=1 --name_prefix=bench/ready- \
        --json_out=/dev/null >/dev/null 2>&1; then
      return 0
    fi
    running etcd || break
    sleep 0.2
  done
  tail -n 20 "$RUN/log/etcd.log" >&2 || true
  die "etcd did not start (log above)"
}
need_etcd() { running etcd || start_etcd; }

# Coffer on etcd: coffer-kms "kms-etcd" and coffer-store "store-etcd" with
# --storage=etcd:<the bench's etcd>, each with its own client certificate
# (etcd checks it: --client-cert-auth), both under a new --etcd_prefix, so
# they start on an empty keyspace (the KMS's root key stays in its
# --data_dir: dev mode). start_etcd stops them: they are bound to one etcd.
ON_ETCD_RUNS=0
etcd_storage_flags() {  # etcd_storage_flags <identity> <prefix>
  echo "--storage=etcd:127.0.0.1:$ETCD_PORT --etcd_ca=$PKI/ca.crt --etcd_cert=$PKI/$1.crt" \
    "--etcd_key=$PKI/$1.key --etcd_prefix=$2"
}
start_on_etcd() {  # start_on_etcd <extra store flags...>
  need_etcd
  ON_ETCD_RUNS=$((ON_ETCD_RUNS + 1))
  local prefix="${RUN##*/}-$ON_ETCD_RUNS/"
  stop_proc store-etcd
  start_kms kms-etcd $(etcd_storage_flags kms "$prefix")
  STORE_KMS=kms-etcd start_store store-etcd $(etcd_storage_flags store "$prefix") "$@"
}
stop_on_etcd() { stop_proc store-etcd; stop_proc kms-etcd; }
need_kms_target() { need_kms; TARGET_PROC=kms; }

# coffer-gateway in front of the read store and the KMS, with the per-key
# rate limit out of the way and an HTTPS thread for every connection the
# load makes (HTTP/1.1: one connection per call in flight); and an access
# key of admin/cofferctl for the load to sign with, made by cofferctl as a
# user would (the secret goes to a 0600 file, never onto a command line).
GATEWAY_PORT=""
need_gateway() {
  need_store
  TARGET_PROC=gateway
  if [[ ! -s "$RUN/aws-key" ]]; then
    local ctl=("$BUILD/tools/cofferctl/cofferctl" access-keys create
               --identity spiffe://coffer.local/admin/cofferctl --description "bench/run.sh"
               --address "localhost:$KMS_PORT" --output text)
    echo "\$ ${ctl[*]} > $RUN/aws-key" | tee -a "$RUN/commands.txt"
    (umask 077; COFFER_CA="$PKI/ca.crt" COFFER_CERT="$PKI/cofferctl.crt" \
       COFFER_KEY="$PKI/cofferctl.key" "${ctl[@]}" >"$RUN/aws-key") ||
      die "cofferctl access-keys create failed"
  fi
  running gateway && return 0
  rm -f "$RUN/gateway.ports"
  start_proc gateway "$BUILD/services/gateway/coffer-gateway" --listen_address=127.0.0.1:0 \
    --metrics_address= --ports_file="$RUN/gateway.ports" --log_level=warn \
    --store_address="localhost:${STORE_PORT[store]}" --kms_address="localhost:$KMS_PORT" \
    --requests_per_second=1e9 --burst=1e9 --http_threads="$IN_FLIGHT" $(TLS_OF gateway)
  GATEWAY_PORT=$(wait_ports_file gateway "$RUN/gateway.ports") || die "gateway did not start"
}

# ---------------------------------------------------------------------------
# Measurements: each id is measured once per run (several rows may use it).

LOAD_COMMON=(--in_flight="$IN_FLIGHT" --value_size="$VALUE_SIZE" --duration="$DURATION"
             --warmup="$WARMUP" --threads="$THREADS" --channels="$CHANNELS")

load() {  # load <id> <target> <expected spiffe id> <coffer_load flags...>
  local id=$1 target=$2 pin=$3
  shift 3
  local cmd=("$BUILD/bench/coffer_load" --label="$id" --target="$target" $(TLS_OF cofferctl)
             --expected_spiffe_id="$pin" "${LOAD_COMMON[@]}" "$@"
             --json_out="$RUN/results/$id.json")
  echo "\$ ${cmd[*]}" | tee -a "$RUN/commands.txt"
  # A run with failed calls still writes its result: rows show the errors.
  "${cmd[@]}" 2> >(tee -a "$RUN/log/coffer_load.log" >&2) | sed 's/^/    /'
}

STORE_PIN=spiffe://coffer.local/store
KMS_PIN=spiffe://coffer.local/kms
ETCD_PIN=spiffe://coffer.local/bench/etcd

# measure <id>: runs the id's recipe unless done. When the measurement fails
# because its server exited (a crash, or something else on the machine
# killing it), says so, restarts it and measures once more.
measure() {
  local id=$1 attempt ok
  [[ -s "$RUN/results/$id.json" || -e "$RUN/results/$id.tried" ]] && return 0
  touch "$RUN/results/$id.tried"
  for attempt in 1 2; do
    TARGET_PROC=""
    ok=1
    recipe "$id" || ok=0
    [[ $ok -eq 0 ]] || return 0
    if [[ -n "$TARGET_PROC" ]] && ! running "$TARGET_PROC"; then
      echo "run.sh: $TARGET_PROC EXITED during $id; its log:" >&2
      tail -n 10 "$RUN/log/$TARGET_PROC.log" >&2 || true
      if [[ $attempt -eq 1 ]]; then
        echo "run.sh: restarting $TARGET_PROC and measuring $id again" >&2
        unset "PIDS[$TARGET_PROC]"
        rm -f "$RUN/results/$id.json"
        continue
      fi
    fi
    break
  done
  FAILED=1
  echo "run.sh: MEASUREMENT FAILED: $id (see the errors above)" >&2
}

recipe() {  # recipe <id>: starts what <id> needs and measures it
  local id=$1
  case "$id" in
    echo | echo_for_*)
      # echo_for_<id>: the echo ceiling measured right before <id>, so that
      # a change in the machine's other load between the two counts little.
      need_echo echo
      load "$id" "localhost:${ECHO_PORT[echo]}" "$STORE_PIN" --op=echo ;;
    echo_executor)
      need_echo echo-executor --via_executor
      load echo_executor "localhost:${ECHO_PORT[echo-executor]}" "$STORE_PIN" --op=echo ;;
    gsv_1)
      need_store
      load gsv_1 "localhost:${STORE_PORT[store]}" "$STORE_PIN" --op=get_secret_value --keys=1 \
        --setup ;;
    gsv_1000)
      need_store
      load gsv_1000 "localhost:${STORE_PORT[store]}" "$STORE_PIN" --op=get_secret_value \
        --keys=1000 --setup ;;
    gw_gsv_1)
      # The secret gsv_1 reads (--setup creates it through the gateway when
      # gsv_1 has not): AWS GetSecretValue, HTTPS with keep-alive, one
      # connection and thread per call in flight, SigV4 per request.
      need_gateway
      load gw_gsv_1 "localhost:$GATEWAY_PORT" "" --op=aws_get_secret_value --keys=1 --setup \
        --aws_key_file="$RUN/aws-key" ;;
    gsv_nocache)
      need_store_nocache
      load gsv_nocache "localhost:${STORE_PORT[store-nocache]}" "$STORE_PIN" \
        --op=get_secret_value --keys=1 --setup ;;
    etcd_range_1000)
      need_etcd
      load etcd_range_1000 "127.0.0.1:$ETCD_PORT" "$ETCD_PIN" --op=etcd_range --keys=1000 --setup ;;
    kms_decrypt)
      need_kms_target
      load kms_decrypt "localhost:$KMS_PORT" "$KMS_PIN" --op=kms_decrypt --keys=1 --setup ;;
    kms_generate_data_key)
      need_kms_target
      load kms_generate_data_key "localhost:$KMS_PORT" "$KMS_PIN" --op=kms_generate_data_key \
        --setup ;;
    gp_string)
      need_store
      load gp_string "localhost:${STORE_PORT[store]}" "$STORE_PIN" --op=get_parameter \
        --param_type=String --keys=1000 --setup ;;
    gp_secure)
      need_store
      load gp_secure "localhost:${STORE_PORT[store]}" "$STORE_PIN" --op=get_parameter \
        --param_type=SecureString --with_decryption --keys=1000 --setup ;;
    gpbp)
      need_store
      load gpbp "localhost:${STORE_PORT[store]}" "$STORE_PIN" --op=get_parameters_by_path \
        --param_type=String --keys=100 --setup ;;
    # Writes: each on a fresh store or etcd.
    pp_distinct)
      start_store store-write
      load pp_distinct "localhost:${STORE_PORT[store-write]}" "$STORE_PIN" --op=put_parameter \
        --param_type=String --keys=0 ;;
    etcd_put_distinct)
      start_etcd
      load etcd_put_distinct "127.0.0.1:$ETCD_PORT" "$ETCD_PIN" --op=etcd_put --keys=0 ;;
    etcd_put_1000)
      start_etcd
      load etcd_put_1000 "127.0.0.1:$ETCD_PORT" "$ETCD_PIN" --op=etcd_put --keys=1000 ;;
    cs_distinct)
      start_store store-write
      load cs_distinct "localhost:${STORE_PORT[store-write]}" "$STORE_PIN" --op=create_secret ;;
    psv_1000)
      start_store store-write
      load psv_1000 "localhost:${STORE_PORT[store-write]}" "$STORE_PIN" --op=put_secret_value \
        --keys=1000 --setup ;;
    psv_one)
      # Every put adds a version: room for all of them.
      start_store store-write --max_versions_per_secret=10000000
      load psv_one "localhost:${STORE_PORT[store-write]}" "$STORE_PIN" --op=put_secret_value \
        --keys=1 --setup --name_prefix=bench/one- ;;
    # Coffer on etcd: a new kms-etcd + store-etcd pair for each, on the
    # etcd that is running (the baseline's, measured right before).
    gsv_1000_on_etcd)
      start_on_etcd
      load gsv_1000_on_etcd "localhost:${STORE_PORT[store-etcd]}" "$STORE_PIN" \
        --op=get_secret_value --keys=1000 --setup ;;
    pp_distinct_on_etcd)
      start_on_etcd
      load pp_distinct_on_etcd "localhost:${STORE_PORT[store-etcd]}" "$STORE_PIN" \
        --op=put_parameter --param_type=String --keys=0 ;;
    psv_1000_on_etcd)
      start_on_etcd
      load psv_1000_on_etcd "localhost:${STORE_PORT[store-etcd]}" "$STORE_PIN" \
        --op=put_secret_value --keys=1000 --setup ;;
    gsv_busy)
      need_store
      load gsv_busy "localhost:${STORE_PORT[store]}" "$STORE_PIN" --op=get_secret_value \
        --keys=1 --setup --setup_puts=5000 --name_prefix=bench/busy- ;;
    gsv_fresh)
      need_store
      load gsv_fresh "localhost:${STORE_PORT[store]}" "$STORE_PIN" --op=get_secret_value \
        --keys=1 --setup --name_prefix=bench/fresh- ;;
    rocksdb_put)
      local cmd=("$BUILD/bench/rocksdb_put" --dir="$RUN/data/rocksdb" --threads="$IN_FLIGHT"
                 --duration="$DURATION" --warmup="$WARMUP" --value_size="$VALUE_SIZE"
                 --json_out="$RUN/results/rocksdb_put.json")
      echo "\$ ${cmd[*]}" | tee -a "$RUN/commands.txt"
      local status=0
      "${cmd[@]}" | sed 's/^/    /' || status=1
      rm -rf "$RUN/data/rocksdb"
      return $status ;;
    *) die "no recipe for $id" ;;
  esac
}

# ---------------------------------------------------------------------------
# Rows.

field() {  # field <id> <json field>: a number from a result, or empty
  [[ -s "$RUN/results/$1.json" ]] || return 0
  sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" "$RUN/results/$1.json"
}

ROWS=()       # markdown lines
ROWS_JSON=()  # the same as JSON objects
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

add_row() {  # add_row <scenario> <coffer> <baseline> <ratio> <goal> <met>
  ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 |")
  ROWS_JSON+=("{\"scenario\":$(json_str "$1"),\"coffer\":$(json_str "$2"),\"baseline\":$(json_str "$3"),\"ratio\":$(json_str "$4"),\"goal\":$(json_str "$5"),\"met\":$(json_str "$6")}")
}

rate() { awk -v x="$1" 'BEGIN { printf "%.0f/s", x }'; }
# errors_of <id>: " (N errors)" when calls of the measurement failed.
errors_of() {
  local e
  e=$(field "$1" errors)
  [[ -n "$e" && "$e" != 0 ]] && echo " ($e errors)" || true
}
rate_or_failed() { if [[ -n "$1" ]]; then rate "$1"; else echo FAILED; fi; }
ms() { awk -v x="$1" 'BEGIN { printf "%.2f ms", x }'; }
p99_or_failed() { if [[ -n "$1" ]]; then echo "p99 $(ms "$1")"; else echo FAILED; fi; }

# throughput_row <scenario> <coffer id> <baseline id> <baseline name> <min ratio or ->
# The baseline "echo" is measured right before the Coffer id (echo_for_<id>).
throughput_row() {
  local text=$1 a=$2 b=$3 bname=$4 goal=$5
  [[ "$b" != echo ]] || b="echo_for_$a"
  measure "$b"
  measure "$a"
  local x y
  x=$(field "$a" throughput)
  y=$(field "$b" throughput)
  if [[ -z "$x" || -z "$y" ]]; then
    add_row "$text" "$(rate_or_failed "$x")" "$bname $(rate_or_failed "$y")" "—" \
      "$( [[ "$goal" == - ]] && echo "—" || echo "≥ $goal")" "no (failed)"
    return
  fi
  local ratio met goal_text errors
  ratio=$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.2f", (y > 0 ? x / y : 0) }')
  errors="$(errors_of "$a")$(errors_of "$b")"
  if [[ "$goal" == - ]]; then
    goal_text="—"
    met="—"
  else
    goal_text="≥ $goal"
    met=$(awk -v x="$x" -v y="$y" -v g="$goal" 'BEGIN { print (y > 0 && x / y >= g) ? "yes" : "no" }')
    [[ -z "$errors" ]] || met="no (errors)"
  fi
  add_row "$text" "$(rate "$x")$(errors_of "$a")" "$bname $(rate "$y")$(errors_of "$b")" "$ratio" \
    "$goal_text" "$met"
}

# p99_row <scenario> <coffer id> <baseline id> <baseline name> <max ratio>
p99_row() {
  local text=$1 a=$2 b=$3 bname=$4 goal=$5
  [[ "$b" != echo ]] || b="echo_for_$a"
  measure "$b"
  measure "$a"
  local x y
  x=$(field "$a" p99_ms)
  y=$(field "$b" p99_ms)
  if [[ -z "$x" || -z "$y" ]]; then
    add_row "$text" "$(p99_or_failed "$x")" "$bname $(p99_or_failed "$y")" "—" "≤ $goal" \
      "no (failed)"
    return
  fi
  local ratio met
  ratio=$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.2f", (y > 0 ? x / y : 0) }')
  met=$(awk -v x="$x" -v y="$y" -v g="$goal" 'BEGIN { print (y > 0 && x / y <= g) ? "yes" : "no" }')
  [[ -z "$(errors_of "$a")$(errors_of "$b")" ]] || met="no (errors)"
  add_row "$text" "p99 $(ms "$x")$(errors_of "$a")" "$bname p99 $(ms "$y")$(errors_of "$b")" \
    "$ratio" "≤ $goal" "$met"
}

GUARD_TABLE=""
guard_rows() {
  local rounds=2
  [[ $QUICK -eq 1 ]] && rounds=1
  local cmd=("$BUILD/bench/guard_bench" --seconds="$SECONDS_EACH" --clients="$IN_FLIGHT"
             --rounds="$rounds")
  echo "\$ ${cmd[*]}" | tee -a "$RUN/commands.txt"
  # Into a file, not $(...): a child it left behind could hold the pipe open.
  if ! "${cmd[@]}" >"$RUN/guard_bench.out" 2>>"$RUN/log/guard_bench.log"; then
    FAILED=1
    tail -n 5 "$RUN/log/guard_bench.log" >&2 || true
    add_row "authorization + audit on vs off (guard_bench)" "FAILED" "—" "—" "≥ 0.9" "no (failed)"
    return
  fi
  GUARD_TABLE=$(cat "$RUN/guard_bench.out")
  echo "$GUARD_TABLE" | sed 's/^/    /'
  local line name off on ratio
  while IFS= read -r line; do
    name=$(echo "$line" | awk -F'|' '{ gsub(/^ +| +$/, "", $2); print $2 }')
    off=$(echo "$line" | awk -F'|' '{ gsub(/^ +| +$/, "", $3); print $3 }')
    on=$(echo "$line" | awk -F'|' '{ gsub(/^ +| +$/, "", $4); print $4 }')
    ratio=$(echo "$line" | awk -F'|' '{ gsub(/^ +| +$/, "", $5); print $5 }')
    add_row "$name, authorization + audit on vs off (guard_bench)" "on $on" "off $off" "$ratio" \
      "≥ 0.9" "$(awk -v r="$ratio" 'BEGIN { print (r >= 0.9) ? "yes" : "no" }')"
  done < <(echo "$GUARD_TABLE" | grep -E '^\| (GetSecretValue|PutSecretValue)')
}

# ---------------------------------------------------------------------------
# The run.

{
  echo "# Coffer benchmarks ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo
  echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
    "kernel $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)," \
    "run data on $(df -PT "$RUN" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
  echo "coffer: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)'); etcd: ${ETCD_VERSION:-not installed}"
  echo "each measurement: $DURATION after a $WARMUP warm-up, $IN_FLIGHT calls in flight," \
    "$VALUE_SIZE-byte values, client: $THREADS completion-queue threads, $CHANNELS connections, as admin/cofferctl over mTLS"
  echo
} | tee "$RUN/header.txt"
MACHINE_LINE=$(sed -n 's/^machine: //p' "$RUN/header.txt")

echo "## commands"
echo

if selected echo; then
  measure echo
  x=$(field echo throughput)
  add_row "echo (the ceiling: gRPC + mTLS, no work)" "—" \
    "echo $(rate_or_failed "$x"), p99 $(ms "$(field echo p99_ms)")" "—" "—" "—"
fi
selected echo_executor &&
  throughput_row "echo answered from the call executor (the services' hop off gRPC's threads)" \
    echo_executor echo echo -
if selected get_secret_1; then
  throughput_row "GetSecretValue, 200-byte value, data-key cache on, 1 secret" gsv_1 echo echo 0.8
  p99_row "GetSecretValue, cache on, 1 secret: p99" gsv_1 echo echo 1.25
fi
if selected get_secret_1000; then
  throughput_row "GetSecretValue, cache on, 1,000 secrets" gsv_1000 echo echo 0.8
  p99_row "GetSecretValue, cache on, 1,000 secrets: p99" gsv_1000 echo echo 1.25
fi
selected get_secret_nocache &&
  throughput_row "GetSecretValue, data-key cache off (store → KMS Decrypt every read)" \
    gsv_nocache echo echo 0.4
selected get_secret_vs_etcd &&
  throughput_row "GetSecretValue (1,000 secrets) vs etcd Range (1,000 keys), same value size" \
    gsv_1000 etcd_range_1000 etcd 3
# *_on_etcd: coffer-kms and coffer-store on that same etcd (--storage=etcd),
# against its raw Range / Put; no goal in the spec: reported ("—").
selected get_secret_on_etcd &&
  throughput_row "Coffer on etcd: GetSecretValue (1,000 secrets, cache on) vs etcd Range (1,000 keys)" \
    gsv_1000_on_etcd etcd_range_1000 etcd -
# The gRPC figure is gsv_1's (measured here, right before, unless
# get_secret_1 ran): the same secret, store and machine. Goal 0.3: an AWS
# SDK call may cost about 3 gRPC calls (TLS, HTTP/1.1, JSON and SigV4 on
# both ends, a second hop); why, in docs/performance.md ("Gateway").
selected get_secret_gateway &&
  throughput_row "GetSecretValue via gateway vs gRPC (AWS JSON over HTTPS, SigV4 per request, $IN_FLIGHT connections; 1 secret)" \
    gw_gsv_1 gsv_1 gRPC 0.3
selected kms_decrypt && throughput_row "KMS Decrypt" kms_decrypt echo echo 0.8
selected kms_generate_data_key &&
  throughput_row "KMS GenerateDataKey" kms_generate_data_key echo echo 0.8
selected get_parameter_string &&
  throughput_row "GetParameter, String (1,000 parameters)" gp_string echo echo 0.8
selected get_parameter_secure &&
  throughput_row "GetParameter, SecureString decrypted (1,000 parameters)" gp_secure echo echo 0.8
selected get_parameters_by_path &&
  throughput_row "GetParametersByPath, 10 results" gpbp echo echo 0.5
selected put_parameter_vs_etcd &&
  throughput_row "PutParameter (String, durable), distinct names vs etcd Put, distinct keys" \
    pp_distinct etcd_put_distinct etcd 1.5
selected put_parameter_on_etcd &&
  throughput_row "Coffer on etcd: PutParameter (String), distinct names vs etcd Put, distinct keys" \
    pp_distinct_on_etcd etcd_put_distinct etcd -
selected create_secret_vs_etcd &&
  throughput_row "CreateSecret (durable, a data key each), distinct names vs etcd Put on 1,000 keys" \
    cs_distinct etcd_put_1000 etcd 1.0
selected put_secret_value_vs_etcd &&
  throughput_row "PutSecretValue (durable, a data key per version), 1,000 secrets vs etcd Put on 1,000 keys" \
    psv_1000 etcd_put_1000 etcd 1.0
selected put_secret_value_on_etcd &&
  throughput_row "Coffer on etcd: PutSecretValue, 1,000 secrets vs etcd Put on 1,000 keys" \
    psv_1000_on_etcd etcd_put_1000 etcd -
if selected put_secret_value_one; then
  throughput_row "PutSecretValue, 64 writers on one secret vs on 1,000 secrets" psv_one psv_1000 \
    "1,000 secrets" 0.5
  p99_row "PutSecretValue, one secret: p99 (bounded: ≤ 4 × the 1,000-secret p99)" psv_one psv_1000 \
    "1,000 secrets" 4
fi
selected versions &&
  throughput_row "GetSecretValue of a secret after 5,000 PutSecretValue vs a fresh secret" \
    gsv_busy gsv_fresh "fresh" 0.9
if selected rocksdb; then
  throughput_row "PutSecretValue (1,000 secrets) vs raw RocksDB synced Put (64 threads)" \
    psv_1000 rocksdb_put "RocksDB" -
  throughput_row "etcd Put (1,000 keys) vs raw RocksDB synced Put (64 threads)" \
    etcd_put_1000 rocksdb_put "RocksDB" -
fi
selected guard && guard_rows

TABLE=$(printf '%s\n' "| scenario | Coffer | baseline | ratio | goal | met? |" "|---|---|---|---|---|---|" \
  "${ROWS[@]}")
echo
echo "## results"
echo
cat "$RUN/header.txt" | sed -n '3,5p'
echo
echo "$TABLE"
if [[ -n "$GUARD_TABLE" ]]; then
  echo
  echo "$GUARD_TABLE"
fi

# The JSON results: machine, commands, every measurement, every row.
{
  echo "{"
  echo "  \"time\": $(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)"),"
  echo "  \"machine\": $(json_str "$MACHINE_LINE"),"
  echo "  \"duration\": $(json_str "$DURATION"), \"warmup\": $(json_str "$WARMUP"),"
  echo "  \"in_flight\": $IN_FLIGHT, \"value_size\": $VALUE_SIZE, \"seconds\": $SECONDS,"
  echo "  \"commands\": ["
  sed 's/^\$ //' "$RUN/commands.txt" | while IFS= read -r c; do echo "    $(json_str "$c"),"; done |
    sed '$ s/,$//'
  echo "  ],"
  echo "  \"measurements\": {"
  first=1
  for f in "$RUN"/results/*.json; do
    [[ -s "$f" ]] || continue
    [[ $first -eq 1 ]] || echo ","
    first=0
    printf '    %s: %s' "$(json_str "$(basename "$f" .json)")" "$(cat "$f")"
  done
  echo
  echo "  },"
  echo "  \"rows\": ["
  for i in "${!ROWS_JSON[@]}"; do
    sep=","
    [[ $i -eq $((${#ROWS_JSON[@]} - 1)) ]] && sep=""
    echo "    ${ROWS_JSON[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} >"$RESULTS"
echo
echo "run took $((SECONDS / 60))m$((SECONDS % 60))s; results: $RESULTS"
if [[ $FAILED -ne 0 ]]; then
  echo "run.sh: SOME MEASUREMENTS FAILED (rows marked FAILED; errors above)" >&2
  exit 1
fi
