#!/usr/bin/env bash
# `bash bench/peers.sh --smoke`: one 1-second round of every path of the peers benchmark
# (direct, nftables DNAT, HAProxy, sluice nat and l2-dsr on af_packet, nat on af_xdp, all in network
# namespaces), checking each carried short TCP connections, UDP and the latency probes.
# Writes nothing into the repository. Environment: SLUICE (default target/release/sluice).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: bench-peers: needs root (network namespaces)"; exit 0; fi
out=$(mktemp /tmp/sluice-e2e-bench-peers.XXXXXX)
trap 'rm -f "$out"' EXIT
if timeout 180 bash bench/peers.sh --smoke >"$out" 2>&1 && grep -q "^peers: smoke OK$" "$out"; then
  grep "^peers: round" "$out" || true
  echo "PASS: bench-peers: bench/peers.sh --smoke [${SECONDS}s]"
else
  cat "$out"
  echo "FAIL: bench-peers: bench/peers.sh --smoke"
  exit 1
fi
