#!/usr/bin/env bash
# `bash bench/peers.sh --smoke`: one 1-second round of every path of the peers benchmark
# (direct, nftables DNAT, HAProxy, sluice nat and l2-dsr on af_packet, nat on af_xdp, all in network
# namespaces), checking each carried short TCP connections, UDP and the latency probes.
# Writes nothing into the repository. Environment: SLUICE (default target/release/sluice).
set -euo pipefail
cd "$(dirname "$0")/../.."
E2E_NAME=bench-peers
source tests/e2e/lib/sluice.sh
[ "$(id -u)" -eq 0 ] || e2e_skip "needs root (network namespaces)"
e2e_smoke 180 "peers: smoke OK" "peers: round" bash bench/peers.sh --smoke
