#!/usr/bin/env bash
# Scale-out: two `sluice run` instances (namespaces lb and lb2, af_packet, l2-dsr, identical
# services) each announce the VIP with BIRD over their own kernel interface to a BIRD router
# (the client namespace: ECMP with `merge paths`, the kernel hashing the 5-tuple with
# fib_multipath_hash_policy=3). STREAMS long-lived TCP streams (backend.py GET /stream/1024/50)
# run through the VIP for the whole test, while:
#   spread   the router has two nexthops; both instances hold flows; table fingerprints equal
#   kill     `kill -9` the sluice in lb: the router drops its nexthop (time reported); lb2 takes
#            the moved flows with no flow state (an entry made from a mid-connection packet by
#            the same Maglev table, so the same backend)
#   rejoin   the sluice in lb starts again (its BIRD kept running): two nexthops again; the
#            flows the router hashes back to lb go on from lb's table
#   drain    `sluice drain` in lb2: the router drops lb2's nexthop; its flows move to lb
# Checked: no stream is reset, closed or errors; every stream gets bytes after each step; gaps
# per step are reported (the kill gap is bounded by KILL_MAX_GAP: hold time 3 s plus TCP's
# retransmission backoff, since the client's ACKs go to a dead instance until the withdrawal);
# fingerprints are equal on both instances at every step. New connections (one every 0.5 s)
# are counted, not checked: those hashed to the dead instance before the withdrawal time out.
# Environment: SLUICE (default target/release/sluice), STREAMS (24), KILL_MAX_GAP (12),
# MAX_GAP (3, for the rejoin and drain steps).
set -euo pipefail
E2E_NAME=netns-ecmp
source "$(dirname "$0")/lib/netns.sh"
e2e_defaults STREAMS=24 KILL_MAX_GAP=12 MAX_GAP=3
OBSERVE=5              # seconds of streaming watched after each step
CLIENT_SECONDS=40      # the stream client's whole run (the steps take ~25 s)
KIF=slk0
STREAM_PORT=8080
LBS=(lb lb2)

e2e_require bird birdc
e2e_binary
e2e_topology_up
W=$E2E_WORK

# The second appliance: its own namespace, veth, MAC and address (netns.sh: lb2).
e2e_add_ns lb2
e2e_attach lb2 $E2E_LB_MTU
e2e_sysctl lb2 net.ipv6.conf.eth0.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
e2e_exec lb2 ip link set eth0 up
e2e_start_servers
# The stream servers: a second backend.py on every backend, its own service (stream4, port
# STREAM_PORT), so the flow entries of the streams are counted apart from the new connections'.
for h in "${E2E_BACKENDS[@]}"; do
  e2e_spawn "$h" "$W/stream-$h.log" "$PY" "$E2E_NETNS_DIR/backend.py" --name "$h" --tcp-port $STREAM_PORT
  e2e_wait_ready "$E2E_PID" "$W/stream-$h.log" 10 "stream server on $h"
done

# The client is the router: no static VIP route, ECMP over the 5-tuple (policy 1 would reuse
# a local socket's own hash; policy 3 with these fields hashes addresses, protocol and ports).
e2e_exec client ip route del "$E2E_VIP4/32"
e2e_sysctl client net.ipv4.fib_multipath_hash_policy=3 net.ipv4.fib_multipath_hash_fields=0x0037

fill() { # fill TEMPLATE OUT KEY=VALUE...
  local t=$1 out=$2 kv; shift 2
  cp "$t" "$out"
  for kv in "$@"; do sed -i "s|@${kv%%=*}@|${kv#*=}|g" "$out"; done
  ! grep -q '@[A-Z_0-9]*@' "$out" || e2e_die "unfilled value in $out: $(grep -o '@[A-Z_0-9]*@' "$out" | head -1)"
}

# One config per instance: e2e_netns_config's, with the instance's own address, DPDK file prefix and
# kernel interface; the services (and so the Maglev tables) are identical.
e2e_netns_config l2-dsr "$W/base.yaml" "4"
{
  printf '  - name: stream4\n    vip: %s\n    port: %s\n    protocol: tcp\n    hash: five-tuple\n' $E2E_VIP4 $STREAM_PORT
  printf '    table_size: 1031\n    forwarding: l2-dsr\n    backends:\n'
  for h in "${E2E_BACKENDS[@]}"; do printf '      - address: %s\n' "$(e2e_addr4 "$h")"; done
} >"$W/stream4.yaml"
sed -i "/^metrics:/e cat $W/stream4.yaml" "$W/base.yaml"
for lb in "${LBS[@]}"; do
  cfg=$W/sluice-$lb.yaml
  sed -e "s|$E2E_LB4/24|$(e2e_addr4 "$lb")/24|; s|$E2E_LB6/64|$(e2e_addr6 "$lb")/64|" "$W/base.yaml" >"$cfg"
  [ "$lb" = lb ] || sed -i "s|\"$E2E_PREFIX\"|\"$E2E_PREFIX-$lb\"|" "$cfg"
  sed -i "s|^    address6: .*|&\n    kernel:\n      name: $KIF|" "$cfg"
  printf 'announce:\n  table: 100\n' >>"$cfg"
  "$SLUICE" check -c "$cfg" >"$W/check-$lb.log" 2>&1 || { cat "$cfg" "$W/check-$lb.log" >&2; e2e_die "sluice check rejects $cfg"; }
  fill "$E2E_REPO/deploy/bird/bird-appliance.conf" "$W/bird-$lb.conf" ROUTER_ID="$(e2e_addr4 "$lb")" \
    LOCAL="$(e2e_addr4 "$lb")" LOCAL_AS=65010 PEER=$E2E_CLIENT4 PEER_AS=65000 KERNEL_IF=$KIF
  sed -i '/ipv6 {/d; /sluice_vips_v6/,/^}/d; /ipv6 table/d' "$W/bird-$lb.conf"
done
grep -q "$E2E_PREFIX-lb2" "$W/sluice-lb2.yaml" || e2e_die "lb2's config kept lb's DPDK file prefix"
fill "$E2E_REPO/deploy/bird/bird-router.conf" "$W/bird-rt.conf" ROUTER_ID=$E2E_CLIENT4 LOCAL=$E2E_CLIENT4 \
  LOCAL_AS=65000 PEER1="$(e2e_addr4 lb)" PEER_AS=65010
echo "protocol bgp sluice2 from sluice { neighbor $(e2e_addr4 lb2) as 65010; }" >>"$W/bird-rt.conf"

declare -A SPID
start_sluice() { # lb tag
  e2e_spawn "$1" "$W/sluice-$1-$2.log" "$SLUICE" run -c "$W/sluice-$1.yaml"
  SPID[$1]=$E2E_PID
}
wait_kif() { # lb tag
  e2e_wait_for 30 e2e_exec "$1" ip link show "$KIF" || { cat "$W/sluice-$1-$2.log" >&2; e2e_die "no $KIF in $1 ($2)"; }
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
routes() { e2e_exec client ip route show "$E2E_VIP4/32"; }
# The router's VIP route goes via exactly the given instances.
via_only() {
  local r lb n=0; r=$(routes)
  for lb in "$@"; do grep -q "via $(e2e_addr4 "$lb") " <<<"$r" || return 1; n=$((n + 1)); done
  [ "$(grep -o 'via ' <<<"$r" | wc -l)" -eq "$n" ]
}
wait_route() { # what limit lb... : seconds until the route goes via exactly those instances
  local what=$1 limit=$2 t0; shift 2
  t0=$(now)
  e2e_wait_for "$limit" via_only "$@" || { routes >&2; e2e_exec client birdc -s "$W/rt.ctl" show protocols >&2 || true; e2e_die "$what: not within ${limit}s"; }
  since "$t0"
}
metrics() { e2e_exec "$1" curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics; }
fingerprints() { metrics "$1" | grep '^sluice_table_info' | sed 's/} .*/}/' | sort; }
same_tables() { # step lb...
  local step=$1 a b; shift
  a=$(fingerprints "$1"); [ -n "$a" ] || e2e_die "$step: no sluice_table_info from $1"
  for lb in "${@:2}"; do
    b=$(fingerprints "$lb")
    [ "$a" = "$b" ] || e2e_die "$step: table fingerprints differ: $1: $a; $lb: $b"
  done
  e2e_log "$step: fingerprints equal on $*: $(grep -o 'service="[^"]*",fingerprint="[0-9a-f]*"' <<<"$a" | tr '\n' ' ')"
}
event() { echo "$1 $(now)" >>"$W/events"; }

for lb in "${LBS[@]}"; do start_sluice "$lb" first; done
for lb in "${LBS[@]}"; do wait_kif "$lb" first; done
for lb in "${LBS[@]}"; do
  e2e_spawn "$lb" "$W/bird-$lb.log" bird -f -c "$W/bird-$lb.conf" -s "$W/$lb.ctl" -P "$W/$lb.pid"
done
e2e_spawn client "$W/bird-rt.log" bird -f -c "$W/bird-rt.conf" -s "$W/rt.ctl" -P "$W/rt.pid"
t=$(wait_route "ECMP route over both instances" 40 lb lb2)
e2e_pass "the router has $E2E_VIP4 over both instances ${t}s after BIRD started: $(routes | tr -s ' \n' ' ')"
same_tables start lb lb2

# The streams (and a new connection every 0.5 s) for the rest of the test.
e2e_spawn client "$W/client.log" "$PY" "$E2E_NETNS_DIR/synflood_client.py" run \
  --vip "$E2E_VIP4" --stream-port $STREAM_PORT --probe-port $E2E_TCP_PORT --streams "$STREAMS" \
  --chunk 1024 --interval-ms 50 --seconds $CLIENT_SECONDS --probe-interval 0.5 --out "$W/client.json"
client_pid=$E2E_PID
e2e_wait_ready "$client_pid" "$W/client.log" 15 "the stream client"
event start
sleep 2
m1=$(metrics lb); m2=$(metrics lb2)
f1=$(e2e_metric_sum sluice_backend_flows 'service="stream4"' <<<"$m1"); f2=$(e2e_metric_sum sluice_backend_flows 'service="stream4"' <<<"$m2")
[ "$f1" -gt 0 ] && [ "$f2" -gt 0 ] || e2e_die "the streams are not spread: flow entries lb $f1, lb2 $f2"
[ $((f1 + f2)) -eq "$STREAMS" ] || e2e_die "$((f1 + f2)) stream flow entries for $STREAMS streams"
e2e_pass "spread: stream flow entries lb $f1, lb2 $f2 (rx packets lb $(e2e_metric_sum sluice_rx_packets_total <<<"$m1"), lb2 $(e2e_metric_sum sluice_rx_packets_total <<<"$m2"))"
sleep 1

# kill -9 one instance.
created0=$(e2e_metric_sum sluice_flows_created_total <<<"$(metrics lb2)")
event kill
kill -KILL "${SPID[lb]}"
wait "${SPID[lb]}" 2>/dev/null || true
t_kill=$(wait_route "withdrawal after kill -9" 15 lb2)
event withdrawn
e2e_pass "kill -9 lb: the router has only lb2's nexthop ${t_kill}s later: $(routes | tr -s ' \n' ' ')"
sleep $OBSERVE
m2=$(metrics lb2)
created1=$(e2e_metric_sum sluice_flows_created_total <<<"$m2"); f2=$(e2e_metric_sum sluice_backend_flows 'service="stream4"' <<<"$m2")
[ "$f2" -eq "$STREAMS" ] || e2e_die "lb2 has $f2 stream flow entries after the kill (want $STREAMS: every stream)"
e2e_pass "lb2 holds an entry for every stream ($f2), created from mid-connection packets of the moved ones (flows created since the kill: $((created1 - created0)), new connections included)"

# Restart it; its BIRD reconnects over the new kernel interface.
event restart
t0=$(now)
start_sluice lb second
wait_kif lb second
t_up=$(since "$t0")
t_rejoin=$(wait_route "ECMP again after the restart" 40 lb lb2)
event rejoined
e2e_pass "restarted lb: kernel interface up ${t_up}s after the start, two nexthops again ${t_rejoin}s later"
same_tables rejoin lb lb2
sleep $OBSERVE
f1=$(e2e_metric_sum sluice_backend_flows 'service="stream4"' <<<"$(metrics lb)")
[ "$f1" -gt 0 ] || e2e_die "no stream came back to the restarted lb"
e2e_pass "the restarted lb took back $f1 streams with no state (the router's rehash)"

# Drain lb2.
event drain
e2e_exec lb2 "$SLUICE" drain --url http://127.0.0.1:9610 >"$W/drain.out" 2>&1 || { cat "$W/drain.out" >&2; e2e_die "sluice drain failed"; }
t_drain=$(wait_route "withdrawal after sluice drain" 15 lb)
event drained
e2e_pass "sluice drain lb2: the router has only lb's nexthop ${t_drain}s later"
rx0=$(e2e_metric_sum sluice_rx_packets_total <<<"$(metrics lb2)")
sleep $OBSERVE
rx1=$(e2e_metric_sum sluice_rx_packets_total <<<"$(metrics lb2)")
same_tables drain lb lb2
event end
f1=$(e2e_metric_sum sluice_backend_flows 'service="stream4"' <<<"$(metrics lb)")
[ "$f1" -eq "$STREAMS" ] || e2e_die "lb has $f1 stream flow entries after lb2's drain (want $STREAMS: every stream)"
e2e_log "lb2 received $((rx1 - rx0)) packets in the ${OBSERVE}s after the drain (its flows moved to lb)"

left=$(awk -v e="$(awk '$1 == "start" { print $2 }' "$W/events")" -v s=$CLIENT_SECONDS -v n="$(now)" 'BEGIN { printf "%d", e + s - n + 5 }')
[ "$left" -gt 0 ] || e2e_die "the steps took longer than the stream client's ${CLIENT_SECONDS}s"
e2e_wait_for "$left" grep -q '^done' "$W/client.log" || e2e_die "the stream client did not finish: $(tail -3 "$W/client.log")"

# The streams through every step.
"$PY" - "$W/client.json" "$W/events" "$KILL_MAX_GAP" "$MAX_GAP" <<'EOF' || e2e_die "a stream broke or stalled"
import json, sys
c = json.load(open(sys.argv[1]))
ev = {k: float(v) for k, v in (l.split() for l in open(sys.argv[2]))}
kill_max, max_gap = float(sys.argv[3]), float(sys.argv[4])
steps = [("before", ev["start"], ev["kill"], max_gap), ("kill", ev["kill"], ev["restart"], kill_max),
         ("rejoin", ev["restart"], ev["drain"], max_gap), ("drain", ev["drain"], ev["end"], max_gap)]
fail, by_backend, worst = [], {}, {n: 0.0 for n, *_ in steps}
for i, s in enumerate(c["streams"]):
    by_backend[s["backend"]] = by_backend.get(s["backend"], 0) + 1
    if s["error"]:
        fail.append(f"stream {i} (backend {s['backend']}): {s['error']} at kill{s['error_at'] - ev['kill']:+.1f}s")
    t = [r[0] for r in s["reads"]]
    for name, a, b, limit in steps:
        edge = [x for x in t if x < a][-1:] + [x for x in t if a <= x <= b] + [b]
        gap = max(y - x for x, y in zip(edge, edge[1:]))
        worst[name] = max(worst[name], gap)
        if gap > limit:
            fail.append(f"stream {i} (backend {s['backend']}): no byte for {gap:.2f}s in step {name} (allowed {limit}s)")
        if not any(b - 1 <= x <= b for x in t):
            fail.append(f"stream {i} (backend {s['backend']}): nothing in the last second of step {name}")
ok = sum(1 for s in c["streams"] if not s["error"])
print(f"streams: {len(c['streams'])} on {dict(sorted(by_backend.items()))}; {ok} unbroken (no reset, EOF or error); "
      f"bytes each {min(sum(r[1] for r in s['reads']) for s in c['streams'])}..{max(sum(r[1] for r in s['reads']) for s in c['streams'])}")
print("longest gap per step: " + ", ".join(f"{n} {g:.2f}s" for n, g in worst.items()))
for name, a, b, _ in steps:
    w = [p for p in c["probes"] if a <= p["t"] < b]
    print(f"new connections in step {name}: {sum(p['ok'] for p in w)}/{len(w)} answered")
for f in fail[:20]:
    print("  FAIL " + f)
sys.exit(1 if fail else 0)
EOF
e2e_log "times: ECMP kill -9 withdrawal ${t_kill}s, restart rejoin ${t_rejoin}s (after the kernel interface), drain ${t_drain}s"
e2e_pass "ECMP over two instances, kill -9, rejoin, drain"
