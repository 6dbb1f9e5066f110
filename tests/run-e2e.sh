#!/usr/bin/env bash
# Runs every end-to-end test script in tests/e2e/ in order; each cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
pass=0; fail=0
for t in tests/e2e/*.sh; do
  echo "=== e2e: $t"
  if timeout 600 bash "$t"; then pass=$((pass + 1)); else echo "FAILED: $t"; fail=$((fail + 1)); fi
done
echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
