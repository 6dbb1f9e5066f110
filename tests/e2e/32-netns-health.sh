#!/usr/bin/env bash
# Health checks end to end: a backend's server stops, sluice marks it down within
# fall x interval + one interval and new connections avoid it; it starts again and is back
# after rise x interval, taking new connections again.
# Probes leave through the appliance namespace's kernel, on a management veth (192.0.2.9)
# beside the DPDK-owned data port, as on a real appliance (README: "Health checks").
set -euo pipefail
E2E_NAME=netns-health
source "$(dirname "$0")/lib/netns.sh"
INTERVAL_MS=400
RISE=2
FALL=2
# Polling and a loaded 2-core machine add delay; the exact bound is proven with an injected
# clock in control/tests/health_schedule.rs. Here the bound gets this much slack.
SLACK_MS=1500

e2e_require
e2e_binary
e2e_topology_up

# The management interface: a second veth from the appliance namespace to the segment,
# owned by the kernel (the data port eth0 belongs to DPDK and has no kernel address).
e2e_bridge_port lb mgmt0 02:5c:00:00:00:09
e2e_exec lb ip addr add 192.0.2.9/24 dev mgmt0
e2e_exec lb ip link set mgmt0 up

declare -A server_pid
start_server() {
  local h=$1
  e2e_spawn "$h" "$E2E_WORK/server-$h.log" "$PY" "$E2E_NETNS_DIR/backend.py" --name "$h" \
    --tcp-port $E2E_TCP_PORT --udp-port $E2E_UDP_PORT --vip $E2E_VIP4
  server_pid[$h]=$E2E_PID
  e2e_wait_ready "$E2E_PID" "$E2E_WORK/server-$h.log" 10 "server on $h"
}
for h in "${E2E_BACKENDS[@]}"; do start_server "$h"; done

cfg="$E2E_WORK/sluice-health.yaml"
e2e_netns_config l2-dsr "$cfg" 4
# Only the TCP service, with an HTTP check on every backend.
"$PY" - "$cfg" "$INTERVAL_MS" "$RISE" "$FALL" <<'EOF'
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
"$SLUICE" check -c "$cfg" >"$E2E_WORK/check.log" 2>&1 || { cat "$cfg" "$E2E_WORK/check.log" >&2; e2e_die "sluice check rejects the config"; }

e2e_spawn lb "$E2E_WORK/sluice.log" "$SLUICE" run -c "$cfg"
sluice_pid=$E2E_PID
e2e_wait_for 30 e2e_exec client curl -sS --noproxy '*' --max-time 0.5 "http://$E2E_VIP4/" \
  || e2e_die "no answer through sluice within 30s"

# 1 when sluice reports the backend up, 0 when down (from /metrics, the operator's view).
backend_up() { # address
  e2e_exec lb curl -sS --noproxy '*' --max-time 1 http://127.0.0.1:9610/metrics \
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
    out=$(e2e_exec client curl -sS --noproxy '*' --max-time 2 "http://$E2E_VIP4/" 2>&1) || { echo "FAILED"; continue; }
    echo "$out" | sed -n 's/^backend=\([a-z0-9]*\).*/\1/p'
  done | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 } END { print "" }'
}

for h in "${E2E_BACKENDS[@]}"; do
  t=$(wait_state "$(e2e_addr4 "$h")" 1 5000) || e2e_die "$h never reported up"
done
e2e_log "all backends up; spread: $(spread 30)"

victim=b2
addr=$(e2e_addr4 $victim)
down_limit=$(( FALL * INTERVAL_MS + INTERVAL_MS + SLACK_MS ))
up_limit=$(( RISE * INTERVAL_MS + INTERVAL_MS + SLACK_MS ))

e2e_stop_pid "${server_pid[$victim]}" 5 || true
t=$(wait_state "$addr" 0 "$down_limit") || e2e_die "$victim not marked down within ${down_limit}ms (waited ${t}ms)"
e2e_log "$victim stopped: marked down after ${t}ms (bound fall x interval + interval = $(( FALL * INTERVAL_MS + INTERVAL_MS ))ms, +${SLACK_MS}ms slack)"
s=$(spread 30)
e2e_log "spread with $victim down: $s"
case " $s" in *"FAILED"*) e2e_die "a new connection failed while $victim was down: $s" ;; esac
case " $s" in *" $victim="*) e2e_die "a new connection went to $victim while it was down: $s" ;; esac

start_server $victim
t=$(wait_state "$addr" 1 "$up_limit") || e2e_die "$victim not back up within ${up_limit}ms (waited ${t}ms)"
e2e_log "$victim restarted: marked up after ${t}ms (bound rise x interval + interval = $(( RISE * INTERVAL_MS + INTERVAL_MS ))ms, +${SLACK_MS}ms slack)"
s=$(spread 40)
e2e_log "spread with $victim back: $s"
case " $s" in *" $victim="*) ;; *) e2e_die "$victim took no new connection after coming back: $s" ;; esac
# The checker's own log lines (control/src/health/runner.rs), down and then up again.
grep -q "sluice health: .*backend=$addr .*now DOWN" "$E2E_WORK/sluice.log" \
  || e2e_die "sluice logged no DOWN for $addr"
grep -q "sluice health: .*backend=$addr .*now UP" "$E2E_WORK/sluice.log" \
  || e2e_die "sluice logged no UP for $addr"

e2e_stop_pid "$sluice_pid" 10 && rc=0 || rc=$?
[ "$rc" -eq 0 ] || e2e_die "sluice run exited with $rc on SIGTERM, expected 0"
e2e_pass "all checks"
