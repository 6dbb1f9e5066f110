#!/usr/bin/env bash
# VIPs announced with BIRD over the exception path: sluice keeps each VIP with a usable backend
# as a route in kernel table 100 (`announce`), BIRD on the appliance learns the table and
# advertises it over BGP, through sluice's kernel interface, to a router running BIRD (the
# client namespace, which has no other route to the VIP). Shown: the route appears and the VIP
# answers through it; `sluice drain` withdraws it and `--undo` brings it back; a route deleted
# behind sluice's back comes back; SIGTERM withdraws it (before the BGP session goes); sluice
# restarted announces again; `kill -9` withdraws it within BGP's hold time (3 s) plus the
# killed process's teardown: 8 s at most. Times are
# reported. deploy/bird/*.conf are the configs used, with their @...@ values filled in.
# Environment: SLUICE (default target/release/sluice).
set -euo pipefail
E2E_NAME=netns-bgp
source "$(dirname "$0")/lib/netns.sh"
KIF=slk0

e2e_require bird birdc
e2e_binary
e2e_topology_up servers
W=$E2E_WORK

# The client is the router: the VIP is reachable only through what BGP teaches it.
e2e_exec client ip route del "$E2E_VIP4/32"

cfg=$W/sluice.yaml
e2e_netns_config l2-dsr "$cfg" "4"
sed -i "s|^    address6: .*|&\n    kernel:\n      name: $KIF|" "$cfg"
printf 'announce:\n  table: 100\n' >>"$cfg"
"$SLUICE" check -c "$cfg" >"$W/check.log" 2>&1 || { cat "$cfg" "$W/check.log" >&2; e2e_die "sluice check rejects the config"; }

fill() { # fill TEMPLATE OUT KEY=VALUE...
  local t=$1 out=$2 kv; shift 2
  cp "$t" "$out"
  for kv in "$@"; do sed -i "s|@${kv%%=*}@|${kv#*=}|g" "$out"; done
  ! grep -q '@[A-Z_0-9]*@' "$out" || e2e_die "unfilled value in $out: $(grep -o '@[A-Z_0-9]*@' "$out" | head -1)"
}
fill "$E2E_REPO/deploy/bird/bird-appliance.conf" "$W/bird-lb.conf" ROUTER_ID=$E2E_LB4 LOCAL=$E2E_LB4 \
  LOCAL_AS=65010 PEER=$E2E_CLIENT4 PEER_AS=65000 KERNEL_IF=$KIF
fill "$E2E_REPO/deploy/bird/bird-router.conf" "$W/bird-rt.conf" ROUTER_ID=$E2E_CLIENT4 LOCAL=$E2E_CLIENT4 \
  LOCAL_AS=65000 PEER1=$E2E_LB4 PEER_AS=65010
# The appliance config announces IPv6 too; this topology's v6 part is not peered: drop it.
sed -i '/ipv6 {/d; /sluice_vips_v6/,/^}/d; /ipv6 table/d' "$W/bird-lb.conf"

start_sluice() {
  e2e_spawn lb "$W/sluice-$1.log" "$SLUICE" run -c "$cfg"
  sluice_pid=$E2E_PID
  e2e_wait_for 30 e2e_exec lb ip link show "$KIF" || { cat "$W/sluice-$1.log" >&2; e2e_die "no $KIF after start ($1)"; }
}
route_on_router() { e2e_exec client ip route show "$E2E_VIP4/32" | grep -q "via $E2E_LB4"; }
no_route_on_router() { ! route_on_router; }
# wait_route WHAT CHECK LIMIT: seconds until CHECK holds (dies after LIMIT s).
wait_route() {
  local what=$1 check=$2 limit=$3 t0 t1
  t0=$(date +%s.%N)
  e2e_wait_for "$limit" "$check" || { e2e_exec client birdc -s "$W/rt.ctl" show protocols all >&2 || true; e2e_die "$what: not within ${limit}s"; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}
vip_answers() { e2e_exec client curl -sS --noproxy '*' --max-time 2 "http://$E2E_VIP4/" >/dev/null 2>&1; }

start_sluice first
e2e_spawn lb "$W/bird-lb.log" bird -f -c "$W/bird-lb.conf" -s "$W/lb.ctl" -P "$W/lb.pid"
e2e_spawn client "$W/bird-rt.log" bird -f -c "$W/bird-rt.conf" -s "$W/rt.ctl" -P "$W/rt.pid"
t=$(wait_route "the VIP route on the router" route_on_router 40)
e2e_pass "the router learned $E2E_VIP4 via $E2E_LB4 over BGP ${t}s after BIRD started: $(e2e_exec client ip route show "$E2E_VIP4/32" | tr -s ' ')"
e2e_wait_for 10 vip_answers || e2e_die "the VIP does not answer through the BGP route"
e2e_pass "the VIP answers through the announced route"
e2e_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics >"$W/metrics.txt"
e2e_check_live "$W/metrics.txt" sluice_vip_announced

state() { e2e_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/state; }
e2e_exec lb "$SLUICE" drain --url http://127.0.0.1:9610 >"$W/drain.out" 2>&1 || { cat "$W/drain.out" >&2; e2e_die "sluice drain failed"; }
t=$(wait_route "withdrawal after sluice drain" no_route_on_router 15)
state | "$PY" -c 'import json,sys; s=json.load(sys.stdin); assert s["draining"] is True and s["announced"] == [], s' \
  || e2e_die "/state does not say draining with nothing announced"
e2e_pass "sluice drain: the router dropped the route ${t}s later; /state says draining"
e2e_exec lb "$SLUICE" drain --undo --url http://127.0.0.1:9610 >>"$W/drain.out" 2>&1 || e2e_die "sluice drain --undo failed"
t=$(wait_route "the route after drain --undo" route_on_router 15)
e2e_pass "sluice drain --undo: announced again, on the router ${t}s later"

# A route the kernel loses behind sluice's back (here `ip route del`; a tap that went down and
# up does the same) is put back by control's periodic check (every 2 s), and BIRD re-advertises.
# The router may never see the gap (the repair can beat BIRD's withdrawal), so the evidence is
# sluice's repair, the route back in table 100, and the router holding it afterwards.
repaired() { grep -q "announce: table 100 holds nothing, wanted $E2E_VIP4: repairing" "$W/sluice-first.log"; }
in_table() {
  local r
  r=$(e2e_exec lb ip route show table 100)
  [[ $r == *"$E2E_VIP4 dev $KIF"* ]]
}
repaired && e2e_die "a repair logged before the route was deleted"
e2e_exec lb ip route del "$E2E_VIP4/32" dev "$KIF" table 100
t=$(wait_route "sluice's repair of the deleted route" repaired 15)
e2e_wait_for 5 in_table || e2e_die "table 100 after the repair: $(e2e_exec lb ip route show table 100)"
t2=$(wait_route "the repaired route on the router" route_on_router 15)
e2e_pass "a route deleted behind sluice's back: put back ${t}s later, on the router ${t2}s after that"

kill -TERM "$sluice_pid"
t=$(wait_route "withdrawal after SIGTERM" no_route_on_router 15)
e2e_stop_pid "$sluice_pid" 10 && rc=0 || rc=$?
[ "$rc" -eq 0 ] || e2e_die "sluice exited $rc on SIGTERM"
e2e_pass "SIGTERM: the router dropped the route ${t}s later; sluice exited 0"
# Graceful means BIRD's withdrawal crossed the exception path before it closed (the routes go
# first, the loop runs WITHDRAW_GRACE longer): the router drops the route at once. Without it
# the router finds out only when the session's 3 s hold time runs out (kill -9 below).
awk -v t="$t" 'BEGIN { exit !(t < 2.0) }' \
  && e2e_pass "SIGTERM: withdrawn in ${t}s, before the 3 s hold time could have done it" \
  || e2e_fail "SIGTERM: withdrawn only after ${t}s: the route went with the BGP session, not before it"

start_sluice second
t=$(wait_route "the route after a restart" route_on_router 40)
e2e_pass "restarted: announced again, on the router ${t}s after sluice's kernel interface came up"

# kill -9: the kernel interface goes with the process (within 0.1 s), and with it the BGP
# session's path, so no withdrawal is sent: the router's hold timer (3 s, restarted by each 1 s
# keepalive) runs out (BIRD logged "Hold timer expired" 2.9 s after the kill) and BIRD then takes
# 2-3 s more to take the route out of the kernel: 4.9 s in CI, 5.2-5.9 s here with cargo builds
# on both cores. Bound 8 s: hold time + 5 s. BIRD's defaults (hold 240 s, graceful restart) would
# keep the route for minutes.
KILL_WITHDRAW_LIMIT=8
kif_gone() { ! e2e_exec lb ip link show "$KIF" >/dev/null 2>&1; }
t0=$(date +%s.%N)
kill -KILL "$sluice_pid"
e2e_wait_for "$KILL_WITHDRAW_LIMIT" kif_gone || e2e_die "kill -9: $KIF still there ${KILL_WITHDRAW_LIMIT}s later"
t1=$(date +%s.%N)
t_kif=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
t_route=$(wait_route "withdrawal after kill -9 (BGP hold time 3 s + teardown)" no_route_on_router "$KILL_WITHDRAW_LIMIT")
t=$(awk -v a="$t_kif" -v b="$t_route" 'BEGIN { printf "%.1f", a + b }')
awk -v t="$t" -v l="$KILL_WITHDRAW_LIMIT" 'BEGIN { exit !(t <= l) }' \
  && e2e_pass "kill -9: the router dropped the route ${t}s later (${t_kif}s for $KIF to go, then ${t_route}s), within BGP's 3 s hold time + 5 s (${KILL_WITHDRAW_LIMIT}s)" \
  || e2e_fail "kill -9: the route went only ${t}s later (${t_kif}s for $KIF to go, then ${t_route}s): more than the 3 s hold time + 5 s (${KILL_WITHDRAW_LIMIT}s)"
e2e_pass "announce with BIRD"
