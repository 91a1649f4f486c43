#!/usr/bin/env bash
# make-certs.sh: the development PKI for Coffer (openssl only).
#
#   deploy/certs/make-certs.sh OUTDIR [TRUST_DOMAIN]    # default coffer.local
#
# Makes a development CA (OUTDIR/ca.crt, ca.key) and, signed by it, one
# certificate and key per identity (OUTDIR/<name>.crt, <name>.key). Every
# certificate carries the SPIFFE ID spiffe://<trust-domain>/<path> as its only
# URI SAN (Coffer's notion of identity), DNS SANs localhost, <name> and
# coffer-<name>, IP SANs 127.0.0.1 and ::1, and is good for both serverAuth
# and clientAuth.
#
# Idempotent: an existing CA and existing certificates are kept; only missing
# files are made (all certificates are re-issued when the CA is new). Keys
# are mode 0600. Nothing made here is ever committed: it is for development
# and tests only; production certificates come from cert-manager or another
# real CA.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 OUTDIR [TRUST_DOMAIN]" >&2
  exit 2
fi
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

echo "make-certs: PKI for spiffe://$TRUST_DOMAIN in $OUT" >&2
