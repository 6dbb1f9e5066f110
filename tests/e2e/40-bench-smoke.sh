#!/usr/bin/env bash
# `bash bench/run.sh --smoke`: one short round of the benchmark (sluice-gen -> memif ->
# testpmd io, then -> sluice run -> back), checking every run forwarded traffic and its JSON
# result parses. Writes nothing into the repository. Environment: SLUICE, SLUICE_GEN.
set -euo pipefail
cd "$(dirname "$0")/../.."
E2E_NAME=bench-smoke
source tests/e2e/lib/sluice.sh
e2e_smoke 300 "bench: smoke OK" "bench: round" bash bench/run.sh --smoke
