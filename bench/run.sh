#!/usr/bin/env bash
# `make bench`: sluice's forwarding rate and latency against dpdk-testpmd on the same topology,
#   sluice-gen (memif server) -> net_memif -> forwarder (memif client) -> back to sluice-gen,
# every forwarder on the same lcores (main 0, one forwarding lcore 1; the generator on lcore 0).
# Scenarios, interleaved (A/B/A/B) in each of REPEATS rounds so they see the same machine load:
#   testpmd-io, testpmd-macswap          the ceiling of the topology (no packet work / MAC swap)
#   sluice-ipip                          TCP ACK, IPv4, IPIP, 100 backends, FLOWS flows prewarmed
#   sluice-syn                           TCP SYN, a new 5-tuple per packet (all flow-table misses)
#   sluice-ipip6                         as sluice-ipip over IPv6 (IPv6-in-IPv6)
#   sluice-gue, sluice-l2dsr             as sluice-ipip with the other forwarding modes
#   sluice-nat                           as sluice-ipip with nat (backends on port 8080; the
#                                        forward direction, two flow entries per connection)
#   sluice-fullnat                       as sluice-nat with fullnat (the source rewritten to local
#                                        addresses 192.0.2.200 and up, as many as the flow
#                                        capacity needs; the generator attributes returned
#                                        packets to flows by the flow number in their stamp)
#   NAME@F                               NAME with F flows instead of FLOWS (the flow-count sweep)
#   NAME-2w (e.g. sluice-ipip-2w)        NAME with two workers on two memif queue pairs: sluice
#                                        `queues: 2`, lcores LCORES_2W (default 0@0,1@1,2@1:
#                                        control on CPU 0 with the generator, both workers on
#                                        CPU 1, which they time-share); the generator sends flow
#                                        f on queue f % 2 and receives on all of sluice's queues
#   latency-sluice@P%, latency-testpmd-io@P%
#                                        latency at P% of this round's sluice-ipip rate (FLOWS
#                                        flows, prewarmed): one-way from the generator's TSC stamps,
#                                        and sluice's own rx-to-tx histogram over the measured phase
#   latency-sluice, latency-testpmd-io   the same at a fixed rate (LAT_RATE pps)
# Every run also records the host over its measured phase (steal and interrupts per CPU from
# /proc/stat and /proc/interrupts, each forwarding thread's CPU time and involuntary context
# switches from /proc/PID/task) and, for sluice, the flow table's size from `sluice check` and
# the process's VmRSS once the flows are in (memory per flow).
# Raw results: one JSON line per run in bench/results/throughput-<time>.jsonl; the summary
# (min/median/max and ratios to testpmd per round) replaces the "Throughput and latency
# (make bench)" section of bench/RESULTS.md.
# usage: bash bench/run.sh [--smoke]    (env: REPEATS, SECONDS_PER_RUN, FLOWS, SWEEP, LOADS,
#                                         LAT_RATE, SIZE, SCENARIOS, LCORES_2W, SLUICE, SLUICE_GEN, OUT)
# OUT=FILE.jsonl: an ad-hoc run; raw results go there, the summary to FILE.md and the plots
# beside it, and the repository is left alone.
# --smoke: one short round of testpmd-io, sluice-ipip, sluice-ipip-2w and sluice at 50% load;
# checks the results parse; writes nothing into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
PY=${PY:-/usr/bin/python3}
REPEATS=${REPEATS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
FLOWS=${FLOWS:-1000000}
LAT_RATE=${LAT_RATE:-50000}
SIZE=${SIZE:-64}
# With FLOWS (1M, sluice-ipip itself) the sweep covers 1k, 100k, 1M and 10M flows.
SWEEP=${SWEEP:-"1000 100000 10000000"}
LCORES_2W=${LCORES_2W:-"0@0,1@1,2@1"}
LOADS=${LOADS:-"10 50 90"}
if [ -z "${SCENARIOS:-}" ]; then
  SCENARIOS="testpmd-io sluice-ipip testpmd-macswap sluice-ipip-2w sluice-syn sluice-ipip6 sluice-gue sluice-l2dsr sluice-nat sluice-fullnat"
  for f in $SWEEP; do SCENARIOS+=" testpmd-macswap@$f sluice-ipip@$f"; done
  for p in $LOADS; do SCENARIOS+=" latency-testpmd-io@$p% latency-sluice@$p%"; done
fi
if [ "$SMOKE" -eq 1 ]; then
  REPEATS=1 SECONDS_PER_RUN=1 FLOWS=2000
  SCENARIOS="testpmd-io sluice-ipip sluice-ipip-2w latency-sluice@50%"
fi

if [ -z "${SLUICE:-}" ] || [ -z "${SLUICE_GEN:-}" ]; then
  cargo build --release -q -p sluice -p sluice-bench
  SLUICE=${SLUICE:-${CARGO_TARGET_DIR:-$REPO/target}/release/sluice}
  SLUICE_GEN=${SLUICE_GEN:-${CARGO_TARGET_DIR:-$REPO/target}/release/sluice-gen}
fi
command -v dpdk-testpmd >/dev/null || { echo "bench: dpdk-testpmd is not installed (Debian: dpdk)" >&2; exit 1; }

W=$(mktemp -d /tmp/sluice-bench.XXXXXX)
PREFIX="sluice-bench-$$"
PIDS=()
cleanup() {
  local rc=$? p
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "$rc" -ne 0 ] && for f in "$W"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done >&2
  rm -rf "$W" /var/run/dpdk/"$PREFIX"-*
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stamp=$(date -u +%Y%m%dT%H%M%SZ)
ADHOC=${OUT:+1}
if [ "$SMOKE" -eq 1 ]; then OUT=$W/smoke.jsonl
elif [ -z "$ADHOC" ]; then mkdir -p bench/results; OUT=bench/results/throughput-$stamp.jsonl
else OUT=$(realpath -m "$OUT"); mkdir -p "$(dirname "$OUT")"; fi
# Rows go to a .partial file, renamed once every run has parsed: an interrupted bench leaves no
# throughput-*.jsonl for plot.py (which takes the newest) to pick up half-written.
ROWS=$OUT.partial
: >"$ROWS"

# sluice_config FILE FORWARDING FAMILY(4|6) SOCKET FLOWS WORKERS — one service, 100 backends
# (off-link via a static gateway MAC, or on-link and resolved by ARP for l2-dsr). The flow table
# gets 2 slots per flow it sees (each worker's table, one per queue, holds its queue's share of
# the flows): with two candidate 8-way buckets per flow, a half-full table evicts nothing (nat
# keeps two entries per flow, so 4 slots). nat and fullnat backends listen on port 8080; fullnat gets
# the local addresses 192.0.2.200 and up, one per 64512 connections (capacity / 2).
sluice_config() {
  local file=$1 fwd=$2 fam=$3 sock=$4 flows=$5 workers=$6 vip gw i per=2 locals= cores
  case $fwd in nat | fullnat) per=4 ;; esac
  local capacity=$((flows * per / workers > 1024 ? flows * per / workers : 1024))
  if [ "$workers" = 1 ]; then cores='"-l", "0-1", "--main-lcore", "0"'
  else cores="\"--lcores\", \"$LCORES_2W\", \"--main-lcore\", \"0\""; fi
  if [ "$fwd" = fullnat ]; then
    local n=$(((capacity / 2 + 64511) / 64512))
    [ "$n" -le 55 ] || { echo "bench: fullnat with $flows flows needs $n local addresses (at most 55)" >&2; return 1; }
    [ "$fam" = 4 ] || { echo "bench: the fullnat scenario is IPv4 only" >&2; return 1; }
    for i in $(seq 0 $((n - 1))); do locals+="${locals:+, }192.0.2.$((200 + i))"; done
  fi
  if [ "$fam" = 6 ]; then vip=2001:db8::80 gw=2001:db8::1; else vip=198.51.100.10 gw=192.0.2.1; fi
  {
    cat <<EOF
dpdk:
  args: ["--no-huge", "--no-pci", "-m", "1024", $cores,
         "--file-prefix", "$PREFIX-lb", "--log-level", "lib.eal:error",
         "--vdev", "net_memif0,role=client,socket=$sock,socket-abstract=no"]
  mbufs: 16383
interfaces:
  - name: uplink
    device: net_memif0
    address: 192.0.2.10/24
    address6: 2001:db8::10/64
    gateway: $gw
    gateway_mac: "02:00:00:00:00:01"
    queues: $workers
flows:
  capacity: $capacity
  max_new_flows_per_second: 100000000
services:
  - name: bench
    vip: $vip
    port: 80
    protocol: tcp
    table_size: 65537
    forwarding: $fwd
EOF
    [ -z "$locals" ] || echo "    local_addresses: [$locals]"
    echo "    backends:"
    for i in $(seq 1 100); do
      if [ "$fwd" = l2-dsr ]; then echo "      - address: 192.0.2.$((100 + i))"
      elif [ "$fam" = 6 ]; then echo "      - address: 2001:db8:be::$i"
      else echo "      - address: 203.0.113.$i"; fi
      case $fwd in nat | fullnat) echo "        port: 8080" ;; esac
    done
    printf 'metrics:\n  listen: 127.0.0.1:0\n'
  } >"$file"
}

wait_file() { # wait_file SECONDS PID TEST-ARGS...: until `test ARGS` holds (or PID died)
  local deadline=$((SECONDS + $1)) pid=$2
  shift 2
  until test "$@"; do
    [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
}

# stop PID: SIGTERM, then SIGKILL if it has not ended within 10 s, so no hung process stalls the bench.
stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# metrics ADDR: sluice's counters and rx-to-tx histogram as one JSON object (worker sums).
metrics() {
  curl -sS --noproxy '*' --max-time 5 "http://$1/metrics" | awk '
    { split($1, a, "{") }
    a[1] == "sluice_rx_packets_total" { rx += $2 } a[1] == "sluice_tx_packets_total" { tx += $2 }
    a[1] == "sluice_dropped_packets_total" && $2 > 0 { r = $1; sub(/.*reason="/, "", r); sub(/".*/, "", r); d = d sprintf("%s\"%s\":%d", (d == "" ? "" : ","), r, $2) }
    a[1] == "sluice_rx_packets_total" { q = $1; sub(/.*queue="/, "", q); sub(/".*/, "", q); rq = rq sprintf("%s\"%s\":%d", (rq == "" ? "" : ","), q, $2) }
    a[1] == "sluice_flows_created_total" { fc = $2 }
    a[1] == "sluice_flows_stateless_total" { sl = $2 }
    a[1] == "sluice_flows_evicted_total" { ev += $2 }
    a[1] == "sluice_worker_busy_seconds_total" { busy += $2; c = $1; sub(/.*core="/, "", c); sub(/".*/, "", c); bc = bc sprintf("%s\"%s\":%.9f", (bc == "" ? "" : ","), c, $2) }
    a[1] == "sluice_worker_bursts_total" { bursts += $2 }
    a[1] == "sluice_packet_latency_seconds_bucket" { le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le); h = h sprintf("%s[\"%s\",%d]", (h == "" ? "" : ","), le, $2) }
    END { printf "{\"rx\":%d,\"tx\":%d,\"flows_created\":%d,\"flows_stateless\":%d,\"flows_evicted\":%d,\"busy_s\":%.9f,\"bursts\":%d,\"rx_by_queue\":{%s},\"busy_by_core\":{%s},\"dropped\":{%s},\"latency_buckets\":[%s]}", rx, tx, fc, sl, ev, busy, bursts, rq, bc, d, h }'
}

# host PID: the machine and process PID as one JSON object, for deltas over a run: per CPU the
# /proc/stat times (USER_HZ ticks) and interrupts (all, and the local timer's); per thread of PID
# its CPU time (ns, schedstat) and involuntary and voluntary context switches; its VmRSS (kB).
host() {
  "$PY" - "$1" <<'PYEOF'
import json, os, sys, time
pid = sys.argv[1]
out = {"t": time.monotonic(), "stat": {}, "irq": {}, "timer": {}, "threads": {}, "rss_kb": None}
for line in open("/proc/stat"):
    f = line.split()
    if f[0].startswith("cpu") and f[0] != "cpu":
        out["stat"][f[0]] = [int(x) for x in f[1:]]
lines = open("/proc/interrupts").read().splitlines()
cpus = [c.lower() for c in lines[0].split()]
for line in lines[1:]:
    f = line.split()
    counts = [int(x) for x in f[1:1 + len(cpus)] if x.isdigit()]
    for c, n in zip(cpus, counts):
        out["irq"][c] = out["irq"].get(c, 0) + n
        if f[0] == "LOC:":
            out["timer"][c] = n
try:
    for tid in os.listdir("/proc/%s/task" % pid):
        base = "/proc/%s/task/%s/" % (pid, tid)
        st = dict(l.split(":", 1) for l in open(base + "status") if ":" in l)
        out["threads"][tid] = {"comm": st["Name"].strip(), "run_ns": int(open(base + "schedstat").read().split()[0]),
                               "nvcsw": int(st["nonvoluntary_ctxt_switches"]), "vcsw": int(st["voluntary_ctxt_switches"])}
    st = dict(l.split(":", 1) for l in open("/proc/%s/status" % pid) if ":" in l)
    out["rss_kb"] = int(st["VmRSS"].split()[0])
except (OSError, KeyError, ValueError):
    pass  # the process ended: no thread figures for this run
print(json.dumps(out))
PYEOF
}

# run_one ROUND SCENARIO: one generator run against one forwarder; appends a JSON line.
# SCENARIO is NAME, NAME@FLOWS or latency-*@PCT% (see the top of this file).
run_one() {
  local round=$1 sc=$2 name=${2%@*} arg= sock=$W/run.sock fwd_pid gen_pid fam=4 vip=198.51.100.10
  local gen_mode=ack rate=0 flows=$FLOWS fwd_kind forwarding=ipip rxq=2 extra=() prewarm=(--prewarm)
  local load=null workers=1 base
  [ "$sc" != "$name" ] && arg=${sc#*@}
  rm -f "$sock" "$W/gen.json" "$W/go"
  base=${name%-2w}
  [ "$base" = "$name" ] || workers=2
  case $base in
    testpmd-io | latency-testpmd-io) fwd_kind=io ;;
    testpmd-macswap) fwd_kind=macswap ;;
    sluice-* | latency-sluice) fwd_kind=sluice ;;
    *) echo "bench: unknown scenario $sc" >&2; return 1 ;;
  esac
  [ "$workers" = 1 ] || [ "$fwd_kind" = sluice ] || { echo "bench: $sc: only sluice runs two workers" >&2; return 1; }
  case $base in
    sluice-syn) gen_mode=syn prewarm=() ;;
    sluice-ipip6) fam=6 vip=2001:db8::80 ;;
    sluice-gue) forwarding=gue ;;
    sluice-l2dsr) forwarding=l2-dsr extra=(--arp-reply) ;;
    sluice-nat) forwarding=nat ;;
    sluice-fullnat) forwarding=fullnat ;;
  esac
  if [[ $name == latency-* ]]; then
    if [ -z "$arg" ]; then
      rate=$LAT_RATE flows=10000
    else
      load=${arg%\%}
      # The round's own maximum: sluice-ipip at FLOWS flows, measured earlier in this round.
      local max
      max=$("$PY" -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
m = [r["rx_pps"] for r in rows if r["round"] == int(sys.argv[2]) and r["run"] == "sluice-ipip"]
print(m[-1] if m else "")' "$ROWS" "$round")
      [ -n "$max" ] || { echo "bench: $sc needs sluice-ipip (FLOWS flows) earlier in the round" >&2; return 1; }
      rate=$((max * load / 100))
    fi
  elif [ -n "$arg" ]; then
    flows=$arg
  fi
  # The generator receives on each of the forwarder's tx queues (sluice: one per worker and one
  # for control) and sends on each of its rx queues (one per worker).
  rxq=$((workers + 1))
  [ "$fwd_kind" = sluice ] || rxq=1
  # testpmd's throughput runs skip the prewarm (its busy cycles cover its whole life). Its latency
  # runs keep it, as sluice's do: testpmd starts forwarding only after a link check (polled every
  # 100 ms) and flushing its rx queues twice 10 ms apart, and without a prewarm that start-up fell
  # in the measured phase (the flushed packets lost, the ones queued behind them milliseconds
  # late), which made testpmd's tail, and so sluice's "added" latency, a start-up artifact.
  [ "$fwd_kind" = sluice ] || [[ $name == latency-* ]] || prewarm=()
  # The generator waits for $W/go after its prewarm, while run.sh scrapes sluice and the host.
  extra+=(--wait-for "$W/go")
  "$SLUICE_GEN" --no-huge --no-pci -m 1024 -l 0 --file-prefix "$PREFIX-gen" --log-level lib.eal:error \
    --vdev "net_memif0,role=server,socket=$sock,socket-abstract=no" -- \
    --port net_memif0 --rx-queues "$rxq" --tx-queues "$workers" --vip "$vip" --mode "$gen_mode" --flows "$flows" --size "$SIZE" \
    --rate "$rate" --seconds "$SECONDS_PER_RUN" "${prewarm[@]}" --prewarm-rate 1000000 "${extra[@]}" --hold \
    >"$W/gen.json" 2>"$W/gen.log" &
  gen_pid=$!
  PIDS+=("$gen_pid")
  wait_file 30 "$gen_pid" -S "$sock" || { echo "bench: $sc: no memif socket" >&2; return 1; }
  if [ "$fwd_kind" = sluice ]; then
    sluice_config "$W/sluice.yaml" "$forwarding" "$fam" "$sock" "$flows" "$workers"
    # The flow table's slots as sluice sizes them (for the bytes per flow).
    "$SLUICE" check -c "$W/sluice.yaml" >"$W/check.log" 2>&1 || true
    "$SLUICE" run -c "$W/sluice.yaml" >"$W/fwd.log" 2>&1 &
  else
    dpdk-testpmd --no-huge --no-pci -m 256 -l 0-1 --file-prefix "$PREFIX-pmd" --log-level lib.eal:error \
      --vdev "net_memif0,role=client,socket=$sock,socket-abstract=no" -- \
      --forward-mode="$fwd_kind" --stats-period 1 --total-num-mbufs=16384 --record-core-cycles \
      </dev/null >"$W/fwd.log" 2>&1 &
  fi
  fwd_pid=$!
  PIDS+=("$fwd_pid")
  # sluice's counters and the host's are read once the generator is ready (prewarm done, not yet
  # measuring) and again at the end, so neither the prewarm nor the scrape is in the measured phase.
  # The deadline allows the prewarm 100,000 flows/s, a tenth of its rate (10M flows on a loaded
  # 2-vCPU machine took over 120 s).
  local addr= before='{}' deadline=$((SECONDS + 120 + SECONDS_PER_RUN + flows / 100000)) host_before= host_after
  until [ -s "$W/gen.json" ]; do
    kill -0 "$gen_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ] \
      || { echo "bench: $sc: no result from sluice-gen" >&2; cat "$W/gen.log" >&2; return 1; }
    if [ -z "$host_before" ] && grep -q '^sluice-gen: ready' "$W/gen.log"; then
      if [ "$fwd_kind" = sluice ]; then
        # Without prewarm the generator is ready at once, maybe before sluice printed its address.
        addr=$(sed -n 's|^sluice: metrics on http://\([^/]*\)/metrics$|\1|p' "$W/fwd.log" | head -n 1)
        # A failed scrape is retried at the next poll.
        [ -z "$addr" ] || before=$(metrics "$addr") || before='{}'
      fi
      if [ "$fwd_kind" != sluice ] || [ "$before" != '{}' ]; then host_before=$(host "$fwd_pid"); : >"$W/go"; fi
    fi
    # Poll fast only while waiting to scrape: every fork lands on the generator's core.
    if [ -z "$host_before" ]; then sleep 0.05; else sleep 0.5; fi
  done
  local after='{}'
  if [ "$fwd_kind" = sluice ]; then
    [ -n "$addr" ] || addr=$(sed -n 's|^sluice: metrics on http://\([^/]*\)/metrics$|\1|p' "$W/fwd.log" | head -n 1)
    sleep 0.5
    [ -n "$addr" ] || { echo "bench: $sc: sluice printed no metrics address" >&2; cat "$W/fwd.log" >&2; return 1; }
    after=$(metrics "$addr") || { echo "bench: $sc: could not read sluice's metrics" >&2; return 1; }
  fi
  host_after=$(host "$fwd_pid")
  # The forwarder (memif client) goes first, then the generator (see tests/e2e/11-*.sh).
  stop "$fwd_pid"
  stop "$gen_pid"
  PIDS=()
  "$PY" - "$W/gen.json" "$round" "$sc" "$before" "$after" "$stamp" "$load" "$W/fwd.log" \
    "$host_before" "$host_after" "$workers" "$W/check.log" "$LCORES_2W" >>"$ROWS" <<'EOF'
import json, re, sys
g = json.load(open(sys.argv[1]))
sc = sys.argv[3]
row = {"time": sys.argv[6], "round": int(sys.argv[2]), "scenario": sc.split("@")[0], "run": sc}
load = json.loads(sys.argv[7])
if load is not None:
    row["load_pct"] = load
for k in ("mode", "frame_size", "flows", "rate_asked_pps", "sent", "received", "lost", "duration_s",
          "tx_pps", "rx_pps", "latency_ns", "prewarm", "flows_seen", "moves_disallowed"):
    if k in g:
        row[k] = g[k]
row["tx_pps"], row["rx_pps"] = round(g["tx_pps"]), round(g["rx_pps"])
row["duration_s"] = round(g["duration_s"], 3)
row["backends_seen"] = len(g["per_backend"])
before, after = json.loads(sys.argv[4]), json.loads(sys.argv[5])
if after:
    # Counters cover the whole run (prewarm included); the histogram only the measured phase.
    hist = dict((le, n) for le, n in after.pop("latency_buckets"))
    base = dict((le, n) for le, n in before.get("latency_buckets", []))
    after["latency_hist"] = [[le, n - base.get(le, 0)] for le, n in hist.items()]
    row["sluice"] = after
    # Busy time per packet over the measured phase (sluice_worker_busy_seconds_total).
    rx = after["rx"] - before.get("rx", 0)
    if rx > 0:
        row["busy_ns_per_packet"] = round((after["busy_s"] - before.get("busy_s", 0)) * 1e9 / rx, 1)
        bursts = after["bursts"] - before.get("bursts", 0)
        if bursts > 0:
            row["mean_burst"] = round(rx / bursts, 2)
else:
    # testpmd --record-core-cycles, printed when it stops: cycles of the bursts that received
    # packets over the packets received, at the TSC's rate.
    m = re.search(r"CPU cycles/packet=([0-9.]+) .* at ([0-9]+) MHz", open(sys.argv[8], errors="replace").read())
    if m and float(m.group(2)) > 0:
        row["busy_ns_per_packet"] = round(float(m.group(1)) * 1e3 / float(m.group(2)), 1)
row["workers"] = int(sys.argv[11])
if row["workers"] > 1:
    row["lcores_2w"] = sys.argv[13]
hb, ha = json.loads(sys.argv[9] or "{}"), json.loads(sys.argv[10] or "{}")
if hb and ha:
    # The host over the measured phase: steal and interrupts per CPU, and each forwarding
    # thread (EAL's rte-worker-N, lcore-worker-N before DPDK 22.11.3) on the CPU: its run time,
    # preemptions, packets.
    span = max(ha["t"] - hb["t"], 1e-9)
    hz = 100.0  # USER_HZ
    host = {"span_s": round(span, 3), "cpus": {}}
    for cpu, a in ha["stat"].items():
        b = hb["stat"].get(cpu)
        if b:
            d = [x - y for x, y in zip(a, b)]
            # user nice system idle iowait irq softirq steal: shares of the span, in %.
            host["cpus"][cpu] = {
                "busy_pct": round(100 * (d[0] + d[1] + d[2] + d[5] + d[6]) / hz / span, 1),
                "irq_softirq_pct": round(100 * (d[5] + d[6]) / hz / span, 2),
                "steal_pct": round(100 * d[7] / hz / span, 2) if len(d) > 7 else None,
                "interrupts_per_s": round((ha["irq"].get(cpu, 0) - hb["irq"].get(cpu, 0)) / span),
                "timer_per_s": round((ha["timer"].get(cpu, 0) - hb["timer"].get(cpu, 0)) / span),
            }
    threads = []
    for tid, a in sorted(ha["threads"].items(), key=lambda kv: kv[1]["comm"]):
        b = hb["threads"].get(tid)
        if b and a["comm"].startswith(("rte-worker", "lcore-worker")):
            threads.append({"thread": a["comm"], "on_cpu_pct": round(100 * (a["run_ns"] - b["run_ns"]) / 1e9 / span, 1),
                            "preempted_per_s": round((a["nvcsw"] - b["nvcsw"]) / span, 1),
                            "run_ns": a["run_ns"] - b["run_ns"]})
    host["threads"] = threads
    row["host"] = host
    if hb.get("rss_kb"):
        row["rss_kb"] = hb["rss_kb"]  # once the prewarm is in: every flow entry in place
    if after:
        # Per worker: worker w (in lcore order) owns rx queue w; its busy and CPU time per packet.
        # A polling thread is always runnable, so its share of the CPU over the span (which also
        # holds the drain) is its share over the measured phase.
        rxq = {int(q): n - before.get("rx_by_queue", {}).get(q, 0) for q, n in after.get("rx_by_queue", {}).items()}
        busy = {int(c): s - before.get("busy_by_core", {}).get(c, 0) for c, s in after.get("busy_by_core", {}).items()}
        run = {int(t["thread"].rsplit("-", 1)[-1]): t for t in threads if t["thread"].rsplit("-", 1)[-1].isdigit()}
        per = []
        for q, core in enumerate(sorted(busy)):
            n = rxq.get(q, 0)
            w = {"core": core, "queue": q, "rx": n, "rx_pps": round(n / max(row["duration_s"], 1e-9))}
            if n > 0:
                w["busy_ns_per_packet"] = round(busy[core] * 1e9 / n, 1)
                if core in run:
                    w["cpu_ns_per_packet"] = round(run[core]["run_ns"] / span * row["duration_s"] / n, 1)
            per.append(w)
        row["per_worker"] = per
if after:
    # The measured phase's flow-table work: new entries (misses), stateless forwards, evictions.
    m = {k: after.get(k, 0) - before.get(k, 0) for k in ("rx", "flows_created", "flows_stateless", "flows_evicted")}
    row["measured"] = m
    if m["rx"] > 0:
        row["miss_ratio"] = (m["flows_created"] + m["flows_stateless"]) / m["rx"]
    c = re.search(r"flows\.capacity (\d+) -> (\d+) slots x (\d+) B( \+ (\d+) B of nat record)?",
                  open(sys.argv[12], errors="replace").read())
    if c:
        # Per worker: 64-byte entries (and nat records) plus a 32-byte bucket per 8 ways
        # (docs/design.md, "Sizing").
        row["flow_capacity"], row["flow_slots"] = int(c.group(1)), int(c.group(2))
        per_slot = int(c.group(3)) + int(c.group(5) or 0) + 32 // 8
        row["flow_table_bytes"] = row["workers"] * int(c.group(2)) * per_slot
print(json.dumps(row, sort_keys=True))
EOF
  tail -n 1 "$ROWS" | "$PY" -c 'import json,sys; r=json.load(sys.stdin)
w = r.get("per_worker", [])
print("bench: round %d %-24s rx %9d pps  tx %9d pps  lost %8d  latency p50 %s ns p99 %s ns  busy %s ns/packet%s  load %s" % (r["round"], r["run"],
  r["rx_pps"], r["tx_pps"], r["lost"], r["latency_ns"]["p50"], r["latency_ns"]["p99"], r.get("busy_ns_per_packet", "-"),
  " (per worker %s)" % " / ".join(str(x.get("busy_ns_per_packet", "-")) for x in w) if len(w) > 1 else "",
  open("/proc/loadavg").read().split()[0]))' >&2
}

for round in $(seq 1 "$REPEATS"); do
  for sc in $SCENARIOS; do run_one "$round" "$sc"; done
done

# Every run must have parsed and carried traffic.
"$PY" - "$ROWS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = [r["scenario"] for r in rows if r["received"] <= 0 or r["rx_pps"] <= 0]
if not rows or bad:
    sys.exit("bench: no traffic in %s" % (bad or "any run"))
# A load run must have read sluice's rx-to-tx histogram over its measured phase.
nohist = [r["run"] for r in rows if r.get("load_pct") is not None and r["scenario"] == "latency-sluice"
          and sum(n for _, n in r.get("sluice", {}).get("latency_hist", [])) <= 0]
if nohist:
    sys.exit("bench: no sluice_packet_latency_seconds samples in %s" % nohist)
# Two-worker runs: each worker's queue must have carried packets (the generator split the flows).
idle = [r["run"] for r in rows if r.get("workers", 1) > 1
        and (len(r.get("per_worker", [])) != r["workers"] or any(w["rx"] <= 0 for w in r["per_worker"]))]
if idle:
    sys.exit("bench: a worker forwarded nothing in %s" % idle)
print("bench: %d runs, results parse, every run forwarded traffic" % len(rows), file=sys.stderr)
EOF
mv "$ROWS" "$OUT"
[ "$SMOKE" -eq 1 ] && { echo "bench: smoke OK"; exit 0; }

if [ -n "$ADHOC" ]; then
  "$PY" bench/summarize.py "$OUT" "${OUT%.jsonl}.md" --command "bench/run.sh (OUT=$OUT SCENARIOS=\"$SCENARIOS\")"
  "$PY" bench/plot.py --throughput "$OUT" --out "$(dirname "$OUT")" >/dev/null
  echo "bench: raw results in $OUT; summary in ${OUT%.jsonl}.md; plots in $(dirname "$OUT")"
  exit 0
fi
"$PY" bench/summarize.py "$OUT" bench/RESULTS.md \
  --command "make bench (REPEATS=$REPEATS SECONDS_PER_RUN=$SECONDS_PER_RUN FLOWS=$FLOWS SWEEP=\"$SWEEP\" LOADS=\"$LOADS\" SIZE=$SIZE)"
"$PY" bench/plot.py --throughput "$OUT" >/dev/null
echo "bench: raw results in $OUT; summary in bench/RESULTS.md; plots in bench/results/*.png"
