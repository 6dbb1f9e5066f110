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
SLC_TEST=netns-exception
REPO=$(cd "$(dirname "$0")/../.." && pwd)
source "$REPO/tests/netns/lib.sh"
SLUICE=${SLUICE:-$REPO/target/release/sluice}
RATE=500
KIF=slk0
FLOOD_SECONDS=3

slc_require socat ping
[ -x "$SLUICE" ] || slc_die "no sluice binary at $SLUICE (make release builds it)"
SLUICE=$(realpath "$SLUICE")
slc_init
slc_topology_up
slc_start_servers

cfg=$SLC_WORK/sluice.yaml
slc_write_sluice_config l2-dsr "$cfg" "4 6"
# The exception path on the one interface, after its address6 line.
sed -i "s|^    address6: .*|&\n    kernel:\n      name: $KIF\n      rate: $RATE|" "$cfg"
grep -q "name: $KIF" "$cfg" || slc_die "could not add the kernel section to the config"
"$SLUICE" check -c "$cfg" >"$SLC_WORK/check.log" 2>&1 || { cat "$cfg" "$SLC_WORK/check.log" >&2; slc_die "sluice check rejects the config"; }

log=$SLC_WORK/sluice.log
slc_spawn lb "$log" "$SLUICE" run -c "$cfg"
sluice_pid=$SLC_PID
vip_answers() { slc_exec client curl -sS --noproxy '*' --max-time 1 "http://$SLC_VIP4/" >/dev/null 2>&1; }
up_or_dead() { vip_answers || ! kill -0 "$sluice_pid" 2>/dev/null; }
slc_wait_for 30 up_or_dead && kill -0 "$sluice_pid" 2>/dev/null && vip_answers || { cat "$log" >&2; slc_die "no answer through sluice within 30 s"; }
slc_log "sluice forwards; kernel interface: $(slc_exec lb ip -br addr show "$KIF" | tr -s ' ')"

pass() { slc_log "PASS: $*"; }
metric() { # metric SERIES: its value from sluice's /metrics (0 when absent)
  slc_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics \
    | awk -v s="$1" '$1 == s { v = $2 } END { print (v == "" ? 0 : v) }'
}

# The kernel interface carries the appliance's addresses and the DPDK port's MAC.
slc_exec lb ip -br addr show "$KIF" | grep -q "$SLC_LB4/24" || slc_die "$KIF lacks $SLC_LB4/24"
slc_exec lb ip -br link show "$KIF" | grep -qi "$(slc_mac lb)" || slc_die "$KIF does not have the port's MAC $(slc_mac lb)"
pass "$KIF carries $SLC_LB4/24 and $SLC_LB6/64 with the port's MAC"

# ping to the appliance's address (answered by the fast path) and from its kernel (out through
# the DPDK port; the echo reply comes back through the exception path).
slc_exec client ping -c 3 -i 0.2 -W 2 "$SLC_LB4" >/dev/null || slc_die "ping from the client to $SLC_LB4 failed"
slc_exec lb ping -c 3 -i 0.2 -W 2 "$SLC_CLIENT4" >/dev/null || slc_die "ping from the appliance's kernel to the client failed"
pass "ping both ways between the client and the appliance's address"

# An SSH-like TCP service on the kernel interface, IPv4 and IPv6.
slc_spawn lb "$SLC_WORK/echo4.log" socat TCP4-LISTEN:2222,bind=$SLC_LB4,reuseaddr,fork EXEC:cat
slc_spawn lb "$SLC_WORK/echo6.log" socat "TCP6-LISTEN:2222,bind=[$SLC_LB6],reuseaddr,fork" EXEC:cat
sleep 0.5
for target in "TCP4:$SLC_LB4:2222" "TCP6:[$SLC_LB6]:2222"; do
  got=$(slc_exec client sh -c "printf 'hello over %s\n' '$target' | timeout 10 socat -t 2 - '$target'") || true
  [ "$got" = "hello over $target" ] || slc_die "TCP echo through the exception path ($target): got '$got'"
done
pass "TCP echo on the kernel interface answers over IPv4 and IPv6"
to_before=$(metric "sluice_exception_packets_total{port=\"segment\",direction=\"to_kernel\"}")
from_before=$(metric "sluice_exception_packets_total{port=\"segment\",direction=\"from_kernel\"}")
[ "${to_before%.*}" -gt 0 ] && [ "${from_before%.*}" -gt 0 ] \
  || slc_die "exception counters did not move: to_kernel=$to_before from_kernel=$from_before"
pass "counted both ways: to_kernel=$to_before from_kernel=$from_before"

# A flood at the appliance's address: capped at the rate, counted; the VIP keeps answering.
limited_before=$(metric "sluice_exception_dropped_total{port=\"segment\",direction=\"to_kernel\",reason=\"rate_limited\"}")
slc_spawn client "$SLC_WORK/flood.log" "$SLC_PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + float(sys.argv[2]); n = 0; t0 = time.monotonic()
while time.monotonic() < end and n < 2_000_000:
    try:
        s.sendto(b"x" * 32, (sys.argv[1], 9999)); n += 1
    except OSError:
        time.sleep(0.001)
print("sent", n, "in", round(time.monotonic() - t0, 3))' "$SLC_LB4" "$FLOOD_SECONDS"
flood_pid=$SLC_PID
t0=$(date +%s.%N)
ok=0 tries=0
while kill -0 "$flood_pid" 2>/dev/null && [ "$tries" -lt 100 ]; do
  tries=$((tries + 1))
  # A lost SYN is retransmitted after 1 s: allow for it on this 2-core machine.
  slc_exec client curl -sS --noproxy '*' --max-time 5 "http://$SLC_VIP4/" >/dev/null 2>&1 && ok=$((ok + 1))
  sleep 0.1
done
wait "$flood_pid" || true
t1=$(date +%s.%N)
sent=$(awk '/^sent/ {print $2}' "$SLC_WORK/flood.log")
to_after=$(metric "sluice_exception_packets_total{port=\"segment\",direction=\"to_kernel\"}")
limited_after=$(metric "sluice_exception_dropped_total{port=\"segment\",direction=\"to_kernel\",reason=\"rate_limited\"}")
passed=$(awk -v a="$to_before" -v b="$to_after" 'BEGIN { print b - a }')
limited=$(awk -v a="$limited_before" -v b="$limited_after" 'BEGIN { print b - a }')
# The bucket holds a tenth of a second; the rest is the rate over the flood (plus the TCP/ping
# frames of the checks above, which came before the first reading).
bound=$(awk -v r=$RATE -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%d", r * (t1 - t0 + 0.5) + r / 10 + 50 }')
slc_log "flood: $sent datagrams sent, $passed to the kernel (bound $bound), $limited rate-limited; VIP answered $ok of $tries during it"
[ "${sent:-0}" -gt $((RATE * FLOOD_SECONDS)) ] || slc_die "the flood sent only ${sent:-0} datagrams: not enough to test the cap"
[ "$passed" -le "$bound" ] || slc_die "the kernel got $passed frames during the flood, over the cap of $bound"
[ "${limited%.*}" -gt 0 ] || slc_die "no frame was counted as rate-limited during the flood"
[ "$tries" -gt 0 ] && [ "$ok" -eq "$tries" ] || slc_die "the VIP answered only $ok of $tries requests during the flood"
dropped=$(metric 'sluice_dropped_packets_total{reason="exception_rate_limited"}')
[ "${dropped%.*}" -ge "${limited%.*}" ] || slc_die "sluice_dropped_packets_total{reason=exception_rate_limited}=$dropped < $limited"
pass "a flood at the appliance's address is capped ($passed <= $bound to the kernel, $limited counted) and the VIP answered $ok/$tries"

slc_stop "$sluice_pid" 10 && rc=0 || rc=$?
[ "$rc" -eq 0 ] || { cat "$log" >&2; slc_die "sluice exited $rc on SIGTERM, expected 0"; }
if slc_exec lb ip link show "$KIF" >/dev/null 2>&1; then slc_die "$KIF is still there after sluice stopped"; fi
pass "sluice stops cleanly and its kernel interface goes with it"
slc_log "PASS: exception path"
