#!/usr/bin/env bash
# make-certs.sh: the development PKI for Coffer (openssl only).
#
#   deploy/certs/make-certs.sh [--etcd=HOST,...] OUTDIR [TRUST_DOMAIN]   # default coffer.local
#
# Makes a development CA (OUTDIR/ca.crt, ca.key) and, signed by it, one
# certificate and key per identity (OUTDIR/<name>.crt, <name>.key). Every
# certificate carries the SPIFFE ID spiffe://<trust-domain>/<path> as its only
# URI SAN (Coffer's notion of identity), DNS SANs localhost, <name> and
# coffer-<name>, IP SANs 127.0.0.1 and ::1, and is good for both serverAuth
# and clientAuth.
#
# With --etcd=HOST,... it also makes OUTDIR/etcd.crt and etcd.key: the
# server certificate of a development etcd cluster whose clients (coffer-kms
# and coffer-store with --storage=etcd:...) check it by host name. It carries
# spiffe://<trust-domain>/etcd, DNS SANs localhost and each HOST, IP SAN
# 127.0.0.1, and is good for serverAuth and clientAuth: with
# --client-cert-auth, etcd's own gRPC gateway dials the client port with it
# (with a server-only certificate etcd rejects those connections, and logs
# each). As a Coffer caller it is allowed nothing unless a policy says so.
# scripts/up.sh --ha uses --etcd=localhost, docker-compose.ha.yml the names
# of its members.
#
# Idempotent: an existing CA and existing certificates are kept; only missing
# files are made (all certificates are re-issued when the CA is new, the etcd
# certificate also when it lacks one of the HOSTs). Keys are mode 0600.
# Nothing made here is ever committed: it is for development
# and tests only; production certificates come from cert-manager or another
# real CA.
set -euo pipefail

ETCD_HOSTS=()
while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --etcd=?*) IFS=, read -r -a ETCD_HOSTS <<<"${1#--etcd=}" ;;
    *) echo "make-certs: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 [--etcd=HOST,...] OUTDIR [TRUST_DOMAIN]" >&2
  exit 2
fi
for host in "${ETCD_HOSTS[@]}"; do
  if [[ ! "$host" =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$ ]]; then
    echo "make-certs: invalid etcd host name '$host' (lower-case DNS name)" >&2
    exit 2
  fi
done
OUT="$1"
TRUST_DOMAIN="${2:-coffer.local}"
if [[ ! "$TRUST_DOMAIN" =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$ ]]; then
  echo "make-certs: invalid trust domain '$TRUST_DOMAIN' (lower-case DNS name)" >&2
  exit 2
fi
command -v openssl >/dev/null || { echo "make-certs: openssl not found" >&2; exit 1; }

# name -> SPIFFE path
IDENTITIES=(
  "kms:kms"
  "store:store"
  "rotator:rotator"
  "worker-postgres:worker/postgres"
  "worker-postgres-alt:worker/postgres-alternating"
  "worker-exec:worker/exec"
  "cofferctl:admin/cofferctl"
  "app-catagram:app/catagram"
  "app-other:app/other"
  "gateway:gateway"
)

umask 077
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/make-certs.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

serial() { echo "0x$(openssl rand -hex 16)"; }

# Writes a file atomically (readers such as gRPC's file watcher never see a
# half-written certificate).
install_file() {  # SRC DEST MODE
  cp "$1" "$2.tmp.$$"
  chmod "$3" "$2.tmp.$$"
  mv -f "$2.tmp.$$" "$2"
}

new_ca=0
if [[ ! -s "$OUT/ca.crt" || ! -s "$OUT/ca.key" ]]; then
  new_ca=1
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ca.key" 2>/dev/null
  cat >"$WORK/ca.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
O = Coffer development
CN = Coffer development CA ($TRUST_DOMAIN)
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
  openssl req -x509 -new -sha256 -days 3650 -key "$WORK/ca.key" -config "$WORK/ca.cnf" \
    -set_serial "$(serial)" -out "$WORK/ca.crt"
  install_file "$WORK/ca.key" "$OUT/ca.key" 600
  install_file "$WORK/ca.crt" "$OUT/ca.crt" 644
fi

for entry in "${IDENTITIES[@]}"; do
  name="${entry%%:*}"
  path="${entry#*:}"
  if [[ $new_ca -eq 0 && -s "$OUT/$name.crt" && -s "$OUT/$name.key" ]]; then
    continue
  fi
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$name.key" 2>/dev/null
  openssl req -new -sha256 -key "$WORK/$name.key" \
    -subj "/O=Coffer development/CN=$name" -out "$WORK/$name.csr"
  cat >"$WORK/$name.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = URI:spiffe://$TRUST_DOMAIN/$path, DNS:localhost, DNS:$name, DNS:coffer-$name, IP:127.0.0.1, IP:::1
EXT
  openssl x509 -req -sha256 -days 365 -in "$WORK/$name.csr" \
    -CA "$OUT/ca.crt" -CAkey "$OUT/ca.key" -set_serial "$(serial)" \
    -extfile "$WORK/$name.ext" -out "$WORK/$name.crt" 2>/dev/null
  install_file "$WORK/$name.key" "$OUT/$name.key" 600
  install_file "$WORK/$name.crt" "$OUT/$name.crt" 644
done

# The etcd server certificate (--etcd).
if [[ ${#ETCD_HOSTS[@]} -gt 0 ]]; then
  reissue=$new_ca
  if [[ ! -s "$OUT/etcd.crt" || ! -s "$OUT/etcd.key" ]]; then
    reissue=1
  else
    ext=$(openssl x509 -in "$OUT/etcd.crt" -noout -ext subjectAltName,extendedKeyUsage 2>/dev/null ||
      true)
    grep -q "TLS Web Client Authentication" <<<"$ext" || reissue=1
    for host in "${ETCD_HOSTS[@]}"; do
      grep -q -E "DNS:${host//./\\.}(,|\$)" <<<"$ext" || reissue=1
    done
  fi
  if [[ $reissue -eq 1 ]]; then
    dns="DNS:localhost"
    for host in "${ETCD_HOSTS[@]}"; do
      [[ "$host" == localhost ]] || dns+=", DNS:$host"
    done
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/etcd.key" 2>/dev/null
    openssl req -new -sha256 -key "$WORK/etcd.key" \
      -subj "/O=Coffer development/CN=etcd" -out "$WORK/etcd.csr"
    cat >"$WORK/etcd.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = URI:spiffe://$TRUST_DOMAIN/etcd, $dns, IP:127.0.0.1
EXT
    openssl x509 -req -sha256 -days 365 -in "$WORK/etcd.csr" \
      -CA "$OUT/ca.crt" -CAkey "$OUT/ca.key" -set_serial "$(serial)" \
      -extfile "$WORK/etcd.ext" -out "$WORK/etcd.crt" 2>/dev/null
    install_file "$WORK/etcd.key" "$OUT/etcd.key" 600
    install_file "$WORK/etcd.crt" "$OUT/etcd.crt" 644
  fi
fi

echo "make-certs: PKI for spiffe://$TRUST_DOMAIN in $OUT" >&2
