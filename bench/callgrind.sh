#!/usr/bin/env bash
# Instructions per packet of the pure pipeline (hit, new flow by SYN, new flow by non-SYN) for
# each forwarding mode (nat and fullnat also their backends' replies, path `reply`), counted by callgrind inside ipp_measured_region only, as the difference
# between a run of N2 and one of N1 packets (so fixed costs in the region cancel out).
# Writes bench/results/callgrind.json and prints a table with the miss/hit ratios.
# usage: bench/callgrind.sh   (env: N1, N2, FLOWS, CAPACITY, MODES, PATHS, APIS,
#        TIME_ROUNDS, TIME_PACKETS, OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-1024}
N2=${N2:-5120}
FLOWS=${FLOWS:-10000}
CAPACITY=${CAPACITY:-1048576}
MODES=${MODES:-"ipip gue l2-dsr nat fullnat"}
PATHS=${PATHS:-"hit miss-syn miss-ack"}
# Added to PATHS for the modes that translate (a reply on a live connection).
NAT_PATHS=${NAT_PATHS:-"reply"}
APIS=${APIS:-"burst one"}
TIME_ROUNDS=${TIME_ROUNDS:-9}
TIME_PACKETS=${TIME_PACKETS:-65536}
OUT=${OUT:-bench/results/callgrind.json}

command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (Debian: valgrind)" >&2; exit 1; }
cargo build --release -q -p dataplane --example ipp
bin="${CARGO_TARGET_DIR:-target}/release/examples/ipp"
work=$(mktemp -d /tmp/sluice-callgrind.XXXXXX)
trap 'rm -rf "$work"' EXIT

# perf stat gives real cycles where the (virtual) machine exposes the PMU.
perf_note="perf not installed (Debian: linux-perf)"
if command -v perf >/dev/null; then
  if perf stat -x, -e cycles,instructions true 2>"$work/perf.txt" >/dev/null \
      && ! grep -q "not supported" "$work/perf.txt"; then
    perf_note="supported"
  else
    perf_note="perf stat -e cycles,instructions: $(grep -o 'not supported' "$work/perf.txt" | head -1 || echo failed) on this machine"
  fi
fi

for api in $APIS; do
  for mode in $MODES; do
    mode_paths=$PATHS
    case $mode in nat|fullnat) mode_paths="$PATHS $NAT_PATHS" ;; esac
    for path in $mode_paths; do
      for n in "$N1" "$N2"; do
        tag="$api.$mode.$path.$n"
        valgrind --tool=callgrind --callgrind-out-file="$work/cg.$tag" \
          --toggle-collect='*ipp_measured_region*' \
          "$bin" --api "$api" --mode "$mode" --path "$path" --packets "$n" --flows "$FLOWS" \
          --capacity "$CAPACITY" \
          >"$work/out.$tag" 2>"$work/err.$tag" \
          || { cat "$work/err.$tag" >&2; exit 1; }
        callgrind_annotate --inclusive=yes --show=Ir "$work/cg.$tag" >"$work/ann.$tag" 2>/dev/null
      done
    done
    # Wall clock as a cross-check (cycles are not countable here): the three paths
    # alternate TIME_ROUNDS times in one process, so their ratio is fair even under load.
    if [ "$TIME_ROUNDS" -gt 0 ]; then
      "$bin" --api "$api" --mode "$mode" --packets "$TIME_PACKETS" --flows "$FLOWS" \
        --capacity "$CAPACITY" --time "$TIME_ROUNDS" >"$work/time.$api.$mode"
    fi
  done
done

python3 - "$work" "$OUT" "$N1" "$N2" "$FLOWS" "$APIS" "$MODES" "$PATHS $NAT_PATHS" "$perf_note" \
  "$CAPACITY" "$TIME_ROUNDS" "$TIME_PACKETS" <<'PY'
import json, os, platform, re, subprocess, sys, time
work, out, n1, n2, flows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
apis, modes, paths, perf_note = sys.argv[6].split(), sys.argv[7].split(), sys.argv[8].split(), sys.argv[9]
capacity, time_rounds, time_packets = int(sys.argv[10]), int(sys.argv[11]), int(sys.argv[12])

def totals(path):
    events = summary = None
    for line in open(path):
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:") or line.startswith("totals:"):
            summary = [int(x) for x in line.split()[1:]]
    vals = dict(zip(events, summary + [0] * (len(events) - len(summary))))
    return vals

# Inclusive Ir of the pipeline's stages, from callgrind_annotate's function list.
STAGES = {
    "parse": r"dataplane::parse::parse",
    "classify": r"dataplane::snapshot::Snapshot::classify",
    "flow_find": r"dataplane::flow::FlowTable::find",
    "flow_insert": r"dataplane::flow::FlowTable::insert",
    "flow_sweep": r"dataplane::flow::FlowTable::sweep",
    "maglev": r"dataplane::pipeline::Pipeline::maglev",
    "forward": r"dataplane::pipeline::Pipeline::forward",
    "transport": r"dataplane::pipeline::Pipeline::transport",
    "encapsulate": r"dataplane::rewrite::encapsulate",
    "one": r"dataplane::pipeline::Pipeline::one",
    "nat_forward": r"dataplane::pipeline::translate::<impl dataplane::pipeline::Pipeline>::nat_forward",
    "nat_reply": r"dataplane::pipeline::translate::<impl dataplane::pipeline::Pipeline>::nat_reply",
}

def stages(path):
    # A function is listed once per source file its inlined code came from; the largest
    # entry holds its calls, so it is the closest to the function's inclusive cost.
    found = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+[^:]*:(.*)$", line)
        if not m:
            continue
        for k, pat in STAGES.items():
            if re.fullmatch(pat, m.group(2).split(" [")[0]):
                found[k] = max(found.get(k, 0), int(m.group(1).replace(",", "")))
    return found

def cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()

vg = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
results = []
for api in apis:
    for mode in modes:
        for path in paths:
            if not os.path.exists(f"{work}/cg.{api}.{mode}.{path}.{n1}"):
                continue  # reply: nat and fullnat only
            a = totals(f"{work}/cg.{api}.{mode}.{path}.{n1}")
            b = totals(f"{work}/cg.{api}.{mode}.{path}.{n2}")
            per = lambda k: round((b.get(k, 0) - a.get(k, 0)) / (n2 - n1), 2)
            sa, sb = stages(f"{work}/ann.{api}.{mode}.{path}.{n1}"), stages(f"{work}/ann.{api}.{mode}.{path}.{n2}")
            r = {
                "api": api, "mode": mode, "path": path,
                "ir": [a["Ir"], b["Ir"]],
                "ir_per_packet": per("Ir"),
                "stages_ir_per_packet": {k: round((sb.get(k, 0) - sa.get(k, 0)) / (n2 - n1), 1)
                                         for k in STAGES if k in sa or k in sb},
            }
            tpath = f"{work}/time.{api}.{mode}"
            if os.path.exists(tpath):
                r["native_ns_per_packet"] = json.loads(open(tpath).read())["ns_per_packet"].get(path, {})
            results.append(r)

def find(api, mode, path):
    return next((r for r in results if (r["api"], r["mode"], r["path"]) == (api, mode, path)), None)

ratios = []
for api in apis:
    for mode in modes:
        hit = find(api, mode, "hit")
        for miss in ("miss-syn", "miss-ack"):
            m = find(api, mode, miss)
            if hit and m:
                q = {"api": api, "mode": mode, "miss": miss,
                     "ratio": round(m["ir_per_packet"] / hit["ir_per_packet"], 3)}
                tpath = f"{work}/time.{api}.{mode}"
                if os.path.exists(tpath):
                    t = json.loads(open(tpath).read())
                    q["native_time_ratio"] = t[miss.replace("-", "_") + "_over_hit"]
                    q["native_rounds"] = t["rounds"]
                ratios.append(q)

doc = {
    "what": "instructions per packet of dataplane::Pipeline (process_burst / process), callgrind, "
            "ipp_measured_region only, (Ir(N2) - Ir(N1)) / (N2 - N1)",
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": {"cpu": cpu(), "cpus": os.cpu_count(), "kernel": platform.release()},
    "valgrind": vg,
    "perf_stat": perf_note,
    "packets": [n1, n2], "flows": flows, "flow_table_capacity": capacity, "frame_bytes": 60,
    "wall_clock": {"rounds": time_rounds, "packets": time_packets,
                   "what": "hit, miss-syn and miss-ack regions alternated in one process"},
    "command": "bench/callgrind.sh",
    "results": results,
    "miss_over_hit": ratios,
}
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")

print(f"instructions per packet (callgrind, {n2 - n1} packets, {flows} live flows; {vg}); perf: {perf_note}")
print(f"{'api':6} {'mode':7} {'path':9} {'Ir/pkt':>8} {'ns/pkt (median)':>16}")
for r in results:
    ns = r.get("native_ns_per_packet", {}).get("median", "")
    print(f"{r['api']:6} {r['mode']:7} {r['path']:9} {r['ir_per_packet']:8.1f} {ns:>16}")
for q in ratios:
    verdict = "meets" if q["ratio"] <= 2.0 else "MISSES"
    t = q.get("native_time_ratio")
    wall = f"; wall-clock ratio median {t['median']:.2f} (min {t['min']:.2f}, max {t['max']:.2f})" if t else ""
    print(f"{q['api']:6} {q['mode']:7} {q['miss']}/hit = {q['ratio']:.3f} instructions "
          f"({verdict} the 2x target){wall}")
print(f"wrote {out}")
PY
