#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: unit tests,
# and end-to-end tests that start the real binaries over mTLS.
# Usage: ./scripts/test.sh [extra ctest arguments, e.g. -R Kms]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

coffer_install_packages "${COFFER_PACKAGES[@]}"
coffer_install_kubectl
coffer_build

# Every temp dir of this run (data dirs, etcd members, certificates, logs)
# goes under one dir that is removed at the end, even when a test crashes
# before it can clean up after itself.
COFFER_TEST_TMP="$(mktemp -d /tmp/coffer-run.XXXXXX)"
chmod 1777 "$COFFER_TEST_TMP"  # as /tmp: PostgreSQL runs as its own user in there
trap 'rm -rf "$COFFER_TEST_TMP"' EXIT
export TMPDIR="$COFFER_TEST_TMP"

echo "==> running tests"
cd "$COFFER_BUILD"
ctest --output-on-failure --timeout 300 -j"$(nproc)" "$@"

# A short run of every libFuzzer target (fuzz/); any finding fails the suite.
"$COFFER_ROOT/scripts/fuzz.sh" 5
