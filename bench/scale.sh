#!/usr/bin/env bash
# bench/scale.sh: Coffer at scale (docs/performance.md, "Scale"). Makes a
# temp dir and a development PKI, starts coffer-kms and coffer-store (as
# bench/run.sh does: dev mode, the development policy, audit on, the load
# calling as admin/cofferctl), coffer-rotator, a private PostgreSQL and the
# PostgreSQL rotation worker as the parts need them, on free loopback ports,
# and measures four parts:
#
#   secrets   N secrets in one store (CreateSecret with a 200-byte value,
#             a KMS data key each; --without_values: none): create time; the store's shutdown and
#             start-up (until DescribeSecret answers, until health SERVING);
#             resident memory; ListSecrets pages (the first, a walk through
#             all N, the deep ones, a selective name filter); DescribeSecret
#             and GetSecretValue on random secrets
#   params    P parameters under one path: PutParameter, then
#             GetParametersByPath (recursive and one level) and
#             DescribeParameters (Path Recursive and OneLevel) through all P
#   rotator   M rotation-enabled secrets (RotateSecret, rotate_immediately
#             false: the next rotation lands in a window 30 days away), then
#             coffer-rotator: start-up until health SERVING (its first full
#             schedule load), resident memory, CPU, and its metrics: M
#             scheduled, none overdue, no rotation started
#   postgres  R PostgreSQL roles, one secret each, rotated end to end by the
#             rotator and the single-user PostgreSQL worker (RotateSecret,
#             rotate now): total time, rotations/s, per rotation request ->
#             finished and lease -> complete (from the store's audit log);
#             then every role logs in with its new AWSCURRENT password and no
#             longer with the old one
#
# and prints the machine, every command and a markdown table of results.
#
#   bench/scale.sh --small                   # 10,000 / 1,000 / 10,000 / 20: under a minute
#   bench/scale.sh                           # 1,000,000 / 100,000 / 1,000,000 / 1,000: 10-11 min
#   bench/scale.sh --only=postgres --rotations=200
#
# Options: --secrets=1000000, --params=100000, --rotation_secrets=N (default
# --secrets; with the secrets part they are its secrets, so at most
# --secrets), --rotations=1000, --only=REGEX (part names above), --small,
# --without_values (create the N secrets without a value: no version, no
# KMS call, about 3 times faster; --secret_values, the default, undoes it),
# --in_flight=64 (the bulk writes), --rotator_concurrency=4 (coffer-rotator
# --concurrency, the worker's --step_threads likewise), --build (build what
# it needs first, under flock /tmp/coffer-build.lock; default: use build/ as
# it is), --build_dir, --keep (leave the temp dir; logs under log/). The
# rotator part alone makes its secrets without values. Exit status 1 when a
# step fails (a call failed, a count is off, a process did not start, a
# login failed). Every process started here is stopped on exit, failures
# included.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${COFFER_BUILD:-$ROOT/build}"
SECRETS=1000000
PARAMS=100000
ROTATION_SECRETS=""
ROTATIONS=1000
ONLY=""
SECRET_VALUES=1
IN_FLIGHT=64
ROTATOR_CONCURRENCY=4
DO_BUILD=0
KEEP=0
PARTS=(secrets params rotator postgres)

for arg in "$@"; do
  case "$arg" in
    --secrets=*) SECRETS="${arg#*=}" ;;
    --params=*) PARAMS="${arg#*=}" ;;
    --rotation_secrets=*) ROTATION_SECRETS="${arg#*=}" ;;
    --rotations=*) ROTATIONS="${arg#*=}" ;;
    --only=*) ONLY="${arg#*=}" ;;
    --small) SECRETS=10000; PARAMS=1000; ROTATIONS=20 ;;
    --secret_values) SECRET_VALUES=1 ;;
    --without_values) SECRET_VALUES=0 ;;
    --in_flight=*) IN_FLIGHT="${arg#*=}" ;;
    --rotator_concurrency=*) ROTATOR_CONCURRENCY="${arg#*=}" ;;
    --build) DO_BUILD=1 ;;
    --build_dir=*) BUILD="${arg#*=}" ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,48p' "$0"; exit 0 ;;
    *) echo "scale.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$ROTATION_SECRETS" ]] || ROTATION_SECRETS=$SECRETS
for n in "$SECRETS" "$PARAMS" "$ROTATION_SECRETS" "$ROTATIONS" "$IN_FLIGHT" "$ROTATOR_CONCURRENCY"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "scale.sh: counts must be positive integers" >&2; exit 2; }
done
selected() { [[ -z "$ONLY" ]] || [[ "$1" =~ $ONLY ]]; }
if selected secrets && selected rotator && ((ROTATION_SECRETS > SECRETS)); then
  echo "scale.sh: --rotation_secrets must be at most --secrets (the rotator part uses those)" >&2
  exit 2
fi

# ---------------------------------------------------------------------------
# Build (only with --build; one build at a time on this machine).
TARGETS=(coffer-kms coffer-store coffer-rotator coffer-worker-postgres coffer_load scale_probe)
if [[ $DO_BUILD -eq 1 ]]; then
  echo "==> building in $BUILD" >&2
  (
    flock 9
    [[ -f "$BUILD/build.ninja" ]] ||
      cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
    cmake --build "$BUILD" --target "${TARGETS[@]}" -- -j2 >&2
  ) 9>/tmp/coffer-build.lock
fi
KMS_BIN="$BUILD/services/kms/coffer-kms"
STORE_BIN="$BUILD/services/store/coffer-store"
ROTATOR_BIN="$BUILD/services/rotator/coffer-rotator"
WORKER_BIN="$BUILD/services/workers/postgres/coffer-worker-postgres"
LOAD_BIN="$BUILD/bench/coffer_load"
PROBE_BIN="$BUILD/bench/scale_probe"
for bin in "$KMS_BIN" "$STORE_BIN" "$ROTATOR_BIN" "$WORKER_BIN" "$LOAD_BIN" "$PROBE_BIN"; do
  [[ -x "$bin" ]] || { echo "scale.sh: $bin is not built (use --build)" >&2; exit 2; }
done
PG_BIN=""
if selected postgres; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n "$PG_BIN" && -x "$PG_BIN/initdb" ]] ||
    { echo "scale.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
  command -v psql >/dev/null || { echo "scale.sh: psql is not installed" >&2; exit 2; }
fi

# ---------------------------------------------------------------------------
# The run's directory: on a real disk (the stores fsync there).
BASE="${COFFER_BENCH_TMP:-${TMPDIR:-/tmp}}"
if [[ "$(stat -f -c %T "$BASE")" == tmpfs ]]; then
  BASE="$BUILD"
  echo "scale.sh: ${TMPDIR:-/tmp} is a tmpfs; the run's data goes under $BUILD" >&2
fi
RUN="$(mktemp -d "$BASE/coffer-scale.XXXXXX")"
PKI="$RUN/pki"
PGDIR=""
mkdir -p "$RUN/log" "$RUN/results" "$RUN/data" "$RUN/audit"
chmod 700 "$RUN/data" "$RUN/audit"

declare -A PIDS=()
PG_PID=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null || true; done
  # PostgreSQL runs under runuser: its postmaster is told directly (fast
  # shutdown), also when the script failed before reading its PID.
  if [[ -z "$PG_PID" && -n "$PGDIR" && -s "$PGDIR/data/postmaster.pid" ]]; then
    PG_PID=$(head -n 1 "$PGDIR/data/postmaster.pid")
  fi
  if [[ -n "$PG_PID" ]]; then kill -INT "$PG_PID" 2>/dev/null || true; fi
  for name in "${!PIDS[@]}"; do wait "${PIDS[$name]}" 2>/dev/null || true; done
  if [[ -n "$PG_PID" ]]; then
    for _ in $(seq 1 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  if [[ $KEEP -eq 1 ]]; then
    echo "scale.sh: kept $RUN${PGDIR:+ and $PGDIR}" >&2
  else
    rm -rf "$RUN"
    [[ -z "$PGDIR" ]] || rm -rf "$PGDIR"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "scale.sh: FAILED: $*" >&2; exit 1; }

"$ROOT/deploy/certs/make-certs.sh" "$PKI" >/dev/null 2>&1 || die "make-certs.sh failed"
install -m 0600 "$ROOT/deploy/policies/development.json" "$RUN/policy.json"

# ---------------------------------------------------------------------------
# Helpers.

say() { echo "$*" | tee -a "$RUN/commands.txt"; }

# run <log name> <command...>: a command in the foreground, shown and logged;
# its stdout is shown indented.
run() {
  local name=$1
  shift
  say "\$ $*"
  "$@" 2> >(tee -a "$RUN/log/$name.log" >&2) | sed 's/^/    /'
  return "${PIPESTATUS[0]}"
}

start_proc() {  # start_proc <name> <command...>: in the background, logged
  local name=$1
  shift
  "$@" >>"$RUN/log/$name.log" 2>&1 &
  PIDS[$name]=$!
  say "\$ $* &"
}

stop_proc() {  # stop_proc <name>: SIGTERM, wait
  local pid="${PIDS[$1]:-}"
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$1]"
}

running() { [[ -n "${PIDS[$1]:-}" ]] && kill -0 "${PIDS[$1]}" 2>/dev/null; }

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

wait_port() {  # wait_port <name> <port>
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    running "$1" || break
    sleep 0.1
  done
  tail -n 20 "$RUN/log/$1.log" >&2 || true
  die "$1 did not start listening on $2 (log above)"
}

now_ms() { date +%s%3N; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used.
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
# The CPU seconds of a process's busiest threads, by thread name.
cpu_by_thread() {
  local task
  for task in /proc/"$1"/task/*; do
    printf '%s\t%s\n' "$(cat "$task/comm")" "$(awk '{ print $14 + $15 }' "$task/stat")"
  done 2>/dev/null | awk -F'\t' -v t="$(getconf CLK_TCK)" '{ s[$1] += $2 }
    END { for (n in s) printf "%.1f %s\n", s[n] / t, n }' | sort -rn | head -n 5 |
    awk '{ printf "%s%s %s s", (NR > 1 ? ", " : ""), $2, $1 }'
}
num() { printf '%s' "${1%.*}" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
field() {  # field <json file> <field>: a number (or true/false) from a result
  sed -n "s/.*\"$2\":\([-0-9.e+a-z]*\).*/\1/p" "$1" | head -n 1
}
fmt_ms() {
  awk -v x="$1" 'BEGIN { if (x >= 10000) printf "%.1f s", x / 1000; else printf (x < 10 ? "%.2f ms" : "%.0f ms"), x }'
}
fmt_s() { awk -v x="$1" 'BEGIN { printf (x < 10 ? "%.2f s" : "%.1f s"), x }'; }
# metric <port> <name with labels, as printed>: the sum of matching series
metric() {
  curl -s --max-time 5 "http://127.0.0.1:$1/metrics" |
    awk -v m="$2" 'index($0, m) == 1 { s += $NF; found = 1 } END { if (found) print s; else print "" }'
}

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 |"); echo "  => $1: $2${3:+ ($3)}"; }

TLS_OF() { echo "--tls_ca=$PKI/ca.crt --tls_cert=$PKI/$1.crt --tls_key=$PKI/$1.key"; }
CLIENT_TLS=($(TLS_OF cofferctl))
STORE_PIN=spiffe://coffer.local/store
GUARD=(--policy_file="$RUN/policy.json")

# ---------------------------------------------------------------------------
# Processes.

KMS_PORT=""
need_kms() {
  running kms && return 0
  KMS_PORT=$(free_port)
  start_proc kms "$KMS_BIN" --dev_mode --data_dir="$RUN/data/kms" \
    --listen_address="127.0.0.1:$KMS_PORT" --metrics_address= --log_level=warn "${GUARD[@]}" \
    --audit_dir="$RUN/audit/kms" $(TLS_OF kms)
  wait_port kms "$KMS_PORT"
}

declare -A STORE_PORT=()
# start_store <name>: a store on its data dir (kept across restarts), on a
# fixed port so that a restart can be timed from the moment it is started.
start_store() {
  local name=$1
  need_kms
  [[ -n "${STORE_PORT[$name]:-}" ]] || STORE_PORT[$name]=$(free_port)
  start_proc "$name" "$STORE_BIN" --data_dir="$RUN/data/$name" \
    --kms_address="localhost:$KMS_PORT" --listen_address="127.0.0.1:${STORE_PORT[$name]}" \
    --metrics_address= --log_level=info "${GUARD[@]}" --audit_dir="$RUN/audit/$name" \
    $(TLS_OF store)
}
need_store() {  # need_store <name>: started and answering
  running "$1" && return 0
  start_store "$1"
  probe "$1-ready" "${STORE_PORT[$1]}" "$STORE_PIN" --op=wait_ready --calls=list_secrets \
    --timeout=10m || die "$1 did not start"
}

result() { echo "$RUN/results/$1.json"; }

# probe <label> <port> <pin> <scale_probe flags...>: the result in $(result <label>)
probe() {
  local label=$1 port=$2 pin=$3
  shift 3
  rm -f "$(result "$label")"
  run scale_probe "$PROBE_BIN" --label="$label" --target="localhost:$port" "${CLIENT_TLS[@]}" \
    --expected_spiffe_id="$pin" "$@" --json_out="$(result "$label")"
}

# load <label> <port> <coffer_load flags...>: the result in $(result <label>)
load() {
  local label=$1 port=$2
  shift 2
  rm -f "$(result "$label")"
  run coffer_load "$LOAD_BIN" --label="$label" --target="localhost:$port" "${CLIENT_TLS[@]}" \
    --expected_spiffe_id="$STORE_PIN" --in_flight="$IN_FLIGHT" --threads=2 --channels=2 \
    --warmup=0s --call_timeout=60s "$@" --json_out="$(result "$label")"
}

# bulk_row <result file> <what>: "N in T s (R/s, p99 X)"
bulk_row() {
  local f=$1 what=$2
  row "$what" "$(num "$(field "$f" ok)") in $(fmt_s "$(field "$f" elapsed_s)")" \
    "$(awk -v x="$(field "$f" throughput)" 'BEGIN { printf "%.0f/s", x }'), p50 $(fmt_ms "$(field "$f" p50_ms)"), p99 $(fmt_ms "$(field "$f" p99_ms)"), $IN_FLIGHT in flight"
}

# walk_row <result file> <what>
walk_row() {
  local f=$1 what=$2
  row "$what" \
    "$(num "$(field "$f" items)") items, $(num "$(field "$f" pages)") pages in $(fmt_s "$(field "$f" total_s)"): $(awk -v x="$(field "$f" pages_per_s)" 'BEGIN { printf "%.0f", x }') pages/s" \
    "page p50 $(fmt_ms "$(field "$f" page_p50_ms)"), p99 $(fmt_ms "$(field "$f" page_p99_ms)"); first page p50 $(fmt_ms "$(field "$f" first_page_p50_ms)"), p99 $(fmt_ms "$(field "$f" first_page_p99_ms)")$( [[ "$(field "$f" deep_page_n)" == 0 ]] || echo "; last quarter p50 $(fmt_ms "$(field "$f" deep_page_p50_ms)"), p99 $(fmt_ms "$(field "$f" deep_page_p99_ms)")")$( [[ "$(field "$f" empty_pages)" == 0 ]] || echo "; $(num "$(field "$f" empty_pages)") pages empty")"
}

# ---------------------------------------------------------------------------
# The run.

{
  echo "# Coffer scale runs ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo
  echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
    "kernel $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)," \
    "run data on $(df -PT "$RUN" | awk 'NR == 2 { print $2 " (" $1 ")" }'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "coffer: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')"
  echo "scale: --secrets=$SECRETS$( [[ $SECRET_VALUES -eq 1 ]] && echo ' (with values)' || echo ' (without values)') --params=$PARAMS --rotation_secrets=$ROTATION_SECRETS --rotations=$ROTATIONS; parts: $(for p in "${PARTS[@]}"; do selected "$p" && printf '%s ' "$p"; done)"
  echo
} | tee "$RUN/header.txt"
echo "## commands"
echo

CREATED=0  # secrets scale/s-0..CREATED-1 exist in the store "store"

# ---- 1. secrets -------------------------------------------------------------
part_secrets() {
  local n=$SECRETS f t0 t1 pid
  echo "### secrets: $n"
  need_store store
  pid=${PIDS[store]}
  local value_flags=(--without_value)
  local how="CreateSecret without a value (no version, no KMS call)"
  if [[ $SECRET_VALUES -eq 1 ]]; then
    value_flags=(--value_size=200)
    how="CreateSecret with a 200-byte value (a KMS data key each)"
  fi
  load create_secrets "${STORE_PORT[store]}" --op=create_secret --name_prefix=scale/s- \
    --count="$n" "${value_flags[@]}" ||
    die "creating $n secrets"
  f=$(result create_secrets)
  CREATED=$n
  bulk_row "$f" "$(num "$n") secrets: $how"
  row "store RSS after the creates" "$(mib "$(rss_kb "$pid")")" "peak $(mib "$(hwm_kb "$pid")")"
  row "store CPU for the creates" "$(cpu_s "$pid") s" "by thread: $(cpu_by_thread "$pid")"
  t0=$(now_ms)
  stop_proc store
  t1=$(now_ms)
  row "store shutdown (SIGTERM until exit; flushes RocksDB)" "$(fmt_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1000 }')")" ""
  row "data on disk" "$(du -sh "$RUN/data/store" | cut -f1) store, $(du -sh "$RUN/audit/store" | cut -f1) audit log" ""

  # The restart: timed from the moment the process is started.
  t0=$(now_ms)
  start_store store
  pid=${PIDS[store]}
  probe store_restart "${STORE_PORT[store]}" "$STORE_PIN" --op=wait_ready \
    --calls=describe_secret,health --secret_id=scale/s-00000 --since_unix_ms="$t0" \
    --poll_interval=10ms ||
    die "the store did not come back"
  f=$(result store_restart)
  local rss_start hwm_start
  rss_start=$(rss_kb "$pid")
  hwm_start=$(hwm_kb "$pid")
  row "store start-up with $(num "$n") secrets: until the first DescribeSecret answers" \
    "$(fmt_s "$(field "$f" describe_secret_s)")" \
    "until health SERVING $(fmt_s "$(field "$f" health_s)") (it waits for the KMS check too)"
  row "store RSS right after start-up" "$(mib "$rss_start")" "peak $(mib "$hwm_start")"

  probe list_desc "${STORE_PORT[store]}" "$STORE_PIN" --op=list_secrets --max_results=100 \
    --sort_order=desc --expect_items="$n" ||
    die "ListSecrets walk"
  f=$(result list_desc)
  walk_row "$f" "ListSecrets, 100 per page, newest first, through all $(num "$n")"
  local prefix=scale/s-0042 matches
  matches=$(awk -v n="$n" -v p="$prefix" 'BEGIN { c = 0; for (i = 0; i < n; i++) if (index(sprintf("scale/s-%05d", i), p) == 1) c++; print c }')
  probe list_filter "${STORE_PORT[store]}" "$STORE_PIN" --op=list_secrets --max_results=100 \
    --sort_order=asc --filter="name:$prefix" --first_page_repeats=5 \
    --expect_items="$matches" ||
    die "ListSecrets with a filter"
  f=$(result list_filter)
  walk_row "$f" "ListSecrets, filter name:$prefix ($matches match), oldest first"
  probe describe_random "${STORE_PORT[store]}" "$STORE_PIN" --op=random_reads \
    --calls=describe_secret --name_prefix=scale/s- --keys="$n" --count=2000 ||
    die "DescribeSecret on random secrets"
  f=$(result describe_random)
  row "DescribeSecret of a random secret (of $(num "$n")), one at a time" \
    "p50 $(fmt_ms "$(field "$f" call_p50_ms)"), p99 $(fmt_ms "$(field "$f" call_p99_ms)")" \
    "$(num "$(field "$f" call_n)") calls, max $(fmt_ms "$(field "$f" call_max_ms)")"
  local value_keys=$n value_prefix=scale/s- value_note="of $(num "$n")"
  if [[ $SECRET_VALUES -eq 0 ]]; then
    # The N secrets have no value: 1,000 more with one, in the same store.
    value_keys=1000
    value_prefix=scale/v-
    value_note="of 1,000 with values among the $(num "$n")"
    load create_valued "${STORE_PORT[store]}" --op=create_secret --name_prefix=$value_prefix \
      --count=$value_keys --value_size=200 || die "creating secrets with values"
  fi
  probe get_random "${STORE_PORT[store]}" "$STORE_PIN" --op=random_reads \
    --calls=get_secret_value --name_prefix=$value_prefix --keys=$value_keys --count=2000 ||
    die "GetSecretValue on random secrets"
  f=$(result get_random)
  row "GetSecretValue of a random secret ($value_note), one at a time" \
    "p50 $(fmt_ms "$(field "$f" call_p50_ms)"), p99 $(fmt_ms "$(field "$f" call_p99_ms)")" \
    "$(num "$(field "$f" call_n)") calls, max $(fmt_ms "$(field "$f" call_max_ms)"); a secret's first read unwraps its key at the KMS"
  row "store RSS after the walks and reads" "$(mib "$(rss_kb "$pid")")" "peak $(mib "$(hwm_kb "$pid")")"
}

# ---- 2. params --------------------------------------------------------------
part_params() {
  local n=$PARAMS f pid
  echo "### params: $n under /scale/params"
  need_store store
  pid=${PIDS[store]}
  load put_params "${STORE_PORT[store]}" --op=put_parameter --keys=0 \
    --name_prefix=/scale/params/p- --param_type=String --count="$n" ||
    die "PutParameter"
  f=$(result put_params)
  bulk_row "$f" "$(num "$n") PutParameter (String, 200 bytes) under /scale/params"
  probe by_path_recursive "${STORE_PORT[store]}" "$STORE_PIN" --op=params_by_path \
    --path=/scale/params --recursive --expect_items="$n" ||
    die "GetParametersByPath walk"
  f=$(result by_path_recursive)
  walk_row "$f" "GetParametersByPath /scale/params, recursive, 10 per page (the API's maximum)"
  probe by_path_onelevel "${STORE_PORT[store]}" "$STORE_PIN" --op=params_by_path \
    --path=/scale/params --recursive=false --expect_items="$n" ||
    die "GetParametersByPath walk"
  f=$(result by_path_onelevel)
  walk_row "$f" "GetParametersByPath /scale/params, one level"
  probe describe_recursive "${STORE_PORT[store]}" "$STORE_PIN" --op=describe_parameters \
    --path=/scale/params --recursive --expect_items="$n" ||
    die "DescribeParameters walk"
  f=$(result describe_recursive)
  walk_row "$f" "DescribeParameters, Path Recursive /scale/params, 50 per page"
  probe describe_onelevel "${STORE_PORT[store]}" "$STORE_PIN" --op=describe_parameters \
    --path=/scale/params --recursive=false --expect_items="$n" ||
    die "DescribeParameters walk"
  f=$(result describe_onelevel)
  walk_row "$f" "DescribeParameters, Path OneLevel /scale/params"
  row "store RSS after the parameters" "$(mib "$(rss_kb "$pid")")" "peak $(mib "$(hwm_kb "$pid")")"
}

# ---- 3. rotator -------------------------------------------------------------
part_rotator() {
  local m=$ROTATION_SECRETS f t0 pid port metrics store_pid
  echo "### rotator: $m rotation-enabled secrets"
  need_store store
  store_pid=${PIDS[store]}
  if ((CREATED < m)); then
    load create_rotation_secrets "${STORE_PORT[store]}" --op=create_secret \
      --name_prefix=scale/s- --count="$m" --without_value || die "creating $m secrets"
    f=$(result create_rotation_secrets)
    CREATED=$m
    bulk_row "$f" "$(num "$m") secrets for the rotator (CreateSecret without a value)"
  fi
  # Rotation on, none now: each secret's next rotation is a random moment
  # in the window 30 days ahead. The worker is registered but never called.
  load enable_rotation "${STORE_PORT[store]}" --op=rotate_secret --name_prefix=scale/s- \
    --keys="$m" --count="$m" --rotation_worker=scale-idle --rotation_schedule='rate(30 days)' \
    --rotate_immediately=false ||
    die "RotateSecret (rotate_immediately false)"
  f=$(result enable_rotation)
  bulk_row "$f" "$(num "$m") RotateSecret, rotate_immediately false (rotation on, next in 30 days)"

  port=$(free_port)
  metrics=$(free_port)
  local store_cpu0
  store_cpu0=$(cpu_s "$store_pid")
  t0=$(now_ms)
  start_proc rotator "$ROTATOR_BIN" --store_address="localhost:${STORE_PORT[store]}" \
    --listen_address="127.0.0.1:$port" --metrics_address="127.0.0.1:$metrics" --log_level=info \
    --worker="scale-idle=localhost:1=spiffe://coffer.local/worker/exec" \
    --concurrency="$ROTATOR_CONCURRENCY" $(TLS_OF rotator)
  pid=${PIDS[rotator]}
  probe rotator_ready "$port" spiffe://coffer.local/rotator --op=wait_ready --calls=health \
    --since_unix_ms="$t0" --poll_interval=10ms --timeout=30m ||
    die "the rotator did not become ready"
  f=$(result rotator_ready)
  local ready_cpu
  ready_cpu=$(cpu_s "$pid")
  row "rotator start-up with $(num "$m") schedules: until health SERVING (first full schedule load)" \
    "$(fmt_s "$(field "$f" health_s)")" "rotator CPU $ready_cpu s by then, the store's $(awk -v a="$store_cpu0" -v b="$(cpu_s "$store_pid")" 'BEGIN { printf "%.2f", b - a }') s (ListRotationSchedules pages)"
  row "rotator RSS after loading" "$(mib "$(rss_kb "$pid")")" "peak $(mib "$(hwm_kb "$pid")")"
  sleep 2  # the gauges refresh after the load
  local scheduled overdue started
  scheduled=$(metric "$metrics" coffer_rotation_scheduled_secrets)
  overdue=$(metric "$metrics" coffer_rotation_overdue_secrets)
  started=$(metric "$metrics" coffer_rotation_runs_started_total)
  row "rotator metrics after start-up" \
    "coffer_rotation_scheduled_secrets $(num "${scheduled:-0}")" \
    "overdue ${overdue:-?}, rotations started ${started:-0}"
  [[ "${scheduled%.*}" == "$m" ]] || die "the rotator schedules ${scheduled:-nothing}, expected $m"
  [[ "${overdue%.*}" == 0 ]] || die "the rotator reports ${overdue:-?} overdue secrets"
  [[ -z "$started" || "${started%.*}" == 0 ]] || die "the rotator started $started rotations"
  local c0 c1
  c0=$(cpu_s "$pid")
  sleep 10
  c1=$(cpu_s "$pid")
  row "rotator idle with $(num "$m") schedules: CPU over 10 s" \
    "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f s", b - a }')" \
    "RSS $(mib "$(rss_kb "$pid")")"
  { grep -h '"rotation schedules loaded"' "$RUN/log/rotator.log" || true; } | head -n 1 |
    sed 's/^/    log: /'
  stop_proc rotator
}

# ---- 4. postgres ------------------------------------------------------------
as_pg() { if [[ "$(id -u)" -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

part_postgres() {
  local r=$ROTATIONS f t0 pg_port pw token
  echo "### postgres: $r rotations"
  # A private cluster, owned by the postgres user when we are root
  # (PostgreSQL refuses to run as root).
  PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/coffer-scale-pg.XXXXXX")
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  token=$(head -c 9 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$pw" >"$PGDIR/pwfile"
  chmod 600 "$PGDIR/pwfile"
  if [[ "$(id -u)" -eq 0 ]]; then chown -R postgres "$PGDIR"; fi
  chmod 700 "$PGDIR"
  run postgres as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -U scale_admin --auth=scram-sha-256 \
    --pwfile="$PGDIR/pwfile" -E UTF8 --no-locale --no-instructions >/dev/null ||
    die "initdb (log/postgres.log)"
  rm -f "$PGDIR/pwfile"
  pg_port=$(free_port)
  local as_postgres=()
  [[ "$(id -u)" -ne 0 ]] || as_postgres=(runuser -u postgres --)
  start_proc postgres "${as_postgres[@]}" "$PG_BIN/postgres" -D "$PGDIR/data" -p "$pg_port" -k "$PGDIR" \
    -c listen_addresses=127.0.0.1 -c max_connections=100
  export PGPASSFILE="$RUN/admin.pgpass"
  (umask 077; echo "127.0.0.1:$pg_port:*:scale_admin:$pw" >"$PGPASSFILE")
  local pg_ok=0
  for _ in $(seq 1 300); do
    if psql "host=127.0.0.1 port=$pg_port user=scale_admin dbname=postgres sslmode=disable" \
        -Atqc 'SELECT 1' >/dev/null 2>&1; then pg_ok=1; break; fi
    running postgres || break
    sleep 0.1
  done
  [[ $pg_ok -eq 1 ]] || { tail -n 20 "$RUN/log/postgres.log" >&2; die "postgres did not start"; }
  PG_PID=$(head -n 1 "$PGDIR/data/postmaster.pid")
  say "\$ psql ... CREATE ROLE scale_r00000 ... scale_r$(printf %05d $((r - 1))) LOGIN PASSWORD 'pw-<token>-NNNNN'"
  psql "host=127.0.0.1 port=$pg_port user=scale_admin dbname=postgres sslmode=disable" -Atq \
    -v ON_ERROR_STOP=1 >/dev/null <<SQL || die "creating $r roles"
DO \$\$
DECLARE n text;
BEGIN
  FOR i IN 0..$((r - 1)) LOOP
    n := CASE WHEN length(i::text) >= 5 THEN i::text ELSE lpad(i::text, 5, '0') END;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', 'scale_r' || n, 'pw-$token-' || n);
  END LOOP;
END
\$\$;
SQL

  need_store store-pg
  local worker_port
  worker_port=$(free_port)
  start_proc worker-postgres "$WORKER_BIN" --strategy=single-user \
    --listen_address="127.0.0.1:$worker_port" --metrics_address= \
    --store_address="localhost:${STORE_PORT[store-pg]}" --step_threads="$ROTATOR_CONCURRENCY" \
    --audit_dir="$RUN/audit/worker-postgres" --log_level=warn $(TLS_OF worker-postgres)
  wait_port worker-postgres "$worker_port"
  local rport rmetrics
  rport=$(free_port)
  rmetrics=$(free_port)
  start_proc rotator-pg "$ROTATOR_BIN" --store_address="localhost:${STORE_PORT[store-pg]}" \
    --listen_address="127.0.0.1:$rport" --metrics_address="127.0.0.1:$rmetrics" --log_level=warn \
    --worker="pg=localhost:$worker_port=spiffe://coffer.local/worker/postgres" \
    --concurrency="$ROTATOR_CONCURRENCY" $(TLS_OF rotator)
  probe rotator_pg_ready "$rport" spiffe://coffer.local/rotator --op=wait_ready --calls=health ||
    die "the rotator did not become ready"

  load create_pg_secrets "${STORE_PORT[store-pg]}" --op=create_secret --name_prefix=scale/pg- \
    --count="$r" --value_template="{\"engine\":\"postgres\",\"host\":\"127.0.0.1\",\"port\":$pg_port,\"dbname\":\"postgres\",\"username\":\"scale_r{i}\",\"password\":\"pw-$token-{i}\",\"sslmode\":\"disable\"}" ||
    die "creating the PostgreSQL secrets"
  f=$(result create_pg_secrets)
  bulk_row "$f" "$(num "$r") secrets holding a PostgreSQL role's credential"

  # Rotate every one now; the rotator sees them through its watch.
  t0=$(now_ms)
  load rotate_now "${STORE_PORT[store-pg]}" --op=rotate_secret --name_prefix=scale/pg- \
    --keys="$r" --count="$r" --rotation_worker=pg --rotation_schedule='rate(30 days)' \
    --rotate_immediately=true ||
    die "RotateSecret"
  f=$(result rotate_now)
  bulk_row "$f" "$(num "$r") RotateSecret, rotate now"
  local ended=0 ok=0 failed=0 deadline=$((SECONDS + 120 + r))
  while ((SECONDS < deadline)); do
    ok=$(metric "$rmetrics" 'coffer_rotation_runs_total{result="success"')
    failed=$(metric "$rmetrics" 'coffer_rotation_runs_total{result="failure"')
    ended=$(awk -v a="${ok:-0}" -v b="${failed:-0}" 'BEGIN { print a + b }')
    ((ended >= r)) && break
    running rotator-pg && running worker-postgres || die "the rotator or the worker exited"
    sleep 0.5
  done
  local t_end
  t_end=$(now_ms)
  say "    rotator: ${ok:-0} rotations succeeded, ${failed:-0} failed after $(awk -v a="$t0" -v b="$t_end" 'BEGIN { printf "%.1f", (b - a) / 1000 }') s"
  ((ended >= r)) || die "only $ended of $r rotations ended within the time limit"
  [[ "${failed:-0}" == 0 ]] || die "${failed} rotations failed (see the report below)"

  probe rotation_report "${STORE_PORT[store-pg]}" "$STORE_PIN" --op=rotation_report \
    --name_prefix=scale/pg- --keys="$r" --since_unix_ms="$t0" ||
    die "a rotation did not succeed"
  f=$(result rotation_report)
  local span
  span=$(field "$f" span_s)
  row "$(num "$r") PostgreSQL rotations end to end (first RotateSecret to last rotation finished)" \
    "$(fmt_s "$(awk -v a="$t0" -v b="$(field "$f" last_finished_unix_ms)" 'BEGIN { print (b - a) / 1000 }')"): $(awk -v n="$r" -v a="$t0" -v b="$(field "$f" last_finished_unix_ms)" 'BEGIN { printf "%.1f", n * 1000 / (b - a) }') rotations/s" \
    "rotator --concurrency=$ROTATOR_CONCURRENCY, worker --step_threads=$ROTATOR_CONCURRENCY; first started -> last finished $(fmt_s "$span")"
  row "per rotation, requested -> finished (includes waiting for a rotator slot)" \
    "p50 $(fmt_ms "$(field "$f" request_to_finish_p50_ms)"), p99 $(fmt_ms "$(field "$f" request_to_finish_p99_ms)")" \
    "max $(fmt_ms "$(field "$f" request_to_finish_max_ms)")"
  # Lease taken -> rotation completed, per secret, from the store's audit log.
  local service
  service=$(python3 - "$RUN/audit/store-pg" <<'PY'
import glob, json, sys
from datetime import datetime
def t(s): return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
acq, done = {}, {}
for path in sorted(glob.glob(sys.argv[1] + "/*.jsonl")):
    for line in open(path):
        r = json.loads(line)
        if r.get("code") not in ("OK", 0, "0"): continue
        a, res = r.get("action"), r.get("resource")
        if a == "rotation:AcquireRotationLease": acq.setdefault(res, t(r["time"]))
        elif a == "rotation:CompleteRotation": done[res] = t(r["time"])
d = sorted((done[k] - acq[k]) * 1000 for k in done if k in acq)
if not d: sys.exit("no AcquireRotationLease/CompleteRotation pairs in the audit log")
q = lambda p: d[min(int(p * len(d)), len(d) - 1)]
print("%d %.1f %.1f %.1f" % (len(d), q(0.5), q(0.99), d[-1]))
PY
) || die "reading the store's audit log"
  read -r pairs s50 s99 smax <<<"$service"
  ((pairs == r)) || die "the audit log has $pairs lease -> complete pairs, expected $r"
  row "per rotation, lease taken -> completed (the four steps; store audit log)" \
    "p50 $(fmt_ms "$s50"), p99 $(fmt_ms "$s99")" "max $(fmt_ms "$smax")"
  local steps=""
  for step in createSecret setSecret testSecret finishSecret; do
    local sum count
    sum=$(metric "$rmetrics" "coffer_rotation_step_seconds_sum{step=\"$step\"")
    count=$(metric "$rmetrics" "coffer_rotation_step_seconds_count{step=\"$step\"")
    steps+="$step $(awk -v s="${sum:-0}" -v c="${count:-0}" 'BEGIN { printf "%.1f", (c > 0 ? s * 1000 / c : 0) }') ms, "
  done
  row "mean worker Step call (rotator's coffer_rotation_step_seconds)" "${steps%, }" ""

  # Every role logs in with its AWSCURRENT password, and not with the old one.
  probe dump_current "${STORE_PORT[store-pg]}" "$STORE_PIN" --op=dump_values \
    --name_prefix=scale/pg- --keys="$r" --out="$RUN/current.tsv" ||
    die "reading the new values"
  (umask 077
   cut -f2 "$RUN/current.tsv" | jq -r '"\(.host):\(.port):\(.dbname):\(.username):\(.password)"' \
     >"$RUN/current.pgpass"
   cut -f2 "$RUN/current.tsv" | jq -r --arg t "$token" \
     '"\(.host):\(.port):\(.dbname):\(.username):pw-\($t)-\(.username | ltrimstr("scale_r"))"' \
     >"$RUN/old.pgpass")
  local changed
  changed=$(cut -f2 "$RUN/current.tsv" | jq -r --arg t "$token" \
    'select(.password != "pw-\($t)-\(.username | ltrimstr("scale_r"))") | .username' | wc -l)
  ((changed == r)) || die "only $changed of $r AWSCURRENT passwords differ from the original"
  login_all() {  # login_all <pgpass file>: prints how many roles logged in
    local users
    users=$(cut -d: -f4 "$1")
    PGPASSFILE="$1" PGCONNECT_TIMEOUT=5 xargs -P 2 -I{} \
      psql "host=127.0.0.1 port=$pg_port user={} dbname=postgres sslmode=disable" -Atqw \
      -c 'SELECT current_user' <<<"$users" 2>/dev/null | grep -c '^scale_r' || true
  }
  say "\$ psql \"host=127.0.0.1 port=$pg_port user=scale_rNNNNN dbname=postgres\" -c 'SELECT current_user'   # each role, AWSCURRENT, then the original password"
  local t_login logged_new logged_old
  t_login=$(now_ms)
  logged_new=$(login_all "$RUN/current.pgpass")
  logged_old=$(login_all "$RUN/old.pgpass")
  row "logins after the rotations" "$logged_new of $(num "$r") roles log in with AWSCURRENT" \
    "$logged_old with the original password; $(num "$changed") passwords changed; checked in $(fmt_s "$(awk -v a="$t_login" -v b="$(now_ms)" 'BEGIN { print (b - a) / 1000 }')")"
  ((logged_new == r)) || die "$((r - logged_new)) roles cannot log in with their AWSCURRENT password"
  ((logged_old == 0)) || die "$logged_old roles still log in with the original password"
  unset PGPASSFILE
  stop_proc rotator-pg
  stop_proc worker-postgres
  stop_proc store-pg
}

declare -A PART_TIME=()
for part in "${PARTS[@]}"; do
  selected "$part" || continue
  start=$SECONDS
  "part_$part"
  PART_TIME[$part]=$((SECONDS - start))
  echo "    ($part took $((SECONDS - start)) s)"
done

echo
echo "## results"
echo
sed -n '3,5p' "$RUN/header.txt"
echo
echo "| measurement | result | notes |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "parts took: $(for p in "${PARTS[@]}"; do [[ -n "${PART_TIME[$p]:-}" ]] && printf '%s %ss, ' "$p" "${PART_TIME[$p]}"; done)whole run $((SECONDS / 60))m$((SECONDS % 60))s"
