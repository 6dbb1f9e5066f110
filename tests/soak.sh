#!/usr/bin/env bash
# `make soak`: sluice under steady load for SOAK_SECONDS with a reload every 10 s and one backend's health flapping.
# Topology (as tests/e2e/22): sluice-gen (memif server) sends FLOWS TCP flows to the VIP and
# counts what sluice (memif client, ipip, four off-link backends 203.0.113.11-14 behind a static
# gateway MAC) sends back. sluice runs in a network namespace of its own, where the backend
# addresses sit on lo with a TCP listener each on HEALTH_PORT: the service's tcp health check
# probes them for real, and the listener of 203.0.113.14 is stopped and started every
# FLAP_SECONDS, so that backend goes down and up.
# 1. Capacity: a first sluice and generator pair, flat out for CAL_SECONDS, gives the rate that
#    came back; the soak offers half of it (SOAK_RATE overrides).
# 2. Soak: a fresh pair at that rate for SOAK_SECONDS; every 10 s a SIGHUP alternates two files
#    (the second adds an idle service); the health flaps as above.
# Checks and summary: sluice's VmRSS (/proc/PID/status) sampled every 10 s, the end within
# RSS_SLACK_KB of the first sample under load; rx = tx + drops + control frames exactly, rx =
# what the generator sent and tx = what it got back; no drop but tx_queue_full; every reload
# applied, none refused; the backend went down and up (health metrics, reload and flap counts);
# no flow moved except off 203.0.113.14 (the generator tracks every flow's backend), and some
# did; no mbuf leaked (tests/e2e/lib/sluice.sh); sluice exits 0.
# Environment: SOAK_SECONDS (1800), SOAK_RATE (pps; default half the measured capacity),
# CAL_SECONDS (5), FLOWS (20000), FLAP_SECONDS (20), RSS_SLACK_KB (4096), SLUICE, SLUICE_GEN.
set -euo pipefail
E2E_NAME=soak
source "$(dirname "$0")/e2e/lib/sluice.sh"
W=$E2E_WORK
SOAK_SECONDS=${SOAK_SECONDS:-1800}
CAL_SECONDS=${CAL_SECONDS:-5}
FLOWS=${FLOWS:-20000}
FLAP_SECONDS=${FLAP_SECONDS:-20}
RSS_SLACK_KB=${RSS_SLACK_KB:-4096}
RELOAD_EVERY=10
HEALTH_PORT=8080
NET=203.0.113
FLAPPER=$NET.14
NS=sluice-soak-$$
[ "$(id -u)" -eq 0 ] || e2e_die "needs root (a network namespace for sluice and its health targets)"
# One flap needs the backend down at FLAP_SECONDS and up again FLAP_SECONDS later, 10 s before the end.
[ "$SOAK_SECONDS" -ge $((2 * FLAP_SECONDS + 10)) ] \
  || e2e_die "SOAK_SECONDS must be at least $((2 * FLAP_SECONDS + 10)) (2 x FLAP_SECONDS + 10: one flap down and up)"
trap 'rc=$?; set +e; ip netns pids "$NS" 2>/dev/null | xargs -r kill -TERM 2>/dev/null; sleep 0.5;
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; ip netns del "$NS" 2>/dev/null;
  rm -rf "/var/run/dpdk/$E2E_PREFIX-gen" "/var/run/dpdk/$E2E_PREFIX-cal" "/var/run/dpdk/$E2E_PREFIX-cal-gen"; (exit $rc); e2e_cleanup' EXIT
if [ -z "$SLUICE" ] || [ -z "${SLUICE_GEN:-}" ]; then
  (cd "$E2E_REPO" && timeout 900 cargo build --release -q -p sluice -p sluice-bench) || e2e_die "cargo build --release failed"
  SLUICE=${SLUICE:-${CARGO_TARGET_DIR:-$E2E_REPO/target}/release/sluice}
  SLUICE_GEN=${SLUICE_GEN:-${CARGO_TARGET_DIR:-$E2E_REPO/target}/release/sluice-gen}
fi
[ -x "$SLUICE" ] && [ -x "$SLUICE_GEN" ] || e2e_die "no binaries at $SLUICE / $SLUICE_GEN"

ip netns add "$NS" || e2e_die "cannot create namespace $NS"
ip -n "$NS" link set lo up
for b in 11 12 13 14; do ip -n "$NS" addr add "$NET.$b/32" dev lo; done
# /metrics is served inside the namespace.
e2e_get() { ip netns exec "$NS" curl -sS --noproxy '*' --max-time 2 -f "$METRICS$1"; }
listener() { # ADDR: a TCP listener for the health check, in the namespace; sets LISTENER_PID
  ip netns exec "$NS" "$PY" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
while True: s.accept()[0].close()' "$1" "$HEALTH_PORT" >>"$W/listeners.log" 2>&1 &
  LISTENER_PID=$!
  E2E_PIDS+=("$LISTENER_PID")
}
for b in 11 12 13; do listener "$NET.$b"; done
listener "$FLAPPER"
flapper_pid=$LISTENER_PID

# config FILE PREFIX SOCK [extra]: one service over .11-.14 with a tcp health check; "extra"
# adds an idle second service (the reloads alternate with and without it).
config() {
  local file=$1 prefix=$2 sock=$3 extra=${4:-}
  {
    e2e_memif_config "$prefix" "$sock" '    gateway: 192.0.2.1
    gateway_mac: "02:00:00:00:00:01"'
    cat <<EOF
      - address: $NET.11
      - address: $NET.12
      - address: $NET.13
      - address: $FLAPPER
    health_check:
      kind: tcp
      port: $HEALTH_PORT
      interval: 1s
      timeout: 500ms
      rise: 2
      fall: 2
EOF
    if [ -n "$extra" ]; then
      printf '  - name: idle\n    vip: 198.51.100.20\n    port: 443\n    protocol: tcp\n    forwarding: ipip\n'
      printf '    backends:\n      - address: %s.11\n' "$NET"
    fi
    printf 'metrics:\n  listen: 127.0.0.1:0\n'
  } >"$file"
  "$SLUICE" check -c "$file" >"$W/check.log" 2>&1 || e2e_die "config rejected: $(cat "$W/check.log")"
}

# pair NAME RATE SECONDS PREFIX: the generator (memif server) and sluice (client, in the
# namespace) for one run; waits until the generator's prewarm is done (it then waits for
# $W/NAME.go). Sets GEN_PID, SLUICE_PID, METRICS.
pair() {
  local name=$1 rate=$2 secs=$3 prefix=$4 sock=$W/$1.sock
  config "$W/$name.yaml" "$prefix" "$sock"
  "$SLUICE_GEN" --no-huge --no-pci -m 512 -l 0 --file-prefix "$prefix-gen" --log-level lib.eal:error \
    --vdev "net_memif0,role=server,socket=$sock,socket-abstract=no" -- \
    --port net_memif0 --rx-queues 2 --vip 198.51.100.10 --dport 80 --mode ack --flows "$FLOWS" \
    --prewarm --rate "$rate" --seconds "$secs" --drain-ms 1000 --link-timeout 60 \
    --allow-moves-from "$FLAPPER" --dump-flows "$W/$name-flows.txt" --wait-for "$W/$name.go" --hold \
    >"$W/$name-gen.json" 2>"$W/$name-gen.log" &
  GEN_PID=$!
  E2E_PIDS+=("$GEN_PID")
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || e2e_die "$name: sluice-gen did not create its memif socket"
  ip netns exec "$NS" "$SLUICE" run -c "$W/$name.yaml" >"$W/$name-sluice.log" 2>&1 &
  SLUICE_PID=$!
  E2E_PIDS+=("$SLUICE_PID")
  e2e_wait_metrics "$W/$name-sluice.log" 60 || e2e_die "$name: sluice did not start (no metrics address)"
  local deadline=$((SECONDS + 120))
  until grep -q "^sluice-gen: ready" "$W/$name-gen.log"; do
    [ "$SECONDS" -lt "$deadline" ] && kill -0 "$GEN_PID" 2>/dev/null || e2e_die "$name: the generator never finished its prewarm"
    sleep 0.1
  done
}
# wait_result NAME LIMIT: waits for the generator's JSON.
wait_result() {
  local deadline=$((SECONDS + $2))
  until [ -s "$W/$1-gen.json" ]; do
    [ "$SECONDS" -lt "$deadline" ] && kill -0 "$GEN_PID" 2>/dev/null || e2e_die "$1: sluice-gen gave no result"
    sleep 0.2
  done
}
g() { e2e_json "$W/$1-gen.json" "d$(printf '["%s"]' "${@:2}")"; } # g NAME KEY...: a generator's result
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SLUICE_PID/status"; }

# 1. Capacity.
if [ -z "${SOAK_RATE:-}" ]; then
  pair cal 0 "$CAL_SECONDS" "$E2E_PREFIX-cal"
  touch "$W/cal.go"
  wait_result cal 60
  e2e_stop 30
  kill -TERM "$GEN_PID" 2>/dev/null || true
  wait "$GEN_PID" 2>/dev/null || true
  capacity=$(g cal rx_pps | cut -d. -f1)
  SOAK_RATE=$((capacity / 2))
  e2e_log "capacity: $capacity pps came back flat out over ${CAL_SECONDS}s; soaking at $SOAK_RATE pps"
else
  capacity="not measured (SOAK_RATE given)"
fi

# 2. Soak.
CFG=$W/soak.yaml
pair soak "$SOAK_RATE" "$SOAK_SECONDS" "$E2E_PREFIX"
config "$W/soak-b.yaml" "$E2E_PREFIX" "$W/soak.sock" extra
cp "$W/soak.yaml" "$W/soak-a.yaml"
e2e_mempool_start uplink
touch "$W/soak.go"
started=$SECONDS
e2e_log "soaking for ${SOAK_SECONDS}s at $SOAK_RATE pps: a reload every ${RELOAD_EVERY}s, $FLAPPER's health flapping every ${FLAP_SECONDS}s"
rss=()
reloads=0 flaps=0 flapper_up=1
next_reload=$RELOAD_EVERY next_flap=$FLAP_SECONDS next_rss=0
while [ $((SECONDS - started)) -lt "$SOAK_SECONDS" ]; do
  t=$((SECONDS - started))
  kill -0 "$SLUICE_PID" 2>/dev/null || e2e_die "sluice died after ${t}s"
  if [ "$t" -ge "$next_rss" ]; then
    rss+=("$(rss_kb)")
    next_rss=$((next_rss + 10))
  fi
  if [ "$t" -ge "$next_reload" ]; then
    if [ $((reloads % 2)) -eq 0 ]; then cp "$W/soak-b.yaml" "$CFG.tmp"; else cp "$W/soak-a.yaml" "$CFG.tmp"; fi
    mv "$CFG.tmp" "$CFG"
    kill -HUP "$SLUICE_PID"
    reloads=$((reloads + 1))
    next_reload=$((next_reload + RELOAD_EVERY))
  fi
  # Down only if it can be up again 10 s before the end (rise: 2 probes 1 s apart).
  if [ "$t" -ge "$next_flap" ] && { [ "$flapper_up" = 0 ] || [ $((t + FLAP_SECONDS + 10)) -le "$SOAK_SECONDS" ]; }; then
    if [ "$flapper_up" = 1 ]; then
      kill -TERM "$flapper_pid"
      wait "$flapper_pid" 2>/dev/null || true
      flapper_up=0
      flaps=$((flaps + 1))
    else
      listener "$FLAPPER"
      flapper_pid=$LISTENER_PID
      flapper_up=1
    fi
    next_flap=$((next_flap + FLAP_SECONDS))
  fi
  sleep 0.5
done
rss+=("$(rss_kb)")
wait_result soak 120
sleep 1 # workers publish their counters within a millisecond of going idle
e2e_get /metrics >"$W/metrics.txt"
e2e_mempool_check uplink || true # counted in E2E_FAILED
e2e_stop 30
kill -TERM "$GEN_PID" 2>/dev/null || true

m() { e2e_metric_sum "$@" <"$W/metrics.txt"; }
rx=$(m sluice_rx_packets_total)
tx=$(m sluice_tx_packets_total)
dropped=$(m sluice_dropped_packets_total)
to_control=$(m sluice_control_frames_total)
sent=$(($(g soak sent) + $(g soak prewarm sent)))
back=$(($(g soak received) + $(g soak prewarm received) + $(g soak rx_other)))
# RSS: the first sample is taken under load (the generator starts as the loop does), so the
# flow table and the pools' touched pages are in it.
rss_start=${rss[1]:-${rss[0]}}
rss_end=${rss[-1]}
rss_max=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
e2e_check "VmRSS flat: ${rss_start} kB at 10 s, ${rss_end} kB at the end (max ${rss_max} kB; bound +${RSS_SLACK_KB} kB)" \
  [ "$rss_end" -le $((rss_start + RSS_SLACK_KB)) ]
e2e_check "sluice rx ($rx) = tx ($tx) + counted drops ($dropped) + frames to control ($to_control)" [ "$rx" -eq $((tx + dropped + to_control)) ]
e2e_check "sluice rx ($rx) = packets the generator sent ($sent)" [ "$rx" -eq "$sent" ]
e2e_check "generator got back ($back) = sluice tx ($tx)" [ "$back" -eq "$tx" ]
bad_drops=$(awk '$1 ~ /^sluice_dropped_packets_total\{/ && $1 !~ /reason="tx_queue_full"/ && $2 != 0' "$W/metrics.txt")
e2e_check "no drop other than tx_queue_full ($(m sluice_dropped_packets_total 'reason="tx_queue_full"')): ${bad_drops:-none}" [ -z "$bad_drops" ]
ok=$(m sluice_config_reloads_total 'result="success"')
refused=$(m sluice_config_reloads_total 'result="failure"')
e2e_check "reloads: $ok applied of $reloads asked, $refused refused" [ "$ok" -eq "$reloads" -a "$refused" -eq 0 ]
up=$(m sluice_backend_up "backend=\"$FLAPPER\"")
epoch=$(m sluice_config_epoch)
e2e_check "$FLAPPER flapped $flaps times and is up at the end (sluice_backend_up $up; epoch $epoch >= reloads + 2 x flaps)" \
  [ "$flaps" -ge 1 -a "$up" -eq 1 -a "$epoch" -ge $((reloads + 2 * flaps)) ]
e2e_check "no flow moved except off $FLAPPER (moves_disallowed = $(g soak moves_disallowed), examples $(g soak disallowed_examples))" \
  [ "$(g soak moves_disallowed)" -eq 0 ]
e2e_check "flows moved off $FLAPPER when it went down: $(g soak flows_moved) flows, $(g soak moves) moves" [ "$(g soak flows_moved)" -gt 0 ]
e2e_check "flows seen: $(g soak flows_seen) of $FLOWS" [ "$(g soak flows_seen)" -eq "$FLOWS" ]
e2e_check "sluice exits 0 on SIGTERM" [ "$SLUICE_RC" -eq 0 ]
cat <<EOF

soak summary ($SOAK_SECONDS s)
  capacity (flat out, ${CAL_SECONDS} s): $capacity pps; offered $SOAK_RATE pps, sent $(g soak tx_pps | cut -d. -f1) pps
  packets:  generator sent $sent, sluice rx $rx = tx $tx + dropped $dropped + control $to_control; back at the generator $back
  reloads:  $reloads asked, $ok applied, $refused refused; $FLAPPER down $flaps times (health check, real listener)
  flows:    $(g soak flows_seen) seen, $(g soak flows_moved) moved (all off $FLAPPER), $(g soak moves_disallowed) disallowed moves
  VmRSS kB: ${rss[*]}
  latency (ns): $(g soak latency_ns)
EOF
[ "$E2E_FAILED" -eq 0 ] || exit 1
echo "PASS: $E2E_NAME [$SECONDS s]"
