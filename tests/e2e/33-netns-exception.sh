#!/usr/bin/env bash
# The exception path in network namespaces: sluice owns the appliance's veth through af_packet
# and gives its host a kernel interface (net_tap, `interfaces[].kernel`) with the interface's
# addresses. From the client namespace, an SSH-like TCP echo (socat on the kernel interface)
# and ping to the appliance's address work while VIP traffic is forwarded; the appliance's
# kernel reaches the client too (ping out, ARP both ways through the DPDK port). A UDP flood
# at the appliance's address is capped at `kernel.rate` and counted, and the VIP keeps
# answering during it. SIGTERM stops sluice cleanly and removes the kernel interface.
# Environment: SLUICE (default target/release/sluice).
set -euo pipefail
E2E_NAME=netns-exception
source "$(dirname "$0")/lib/netns.sh"
RATE=500
KIF=slk0
FLOOD_SECONDS=3

e2e_require socat ping
e2e_binary
e2e_topology_up servers

cfg=$E2E_WORK/sluice.yaml
e2e_netns_config l2-dsr "$cfg" "4 6"
# The exception path on the one interface, after its address6 line.
sed -i "s|^    address6: .*|&\n    kernel:\n      name: $KIF\n      rate: $RATE|" "$cfg"
grep -q "name: $KIF" "$cfg" || e2e_die "could not add the kernel section to the config"
"$SLUICE" check -c "$cfg" >"$E2E_WORK/check.log" 2>&1 || { cat "$cfg" "$E2E_WORK/check.log" >&2; e2e_die "sluice check rejects the config"; }

log=$E2E_WORK/sluice.log
e2e_spawn lb "$log" "$SLUICE" run -c "$cfg"
sluice_pid=$E2E_PID
vip_answers() { e2e_exec client curl -sS --noproxy '*' --max-time 1 "http://$E2E_VIP4/" >/dev/null 2>&1; }
up_or_dead() { vip_answers || ! kill -0 "$sluice_pid" 2>/dev/null; }
e2e_wait_for 30 up_or_dead && kill -0 "$sluice_pid" 2>/dev/null && vip_answers || { cat "$log" >&2; e2e_die "no answer through sluice within 30 s"; }
e2e_log "sluice forwards; kernel interface: $(e2e_exec lb ip -br addr show "$KIF" | tr -s ' ')"

metric() { # metric SERIES: its value from sluice's /metrics (0 when absent)
  e2e_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics \
    | awk -v s="$1" '$1 == s { v = $2 } END { print (v == "" ? 0 : v) }'
}

# The mbuf leak check (tests/e2e/lib/sluice.sh): the exception path's frames, both ways and
# rate-limited, all come back to the pool.
e2e_mempool_start segment

# The kernel interface carries the appliance's addresses and the DPDK port's MAC.
# kif_has ADDR/PREFIX: one of the kernel interface's addresses is exactly that (awk reads it all:
# no early exit to break the pipe under pipefail).
kif_has() { e2e_exec lb ip -br addr show "$KIF" | awk -v a="$1" '{ for (i = 3; i <= NF; i++) if ($i == a) f = 1 } END { exit !f }'; }
kif_has "$E2E_LB4/24" || e2e_die "$KIF lacks $E2E_LB4/24: $(e2e_exec lb ip -br addr show "$KIF")"
kif_has "$E2E_LB6/64" || e2e_die "$KIF lacks $E2E_LB6/64: $(e2e_exec lb ip -br addr show "$KIF")"
e2e_exec lb ip -br link show "$KIF" | grep -qi "$(e2e_mac lb)" || e2e_die "$KIF does not have the port's MAC $(e2e_mac lb)"
e2e_pass "$KIF carries $E2E_LB4/24 and $E2E_LB6/64 with the port's MAC"

# ping to the appliance's address (answered by the fast path) and from its kernel (out through
# the DPDK port; the echo reply comes back through the exception path).
e2e_exec client ping -c 3 -i 0.2 -W 2 "$E2E_LB4" >/dev/null || e2e_die "ping from the client to $E2E_LB4 failed"
e2e_exec lb ping -c 3 -i 0.2 -W 2 "$E2E_CLIENT4" >/dev/null || e2e_die "ping from the appliance's kernel to the client failed"
e2e_pass "ping both ways between the client and the appliance's address"

# An SSH-like TCP service on the kernel interface, IPv4 and IPv6.
e2e_spawn lb "$E2E_WORK/echo4.log" socat TCP4-LISTEN:2222,bind=$E2E_LB4,reuseaddr,fork EXEC:cat
e2e_spawn lb "$E2E_WORK/echo6.log" socat "TCP6-LISTEN:2222,bind=[$E2E_LB6],reuseaddr,fork" EXEC:cat
sleep 0.5
for target in "TCP4:$E2E_LB4:2222" "TCP6:[$E2E_LB6]:2222"; do
  got=$(e2e_exec client sh -c "printf 'hello over %s\n' '$target' | timeout 10 socat -t 2 - '$target'") || true
  [ "$got" = "hello over $target" ] || e2e_die "TCP echo through the exception path ($target): got '$got'"
done
e2e_pass "TCP echo on the kernel interface answers over IPv4 and IPv6"
to_before=$(metric "sluice_exception_packets_total{port=\"segment\",direction=\"to_kernel\"}")
from_before=$(metric "sluice_exception_packets_total{port=\"segment\",direction=\"from_kernel\"}")
[ "${to_before%.*}" -gt 0 ] && [ "${from_before%.*}" -gt 0 ] \
  || e2e_die "exception counters did not move: to_kernel=$to_before from_kernel=$from_before"
e2e_pass "counted both ways: to_kernel=$to_before from_kernel=$from_before"

# A flood at the appliance's address: capped at the rate, counted; the VIP keeps answering.
limited_before=$(metric "sluice_exception_dropped_total{port=\"segment\",direction=\"to_kernel\",reason=\"rate_limited\"}")
e2e_spawn client "$E2E_WORK/flood.log" "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + float(sys.argv[2]); n = 0; t0 = time.monotonic()
while time.monotonic() < end and n < 2_000_000:
    try:
        s.sendto(b"x" * 32, (sys.argv[1], 9999)); n += 1
    except OSError:
        time.sleep(0.001)
print("sent", n, "in", round(time.monotonic() - t0, 3))' "$E2E_LB4" "$FLOOD_SECONDS"
flood_pid=$E2E_PID
t0=$(date +%s.%N)
ok=0 tries=0
while kill -0 "$flood_pid" 2>/dev/null && [ "$tries" -lt 100 ]; do
  tries=$((tries + 1))
  # A lost SYN is retransmitted after 1 s: allow for it on this 2-core machine.
  e2e_exec client curl -sS --noproxy '*' --max-time 5 "http://$E2E_VIP4/" >/dev/null 2>&1 && ok=$((ok + 1))
  sleep 0.1
done
wait "$flood_pid" || true
t1=$(date +%s.%N)
sent=$(awk '/^sent/ {print $2}' "$E2E_WORK/flood.log")
to_after=$(metric "sluice_exception_packets_total{port=\"segment\",direction=\"to_kernel\"}")
limited_after=$(metric "sluice_exception_dropped_total{port=\"segment\",direction=\"to_kernel\",reason=\"rate_limited\"}")
passed=$(awk -v a="$to_before" -v b="$to_after" 'BEGIN { print b - a }')
limited=$(awk -v a="$limited_before" -v b="$limited_after" 'BEGIN { print b - a }')
# The bucket holds a tenth of a second; the rest is the rate over the flood (plus the TCP/ping
# frames of the checks above, which came before the first reading).
bound=$(awk -v r=$RATE -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%d", r * (t1 - t0 + 0.5) + r / 10 + 50 }')
e2e_log "flood: $sent datagrams sent, $passed to the kernel (bound $bound), $limited rate-limited; VIP answered $ok of $tries during it"
[ "${sent:-0}" -gt $((RATE * FLOOD_SECONDS)) ] || e2e_die "the flood sent only ${sent:-0} datagrams: not enough to test the cap"
[ "$passed" -le "$bound" ] || e2e_die "the kernel got $passed frames during the flood, over the cap of $bound"
[ "${limited%.*}" -gt 0 ] || e2e_die "no frame was counted as rate-limited during the flood"
[ "$tries" -gt 0 ] && [ "$ok" -eq "$tries" ] || e2e_die "the VIP answered only $ok of $tries requests during the flood"
dropped=$(metric 'sluice_dropped_packets_total{reason="exception_rate_limited"}')
[ "${dropped%.*}" -ge "${limited%.*}" ] || e2e_die "sluice_dropped_packets_total{reason=exception_rate_limited}=$dropped < $limited"
e2e_pass "a flood at the appliance's address is capped ($passed <= $bound to the kernel, $limited counted) and the VIP answered $ok/$tries"
e2e_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics >"$E2E_WORK/metrics-live.txt"
e2e_check_live "$E2E_WORK/metrics-live.txt" sluice_exception_
e2e_mempool_check -t 10 segment || e2e_die "mbufs leaked (above)"

e2e_stop_pid "$sluice_pid" 10 && rc=0 || rc=$?
[ "$rc" -eq 0 ] || { cat "$log" >&2; e2e_die "sluice exited $rc on SIGTERM, expected 0"; }
if e2e_exec lb ip link show "$KIF" >/dev/null 2>&1; then e2e_die "$KIF is still there after sluice stopped"; fi
e2e_pass "sluice stops cleanly and its kernel interface goes with it"
e2e_pass "exception path"
