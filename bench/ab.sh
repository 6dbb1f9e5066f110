#!/usr/bin/env bash
# A/B of two revisions' packet path: builds sluice at each (a git worktree apiece), then runs
# `bench/run.sh` once per binary per round, alternating which goes first, so both see the same
# minutes of this shared machine; prints each round's busy ns per packet and the B/A ratio.
# usage: bash bench/ab.sh REV_A REV_B
#   env: ROUNDS (3), SCENARIOS ("sluice-ipip"), FLOWS, SECONDS_PER_RUN, OUT (raw results,
#   default bench/results/ab-<time>.jsonl: run.sh's lines, each tagged with "rev")
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PY:-/usr/bin/python3}
[ $# -eq 2 ] || { echo "usage: bash bench/ab.sh REV_A REV_B" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
export SCENARIOS=${SCENARIOS:-sluice-ipip}
OUT=${OUT:-$REPO/bench/results/ab-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
work=$(mktemp -d /tmp/sluice-ab.XXXXXX)
cleanup() {
  for side in a b; do git -C "$REPO" worktree remove --force "$work/$side" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

revs=("$1" "$2")
for i in 0 1; do
  side=$([ "$i" = 0 ] && echo a || echo b)
  rev=$(git rev-parse --short "${revs[$i]}^{commit}") || { echo "ab.sh: no revision ${revs[$i]}" >&2; exit 2; }
  revs[i]=$rev
  git -C "$REPO" worktree add -q --detach "$work/$side" "$rev"
  # One target directory for both sides: dependencies build once.
  (cd "$work/$side" && CARGO_TARGET_DIR="$REPO/target/ab" cargo build --release -q -p sluice)
  cp "$REPO/target/ab/release/sluice" "$work/sluice-$side"
done
cargo build --release -q -p sluice-bench
export SLUICE_GEN=${CARGO_TARGET_DIR:-$REPO/target}/release/sluice-gen

: >"$OUT"
for round in $(seq 1 "$ROUNDS"); do
  order="a b"
  [ $((round % 2)) = 0 ] && order="b a"
  for side in $order; do
    rev=${revs[0]}
    [ "$side" = b ] && rev=${revs[1]}
    REPEATS=1 SLUICE="$work/sluice-$side" OUT="$work/run.jsonl" bash bench/run.sh >"$work/run.log" 2>&1 ||
      { tail -20 "$work/run.log" >&2; echo "ab.sh: bench/run.sh failed for $rev" >&2; exit 1; }
    "$PY" - "$work/run.jsonl" "$rev" "$round" >>"$OUT" <<'EOF'
import json, sys
path, rev, rnd = sys.argv[1:4]
for line in open(path):
    r = json.loads(line)
    r["rev"], r["round"] = rev, int(rnd)
    print(json.dumps(r, sort_keys=True))
EOF
  done
done

"$PY" - "$OUT" "${revs[0]}" "${revs[1]}" <<'EOF'
import json, statistics, sys
path, a, b = sys.argv[1:4]
rows = [json.loads(l) for l in open(path)]
print("| scenario | round | %s busy ns/pkt | %s busy ns/pkt | B/A |" % (a, b))
print("|---|---|---|---|---|")
for sc in sorted({r["scenario"] for r in rows}):
    ratios = []
    for rnd in sorted({r["round"] for r in rows}):
        pick = lambda rev: [r.get("busy_ns_per_packet") for r in rows
                            if r["scenario"] == sc and r["round"] == rnd and r["rev"] == rev]
        x, y = pick(a), pick(b)
        if not (x and y and x[0] and y[0]):
            sys.exit("ab.sh: no busy time for %s in round %d" % (sc, rnd))
        ratios.append(y[0] / x[0])
        print("| %s | %d | %.1f | %.1f | %.3f |" % (sc, rnd, x[0], y[0], ratios[-1]))
    print("| %s | median | | | %.3f |" % (sc, statistics.median(ratios)))
EOF
echo "ab.sh: raw results in $OUT"
