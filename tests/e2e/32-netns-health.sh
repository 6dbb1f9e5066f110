#!/usr/bin/env bash
# Health checks end to end: a backend's server stops, sluice marks it down within
# fall x interval + one interval and new connections avoid it; it starts again and is back
# after rise x interval, taking new connections again.
# Probes leave through the appliance namespace's kernel, on a management veth (192.0.2.9)
# beside the DPDK-owned data port, as on a real appliance (README: "Health checks").
set -euo pipefail
SLC_TEST=netns-health
REPO=$(cd "$(dirname "$0")/../.." && pwd)
source "$REPO/tests/netns/lib.sh"
SLUICE=${SLUICE:-$REPO/target/release/sluice}
INTERVAL_MS=400
RISE=2
FALL=2
# Polling and a loaded 2-core machine add delay; the exact bound is proven with an injected
# clock in control/tests/health_schedule.rs. Here the bound gets this much slack.
SLACK_MS=1500

slc_require
[ -x "$SLUICE" ] || slc_die "no sluice binary at $SLUICE (make release builds it)"
SLUICE=$(realpath "$SLUICE")
slc_init
slc_topology_up

# The management interface: a second veth from the appliance namespace to the segment,
# owned by the kernel (the data port eth0 belongs to DPDK and has no kernel address).
sw=$(slc_ns sw)
ip link add name "m-lb" netns "$sw" type veth peer name mgmt0 netns "$(slc_ns lb)" address 02:5c:00:00:00:09
ip -n "$sw" link set m-lb master br0
ip -n "$sw" link set m-lb up
slc_no_offload sw m-lb
slc_no_offload lb mgmt0
slc_exec lb ip addr add 192.0.2.9/24 dev mgmt0
slc_exec lb ip link set mgmt0 up

declare -A server_pid
start_server() {
  local h=$1
  slc_spawn "$h" "$SLC_WORK/server-$h.log" "$SLC_PY" "$SLC_NETNS_DIR/backend.py" --name "$h" \
    --tcp-port $SLC_TCP_PORT --udp-port $SLC_UDP_PORT --vip $SLC_VIP4
  server_pid[$h]=$SLC_PID
  slc_wait_ready "$SLC_PID" "$SLC_WORK/server-$h.log" 10 "server on $h"
}
for h in "${SLC_BACKENDS[@]}"; do start_server "$h"; done

cfg="$SLC_WORK/sluice-health.yaml"
slc_write_sluice_config l2-dsr "$cfg" 4
# Only the TCP service, with an HTTP check on every backend.
"$SLC_PY" - "$cfg" "$INTERVAL_MS" "$RISE" "$FALL" <<'EOF'
import sys
path, interval, rise, fall = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
text = open(path).read()
head, services = text.split("services:\n", 1)
tcp = services.split("  - name: udp4")[0]
tcp = tcp.replace("    backends:\n", (
    "    health_check:\n"
    "      kind: http\n"
    "      port: 80\n"
    "      path: /\n"
    f"      interval: {interval}ms\n"
    f"      timeout: {int(interval) // 2}ms\n"
    f"      rise: {rise}\n"
    f"      fall: {fall}\n"
    "    backends:\n"))
metrics = "metrics:\n  listen: 127.0.0.1:9610\n"
open(path, "w").write(head + "services:\n" + tcp.split("metrics:")[0] + metrics)
EOF
"$SLUICE" check -c "$cfg" >"$SLC_WORK/check.log" 2>&1 || { cat "$cfg" "$SLC_WORK/check.log" >&2; slc_die "sluice check rejects the config"; }

slc_spawn lb "$SLC_WORK/sluice.log" "$SLUICE" run -c "$cfg"
sluice_pid=$SLC_PID
slc_wait_for 30 slc_exec client curl -sS --noproxy '*' --max-time 0.5 "http://$SLC_VIP4/" \
  || slc_die "no answer through sluice within 30s"

# 1 when sluice reports the backend up, 0 when down (from /metrics, the operator's view).
backend_up() { # address
  slc_exec lb curl -sS --noproxy '*' --max-time 1 http://127.0.0.1:9610/metrics \
    | awk -v b="$1" '$1 ~ /^sluice_backend_up\{/ && index($1, "backend=\"" b "\"") { print $2 }'
}
now_ms() { date +%s%3N; }
# Waits up to $3 ms for backend $1 to report $2; prints the time it took.
wait_state() { # address want limit_ms
  local t0 t; t0=$(now_ms)
  while :; do
    t=$(( $(now_ms) - t0 ))
    [ "$(backend_up "$1")" = "$2" ] && { echo "$t"; return 0; }
    [ "$t" -le "$3" ] || { echo "$t"; return 1; }
    sleep 0.05
  done
}
# Counts which backend answers each of N new connections.
spread() { # n
  local i out
  for ((i = 0; i < $1; i++)); do
    out=$(slc_exec client curl -sS --noproxy '*' --max-time 2 "http://$SLC_VIP4/" 2>&1) || { echo "FAILED"; continue; }
    echo "$out" | sed -n 's/^backend=\([a-z0-9]*\).*/\1/p'
  done | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 } END { print "" }'
}

for h in "${SLC_BACKENDS[@]}"; do
  t=$(wait_state "$(slc_addr4 "$h")" 1 5000) || slc_die "$h never reported up"
done
slc_log "all backends up; spread: $(spread 30)"

victim=b2
addr=$(slc_addr4 $victim)
down_limit=$(( FALL * INTERVAL_MS + INTERVAL_MS + SLACK_MS ))
up_limit=$(( RISE * INTERVAL_MS + INTERVAL_MS + SLACK_MS ))

slc_stop "${server_pid[$victim]}" 5 || true
t=$(wait_state "$addr" 0 "$down_limit") || slc_die "$victim not marked down within ${down_limit}ms (waited ${t}ms)"
slc_log "$victim stopped: marked down after ${t}ms (bound fall x interval + interval = $(( FALL * INTERVAL_MS + INTERVAL_MS ))ms, +${SLACK_MS}ms slack)"
s=$(spread 30)
slc_log "spread with $victim down: $s"
case " $s" in *"FAILED"*) slc_die "a new connection failed while $victim was down: $s" ;; esac
case " $s" in *" $victim="*) slc_die "a new connection went to $victim while it was down: $s" ;; esac

start_server $victim
t=$(wait_state "$addr" 1 "$up_limit") || slc_die "$victim not back up within ${up_limit}ms (waited ${t}ms)"
slc_log "$victim restarted: marked up after ${t}ms (bound rise x interval + interval = $(( RISE * INTERVAL_MS + INTERVAL_MS ))ms, +${SLACK_MS}ms slack)"
s=$(spread 40)
slc_log "spread with $victim back: $s"
case " $s" in *" $victim="*) ;; *) slc_die "$victim took no new connection after coming back: $s" ;; esac
# The checker's own log lines (control/src/health/runner.rs), down and then up again.
grep -q "sluice health: .*backend=$addr .*now DOWN" "$SLC_WORK/sluice.log" \
  || slc_die "sluice logged no DOWN for $addr"
grep -q "sluice health: .*backend=$addr .*now UP" "$SLC_WORK/sluice.log" \
  || slc_die "sluice logged no UP for $addr"

slc_stop "$sluice_pid" 10 && rc=0 || rc=$?
[ "$rc" -eq 0 ] || slc_die "sluice run exited with $rc on SIGTERM, expected 0"
slc_log "PASS"
