#!/usr/bin/env bash
# `bash bench/floor.sh --smoke`: the floor part of `make bench` (hit_floor, the least work an IPv4
# IPIP hit can be, beside sluice's pipeline, natively at 1k and 100k flows, one short round, and
# under callgrind),
# checking both report every packet a hit and their output parses. Writes nothing into the
# repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
E2E_NAME=bench-floor
source tests/e2e/lib/sluice.sh
e2e_smoke 300 "floor: smoke OK" "floor:" bash bench/floor.sh --smoke
