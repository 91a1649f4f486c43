# Shared by scripts/up.sh and scripts/test.sh: install what is missing from
# Debian 12's archive, then configure and build with Ninja (+ ccache).
# Sourced, not executed.

COFFER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COFFER_BUILD="${COFFER_BUILD:-$COFFER_ROOT/build}"
# ccache: paths relative to the checkout, so another clone of the same tree
# (CI builds a fresh one) reuses the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$COFFER_ROOT}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"

# Build and runtime dependencies, all Debian 12 packages.
COFFER_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config openssl clang-format git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librocksdb-dev libsodium-dev prometheus-cpp-dev libjemalloc-dev libcivetweb-dev
  libgtest-dev libgmock-dev libpq-dev libre2-dev libcpp-httplib-dev postgresql python3 python3-psycopg2
  python3-yaml python3-botocore python3-boto3 awscli prometheus docker-compose etcd-server
)
# scripts/fuzz.sh: clang 14 with libFuzzer and the sanitizer runtimes, llvm-symbolizer.
COFFER_FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev llvm-14)

coffer_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

coffer_install_packages() {
  local missing=()
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing: ${missing[*]}"
    coffer_sudo apt-get update -qq
    coffer_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

# kubectl for `kubectl kustomize` (the k8s_check test): Debian's
# kubernetes-client unless some kubectl is already there (another package
# may provide a newer one; installing Debian's would replace it).
coffer_install_kubectl() {
  command -v kubectl >/dev/null || coffer_install_packages kubernetes-client
}

coffer_build() {
  echo "==> configuring and building in $COFFER_BUILD"
  if [ ! -f "$COFFER_BUILD/build.ninja" ]; then
    cmake -S "$COFFER_ROOT" -B "$COFFER_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  fi
  cmake --build "$COFFER_BUILD" -- -j"$(nproc)"
}

# Development PKI under var/certs (kept across runs):
# coffer_certs [--etcd=HOST,...] OUTDIR (deploy/certs/make-certs.sh's arguments).
coffer_certs() {
  "$COFFER_ROOT/deploy/certs/make-certs.sh" "$@" >/dev/null
}
