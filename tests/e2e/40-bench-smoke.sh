#!/usr/bin/env bash
# `bash bench/run.sh --smoke`: one short round of the benchmark (sluice-gen -> memif ->
# testpmd io, then -> sluice run -> back), checking every run forwarded traffic and its JSON
# result parses. Writes nothing into the repository. Environment: SLUICE, SLUICE_GEN.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp /tmp/sluice-e2e-bench-smoke.XXXXXX)
trap 'rm -f "$out"' EXIT
if timeout 300 bash bench/run.sh --smoke >"$out" 2>&1 && grep -q "^bench: smoke OK$" "$out"; then
  grep "^bench: round" "$out" || true
  echo "PASS: bench-smoke: bench/run.sh --smoke [${SECONDS}s]"
else
  cat "$out"
  echo "FAIL: bench-smoke: bench/run.sh --smoke"
  exit 1
fi
