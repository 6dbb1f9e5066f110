#!/usr/bin/env bash
# `sluice demo` (what `make demo` shows a newcomer) runs, forwards, and reports success.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SLUICE=${SLUICE:-$REPO/target/release/sluice}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! timeout 60 "$SLUICE" demo --seconds 2 >"$out" 2>&1; then
  cat "$out"
  echo "FAIL: demo-smoke: sluice demo exited non-zero"
  exit 1
fi
for want in "result: OK" "reached a backend" "rx-to-tx latency"; do
  grep -q "$want" "$out" || { cat "$out"; echo "FAIL: demo-smoke: no '$want' in the output"; exit 1; }
done
# Traffic starts only once the appliance has resolved every backend's next hop.
if grep -q "dropped: unresolved_next_hop" "$out"; then
  cat "$out"; echo "FAIL: demo-smoke: packets dropped before the next hops were resolved"; exit 1
fi
# Every second printed a line with traffic going in and out.
lines=$(grep -cE '^ +[0-9]+s +[0-9]+ +[0-9]+ ' "$out" || true)
[ "$lines" -ge 1 ] || { cat "$out"; echo "FAIL: demo-smoke: no per-second stats line"; exit 1; }
echo "PASS: demo-smoke ($(grep 'generator sent' "$out" | tr -s ' '))"
