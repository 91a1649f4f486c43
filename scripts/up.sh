#!/usr/bin/env bash
# Installs what is missing, builds, makes a development PKI, and starts the
# Coffer stack on loopback with data under ./var. Ctrl-C stops everything.
# Running it again reuses the data and certificates.
#
#   ./scripts/up.sh        coffer-kms and coffer-store on RocksDB (var/data)
#   ./scripts/up.sh --ha   a 3-member etcd cluster (var/etcd), and two
#                          coffer-kms and two coffer-store replicas on it
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() {
  cat <<USAGE
usage: $0 [--ha]
  (none)  coffer-kms and coffer-store on RocksDB under var/data
  --ha    a 3-member etcd cluster under var/etcd, and two coffer-kms and
          two coffer-store replicas on it
USAGE
}
HA=0
for arg in "$@"; do
  case "$arg" in
    --ha) HA=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

coffer_install_packages "${COFFER_PACKAGES[@]}"
if [ "$HA" = 1 ]; then
  coffer_install_packages etcd-client  # etcdctl: the health checks below, and a look inside
fi
coffer_build

VAR="$COFFER_ROOT/var"
mkdir -p "$VAR/data" "$VAR/log"
chmod 700 "$VAR/data"
if [ "$HA" = 1 ]; then
  coffer_certs --etcd=localhost "$VAR/certs"  # plus var/certs/etcd.crt, etcd's server certificate
else
  coffer_certs "$VAR/certs"
fi
# Who may do what (default deny): services get what they need, cofferctl is
# the administrator, app/catagram reads demo/catagram/*, app/other nothing.
# Edit var/policy.json freely: services re-read it within a second.
if [[ ! -f "$VAR/policy.json" ]]; then
  install -m 0600 "$COFFER_ROOT/deploy/policies/development.json" "$VAR/policy.json"
fi
mkdir -p "$VAR/audit"
chmod 700 "$VAR/audit"
GUARD=(--policy_file="$VAR/policy.json" --audit_dir="$VAR/audit")

pids=()       # what this run started, but etcd
etcd_pids=()  # etcd members (--ha): stop() ends them after the replicas on them
declare -A names=()  # pid -> name
stopping=0
stop() {
  stopping=1
  trap - INT TERM EXIT
  echo
  echo "==> stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # PostgreSQL runs under runuser in a subshell, which a TERM to the subshell
  # does not reach: ask the postmaster this run started for a fast shutdown.
  if [ -n "${PG_STARTED:-}" ] && [ -f "$PGDIR/postmaster.pid" ]; then
    kill -INT "$(head -n 1 "$PGDIR/postmaster.pid")" 2>/dev/null || true
  fi
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${etcd_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${etcd_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "==> stopped"
}
trap stop INT TERM EXIT

start_process() {  # start_process <name> <command...>: stderr to var/log/<name>.log
  local name=$1
  shift
  "$@" 2>>"$VAR/log/$name.log" &
  if [[ "$name" == etcd* ]]; then etcd_pids+=($!); else pids+=($!); fi
  names[$!]=$name
  echo "==> $name started (pid $!, log var/log/$name.log)"
}

start() {  # start <name> <binary under the build directory> <args...>
  local name=$1 bin=$2
  shift 2
  start_process "$name" "$COFFER_BUILD/$bin" "$@"
}

wait_for_port() {  # wait_for_port <name> <port>
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "error: $1 did not open port $2; see var/log/$1.log" >&2
  exit 1
}

# start_mtls <name> <binary> <certificate> <port> <metrics port> <flags...>
start_mtls() {
  local name=$1 bin=$2 cert=$3 port=$4 metrics=$5
  shift 5
  start "$name" "$bin" \
    --listen_address="127.0.0.1:$port" --metrics_address="127.0.0.1:$metrics" "$@" \
    --tls_ca="$VAR/certs/ca.crt" --tls_cert="$VAR/certs/$cert.crt" --tls_key="$VAR/certs/$cert.key"
  wait_for_port "$name" "$port"
}
start_kms() { start_mtls "$1" services/kms/coffer-kms kms "${@:2}"; }        # <name> <port> <metrics> <flags...>
start_store() { start_mtls "$1" services/store/coffer-store store "${@:2}"; }  # <name> <port> <metrics> <flags...>

# --ha: etcd, three members on loopback (clear of a system etcd on
# 2379/2380): TLS with client certificates from the development CA for
# clients, plaintext between the peers.
ETCD_CLIENT_PORTS=(12379 12389 12399)
ETCD_PEER_PORTS=(12380 12390 12400)
ETCD_ENDPOINTS=""  # 127.0.0.1:12379,127.0.0.1:12389,127.0.0.1:12399

etcdctl_as_kms() {  # etcdctl_as_kms <etcdctl args...>: with the KMS's client certificate
  ETCDCTL_API=3 etcdctl --endpoints="$ETCD_ENDPOINTS" --cacert="$VAR/certs/ca.crt" \
    --cert="$VAR/certs/kms.crt" --key="$VAR/certs/kms.key" "$@"
}

start_etcd() {
  local cluster="" i n
  for i in 0 1 2; do
    cluster+="${cluster:+,}etcd$((i + 1))=http://127.0.0.1:${ETCD_PEER_PORTS[i]}"
    ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}127.0.0.1:${ETCD_CLIENT_PORTS[i]}"
  done
  mkdir -p "$VAR/etcd"
  chmod 700 "$VAR/etcd"
  # A data directory that exists makes etcd ignore the --initial-* flags: the
  # next run finds the same cluster and its data.
  for i in 0 1 2; do
    n=$((i + 1))
    start_process "etcd$n" /usr/bin/etcd --name="etcd$n" --data-dir="$VAR/etcd/$n" \
      --listen-client-urls="https://127.0.0.1:${ETCD_CLIENT_PORTS[i]}" \
      --advertise-client-urls="https://127.0.0.1:${ETCD_CLIENT_PORTS[i]}" \
      --listen-peer-urls="http://127.0.0.1:${ETCD_PEER_PORTS[i]}" \
      --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER_PORTS[i]}" \
      --initial-cluster="$cluster" --initial-cluster-state=new --initial-cluster-token=coffer-up-ha \
      --cert-file="$VAR/certs/etcd.crt" --key-file="$VAR/certs/etcd.key" \
      --client-cert-auth --trusted-ca-file="$VAR/certs/ca.crt" --logger=zap
  done
  # Every member healthy (a leader elected, reads served), within 30 s.
  for _ in $(seq 1 60); do
    if etcdctl_as_kms --command-timeout=2s endpoint health >/dev/null 2>&1; then return 0; fi
    for pid in "${etcd_pids[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "error: ${names[$pid]} exited; see var/log/${names[$pid]}.log" >&2
        exit 1
      fi
    done
    sleep 0.5
  done
  etcdctl_as_kms --command-timeout=2s endpoint health >&2 || true
  echo "error: etcd is not healthy; see var/log/etcd1.log, etcd2.log, etcd3.log" >&2
  exit 1
}

# --ha: the root key every KMS replica must share (what they seal key
# material under), made once like --dev_mode makes its own: 32 random
# bytes, mode 0600. Lose it and the KMS data in etcd cannot be unsealed.
ROOT_KEY="$VAR/data/kms-root.key"
make_root_key() {
  if [ ! -e "$ROOT_KEY" ]; then
    if [ -d "$VAR/etcd" ]; then
      echo "error: var/etcd holds the data of an earlier --ha run but $ROOT_KEY, the" \
        "root key it was sealed under, is gone: put it back, or delete var/etcd to start over" >&2
      exit 1
    fi
    (umask 077; head -c 32 /dev/urandom > "$ROOT_KEY.tmp")
    sync "$ROOT_KEY.tmp"
    mv "$ROOT_KEY.tmp" "$ROOT_KEY"
  fi
  if [ "$(stat -c %s "$ROOT_KEY")" != 32 ]; then
    echo "error: $ROOT_KEY must hold exactly 32 bytes" >&2
    exit 1
  fi
  chmod 600 "$ROOT_KEY"
}

etcd_flags() {  # etcd_flags <identity>: coffer-kms/coffer-store flags for etcd, in ETCD_FLAGS
  ETCD_FLAGS=(--storage="etcd:$ETCD_ENDPOINTS" --etcd_ca="$VAR/certs/ca.crt"
              --etcd_cert="$VAR/certs/$1.crt" --etcd_key="$VAR/certs/$1.key")
}

if [ "$HA" = 0 ]; then
  start_kms kms 7701 9701 --data_dir="$VAR/data/kms" --dev_mode "${GUARD[@]}"
  start_store store 7702 9702 --data_dir="$VAR/data/store" --kms_address=localhost:7701 "${GUARD[@]}"
else
  make_root_key
  start_etcd
  # The first replicas on the usual ports, so cofferctl and the rest of the
  # stack find them; the second ones on 7721 and 7722. Each store calls a KMS
  # of its own first and the other one when that one is down (a gRPC target
  # of both addresses). Each replica has its own local directory and audit log.
  mkdir -p "$VAR/audit/kms-2" "$VAR/audit/store-2"
  etcd_flags kms
  start_kms kms-1 7701 9701 --data_dir="$VAR/data/kms-1" --root_key_file="$ROOT_KEY" \
    "${GUARD[@]}" "${ETCD_FLAGS[@]}"
  start_kms kms-2 7721 9721 --data_dir="$VAR/data/kms-2" --root_key_file="$ROOT_KEY" \
    --policy_file="$VAR/policy.json" --audit_dir="$VAR/audit/kms-2" "${ETCD_FLAGS[@]}"
  etcd_flags store
  start_store store-1 7702 9702 --data_dir="$VAR/data/store-1" \
    --kms_address=ipv4:127.0.0.1:7701,127.0.0.1:7721 --kms_authority=localhost \
    "${GUARD[@]}" "${ETCD_FLAGS[@]}"
  start_store store-2 7722 9722 --data_dir="$VAR/data/store-2" \
    --kms_address=ipv4:127.0.0.1:7721,127.0.0.1:7701 --kms_authority=localhost \
    --policy_file="$VAR/policy.json" --audit_dir="$VAR/audit/store-2" "${ETCD_FLAGS[@]}"
fi

# Rotation: two PostgreSQL workers (one per strategy) and the rotator.
start worker-postgres services/workers/postgres/coffer-worker-postgres --strategy=single-user \
  --listen_address=127.0.0.1:7711 --metrics_address=127.0.0.1:9711 --store_address=localhost:7702 \
  --audit_dir="$VAR/audit" \
  --tls_ca="$VAR/certs/ca.crt" --tls_cert="$VAR/certs/worker-postgres.crt" \
  --tls_key="$VAR/certs/worker-postgres.key"
start worker-postgres-alt services/workers/postgres/coffer-worker-postgres --strategy=alternating-users \
  --listen_address=127.0.0.1:7713 --metrics_address=127.0.0.1:9713 --store_address=localhost:7702 \
  --audit_dir="$VAR/audit/postgres-alternating" \
  --tls_ca="$VAR/certs/ca.crt" --tls_cert="$VAR/certs/worker-postgres-alt.crt" \
  --tls_key="$VAR/certs/worker-postgres-alt.key"
wait_for_port worker-postgres 7711
wait_for_port worker-postgres-alt 7713
start rotator services/rotator/coffer-rotator \
  --listen_address=127.0.0.1:7703 --metrics_address=127.0.0.1:9703 --store_address=localhost:7702 \
  --worker=postgres-single-user=localhost:7711=spiffe://coffer.local/worker/postgres \
  --worker=postgres-alternating-users=localhost:7713=spiffe://coffer.local/worker/postgres-alternating \
  --tls_ca="$VAR/certs/ca.crt" --tls_cert="$VAR/certs/rotator.crt" --tls_key="$VAR/certs/rotator.key"
wait_for_port rotator 7703

# coffer-agent: AWS's Secrets Manager Agent contract over HTTP on loopback,
# for applications in any language, as the Catagram identity (so it reads
# what app/catagram may: demo/catagram/*). Every request but /ping must
# carry the token, made once into var/agent-token; the agent reads it from
# there (AWS_TOKEN=file://...), so it is in no environment or command line.
AGENT_TOKEN="$VAR/agent-token"
[ -s "$AGENT_TOKEN" ] || (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$AGENT_TOKEN")
chmod 600 "$AGENT_TOKEN"
AWS_TOKEN="file://$AGENT_TOKEN" start agent services/agent/coffer-agent \
  --http_address=127.0.0.1:2773 --store_address=localhost:7702 \
  --tls_ca="$VAR/certs/ca.crt" --tls_cert="$VAR/certs/app-catagram.crt" \
  --tls_key="$VAR/certs/app-catagram.key"
wait_for_port agent 2773

# coffer-gateway: the AWS wire protocol (JSON 1.1 over HTTPS, SigV4) for
# the AWS CLI and SDKs. On first run, an access key for the demo
# administrator (cofferctl's identity) goes into an AWS credentials file,
# var/aws/credentials (0600), with a profile "coffer" in var/aws/config.
start gateway services/gateway/coffer-gateway \
  --listen_address=127.0.0.1:7704 --metrics_address=127.0.0.1:9704 \
  --store_address=localhost:7702 --kms_address=localhost:7701 \
  --tls_ca="$VAR/certs/ca.crt" --tls_cert="$VAR/certs/gateway.crt" --tls_key="$VAR/certs/gateway.key"
wait_for_port gateway 7704
AWS_DIR="$VAR/aws"
if [ ! -s "$AWS_DIR/credentials" ]; then
  (umask 077; mkdir -p "$AWS_DIR")
  AWS_KEY=$(COFFER_CA="$VAR/certs/ca.crt" COFFER_CERT="$VAR/certs/cofferctl.crt" \
    COFFER_KEY="$VAR/certs/cofferctl.key" "$COFFER_BUILD/tools/cofferctl/cofferctl" \
    access-keys create --identity spiffe://coffer.local/admin/cofferctl \
    --description "up.sh: the demo administrator" --address localhost:7701 --output text)
  (umask 077; printf '[coffer]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "${AWS_KEY%%$'\t'*}" "${AWS_KEY#*$'\t'}" > "$AWS_DIR/credentials")
  unset AWS_KEY
  printf '[profile coffer]\nregion = local\noutput = json\n' > "$AWS_DIR/config"
  echo "==> made an access key for the demo administrator: var/aws/credentials"
fi

# A local PostgreSQL as a rotation target, when one is installed: a private
# cluster under var/pg on 127.0.0.1:5433 with password authentication, a
# demo role, Catagram's role and table, and secrets describing them; and
# Catagram itself.
PG_INFO=""
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ]; then
  as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  PGDIR="$VAR/pg"
  PGPASS_FILE="$VAR/pg-admin.password"
  if [ ! -f "$PGDIR/PG_VERSION" ]; then
    mkdir -p "$PGDIR"
    [ -f "$PGPASS_FILE" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$PGPASS_FILE")
    PW_INIT="$VAR/.pg-init.pw"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres "$PGDIR"; chmod 700 "$PGDIR"
      install -m 600 -o postgres "$PGPASS_FILE" "$PW_INIT"
    else
      install -m 600 "$PGPASS_FILE" "$PW_INIT"
    fi
    as_pg "$PG_BIN/initdb" -D "$PGDIR" -U coffer_admin --auth=scram-sha-256 --pwfile="$PW_INIT" >/dev/null
    rm -f "$PW_INIT"
  fi
  as_pg "$PG_BIN/postgres" -D "$PGDIR" -p 5433 -k "$PGDIR" -c listen_addresses=127.0.0.1 \
    2>>"$VAR/log/postgres.log" &
  pids+=($!)
  names[$!]=postgres
  echo "==> postgres started (pid $!, 127.0.0.1:5433, log var/log/postgres.log)"
  wait_for_port postgres 5433
  PG_STARTED=1
  ADMIN_PW=$(cat "$PGPASS_FILE")
  CTL="$COFFER_BUILD/tools/cofferctl/cofferctl"
  export COFFER_CA="$VAR/certs/ca.crt" COFFER_CERT="$VAR/certs/cofferctl.crt" COFFER_KEY="$VAR/certs/cofferctl.key"
  for _ in $(seq 1 50); do
    PGPASSWORD="$ADMIN_PW" psql -h 127.0.0.1 -p 5433 -U coffer_admin -d postgres -q -c "SELECT 1" \
      >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! "$CTL" secrets describe-secret --secret-id demo/postgres/app >/dev/null 2>&1; then
    APP_PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    # No password on a command line (ps shows them): psql reads the SQL
    # from stdin, cofferctl the secret from stdin (printf is a builtin),
    # psql the admin password from PGPASSWORD. The demo server has no TLS,
    # so the secrets allow plaintext explicitly ("sslmode":"disable").
    PGPASSWORD="$ADMIN_PW" psql -h 127.0.0.1 -p 5433 -U coffer_admin -d postgres -q -v ON_ERROR_STOP=1 \
      >/dev/null <<SQL
SET client_min_messages = warning;
SELECT 'CREATE ROLE demo_app LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo_app')\\gexec
ALTER ROLE demo_app PASSWORD '$APP_PW';
SQL
    printf '%s' "{\"engine\":\"postgres\",\"host\":\"127.0.0.1\",\"port\":5433,\"dbname\":\"postgres\",\"username\":\"coffer_admin\",\"password\":\"$ADMIN_PW\",\"sslmode\":\"disable\"}" \
      | "$CTL" secrets create-secret --name demo/postgres/master --secret-string - >/dev/null
    printf '%s' "{\"engine\":\"postgres\",\"host\":\"127.0.0.1\",\"port\":5433,\"dbname\":\"postgres\",\"username\":\"demo_app\",\"password\":\"$APP_PW\",\"sslmode\":\"disable\"}" \
      | "$CTL" secrets create-secret --name demo/postgres/app --secret-string - >/dev/null
  fi
  # Catagram's database: role catagram may read the table cats; its
  # credential is demo/catagram/db (app/catagram may read demo/catagram/*),
  # naming the master so that either strategy can rotate it.
  if ! "$CTL" secrets describe-secret --secret-id demo/catagram/db >/dev/null 2>&1; then
    CAT_PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    PGPASSWORD="$ADMIN_PW" psql -h 127.0.0.1 -p 5433 -U coffer_admin -d postgres -q -v ON_ERROR_STOP=1 \
      >/dev/null <<SQL
SET client_min_messages = warning;
SELECT 'CREATE ROLE catagram LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'catagram')\\gexec
ALTER ROLE catagram PASSWORD '$CAT_PW';
CREATE TABLE IF NOT EXISTS cats (name text);
DELETE FROM cats;
INSERT INTO cats VALUES ('tom'), ('felix'), ('garfield');
GRANT SELECT ON cats TO catagram;
SQL
    printf '%s' "{\"engine\":\"postgres\",\"host\":\"127.0.0.1\",\"port\":5433,\"dbname\":\"postgres\",\"username\":\"catagram\",\"password\":\"$CAT_PW\",\"sslmode\":\"disable\",\"master_secret\":\"demo/postgres/master\"}" \
      | "$CTL" secrets create-secret --name demo/catagram/db --secret-string - >/dev/null
  fi
  # Catagram (examples/catagram) in C++: its credential through the caching
  # client, refreshed and retried when a login fails after a rotation.
  COFFER_ENDPOINT=localhost:7702 COFFER_CA="$VAR/certs/ca.crt" \
    COFFER_CERT="$VAR/certs/app-catagram.crt" COFFER_KEY="$VAR/certs/app-catagram.key" \
    start catagram examples/catagram/catagram --http_address=127.0.0.1:8080 --secret_id=demo/catagram/db
  wait_for_port catagram 8080
  PG_INFO="
A demo PostgreSQL runs on 127.0.0.1:5433 with role demo_app; its credential is
the secret demo/postgres/app (demo/postgres/master holds the admin one). Rotate it:
  cofferctl secrets rotate-secret --secret-id demo/postgres/app \\
    --rotation-worker postgres-single-user --cli-input-json '{\"rotation_rules\":{\"automatically_after_days\":30}}'
  cofferctl secrets describe-secret --secret-id demo/postgres/app     # rotation_state
  cofferctl secrets get-secret-value --secret-id demo/postgres/app    # the new password

Catagram (examples/catagram) serves http://127.0.0.1:8080/cats as role catagram,
whose credential is demo/catagram/db. Rotate it while you curl (README: Catagram):
  curl http://127.0.0.1:8080/cats      # {\"cats\":3,\"user\":\"catagram\"}
  curl http://127.0.0.1:8080/stats     # requests, failed, login_failures, refreshes
  cofferctl secrets rotate-secret --secret-id demo/catagram/db \\
    --rotation-worker postgres-alternating-users --cli-input-json '{\"rotation_rules\":{\"automatically_after_days\":30}}'
The same app in Python, through coffer-agent, on port 8081 (Debian's python3):
  AWS_TOKEN=\$(cat var/agent-token) /usr/bin/python3 examples/catagram/catagram.py
"
else
  PG_INFO="
Catagram (examples/catagram) needs a PostgreSQL: install the postgresql package
and run up.sh again (README: Catagram: surviving a rotation).
"
fi

HA_INFO=""
if [ "$HA" = 1 ]; then
  HA_INFO="
High availability (--ha): two coffer-kms and two coffer-store replicas on one
etcd cluster; the rotator, the workers, the gateway, the agent, Catagram and
cofferctl use the first of each.
  etcd           etcd1 https://127.0.0.1:12379, etcd2 :12389, etcd3 :12399 (client
                 certificates from var/certs/ca.crt; peers on 12380, 12390, 12400)
                 data var/etcd/1, 2, 3; logs var/log/etcd1.log, etcd2.log, etcd3.log
  coffer-kms     kms-1 127.0.0.1:7701 (metrics 9701), kms-2 127.0.0.1:7721 (metrics 9721)
                 both with the root key var/data/kms-root.key
  coffer-store   store-1 127.0.0.1:7702 (metrics 9702) calling kms-1, or kms-2 when it is down;
                 store-2 127.0.0.1:7722 (metrics 9722) calling kms-2, or kms-1
  audit logs     var/audit (kms-1, store-1), var/audit/kms-2, var/audit/store-2
Write through one replica, read through the other:
  cofferctl secrets create-secret --name demo/ha --secret-string one
  cofferctl secrets get-secret-value --secret-id demo/ha --address localhost:7722
Stop a replica or an etcd member (kill <pid>): the others keep serving, and
up.sh reports it and keeps running. Look at etcd with etcdctl:
  ETCDCTL_API=3 etcdctl --endpoints=$ETCD_ENDPOINTS \\
    --cacert=var/certs/ca.crt --cert=var/certs/kms.crt --key=var/certs/kms.key \\
    endpoint status --write-out=table      # or: member list --write-out=table
"
fi

cat <<INFO

Coffer is running on loopback:
  coffer-kms     grpc 127.0.0.1:7701 (mTLS)   metrics http://127.0.0.1:9701/metrics
  coffer-store   grpc 127.0.0.1:7702 (mTLS)   metrics http://127.0.0.1:9702/metrics
  coffer-rotator grpc 127.0.0.1:7703 (mTLS)   metrics http://127.0.0.1:9703/metrics
  workers        postgres-single-user 127.0.0.1:7711, postgres-alternating-users 127.0.0.1:7713
  coffer-agent   http://127.0.0.1:2773 (AWS Secrets Manager Agent's API, as app/catagram)
  coffer-gateway https://127.0.0.1:7704 (AWS JSON + SigV4)  metrics http://127.0.0.1:9704/metrics

Use cofferctl from another shell (it reads ./var/certs by default):
  export PATH="$COFFER_BUILD/tools/cofferctl:\$PATH"
  cofferctl secrets create-secret --name demo/db --secret-string 's3cr3t'
  cofferctl secrets get-secret-value --secret-id demo/db
  cofferctl params put-parameter --name /demo/url --value https://example.test --type STRING
  cofferctl watch params --path / --recursive
  cofferctl kms list-keys

Read secrets over HTTP through coffer-agent (it may read demo/catagram/*; send
the token in var/agent-token with every request but /ping):
  cofferctl secrets create-secret --name demo/catagram/greeting --secret-string hello
  curl -H "X-Aws-Parameters-Secrets-Token: \$(cat var/agent-token)" \\
    'http://127.0.0.1:2773/secretsmanager/get?secretId=demo/catagram/greeting'

Use the AWS CLI or any AWS SDK through coffer-gateway, as the demo
administrator (its access key is in var/aws/credentials):
  export AWS_SHARED_CREDENTIALS_FILE=var/aws/credentials AWS_CONFIG_FILE=var/aws/config \\
    AWS_PROFILE=coffer AWS_CA_BUNDLE=var/certs/ca.crt
  aws --endpoint-url https://127.0.0.1:7704 secretsmanager get-secret-value --secret-id demo/db
  aws --endpoint-url https://127.0.0.1:7704 ssm get-parameter --name /demo/url
  aws --endpoint-url https://127.0.0.1:7704 kms list-keys
More keys, for other identities: cofferctl access-keys create --identity spiffe://coffer.local/...

Every call is authorized by var/policy.json (edit it: services re-read it
within a second) and audited, hash-chained, under var/audit/:
  cofferctl audit verify var/audit/store-audit-*.jsonl
$PG_INFO$HA_INFO
Press Ctrl-C to stop.
INFO

if [ "$HA" = 0 ]; then
  # Wait until a service exits or Ctrl-C arrives.
  wait -n "${pids[@]}" || true
  if [ "$stopping" = 0 ]; then
    echo "a service exited unexpectedly; see var/log/" >&2
    exit 1
  fi
  exit 0
fi

# --ha: a process that exits is reported and the rest keeps running (stop a
# replica or an etcd member to see the others carry on), until Ctrl-C.
forget() {  # forget <pid>
  local p kept=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  pids=("${kept[@]}")
  kept=()
  for p in "${etcd_pids[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  etcd_pids=("${kept[@]}")
}
while [ "$stopping" = 0 ] && [ $((${#pids[@]} + ${#etcd_pids[@]})) -gt 0 ]; do
  exited=""
  wait -n -p exited "${pids[@]}" "${etcd_pids[@]}" || true
  if [ "$stopping" = 1 ] || [ -z "$exited" ]; then break; fi
  echo "==> ${names[$exited]} exited (see var/log/${names[$exited]}.log); the rest keeps running" >&2
  forget "$exited"
done
if [ "$stopping" = 0 ]; then
  echo "every process exited; see var/log/" >&2
  exit 1
fi
