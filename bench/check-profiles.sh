#!/usr/bin/env bash
# Checks what can be checked here of the traffic-generator profiles and the plot script:
#  1. bench/pktgen/sluice.lua parses (luac -p), writes the pcaps of flows64/syn correctly and,
#     run outside Pktgen against its call recorder, configures each workload as intended, with
#     only the Lua calls and prompt commands the Pktgen versions of bench/pktgen/api.txt accept;
#  2. bench/trex/sluice_profile.py loads and compiles its streams against the TRex client
#     library from PyPI (lbr-trex-client, installed once into a cache directory);
#  3. bench/plot.py turns synthetic results into PNGs and a correct min/median/max table.
# Env: SLUICE_PYLIB_CACHE (default ~/.cache/sluice), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
TREX_CLIENT=lbr-trex-client
TREX_CLIENT_VERSION=3.4.0
PYTHON=${PYTHON:-python3}
cache="${SLUICE_PYLIB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}/$TREX_CLIENT-$TREX_CLIENT_VERSION"
work=$(mktemp -d /tmp/sluice-check-profiles.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "check-profiles: FAILED: $*" >&2; exit 1; }

# --- 1. Pktgen Lua -----------------------------------------------------------------------
luac=$(command -v luac5.4 || command -v luac5.3 || command -v luac || true)
lua=$(command -v lua5.4 || command -v lua5.3 || command -v lua || true)
[ -n "$luac" ] && [ -n "$lua" ] || fail "no Lua 5.3/5.4 interpreter (Debian: apt-get install lua5.4)"
"$luac" -p bench/pktgen/sluice.lua || fail "bench/pktgen/sluice.lua does not parse"

# flows64 and syn send from a pcap the script writes; check it byte by byte (checksums too).
SLUICE_FLOWS=100000 "$lua" bench/pktgen/sluice.lua write-pcap "$work/flows64.pcap" >"$work/flows64-pcap.txt" \
  || fail "flows64: write-pcap"
SLUICE_WORKLOAD=syn SLUICE_FLOWS=30011 SLUICE_VIPS=3 "$lua" bench/pktgen/sluice.lua write-pcap "$work/syn.pcap" \
  >"$work/syn-pcap.txt" || fail "syn: write-pcap"
"$PYTHON" bench/pktgen/check_pcap.py "$work/flows64.pcap" 100000 A 198.51.100.10 \
  || fail "flows64 pcap"
"$PYTHON" bench/pktgen/check_pcap.py "$work/syn.pcap" 30011 S 198.51.100.10,198.51.100.11,198.51.100.12 \
  || fail "syn pcap"

SLUICE_PCAP="$work/flows64.pcap" "$lua" bench/pktgen/sluice.lua >"$work/flows64.txt" || fail "flows64 dry run"
grep -q "^sluice.lua: pcap $work/flows64.pcap: packets=100000 flows=100000 syn_only=0 frames=60..60 " \
  "$work/flows64.txt" || fail "flows64: what the pcap holds, read back"
grep -q 'pktgen.pcap("0", "on")' "$work/flows64.txt" || fail "flows64: pcap mode"
grep -q 'pktgen.set("0", "count", 0)' "$work/flows64.txt" || fail "flows64: sends until stopped"
grep -q '^sluice.lua: workload=flows64 proto=tcp flows=100000 ' "$work/flows64.txt" || fail "flows64: flow count"
grep -q '^sluice.lua: at the Pktgen prompt: start 0$' "$work/flows64.txt" || fail "flows64: configure only"

SLUICE_WORKLOAD=syn SLUICE_PCAP="$work/syn.pcap" SLUICE_SECONDS=1 "$lua" bench/pktgen/sluice.lua \
  >"$work/syn.txt" || fail "syn dry run"
grep -q 'pktgen.set("0", "count", 30011)' "$work/syn.txt" || fail "syn: each SYN once"
grep -q '^sluice.lua: workload=syn proto=tcp flows=30011 .* packets=30011 (each sent once)' "$work/syn.txt" \
  || fail "syn: flow count"
grep -q 'pktgen.start("0")' "$work/syn.txt" && grep -q '^sluice.lua: result workload=syn ' "$work/syn.txt" \
  || fail "syn: timed run and result line"
grep -q 'pktgen.portStats("0", "port")' "$work/syn.txt" || fail "syn: final statistics"
# a pcap that is not all SYNs is refused for syn; none at all is refused for flows64
if SLUICE_WORKLOAD=syn SLUICE_PCAP="$work/flows64.pcap" "$lua" bench/pktgen/sluice.lua >/dev/null 2>&1; then
  fail "syn must refuse a pcap of ACKs"
fi
if "$lua" bench/pktgen/sluice.lua >/dev/null 2>&1; then fail "flows64 without SLUICE_PCAP must be refused"; fi

SLUICE_WORKLOAD=imix "$lua" bench/pktgen/sluice.lua >"$work/imix.txt" || fail "imix dry run"
[ "$(grep -c 'pktSize=64,' "$work/imix.txt")" = 7 ] && [ "$(grep -c 'pktSize=594,' "$work/imix.txt")" = 4 ] \
  && [ "$(grep -c 'pktSize=1498,' "$work/imix.txt")" = 1 ] || fail "imix: 7:4:1 sequence, 1518 less IPIP"
grep -q 'pktgen.set("0", "seq_cnt", 12)' "$work/imix.txt" || fail "imix: sequence count"
SLUICE_WORKLOAD=imix SLUICE_ENCAP=gue "$lua" bench/pktgen/sluice.lua >"$work/imix-gue.txt" || fail "imix GUE dry run"
grep -q 'pktSize=1490,' "$work/imix-gue.txt" || fail "imix: GUE"
SLUICE_WORKLOAD=imix SLUICE_ENCAP=none "$lua" bench/pktgen/sluice.lua >"$work/imix-none.txt" || fail "imix l2-dsr dry run"
grep -q 'pktSize=1518,' "$work/imix-none.txt" || fail "imix: l2-dsr"

# Every Lua call and prompt command against the Pktgen versions of bench/pktgen/api.txt; the
# checker itself must refuse what 23.03 refused (the old `tcp_flags` fallback) and a missing call.
"$PYTHON" bench/pktgen/check_api.py "$work/flows64.txt" "$work/syn.txt" "$work/imix.txt" \
  || fail "sluice.lua asks Pktgen for something its versions do not have"
"$PYTHON" bench/pktgen/check_api.py --cli 'range 0 tcp flag set syn' 'set 0 count 5' >/dev/null \
  || fail "check_api.py refuses a valid command"
for bad in 'range 0 tcp_flags clr all' 'range 0 tcp flags set syn' 'set 0 counts 5' 'start'; do
  if "$PYTHON" bench/pktgen/check_api.py --cli "$bad" >/dev/null 2>&1; then fail "check_api.py accepts <$bad>"; fi
done
echo 'pktgen.range.tcp_flags("0", "set", "syn")' >"$work/bad-call.txt"
if "$PYTHON" bench/pktgen/check_api.py "$work/bad-call.txt" >/dev/null 2>&1; then
  fail "check_api.py accepts pktgen.range.tcp_flags"
fi

if SLUICE_WORKLOAD=syn SLUICE_PROTO=udp "$lua" bench/pktgen/sluice.lua >/dev/null 2>&1; then
  fail "syn over udp must be refused"
fi
echo "check-profiles: Pktgen Lua OK ($("$lua" -v 2>&1 | cut -d' ' -f1-2))"

# --- 2. TRex profile ---------------------------------------------------------------------
if [ ! -f "$cache/.installed" ]; then
  rm -rf "$cache" && mkdir -p "$cache"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --target "$cache" \
    "$TREX_CLIENT==$TREX_CLIENT_VERSION" >"$work/pip.log" 2>&1 \
    || { cat "$work/pip.log" >&2; fail "cannot install $TREX_CLIENT $TREX_CLIENT_VERSION from PyPI"; }
  touch "$cache/.installed"
fi
PYTHONPATH="$cache" PYTHONDONTWRITEBYTECODE=1 "$PYTHON" bench/trex/check_profile.py 2>"$work/trex.err" \
  || { cat "$work/trex.err" >&2; fail "TRex profile"; }
PYTHONPATH="$cache" PYTHONDONTWRITEBYTECODE=1 "$PYTHON" -W ignore bench/trex/sluice_profile.py \
  -t --workload syn >"$work/trex-show.txt" 2>&1 || { cat "$work/trex-show.txt" >&2; fail "TRex profile listing"; }
grep -q '^stream 0: 64-byte frames, 1 pps, Ether / IP / TCP 203.0.113.1:1024 > 198.51.100.10:80 S' \
  "$work/trex-show.txt" || { cat "$work/trex-show.txt" >&2; fail "TRex profile listing: SYN stream"; }

# --- 3. plot.py on synthetic results -------------------------------------------------------
# run.sh's shape (scenario, rx_pps, round, latency_ns percentiles) in the newest of two
# stamped files, and the histogram shape of latency.jsonl in a second directory.
"$PYTHON" - "$work/a" "$work/b" <<'PY'
import json, os, sys
a, b = sys.argv[1], sys.argv[2]
os.makedirs(a)
os.makedirs(b)
with open(f"{a}/throughput-20260101T000000Z.jsonl", "w") as f:
    f.write(json.dumps({"scenario": "old-run", "flows": 1, "rx_pps": 1, "round": 1}) + "\n")
with open(f"{a}/throughput-20260102T000000Z.jsonl", "w") as f:
    for k, scale in enumerate((1.0, 1.1, 0.7), 1):
        for sc, base, flows in (("sluice-ipip", 4e6, 1000), ("sluice-ipip", 3e6, 1000000),
                                ("testpmd-io", 9e6, 1000), ("sluice-syn", 1e6, None)):
            f.write(json.dumps({"scenario": sc, "flows": flows, "round": k,
                                "rx_pps": base * scale / (1 + len(str(flows)) / 10),
                                "latency_ns": {"p50": 1000 * k, "p99": 5000 * k, "p99.9": None,
                                               "max": 90000, "count": 10 ** 6}}) + "\n")
        f.write(json.dumps({"scenario": "latency-sluice", "flows": 10000, "round": k, "rx_pps": 5e4,
                            "latency_ns": {"p50": 2000 + k, "p99": 8000, "p99.9": 20000,
                                           "max": 50000, "count": 100000}}) + "\n")
        f.write(json.dumps({"scenario": "latency-testpmd-io", "flows": 10000, "round": k, "rx_pps": 5e4,
                            "latency_ns": {"p50": 1000 * k, "p99": 5000 * k, "p99.9": None,
                                           "max": 90000, "count": 100000}}) + "\n")
    f.write("{truncated\n")
with open(f"{b}/latency.jsonl", "w") as f:
    for load in (10, 50, 90):
        hist = [[1000 * 2 ** i, 1000 // (i + 1)] for i in range(10)] + [[1e400, 1]]
        f.write(json.dumps({"load_pct": load, "p50_ns": 2000 + load, "p99_ns": 9000 + load,
                            "p999_ns": 40000 + load, "hist": hist}).replace("Infinity", "1e400") + "\n")
PY
"$PYTHON" bench/plot.py --results "$work/a" >"$work/plot-a.txt" 2>"$work/plot-a.err" \
  || { cat "$work/plot-a.txt" "$work/plot-a.err" >&2; fail "plot.py on run.sh results"; }
"$PYTHON" bench/plot.py --results "$work/b" >"$work/plot-b.txt" 2>"$work/plot-b.err" \
  || { cat "$work/plot-b.txt" "$work/plot-b.err" >&2; fail "plot.py on latency histograms"; }
for png in a/throughput a/latency b/latency; do
  head -c 8 "$work/$png.png" | od -An -tx1 | tr -d ' \n' | grep -q '^89504e470d0a1a0a$' \
    || fail "plot.py: $png.png is not a PNG"
done
[ ! -e "$work/b/throughput.png" ] || fail "plot.py: a throughput plot without throughput data"
# 4e6 / (1 + 4/10) over rounds x1.0/1.1/0.7: min 2.000, median 2.857, max 3.143 Mpps (mean 2.667).
grep -q '^| sluice ipip | 1000 | 3 | 2.000 | 2.857 | 3.143 |$' "$work/plot-a.txt" || fail "plot.py: throughput table"
grep -q '^| sluice syn | new per packet | 3 | 0.500 | 0.714 | 0.786 |$' "$work/plot-a.txt" || fail "plot.py: SYN row"
! grep -q 'old-run\|^| latency-sluice | 10000' "$work/plot-a.txt" || fail "plot.py: stale file or latency run in throughput"
grep -q '^| latency-sluice | 3 | 2.0 / 2.0 / 2.0 | 8.0 / 8.0 / 8.0 | 20.0 / 20.0 / 20.0 | 50.0 / 50.0 / 50.0 |$' \
  "$work/plot-a.txt" || fail "plot.py: latency percentiles table"
grep -q '^| latency-testpmd-io | 3 | 1.0 / 2.0 / 3.0 | 5.0 / 10.0 / 15.0 | - | 90.0 / 90.0 / 90.0 |$' "$work/plot-a.txt" \
  || fail "plot.py: latency table with a missing percentile"
# Throughput runs carry latency too, but at line rate it measures queueing, not sluice: not tabled.
! grep -q '^| sluice ipip | [0-9]* | [0-9.]* / ' "$work/plot-a.txt" || fail "plot.py: throughput run in the latency table"
grep -q 'throughput-20260102T000000Z.jsonl:19: not JSON' "$work/plot-a.err" || fail "plot.py: a bad line must be reported"
grep -q '^| 90% load | 1 | 2.1 / 2.1 / 2.1 | 9.1 / 9.1 / 9.1 | 40.1 / 40.1 / 40.1 |$' "$work/plot-b.txt" \
  || fail "plot.py: latency histogram table"
if "$PYTHON" bench/plot.py --results "$work/empty" >/dev/null 2>&1; then
  fail "plot.py with no results must exit non-zero"
fi
echo "check-profiles: plot.py OK (throughput.png, latency.png, tables)"

# --- 4. summarize.py's ratios and verdict against a computation of their own ---------------------
# The committed make-bench run: sluice-ipip's per-round rate ratios to testpmd io and macswap, and
# the capacity ratio (macswap's busy ns per packet over sluice's) the 0.8 verdict is judged by.
raw=$(ls bench/results/throughput-*.jsonl | sort | tail -1)
"$PYTHON" bench/summarize.py "$raw" "$work/summary.md" --command check >/dev/null 2>"$work/summary.err" \
  || { cat "$work/summary.err" >&2; fail "summarize.py on $raw"; }
want=$("$PYTHON" - "$raw" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def per_round(run, ref, key):
    out = []
    for rd in sorted({r["round"] for r in rows}):
        a = [r[key] for r in rows if r["scenario"] == run and r["round"] == rd and r.get(key)]
        b = [r[key] for r in rows if r["scenario"] == ref and r["round"] == rd and r.get(key)]
        if a and b:
            out.append(a[0] / b[0])
    return out
mmm = lambda v: "%.2f / %.2f / %.2f" % (min(v), statistics.median(v), max(v))
io, mac = per_round("sluice-ipip", "testpmd-io", "rx_pps"), per_round("sluice-ipip", "testpmd-macswap", "rx_pps")
cap = per_round("testpmd-macswap", "sluice-ipip", "busy_ns_per_packet")
print("| sluice-ipip | %s | %s |" % (mmm(io), mmm(mac)))
print("per round median %.2f (min %.2f, max %.2f)" % (statistics.median(cap), min(cap), max(cap)))
PY
)
while IFS= read -r line; do
  grep -qF "$line" "$work/summary.md" || fail "summarize.py: no '$line' in its summary of $raw"
done <<<"$want"
echo "check-profiles: summarize.py OK (per-round ratios and the capacity verdict of $(basename "$raw"))"
echo "check-profiles: all checks OK (pktgen, trex, plot, summarize)"
