#!/usr/bin/env bash
# Fragmented UDP datagrams through sluice, end to end (issue 22, item 4), in network namespaces
# (tests/e2e/lib/netns.sh), for each forwarding mode (l2-dsr, ipip, gue; the backends decapsulate
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
E2E_NAME=netns-fragments
source "$(dirname "$0")/lib/netns.sh"
e2e_defaults "MODES=l2-dsr ipip gue" "FAMILIES=4 6" SOURCES=24 PORTS=2 PER_PORT=4 SIZES=4000,9000
CLIENT_MTU=1400

e2e_require
e2e_binary
[ "$SOURCES" -ge 1 ] && [ "$SOURCES" -le 100 ] || e2e_die "SOURCES: 1 to 100"

e2e_topology_up
# The client's fragments plus the largest encapsulation (GUE over IPv6, 48 bytes) fit 1500.
e2e_exec sw ip link set p-client-eth0 mtu $CLIENT_MTU
e2e_exec client ip link set eth0 mtu $CLIENT_MTU
# More client addresses (fragments hash on the addresses, not the ports).
src4=() src6=()
for ((i = 1; i <= SOURCES; i++)); do
  src4+=(--source "192.0.2.$((100 + i))")
  src6+=(--source "2001:db8::1:$i")
  e2e_exec client ip addr add "192.0.2.$((100 + i))/24" dev eth0
  e2e_exec client ip -6 addr add "2001:db8::1:$i/64" dev eth0 nodad
done
sink_pids=()
for h in "${E2E_BACKENDS[@]}"; do
  e2e_spawn "$h" "$E2E_WORK/sink-$h.log" "$PY" "$E2E_NETNS_DIR/fragments.py" sink --name "$h" \
    --vip "$E2E_VIP4" --vip "$E2E_VIP6" --port $E2E_UDP_PORT --stats "$E2E_WORK/sink-$h.json"
  sink_pids+=("$E2E_PID")
  e2e_wait_ready "$E2E_PID" "$E2E_WORK/sink-$h.log" 10 "sink on $h"
done

scrape() { e2e_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics; }
# What the client's kernel makes of a datagram: fragments of at most CLIENT_MTU.
fragments_of() { # family sizes(csv) count
  "$PY" -c 'import sys, math
fam, sizes, n, mtu = int(sys.argv[1]), [int(x) for x in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
per = (mtu - 20) // 8 * 8 if fam == 4 else (mtu - 40 - 8) // 8 * 8
print(sum(math.ceil((sizes[i % len(sizes)] + 8) / per) for i in range(n)))' "$@" "$CLIENT_MTU"
}
send() { # family tag all|first ports per_port timeout retries -> JSON on stdout
  local fam=$1 tag=$2 vip srcs
  if [ "$fam" = 4 ]; then vip=$E2E_VIP4; srcs=("${src4[@]}"); else vip=$E2E_VIP6; srcs=("${src6[@]}"); fi
  [ "$3" = all ] || srcs=("${srcs[@]:0:2}")
  e2e_exec client "$PY" "$E2E_NETNS_DIR/fragments.py" send --vip "$vip" --port $E2E_UDP_PORT \
    "${srcs[@]}" --ports-per-source "$4" --per-port "$5" --sizes "$SIZES" --tag "$tag" \
    --timeout "$6" --retries "$7" --max-seconds 60
}

ok=1
for mode in $MODES; do
  e2e_log "mode $mode"
  cfg="$E2E_WORK/sluice-$mode.yaml"
  e2e_netns_config "$mode" "$cfg" "$FAMILIES"
  # net_pcap, not af_packet: DPDK's af_packet PMD joins a fanout group with
  # PACKET_FANOUT_FLAG_DEFRAG, so the kernel would hand sluice IPv4 datagrams reassembled.
  # net_pcap has no MTU setting: 1500, which the client's smaller fragments fit encapsulated.
  sed -i -e 's/"net_af_packet0,iface=eth0"/"net_pcap0,rx_iface_in=eth0,tx_iface=eth0"/' \
    -e 's/device: net_af_packet0/device: net_pcap0/' -e "s/mtu: $E2E_LB_MTU/mtu: 1500/" "$cfg"
  "$SLUICE" check -c "$cfg" >"$E2E_WORK/check-$mode.log" 2>&1 || e2e_die "sluice check rejects $cfg: $(cat "$E2E_WORK/check-$mode.log")"
  [ "$mode" = l2-dsr ] || e2e_start_decap
  e2e_spawn lb "$E2E_WORK/sluice-$mode.log" "$SLUICE" run -c "$cfg"
  sluice_pid=$E2E_PID
  # Up = one fragmented datagram per family is acked through it.
  for fam in $FAMILIES; do
    up=0
    for ((i = 0; i < 60; i++)); do
      kill -0 "$sluice_pid" 2>/dev/null || e2e_die "$mode: sluice exited before forwarding"
      r=$(send "$fam" "probe-$mode-v$fam-$i" first 1 1 0.5 0) || true
      if [ -n "$r" ] && [ "$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["acked"])' "$r")" = 1 ]; then up=1; break; fi
    done
    [ "$up" = 1 ] || { scrape 2>&1 | grep -E "^sluice_(rx|tx|dropped|service)" >"$E2E_WORK/metrics-fail.log"; e2e_die "$mode: no IPv$fam datagram through sluice within 60 tries (last: ${r:-nothing})"; }
  done
  # Every backend resolved before the count starts (fragments before that are dropped).
  want_nb=$((${#E2E_BACKENDS[@]} * $(wc -w <<<"$FAMILIES")))
  e2e_wait_for 15 sh -c "[ \$(grep -c '^sluice: neighbour' '$E2E_WORK/sluice-$mode.log') -ge $want_nb ]" \
    || e2e_die "$mode: sluice did not resolve the $want_nb backends within 15s"
  scrape >"$E2E_WORK/metrics-$mode-before.txt" || e2e_die "cannot scrape /metrics"
  e2e_mempool_start segment

  for fam in $FAMILIES; do
    out="$E2E_WORK/send-$mode-$fam.json"
    send "$fam" "$mode-$fam" all "$PORTS" "$PER_PORT" 1.0 4 >"$out" || e2e_die "$mode: the IPv$fam sender failed"
    n=$(e2e_json "$out" 'd["datagrams"]')
    e2e_log "$mode IPv$fam: $(e2e_json "$out" 'd["acked"]')/$n datagrams acked whole, $(e2e_json "$out" 'd["retries"]') retries; per backend $(e2e_json "$out" 'd["per_backend"]')"
    [ "$(e2e_json "$out" 'd["acked"] == d["datagrams"] and not d["missing"] and not d["bad"]')" = True ] \
      || { ok=0; e2e_fail "$mode IPv$fam: missing $(e2e_json "$out" 'd["missing"][:10]') bad $(e2e_json "$out" 'd["bad"][:5]')"; }
    [ "$(e2e_json "$out" 'all(len(v) == 1 for v in d["per_source"].values())')" = True ] \
      || { ok=0; e2e_fail "$mode IPv$fam: a source address reached several backends: $(e2e_json "$out" 'd["per_source"]')"; }
    [ "$(e2e_json "$out" 'len(d["per_backend"])')" = "${#E2E_BACKENDS[@]}" ] \
      || { ok=0; e2e_fail "$mode IPv$fam: not every backend got a share"; }
  done

  scrape >"$E2E_WORK/metrics-$mode-after.txt" || e2e_die "cannot scrape /metrics"
  delta() { echo $(($(e2e_metric_sum "$@" <"$E2E_WORK/metrics-$mode-after.txt") - $(e2e_metric_sum "$@" <"$E2E_WORK/metrics-$mode-before.txt"))); }
  for fam in $FAMILIES; do
    n=$(e2e_json "$E2E_WORK/send-$mode-$fam.json" 'd["datagrams"]')
    want=$(fragments_of "$fam" "$SIZES" "$n")
    got=$(delta sluice_service_packets_total "service=\"udp$fam\"")
    e2e_log "$mode IPv$fam: sluice forwarded $got packets for udp$fam ($want fragments sent, more on retries)"
    [ "$got" -ge "$want" ] || { ok=0; e2e_fail "$mode IPv$fam: sluice forwarded $got packets, fewer than the $want fragments"; }
  done
  for reason in fragment_unclassifiable mtu_exceeded unresolved_next_hop no_backend; do
    d=$(delta sluice_dropped_packets_total "reason=\"$reason\"")
    [ "$d" -eq 0 ] || { ok=0; e2e_fail "$mode: $d packets dropped for $reason"; }
  done
  drops=$(awk '/^sluice_dropped_packets_total/ && $NF != 0 { printf "%s ", $0 }' "$E2E_WORK/metrics-$mode-after.txt")
  e2e_log "$mode: sluice drops since start: ${drops:-none}"
  # Every fragment's mbuf back in the pool (a first fragment's classification is remembered
  # for the rest; no fragment may be held or lost on the way).
  e2e_mempool_check -t 10 segment || ok=0
  e2e_stop_pid "$sluice_pid" 10 && rc=0 || rc=$?
  [ "$rc" -eq 0 ] || e2e_die "$mode: sluice run exited with $rc on SIGTERM, expected 0"
  [ "$mode" = l2-dsr ] || e2e_stop_decap
done

# The backends' side: their kernels reassembled, and no datagram reached two backends.
for h in "${E2E_BACKENDS[@]}"; do
  e2e_log "$h kernel: $(e2e_exec "$h" env NSTAT_HISTORY="$E2E_WORK/nstat-$h" nstat -asz IpReasmOKs IpReasmFails IpReasmTimeout Ip6ReasmOKs Ip6ReasmFails Ip6ReasmTimeout 2>/dev/null \
    | awk '/^Ip/ { printf "%s=%s ", $1, $2 }')"
done
for pid in "${sink_pids[@]}"; do e2e_stop_pid "$pid" 5 || e2e_die "a sink exited badly"; done
split=$("$PY" -c 'import json, sys
seen = {}
for f in sys.argv[1:]:
    d = json.load(open(f))
    for i in d["ids"]:
        seen.setdefault(i, set()).add(d["name"])
print(sum(1 for v in seen.values() if len(v) > 1))' "$E2E_WORK"/sink-*.json)
[ "$split" = 0 ] || { ok=0; e2e_fail "$split datagram ids reached more than one backend"; }
[ "$ok" = 1 ] || e2e_die "fragment checks failed (above)"
e2e_pass "all checks"
