#!/usr/bin/env bash
# `bash bench/maglev.sh --smoke`: the Maglev part of `make bench` (build against the paper's
# loop at the six points, 3 pairs; the disruption grid, 1 backend set), checking both tables
# parse. Writes nothing into the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
E2E_NAME=bench-maglev
source tests/e2e/lib/sluice.sh
e2e_smoke 300 "maglev: smoke OK" "maglev:" bash bench/maglev.sh --smoke
