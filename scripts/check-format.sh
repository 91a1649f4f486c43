#!/usr/bin/env bash
# Fails when any C++ file of the repository differs from what clang-format
# (with the repository's .clang-format) would write. Run by CTest as
# "format_check"; fix with: scripts/check-format.sh --fix
set -euo pipefail
cd "$(dirname "$0")/.."
files=()
while IFS= read -r f; do
  [ -f "$f" ] && files+=("$f")
done < <(git ls-files --cached --others --exclude-standard -- '*.cc' '*.h' | sort -u)
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
clang-format --dry-run -Werror "${files[@]}"
echo "format: ${#files[@]} files clean"
