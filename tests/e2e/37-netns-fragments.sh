#!/usr/bin/env bash
# Fragmented UDP datagrams through sluice, end to end (issue 22, item 4), in network namespaces
# (tests/netns/lib.sh), for each forwarding mode (l2-dsr, ipip, gue; the backends decapsulate
# with tests/netns/decap.py) and both families. sluice runs on net_pcap on its veth, not
# af_packet: DPDK's af_packet PMD reassembles IPv4 (docs/design.md, "Fragments").
# The client (MTU 1400) sends UDP datagrams of SIZES bytes (4,000 and 9,000 by default: 3 to 7
# fragments each) to the VIP's UDP service from SOURCES addresses, PORTS source ports each,
# PER_PORT datagrams per port (tests/netns/fragments.py send). On every backend a sink on the
# VIPs (fragments.py sink) gets each datagram from its kernel only once the kernel has all
# of its fragments, and acks it from the VIP (DSR) with its length and SHA-256.
# Checks: every datagram acked whole (length and digest), so every fragment of each reached
# one backend; each datagram id reached one backend only; each source address reached one
# backend (fragments hash on the addresses) and every backend got a share; once every backend
# is resolved, sluice counts no fragment_unclassifiable, mtu_exceeded, unresolved_next_hop or
# no_backend drop and puts at least every fragment sent through the UDP service. The sender
# retries a datagram up to 4 times, 1 s apart (a frame lost on the veths or in the userspace
# decapsulator); the retries are reported, and a split datagram fails on every try.
# Environment: SLUICE (default target/release/sluice), MODES ("l2-dsr ipip gue"), FAMILIES
# ("4 6"), SOURCES (24), PORTS (2), PER_PORT (4), SIZES ("4000,9000").
set -euo pipefail
SLC_TEST=netns-fragments
REPO=$(cd "$(dirname "$0")/../.." && pwd)
source "$REPO/tests/netns/lib.sh"
SLUICE=${SLUICE:-$REPO/target/release/sluice}
MODES=${MODES:-l2-dsr ipip gue}
FAMILIES=${FAMILIES:-4 6}
SOURCES=${SOURCES:-24}
PORTS=${PORTS:-2}
PER_PORT=${PER_PORT:-4}
SIZES=${SIZES:-4000,9000}
CLIENT_MTU=1400

slc_require
[ -x "$SLUICE" ] || slc_die "no sluice binary at $SLUICE (make release builds it)"
SLUICE=$(realpath "$SLUICE")
[ "$SOURCES" -ge 1 ] && [ "$SOURCES" -le 100 ] || slc_die "SOURCES: 1 to 100"

slc_init
slc_topology_up
# The client's fragments plus the largest encapsulation (GUE over IPv6, 48 bytes) fit 1500.
slc_exec sw ip link set p-client mtu $CLIENT_MTU
slc_exec client ip link set eth0 mtu $CLIENT_MTU
# More client addresses (fragments hash on the addresses, not the ports).
src4=() src6=()
for ((i = 1; i <= SOURCES; i++)); do
  src4+=(--source "192.0.2.$((100 + i))")
  src6+=(--source "2001:db8::1:$i")
  slc_exec client ip addr add "192.0.2.$((100 + i))/24" dev eth0
  slc_exec client ip -6 addr add "2001:db8::1:$i/64" dev eth0 nodad
done
sink_pids=()
for h in "${SLC_BACKENDS[@]}"; do
  slc_spawn "$h" "$SLC_WORK/sink-$h.log" "$SLC_PY" "$SLC_NETNS_DIR/fragments.py" sink --name "$h" \
    --vip "$SLC_VIP4" --vip "$SLC_VIP6" --port $SLC_UDP_PORT --stats "$SLC_WORK/sink-$h.json"
  sink_pids+=("$SLC_PID")
  slc_wait_ready "$SLC_PID" "$SLC_WORK/sink-$h.log" 10 "sink on $h"
done

scrape() { slc_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics; }
# What the client's kernel makes of a datagram: fragments of at most CLIENT_MTU.
fragments_of() { # family sizes(csv) count
  "$SLC_PY" -c 'import sys, math
fam, sizes, n, mtu = int(sys.argv[1]), [int(x) for x in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
per = (mtu - 20) // 8 * 8 if fam == 4 else (mtu - 40 - 8) // 8 * 8
print(sum(math.ceil((sizes[i % len(sizes)] + 8) / per) for i in range(n)))' "$@" "$CLIENT_MTU"
}
send() { # family tag all|first ports per_port timeout retries -> JSON on stdout
  local fam=$1 tag=$2 vip srcs
  if [ "$fam" = 4 ]; then vip=$SLC_VIP4; srcs=("${src4[@]}"); else vip=$SLC_VIP6; srcs=("${src6[@]}"); fi
  [ "$3" = all ] || srcs=("${srcs[@]:0:2}")
  slc_exec client "$SLC_PY" "$SLC_NETNS_DIR/fragments.py" send --vip "$vip" --port $SLC_UDP_PORT \
    "${srcs[@]}" --ports-per-source "$4" --per-port "$5" --sizes "$SIZES" --tag "$tag" \
    --timeout "$6" --retries "$7" --max-seconds 60
}

ok=1
for mode in $MODES; do
  slc_log "mode $mode"
  cfg="$SLC_WORK/sluice-$mode.yaml"
  slc_write_sluice_config "$mode" "$cfg" "$FAMILIES"
  # net_pcap, not af_packet: DPDK's af_packet PMD joins a fanout group with
  # PACKET_FANOUT_FLAG_DEFRAG, so the kernel would hand sluice IPv4 datagrams reassembled.
  # net_pcap has no MTU setting: 1500, which the client's smaller fragments fit encapsulated.
  sed -i -e 's/"net_af_packet0,iface=eth0"/"net_pcap0,rx_iface_in=eth0,tx_iface=eth0"/' \
    -e 's/device: net_af_packet0/device: net_pcap0/' -e "s/mtu: $SLC_LB_MTU/mtu: 1500/" "$cfg"
  "$SLUICE" check -c "$cfg" >"$SLC_WORK/check-$mode.log" 2>&1 || slc_die "sluice check rejects $cfg: $(cat "$SLC_WORK/check-$mode.log")"
  [ "$mode" = l2-dsr ] || slc_start_decap
  slc_spawn lb "$SLC_WORK/sluice-$mode.log" "$SLUICE" run -c "$cfg"
  sluice_pid=$SLC_PID
  # Up = one fragmented datagram per family is acked through it.
  for fam in $FAMILIES; do
    up=0
    for ((i = 0; i < 60; i++)); do
      kill -0 "$sluice_pid" 2>/dev/null || slc_die "$mode: sluice exited before forwarding"
      r=$(send "$fam" "probe-$mode-v$fam-$i" first 1 1 0.5 0) || true
      if [ -n "$r" ] && [ "$("$SLC_PY" -c 'import json, sys; print(json.loads(sys.argv[1])["acked"])' "$r")" = 1 ]; then up=1; break; fi
    done
    [ "$up" = 1 ] || { scrape 2>&1 | grep -E "^sluice_(rx|tx|dropped|service)" >"$SLC_WORK/metrics-fail.log"; slc_die "$mode: no IPv$fam datagram through sluice within 60 tries (last: ${r:-nothing})"; }
  done
  # Every backend resolved before the count starts (fragments before that are dropped).
  want_nb=$((${#SLC_BACKENDS[@]} * $(wc -w <<<"$FAMILIES")))
  slc_wait_for 15 sh -c "[ \$(grep -c '^sluice: neighbour' '$SLC_WORK/sluice-$mode.log') -ge $want_nb ]" \
    || slc_die "$mode: sluice did not resolve the $want_nb backends within 15s"
  scrape >"$SLC_WORK/metrics-$mode-before.txt" || slc_die "cannot scrape /metrics"

  for fam in $FAMILIES; do
    out="$SLC_WORK/send-$mode-$fam.json"
    send "$fam" "$mode-$fam" all "$PORTS" "$PER_PORT" 1.0 4 >"$out" || slc_die "$mode: the IPv$fam sender failed"
    n=$(slc_json "$out" 'd["datagrams"]')
    slc_log "$mode IPv$fam: $(slc_json "$out" 'd["acked"]')/$n datagrams acked whole, $(slc_json "$out" 'd["retries"]') retries; per backend $(slc_json "$out" 'd["per_backend"]')"
    [ "$(slc_json "$out" 'd["acked"] == d["datagrams"] and not d["missing"] and not d["bad"]')" = True ] \
      || { ok=0; slc_log "FAIL $mode IPv$fam: missing $(slc_json "$out" 'd["missing"][:10]') bad $(slc_json "$out" 'd["bad"][:5]')"; }
    [ "$(slc_json "$out" 'all(len(v) == 1 for v in d["per_source"].values())')" = True ] \
      || { ok=0; slc_log "FAIL $mode IPv$fam: a source address reached several backends: $(slc_json "$out" 'd["per_source"]')"; }
    [ "$(slc_json "$out" 'len(d["per_backend"])')" = "${#SLC_BACKENDS[@]}" ] \
      || { ok=0; slc_log "FAIL $mode IPv$fam: not every backend got a share"; }
  done

  scrape >"$SLC_WORK/metrics-$mode-after.txt" || slc_die "cannot scrape /metrics"
  delta() { echo $(($(slc_msum "$SLC_WORK/metrics-$mode-after.txt" "$1") - $(slc_msum "$SLC_WORK/metrics-$mode-before.txt" "$1"))); }
  for fam in $FAMILIES; do
    n=$(slc_json "$SLC_WORK/send-$mode-$fam.json" 'd["datagrams"]')
    want=$(fragments_of "$fam" "$SIZES" "$n")
    got=$(delta "sluice_service_packets_total{service=\"udp$fam\"")
    slc_log "$mode IPv$fam: sluice forwarded $got packets for udp$fam ($want fragments sent, more on retries)"
    [ "$got" -ge "$want" ] || { ok=0; slc_log "FAIL $mode IPv$fam: sluice forwarded $got packets, fewer than the $want fragments"; }
  done
  for reason in fragment_unclassifiable mtu_exceeded unresolved_next_hop no_backend; do
    d=$(delta "sluice_dropped_packets_total{reason=\"$reason\"")
    [ "$d" -eq 0 ] || { ok=0; slc_log "FAIL $mode: $d packets dropped for $reason"; }
  done
  drops=$(awk '/^sluice_dropped_packets_total/ && $NF != 0 { printf "%s ", $0 }' "$SLC_WORK/metrics-$mode-after.txt")
  slc_log "$mode: sluice drops since start: ${drops:-none}"
  slc_stop "$sluice_pid" 10 && rc=0 || rc=$?
  [ "$rc" -eq 0 ] || slc_die "$mode: sluice run exited with $rc on SIGTERM, expected 0"
  [ "$mode" = l2-dsr ] || slc_stop_decap
done

# The backends' side: their kernels reassembled, and no datagram reached two backends.
for h in "${SLC_BACKENDS[@]}"; do
  slc_log "$h kernel: $(slc_exec "$h" env NSTAT_HISTORY="$SLC_WORK/nstat-$h" nstat -asz IpReasmOKs IpReasmFails IpReasmTimeout Ip6ReasmOKs Ip6ReasmFails Ip6ReasmTimeout 2>/dev/null \
    | awk '/^Ip/ { printf "%s=%s ", $1, $2 }')"
done
for pid in "${sink_pids[@]}"; do slc_stop "$pid" 5 || slc_die "a sink exited badly"; done
split=$("$SLC_PY" -c 'import json, sys
seen = {}
for f in sys.argv[1:]:
    d = json.load(open(f))
    for i in d["ids"]:
        seen.setdefault(i, set()).add(d["name"])
print(sum(1 for v in seen.values() if len(v) > 1))' "$SLC_WORK"/sink-*.json)
[ "$split" = 0 ] || { ok=0; slc_log "FAIL $split datagram ids reached more than one backend"; }
[ "$ok" = 1 ] || slc_die "fragment checks failed (above)"
slc_log "PASS"
