#!/usr/bin/env bash
# Reload under load: sluice-gen (memif server) streams 20k TCP flows at 200k pps for 15 s
# through `sluice run` (memif client, IPIP) and back, while 50 SIGHUPs alternate config A
# (backends .11-.14) and B (.11-.13 and .15), one of them reading a broken file. The backends are
# off-link behind a static gateway MAC, or with ONLINK=1 (tests/e2e/27) on the link
# (192.0.2.11-15): every next hop then resolved by sluice's ARP and answered by the generator
# (--arp-reply), each reload adding a next hop the previous one removed (issue 17: neighbours
# before traffic). Afterwards, with traffic stopped:
#   - not one packet is dropped as unresolved_next_hop during the storm (a reload publishes a
#     new next hop only once it answers; a removed one keeps its MAC; off-link: none at all);
#   - sluice's books balance exactly: rx = tx + counted drops, rx = what the generator sent,
#     tx = what the generator got back; no drop for want of a route (only tx_queue_full allowed,
#     at most 1 in 1000 packets: the generator not draining its memif ring when descheduled);
#   - reloads: >= 25 applied (50 minus the broken one minus coalesced), >= 1 refused, epoch rose;
#   - flow affinity: no flow left a backend that stayed in the config (.11-.13); flows may only
#     move away from .14 / .15, the backends that come and go; and some did;
#   - no mbuf leaked: sluice_mempool_free{port=uplink} at idle after the load equals its value
#     at idle before it (the generator prewarms, then waits for $W/go while we read it);
#   - sluice exits 0 on SIGTERM.
# Ordering around DPDK 22.11's memif crash: the generator is the memif server and holds its
# port open (--hold) until sluice, the client, has been read and stopped.
# Environment: SLUICE, SLUICE_GEN (default: build target/release).
set -euo pipefail
E2E_NAME=${E2E_NAME:-reload-under-load}
ONLINK=${ONLINK:-0}
source "$(dirname "$0")/lib/sluice.sh"
W=$E2E_WORK
# The generator's DPDK runtime directory goes too (the library removes sluice's).
# (set +e: under errexit the `(exit $rc)` that hands the status on would end the trap early.)
trap 'rc=$?; set +e; rm -rf "/var/run/dpdk/$E2E_PREFIX-gen"; (exit $rc); e2e_cleanup' EXIT
if [ -z "$SLUICE" ] || [ -z "${SLUICE_GEN:-}" ]; then
  (cd "$E2E_REPO" && timeout 900 cargo build --release -q -p sluice -p sluice-bench) || e2e_die "cargo build --release failed"
  SLUICE=${SLUICE:-${CARGO_TARGET_DIR:-$E2E_REPO/target}/release/sluice}
  SLUICE_GEN=${SLUICE_GEN:-${CARGO_TARGET_DIR:-$E2E_REPO/target}/release/sluice-gen}
fi
[ -x "$SLUICE" ] && [ -x "$SLUICE_GEN" ] || e2e_die "no binaries at $SLUICE / $SLUICE_GEN"

SOCK=$W/lb.sock
FLOWS=20000
RATE=200000
SECONDS_LOAD=15
RELOADS=50
BROKEN_AT=25

if [ "$ONLINK" = 1 ]; then
  NET=192.0.2 GATEWAY="" ARP_REPLY=(--arp-reply)
else
  NET=203.0.113 ARP_REPLY=()
  GATEWAY='    gateway: 192.0.2.1
    gateway_mac: "02:00:00:00:00:01"'
fi
# config NAME BACKEND...: the same appliance (restart-only sections identical), one service.
config() {
  local name=$1
  shift
  {
    e2e_memif_config "$E2E_PREFIX" "$SOCK" "$GATEWAY"
    for b in "$@"; do printf '      - address: %s\n' "$b"; done
    printf 'metrics:\n  listen: 127.0.0.1:0\n'
  } >"$W/$name.yaml"
}
config a $NET.11 $NET.12 $NET.13 $NET.14
config b $NET.11 $NET.12 $NET.13 $NET.15
printf 'services:\n  - name: web\n    vip: [not an address\n' >"$W/broken.yaml"
for c in a b; do "$SLUICE" check -c "$W/$c.yaml" >"$W/check-$c.log" 2>&1 || e2e_die "config $c rejected: $(cat "$W/check-$c.log")"; done
if "$SLUICE" check -c "$W/broken.yaml" >/dev/null 2>&1; then e2e_die "the broken config passes sluice check"; fi
CFG=$W/sluice.yaml
install_config() { cp "$W/$1.yaml" "$CFG.tmp" && mv "$CFG.tmp" "$CFG"; } # atomic: never half a file
install_config a

# The generator first (memif server), then sluice (client).
"$SLUICE_GEN" --no-huge --no-pci -m 512 -l 0 --file-prefix "$E2E_PREFIX-gen" --log-level lib.eal:error \
  --vdev "net_memif0,role=server,socket=$SOCK,socket-abstract=no" -- \
  --port net_memif0 --rx-queues 2 --vip 198.51.100.10 --dport 80 --mode ack --flows "$FLOWS" \
  --prewarm --rate "$RATE" --seconds "$SECONDS_LOAD" --drain-ms 1000 --link-timeout 60 \
  --allow-moves-from $NET.14 --allow-moves-from $NET.15 "${ARP_REPLY[@]}" --dump-flows "$W/flows.txt" --wait-for "$W/go" --hold \
  >"$W/gen.json" 2>"$W/gen.log" &
GEN_PID=$!
E2E_PIDS+=("$GEN_PID")
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || e2e_die "sluice-gen did not create its memif socket"
e2e_start "$CFG" "$W/sluice.log"
e2e_wait_metrics "$W/sluice.log" 60 || e2e_die "sluice did not start (no metrics address)"
deadline=$((SECONDS + 60))
until grep -q "sending" "$W/gen.log"; do
  [ "$SECONDS" -lt "$deadline" ] && kill -0 "$GEN_PID" 2>/dev/null || e2e_die "the memif link never came up"
  sleep 0.1
done
# Prewarmed, the generator waits for $W/go: sluice is idle, the leak check's starting point.
deadline=$((SECONDS + 60))
until grep -q "^sluice-gen: ready" "$W/gen.log"; do
  [ "$SECONDS" -lt "$deadline" ] && kill -0 "$GEN_PID" 2>/dev/null || e2e_die "the generator never finished its prewarm"
  sleep 0.1
done
e2e_mempool_start uplink
# Before the storm: the first ARP answers may have cost the prewarm a few packets (counted).
unresolved0=$(e2e_get /metrics | awk '$1 == "sluice_dropped_packets_total{reason=\"unresolved_next_hop\"}" { print $2 }')
touch "$W/go"
e2e_log "traffic flowing; $RELOADS SIGHUPs over ~10 s"

metric_sum() { e2e_get /metrics | e2e_metric_sum "$@"; }
epoch0=$(metric_sum sluice_config_epoch)
for i in $(seq 1 "$RELOADS"); do
  if [ "$i" -eq "$BROKEN_AT" ]; then
    install_config broken
    kill -HUP "$SLUICE_PID"
    # Keep the broken file until sluice has read (and refused) it.
    deadline=$((SECONDS + 10))
    until [ "$(metric_sum sluice_config_reloads_total 'result="failure"')" -ge 1 ]; do
      [ "$SECONDS" -lt "$deadline" ] || e2e_die "the broken config was never refused"
      sleep 0.05
    done
  else
    if [ $((i % 2)) -eq 1 ]; then install_config b; else install_config a; fi
    kill -HUP "$SLUICE_PID"
  fi
  sleep 0.2
done
kill -0 "$SLUICE_PID" 2>/dev/null || e2e_die "sluice died during the reloads"

deadline=$((SECONDS + 60))
until [ -s "$W/gen.json" ]; do
  [ "$SECONDS" -lt "$deadline" ] && kill -0 "$GEN_PID" 2>/dev/null || e2e_die "sluice-gen gave no result"
  sleep 0.2
done
sleep 1 # workers publish their counters within a millisecond of going idle
e2e_get /metrics >"$W/metrics.txt"
e2e_mempool_check uplink || true # counted in E2E_FAILED
m() { e2e_metric_sum "$@" <"$W/metrics.txt"; }
e2e_stop 30
e2e_log "sluice exited $SLUICE_RC; generator: $(cat "$W/gen.json")"
kill -TERM "$GEN_PID" 2>/dev/null || true

g() { e2e_json "$W/gen.json" "d$(printf '["%s"]' "$@")"; } # g KEY...: the generator's result

rx=$(m sluice_rx_packets_total)
tx=$(m sluice_tx_packets_total)
dropped=$(m sluice_dropped_packets_total)
sent=$(($(g sent) + $(g prewarm sent)))
back=$(($(g received) + $(g prewarm received) + $(g rx_other)))
# The generator's ARP replies reach sluice too, and go to control (neither tx nor a drop).
to_control=$(m sluice_control_frames_total)
arp=$(g arp_replies)
e2e_check "sluice rx ($rx) = tx ($tx) + counted drops ($dropped) + frames to control ($to_control)" [ "$rx" -eq $((tx + dropped + to_control)) ]
e2e_check "sluice rx ($rx) = packets the generator sent ($sent) + the ARP replies that reached sluice ($to_control of $arp answered)" \
  [ "$rx" -eq $((sent + to_control)) -a "$to_control" -le "$arp" ]
e2e_check "generator got back ($back) = sluice tx ($tx)" [ "$back" -eq "$tx" ]
e2e_check "traffic: $(g sent) packets at $(g tx_pps | cut -d. -f1) pps" [ "$(g sent)" -gt $((RATE * SECONDS_LOAD / 4)) ]
unresolved=$(m sluice_dropped_packets_total 'reason="unresolved_next_hop"')
e2e_check "no packet dropped for an unresolved next hop during the storm ($unresolved0 before it, $unresolved after)" [ "$unresolved" -eq "${unresolved0%.*}" ]
if [ "$ONLINK" != 1 ]; then e2e_check "a static gateway MAC: none before the storm either" [ "${unresolved0%.*}" -eq 0 ]; fi
bad_drops=$(awk '$1 ~ /^sluice_dropped_packets_total\{/ && $1 !~ /reason="(tx_queue_full|unresolved_next_hop)"/ && $2 != 0' "$W/metrics.txt")
e2e_check "no drop other than tx_queue_full and the prewarm's unresolved ones: ${bad_drops:-none}" [ -z "$bad_drops" ]
# tx_queue_full: sluice's tx_burst into the memif ring the generator drains was still refused after
# TX_RETRIES, i.e. the generator (one lcore, sending and receiving) was descheduled, not reading.
# Not a reload loss: 0 in CI's quiet runs (22 and 27); 160-633 of ~3.0M here with cargo builds
# sharing the 2 cores (the generator's p99 latency 12-16 ms instead of 0.4-0.6 ms). Bound: 1 in 1000.
txfull=$(m sluice_dropped_packets_total 'reason="tx_queue_full"')
e2e_check "tx_queue_full drops $txfull <= 1 in 1000 of the $sent sent (the generator not reading its ring)" \
  [ $((txfull * 1000)) -le "$sent" ]
for reason in no_backend no_service not_vip; do
  e2e_check "dropped{reason=$reason} = 0" [ "$(m sluice_dropped_packets_total "reason=\"$reason\"")" -eq 0 ]
done

ok=$(m sluice_config_reloads_total 'result="success"')
failed=$(m sluice_config_reloads_total 'result="failure"')
epoch=$(m sluice_config_epoch)
e2e_check "reloads applied: $ok of $((RELOADS - 1)) (the rest coalesced)" [ "$ok" -ge 25 -a "$ok" -le $((RELOADS - 1)) ]
e2e_check "reloads refused: $failed (the broken file)" [ "$failed" -ge 1 ]
e2e_check "sluice_config_epoch rose by the reloads applied: $epoch0 -> $epoch" [ "$epoch" -ge $((epoch0 + ok)) ]

e2e_check "flows seen: $(g flows_seen) of $FLOWS" [ "$(g flows_seen)" -eq "$FLOWS" ]
e2e_check "no flow moved off a surviving backend (moves_disallowed = $(g moves_disallowed), examples $(g disallowed_examples))" \
  [ "$(g moves_disallowed)" -eq 0 ]
e2e_check "flows did move off the backends that came and went: $(g flows_moved) flows, $(g moves) moves" [ "$(g flows_moved)" -gt 0 ]
# The same property from the per-flow dump, independently of the generator's own check.
stayed_bad=$(awk -v a="$NET.14" -v b="$NET.15" '$2 != $3 && $2 != a && $2 != b' "$W/flows.txt" | wc -l)
e2e_check "flow dump: every flow first seen on .11-.13 ended there ($(wc -l <"$W/flows.txt") flows, $stayed_bad not)" [ "$stayed_bad" -eq 0 ]
e2e_check "flow dump: one line per flow ($(wc -l <"$W/flows.txt") of $FLOWS)" [ "$(wc -l <"$W/flows.txt")" -eq "$FLOWS" ]
for b in 11 12 13 14 15; do
  n=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["per_backend"].get(sys.argv[2], 0))' "$W/gen.json" "$NET.$b")
  e2e_check "backend $NET.$b got traffic ($n packets)" [ "$n" -gt 0 ]
done
e2e_check "sluice exits 0 on SIGTERM" [ "$SLUICE_RC" -eq 0 ]
e2e_log "latency under reloads (ns): $(g latency_ns)"
[ "$E2E_FAILED" -eq 0 ] || exit 1
echo "PASS: $E2E_NAME [$SECONDS s]"
