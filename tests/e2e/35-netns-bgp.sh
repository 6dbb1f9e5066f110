#!/usr/bin/env bash
# VIPs announced with BIRD over the exception path: sluice keeps each VIP with a usable backend
# as a route in kernel table 100 (`announce`), BIRD on the appliance learns the table and
# advertises it over BGP, through sluice's kernel interface, to a router running BIRD (the
# client namespace, which has no other route to the VIP). Shown: the route appears and the VIP
# answers through it; `sluice drain` withdraws it and `--undo` brings it back; SIGTERM withdraws
# it; sluice restarted announces again; `kill -9` withdraws it within BGP's hold time. Times are
# reported. deploy/bird/*.conf are the configs used, with their @...@ values filled in.
# Environment: SLUICE (default target/release/sluice).
set -euo pipefail
SLC_TEST=netns-bgp
REPO=$(cd "$(dirname "$0")/../.." && pwd)
source "$REPO/tests/netns/lib.sh"
SLUICE=${SLUICE:-$REPO/target/release/sluice}
KIF=slk0

slc_require bird birdc
[ -x "$SLUICE" ] || slc_die "no sluice binary at $SLUICE (make release builds it)"
SLUICE=$(realpath "$SLUICE")
slc_init
slc_topology_up
slc_start_servers
W=$SLC_WORK
pass() { slc_log "PASS: $*"; }

# The client is the router: the VIP is reachable only through what BGP teaches it.
slc_exec client ip route del "$SLC_VIP4/32"

cfg=$W/sluice.yaml
slc_write_sluice_config l2-dsr "$cfg" "4"
sed -i "s|^    address6: .*|&\n    kernel:\n      name: $KIF|" "$cfg"
printf 'announce:\n  table: 100\n' >>"$cfg"
"$SLUICE" check -c "$cfg" >"$W/check.log" 2>&1 || { cat "$cfg" "$W/check.log" >&2; slc_die "sluice check rejects the config"; }

fill() { # fill TEMPLATE OUT KEY=VALUE...
  local t=$1 out=$2 kv; shift 2
  cp "$t" "$out"
  for kv in "$@"; do sed -i "s|@${kv%%=*}@|${kv#*=}|g" "$out"; done
  ! grep -q '@[A-Z_0-9]*@' "$out" || slc_die "unfilled value in $out: $(grep -o '@[A-Z_0-9]*@' "$out" | head -1)"
}
fill "$REPO/deploy/bird/bird-appliance.conf" "$W/bird-lb.conf" ROUTER_ID=$SLC_LB4 LOCAL=$SLC_LB4 \
  LOCAL_AS=65010 PEER=$SLC_CLIENT4 PEER_AS=65000 KERNEL_IF=$KIF
fill "$REPO/deploy/bird/bird-router.conf" "$W/bird-rt.conf" ROUTER_ID=$SLC_CLIENT4 LOCAL=$SLC_CLIENT4 \
  LOCAL_AS=65000 PEER1=$SLC_LB4 PEER_AS=65010
# The appliance config announces IPv6 too; this topology's v6 part is not peered: drop it.
sed -i '/ipv6 {/d; /sluice_vips_v6/,/^}/d; /ipv6 table/d' "$W/bird-lb.conf"

start_sluice() {
  slc_spawn lb "$W/sluice-$1.log" "$SLUICE" run -c "$cfg"
  sluice_pid=$SLC_PID
  slc_wait_for 30 slc_exec lb ip link show "$KIF" || { cat "$W/sluice-$1.log" >&2; slc_die "no $KIF after start ($1)"; }
}
route_on_router() { slc_exec client ip route show "$SLC_VIP4/32" | grep -q "via $SLC_LB4"; }
no_route_on_router() { ! route_on_router; }
# wait_route WHAT CHECK LIMIT: seconds until CHECK holds (dies after LIMIT s).
wait_route() {
  local what=$1 check=$2 limit=$3 t0 t1
  t0=$(date +%s.%N)
  slc_wait_for "$limit" "$check" || { slc_exec client birdc -s "$W/rt.ctl" show protocols all >&2 || true; slc_die "$what: not within ${limit}s"; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}
vip_answers() { slc_exec client curl -sS --noproxy '*' --max-time 2 "http://$SLC_VIP4/" >/dev/null 2>&1; }

start_sluice first
slc_spawn lb "$W/bird-lb.log" bird -f -c "$W/bird-lb.conf" -s "$W/lb.ctl" -P "$W/lb.pid"
slc_spawn client "$W/bird-rt.log" bird -f -c "$W/bird-rt.conf" -s "$W/rt.ctl" -P "$W/rt.pid"
t=$(wait_route "the VIP route on the router" route_on_router 40)
pass "the router learned $SLC_VIP4 via $SLC_LB4 over BGP ${t}s after BIRD started: $(slc_exec client ip route show "$SLC_VIP4/32" | tr -s ' ')"
slc_wait_for 10 vip_answers || slc_die "the VIP does not answer through the BGP route"
pass "the VIP answers through the announced route"

state() { slc_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/state; }
slc_exec lb "$SLUICE" drain --url http://127.0.0.1:9610 >"$W/drain.out" 2>&1 || { cat "$W/drain.out" >&2; slc_die "sluice drain failed"; }
t=$(wait_route "withdrawal after sluice drain" no_route_on_router 15)
state | "$SLC_PY" -c 'import json,sys; s=json.load(sys.stdin); assert s["draining"] is True and s["announced"] == [], s' \
  || slc_die "/state does not say draining with nothing announced"
pass "sluice drain: the router dropped the route ${t}s later; /state says draining"
slc_exec lb "$SLUICE" drain --undo --url http://127.0.0.1:9610 >>"$W/drain.out" 2>&1 || slc_die "sluice drain --undo failed"
t=$(wait_route "the route after drain --undo" route_on_router 15)
pass "sluice drain --undo: announced again, on the router ${t}s later"

kill -TERM "$sluice_pid"
t=$(wait_route "withdrawal after SIGTERM" no_route_on_router 15)
slc_stop "$sluice_pid" 10 && rc=0 || rc=$?
[ "$rc" -eq 0 ] || slc_die "sluice exited $rc on SIGTERM"
pass "SIGTERM: the router dropped the route ${t}s later; sluice exited 0"

start_sluice second
t=$(wait_route "the route after a restart" route_on_router 40)
pass "restarted: announced again, on the router ${t}s after sluice's kernel interface came up"

kill -KILL "$sluice_pid"
t=$(wait_route "withdrawal after kill -9" no_route_on_router 15)
pass "kill -9: the router dropped the route ${t}s later (BGP hold time 3 s)"
slc_log "PASS: announce with BIRD"
