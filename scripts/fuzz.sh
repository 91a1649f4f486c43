#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang 14, ASan + UBSan) in
# build-fuzz/ and runs each for N seconds on a copy of its checked-in corpus
# (fuzz/corpus/<target>/ is never changed). Fails on any crash, sanitizer
# report, timeout, memory blow-up or broken property; the input that did it
# is kept in build-fuzz/findings/ (replay: build-fuzz/<target> <file>; the
# API targets keep state across inputs, and also save the inputs that built
# it: build-fuzz/<target> --replay=build-fuzz/findings/<target>-replay-<pid>).
# Usage: ./scripts/fuzz.sh [seconds_per_target, default 10] [target...]
#        ./scripts/fuzz.sh 600                  # a longer run
#        ./scripts/fuzz.sh 60 policy_fuzz       # one target
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECONDS_PER_TARGET="${1:-10}"
shift $(($# > 0 ? 1 : 0))
FUZZ_BUILD="${COFFER_FUZZ_BUILD:-$COFFER_ROOT/build-fuzz}"
if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  TARGETS=(policy_fuzz json_tree_fuzz ciphertext_fuzz schedule_fuzz page_token_fuzz
           audit_verify_fuzz param_selector_fuzz sigv4_fuzz aws_json_fuzz secrets_api_fuzz
           params_api_fuzz kms_api_fuzz)
fi

coffer_install_packages "${COFFER_PACKAGES[@]}" "${COFFER_FUZZ_PACKAGES[@]}"

echo "==> configuring and building fuzz targets in $FUZZ_BUILD"
if [ ! -f "$FUZZ_BUILD/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$COFFER_ROOT/fuzz" -B "$FUZZ_BUILD" -G Ninja
fi
cmake --build "$FUZZ_BUILD" -- -j"$(nproc)"

symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
if [ -x "$symbolizer" ]; then export ASAN_SYMBOLIZER_PATH="$symbolizer"; fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
findings="$FUZZ_BUILD/findings"
mkdir -p "$findings"
echo "==> fuzzing ${#TARGETS[@]} targets, ${SECONDS_PER_TARGET}s each"
failed=()
for target in "${TARGETS[@]}"; do
  corpus="$work/corpus-$target"
  cp -r "$COFFER_ROOT/fuzz/corpus/$target" "$corpus"
  log="$work/$target.log"
  rc=0
  "$FUZZ_BUILD/$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings/$target-" "$corpus" >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  if [ "$rc" -ne 0 ] ||
     grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|FUZZ_CHECK failed' "$log"; then
    failed+=("$target")
    printf '%-22s FAILED (exit %s) after %s executions\n' "$target" "$rc" "${execs:-?}"
    grep -E 'ERROR:|runtime error:|FUZZ_CHECK failed|SUMMARY:|Test unit written|--replay=|^    #[0-9]+ ' \
      "$log" | head -40 | sed 's/^/    /'
  else
    printf '%-22s ok  %10s executions  %6s coverage edges\n' "$target" "${execs:-?}" "${cov:-?}"
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "==> fuzzing found problems in: ${failed[*]} (inputs in $findings)"
fi
echo "fuzz: $((${#TARGETS[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ]
