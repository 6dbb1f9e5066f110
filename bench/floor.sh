#!/usr/bin/env bash
# `make bench`, floor part (issue 19 item 1): what a flow hit costs at the least, beside what
# sluice's pipeline costs, in the same native harness (no DPDK: frames copied into 32 recycled
# buffers, as memif's rx does). `hit_floor` is the least work an IPv4 IPIP hit can be (fixed-
# offset checks, a direct-indexed VIP, the same 5-tuple hash, one prefetched cache line of flow
# state, a precomputed outer header); `ipp --path hit` is sluice's pipeline. Rounds alternate
# the two at each flow count, pinned to the CPU the bench's worker uses. With a `make bench`
# throughput run in bench/results (the newest), the block also says what the floor leaves of
# the 0.8 goal: the capacity ratio a forwarder doing only the floor's work would reach,
# macswap / (io + the floor's work at FLOWS). With valgrind, both are also counted in
# instructions per packet (callgrind, 1,000 flows): the distance to the floor that load does
# not move. `page_walk` says what a random line of a big table costs here and how much of that
# is its page's translation rather than its bytes.
# usage: bash bench/floor.sh [--smoke]   (env: REPEATS (3), FLOOR_FLOWS ("1000 100000 1000000"),
#                                         FLOWS (1000000), PY, OUT)
# --smoke: one short round at 1000 and 100000 flows, checks the output parses; writes nothing.
# OUT=FILE.md: an ad-hoc run; the block goes to FILE.md and the repository is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/usr/bin/python3}
REPEATS=${REPEATS:-3}
FLOWS=${FLOWS:-1000000}
FLOOR_FLOWS=${FLOOR_FLOWS:-"1000 100000 $FLOWS"}
SMOKE=0 ROUNDS=9 PACKETS=65536
if [ "${1:-}" = "--smoke" ]; then SMOKE=1 REPEATS=1 FLOOR_FLOWS="1000 100000" ROUNDS=2 PACKETS=4096; fi
cargo build --release -q -p dataplane --example hit_floor --example ipp --example page_walk
bin=${CARGO_TARGET_DIR:-target}/release/examples
work=$(mktemp -d /tmp/sluice-floor.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The worker's CPU in make bench (lcore 1) when there is one, so both see the same core.
pin=()
[ "$(nproc)" -gt 1 ] && command -v taskset >/dev/null && pin=(taskset -c 1)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/rows.jsonl"
for round in $(seq "$REPEATS"); do
  for f in $FLOOR_FLOWS; do
    # ipp's timed rounds also insert a miss path's packets each: 2 slots per flow, at least 2^21.
    cap=$((f * 2 > 2097152 ? f * 2 : 2097152))
    # The floor's table as many slots as sluice's, so both spread the flows over as many pages.
    floor=$("${pin[@]}" "$bin/hit_floor" --flows "$f" --capacity "$cap" --packets "$PACKETS" --time "$ROUNDS")
    ipp=$("${pin[@]}" "$bin/ipp" --api burst --mode ipip --buffers ring --flows "$f" \
      --capacity "$cap" --packets "$PACKETS" --time "$ROUNDS")
    printf '{"round":%d,"flows":%d,"floor":%s,"ipp":%s}\n' "$round" "$f" "$floor" "$ipp" >>"$work/rows.jsonl"
  done
done
# What a random line costs here, and how much of it is its page's translation.
walk_args=(); [ "$SMOKE" = 1 ] && walk_args=(--loads 65536 --time 1)
"${pin[@]}" "$bin/page_walk" "${walk_args[@]}" >"$work/walk.json"
# Instructions per packet: the difference between a run of 5120 and one of 1024 packets, so
# set-up and warm-up cancel (hit_floor runs its region twice with --time 1).
count() { # count TOGGLE ARGS...: Ir collected inside TOGGLE
  valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect="$1" "${@:2}" 2>&1 \
    | awk '/Collected/ { print $4 }'
}
instructions=
if command -v valgrind >/dev/null; then
  f1=$(count 'hit_floor::region' "$bin/hit_floor" --flows 1000 --packets 1024 --time 1)
  f2=$(count 'hit_floor::region' "$bin/hit_floor" --flows 1000 --packets 5120 --time 1)
  s1=$(count '*ipp_measured_region*' "$bin/ipp" --api burst --mode ipip --buffers ring --path hit --flows 1000 --packets 1024)
  s2=$(count '*ipp_measured_region*' "$bin/ipp" --api burst --mode ipip --buffers ring --path hit --flows 1000 --packets 5120)
  instructions=$(awk -v f1="$f1" -v f2="$f2" -v s1="$s1" -v s2="$s2" \
    'BEGIN { if (f2 > f1 && s2 > s1) printf "%.1f %.1f", (f2 - f1) / (2 * 4096), (s2 - s1) / 4096 }')
fi
# The newest by the time in its name (a clone gives every file the same mtime).
newest=$(ls bench/results/throughput-*.jsonl 2>/dev/null | sort | tail -n 1 || true)
when="$(date -u '+%-d %b %Y, %H:%M UTC'), $(nproc) CPUs, git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load average $load_before"
"$PY" - "$work" "$SMOKE" "$REPEATS" "$FLOWS" "$when" "${newest:-}" "$instructions" <<'EOF'
import json, statistics, sys
sys.path.insert(0, "bench")
import summarize  # the throughput run's rows, grouped and judged as its own summary does
work, smoke, repeats, flows, when, newest, instructions = sys.argv[1:8]
rows = [json.loads(l) for l in open(work + "/rows.jsonl")]
if not rows or any("median" not in r["floor"]["ns_per_packet"] or "hit" not in r["ipp"]["ns_per_packet"] for r in rows):
    sys.exit("floor.sh: unexpected output")
walk = json.load(open(work + "/walk.json"))
if set(walk["ns_per_load"]) != {"packed_4m", "spread_4m", "packed_256m", "per_huge_page"}:
    sys.exit("floor.sh: unexpected page_walk output")
if instructions and len(instructions.split()) != 2:
    sys.exit("floor.sh: unexpected callgrind counts %r" % instructions)
if smoke == "1":
    print("floor: smoke OK")
    sys.exit(0)
points = sorted({r["flows"] for r in rows})
med = lambda xs: statistics.median(xs)
table = ["| flows | floor, ns per packet | of it the frame copy | sluice's pipeline (`ipp` hit) | sluice / floor, per round (median) |",
         "|---|---|---|---|---|"]
work_at = {}
for f in points:
    rs = [r for r in rows if r["flows"] == f]
    fl = [r["floor"]["ns_per_packet"]["median"] for r in rs]
    cp = [r["floor"]["copy_ns"] for r in rs]
    sl = [r["ipp"]["ns_per_packet"]["hit"]["median"] for r in rs]
    ratio = med([s / x for s, x in zip(sl, fl)])
    work_at[f] = med(fl) - med(cp)
    table.append("| %d | %.1f (%.1f-%.1f) | %.1f | %.1f (%.1f-%.1f) | %.2f |" % (
        f, med(fl), min(fl), max(fl), med(cp), med(sl), min(sl), max(sl), ratio))
text = ["Command: `bash bench/floor.sh (REPEATS=%s)`, %s." % (repeats, when), "",
        "Native, both over the same recycled buffers (`hit_floor` and `ipp --api burst --mode ipip "
        "--buffers ring --path hit`, medians of 9 timed passes of 65,536 packets per round, %s rounds "
        "alternating the two; both tables of max(2 x flows, 2^21) slots; ranges over the rounds):"
        % repeats, ""] + table + [""]
big = max(points)
growth = work_at[big] - work_at[min(points)]
text.append("One cache line of flow state per packet costs the floor %.1f ns more at %d flows than at %d "
            "(their lines in cache): that is memory (mostly the translation of its page, below), which no "
            "instruction count removes." % (growth, big, min(points)))
w = walk["ns_per_load"]
paged = w["spread_4m"] >= 2 * w["packed_4m"]
text.append("")
text.append("What a random line costs here (`page_walk`: independent 8-byte loads in 256 MiB asked for "
            "transparent huge pages, %d MiB of them granted): any line of 4 MiB %.2f ns; one line in each "
            "4 KiB page of the 256 MiB, so the same 4 MiB of lines over 65,536 pages, %.2f ns; any line of the "
            "256 MiB %.2f ns; one line in each 2 MiB page %.2f ns. %s" % (
                walk["anon_huge_kib"] // 1024, w["packed_4m"], w["spread_4m"], w["packed_256m"], w["per_huge_page"],
                "**The lines are in cache; their pages' translations are not**: a random line costs what "
                "its 4 KiB page costs (%.1fx the packed 4 MiB), although the guest holds the memory in 2 MiB "
                "pages, which is what a VM whose host maps guest memory in 4 KiB pages does (the TLB "
                "caches the smaller of the two). Where the TLB reaches the table through huge pages (bare "
                "metal with transparent or DPDK huge pages, a VM backed by huge pages) a flow costs only "
                "its line, which the burst's prefetches overlap: not measurable here." % (w["spread_4m"] / w["packed_4m"])
                if paged else
                "Spreading the same lines over many pages costs little here: the per-flow cost is the "
                "cache miss, not the page walk."))
if instructions:
    fi, si = (float(x) for x in instructions.split())
    text.append("")
    text.append("Instructions per packet (callgrind, 1,000 flows, the frame copy included in both; load does "
                "not move these): the floor %.1f, sluice's pipeline %.1f, **%.2fx the floor**." % (fi, si, si / fi))
by = {}
for r in (json.loads(l) for l in open(newest)) if newest else ():
    by.setdefault(summarize.run_of(r), []).append(r)
io, mac = (summarize.least_busy(by.get(s, [])) for s in ("testpmd-io", "testpmd-macswap"))
if io and mac and int(flows) in work_at:
    allowed = mac / 0.8 - io
    best = mac / (io + work_at[int(flows)])
    text.append("")
    text.append("Against the newest `make bench` run (`%s`, minutes or days apart from this one; least "
                "disturbed busy ns per packet: testpmd "
                "`io` %.1f, macswap %.1f): 0.8 of macswap leaves sluice %.1f ns of its own work; the floor's "
                "own work at %s flows is %.1f (its frame copy, which `io` pays too, taken out), so a forwarder "
                "doing only that would reach a capacity ratio of %.2f: **%s**." % (
                    newest.split("/")[-1], io, mac, allowed, flows, work_at[int(flows)], best,
                    "0.8 is within reach of a leaner path" if best >= 0.8 else
                    "0.8 is out of reach on this machine for a forwarder that reads a cache line of per-flow "
                    "state per packet"))
open(work + "/block.md", "w").write("\n".join(text) + "\n")
print("floor: " + text[-1][:200])
EOF
[ "$SMOKE" = 0 ] || exit 0
if [ -n "${OUT:-}" ]; then cp "$work/block.md" "$OUT"; echo "floor: the block is in $OUT"; exit 0; fi
"$PY" bench/block.py bench/RESULTS.md floor bench/floor.sh "$work/block.md" "## The floor of a flow hit (issue 19 item 1)"
