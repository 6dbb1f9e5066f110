#!/usr/bin/env bash
# bench/peers.sh: sluice against what a user would pick instead (issue 19 item 4), on one
# topology of network namespaces and veth pairs, the same clients and backends for every path:
#
#   client 203.0.113.100-102 -- r (203.0.113.1 | 192.0.2.1) -- bridge (ns sw) -- lb eth0 192.0.2.10
#                                                                          |-- b1 b2 b3 192.0.2.11-13
# Paths, interleaved in each round (the router r is on every one of them):
#   direct        no balancer: the client spreads over the backends' own addresses (the ceiling
#                 of the veths, the router and the client)
#   nft           nftables in lb's kernel: `dnat to jhash ip saddr . tcp/udp sport mod 3 map`
#   haproxy       HAProxy `mode tcp`, roundrobin, in lb (TCP only: HAProxy 2.6 has no UDP)
#   sluice-nat    `sluice run` on lb's veth through DPDK's net_af_packet, forwarding nat
#   sluice-l2dsr  the same with l2-dsr (the VIP on the backends' lo; replies skip the balancer)
#   sluice-nat-xdp  sluice-nat over DPDK's net_af_xdp instead of net_af_packet
# For nft and the sluice nat paths the backends route the clients' network back through lb (nat needs it).
# Loads, each SECONDS_PER_RUN seconds: short TCP connections (3 wrk processes, one request per
# connection, `Connection: close`, to HAProxy answering 200 in each backend); UDP datagrams/s
# (bench/peers-flood.c, sendmmsg: 18-byte payloads, 64-byte frames), counted by an nft counter in each
# backend's prerouting hook, where they are dropped; then latency, one request at a time
# (a whole TCP connection, and a UDP echo) for RR_SECONDS.
# Every namespace, veth and process it makes is removed when it ends, pass or fail (tests/e2e/lib/sluice.sh's trap).
#
# usage: bash bench/peers.sh [--smoke]
# env: ROUNDS (3), SECONDS_PER_RUN (5), RR_SECONDS (4), CONNS (30, over the 3 wrk processes),
#      UDP_PROCS (2 sender processes), UDP_FLOWS (8 sockets each), PATHS (all six, in order),
#      UDP_SENDER (c: bench/peers-flood.c, sendmmsg, built here with $CC or cc; python: peers.py flood),
#      SLUICE_NICE (0: sluice's niceness; -10 stands in for the isolated core a deployment gives
#      its worker, where other jobs share the machine),
#      SLUICE (default target/release/sluice, built if missing), OUT=FILE.jsonl (an ad-hoc run:
#      raw rows there, the summary in FILE.md, the repository untouched).
# Without OUT: rows in bench/results/peers-<time>.jsonl and the tables replace the block between
# the peers markers of bench/RESULTS.md. --smoke: one 1-second round of every path, checks each
# carried traffic, writes nothing into the repository (tests/e2e/45).
set -euo pipefail
E2E_NAME=peers
REPO=$(cd "$(dirname "$0")/.." && pwd)
source "$REPO/tests/e2e/lib/netns.sh"
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
RR_SECONDS=${RR_SECONDS:-4}
CONNS=${CONNS:-30}
UDP_PROCS=${UDP_PROCS:-2}
UDP_FLOWS=${UDP_FLOWS:-8}
SLUICE_NICE=${SLUICE_NICE:-0}
UDP_SENDER=${UDP_SENDER:-c}
PATHS=${PATHS:-"direct nft haproxy sluice-nat sluice-l2dsr sluice-nat-xdp"}
if [ "$SMOKE" = 1 ]; then ROUNDS=1 SECONDS_PER_RUN=1 RR_SECONDS=1 CONNS=6; fi
PEERS_PY="$REPO/bench/peers.py"

e2e_require wrk haproxy nft
if [ -z "${SLUICE:-}" ]; then
  SLUICE=${CARGO_TARGET_DIR:-$REPO/target}/release/sluice
  [ -x "$SLUICE" ] || (cd "$REPO" && cargo build --release -q -p sluice)
fi
e2e_binary

stamp=$(date -u +%Y%m%dT%H%M%SZ)
ADHOC=${OUT:+1}
if [ "$SMOKE" = 1 ]; then OUT=""
elif [ -z "$ADHOC" ]; then mkdir -p "$REPO/bench/results"; OUT=$REPO/bench/results/peers-$stamp.jsonl
else OUT=$(realpath -m "$OUT"); mkdir -p "$(dirname "$OUT")"; fi

VIP=198.51.100.10
CLIENTS=(203.0.113.100 203.0.113.101 203.0.113.102)
R_CLIENT=203.0.113.1
R_SERVER=192.0.2.1
LB=192.0.2.10
BACKENDS=(b1 b2 b3)
addr() { echo "192.0.2.1${1#b}"; }
TCP_PORT=80
UDP_FLOOD_PORT=9
UDP_ECHO_PORT=7

CC=${CC:-$(command -v cc || command -v clang || true)}
if [ "$UDP_SENDER" = c ] && [ -z "$CC" ]; then e2e_log "no C compiler: the Python UDP sender instead"; UDP_SENDER=python; fi
if [ "$UDP_SENDER" = c ]; then
  "$CC" -O2 -Wall -Werror -o "$E2E_WORK/peers-flood" "$REPO/bench/peers-flood.c" || e2e_die "cannot build bench/peers-flood.c"
fi
ROWS=$E2E_WORK/rows.jsonl
: >"$ROWS"

# ---- topology
for h in client r lb sw "${BACKENDS[@]}"; do e2e_add_ns "$h"; done
e2e_bridge_up
e2e_veth_pair client 02:5c:00:00:00:64 r 02:5c:00:00:00:01
for h in client r lb "${BACKENDS[@]}"; do
  e2e_sysctl "$h" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
for a in "${CLIENTS[@]}"; do e2e_exec client ip addr add "$a/24" dev eth0; done
e2e_exec client ip link set eth0 up
e2e_exec client ip route add default via $R_CLIENT
# Many short connections: every ephemeral port, and TIME_WAIT ports reused.
e2e_sysctl client net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
e2e_bridge_port r eth1 02:5c:00:00:00:02
e2e_sysctl r net.ipv4.ip_forward=1 net.ipv4.conf.all.accept_redirects=0
e2e_exec r ip addr add $R_CLIENT/24 dev eth0
e2e_exec r ip addr add $R_SERVER/24 dev eth1
e2e_exec r ip link set eth0 up
e2e_exec r ip link set eth1 up
e2e_exec r ip route add $VIP/32 via $LB
e2e_bridge_port lb eth0 02:5c:00:00:00:0a
e2e_exec lb ip link set eth0 up
e2e_sysctl lb net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
for h in "${BACKENDS[@]}"; do
  e2e_bridge_port "$h" eth0 "02:5c:00:00:00:1${h#b}"
  # The VIP on lo for l2-dsr, never answered for on the segment.
  e2e_sysctl "$h" net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  e2e_exec "$h" ip addr add "$(addr "$h")/24" dev eth0
  e2e_exec "$h" ip addr add $VIP/32 dev lo
  e2e_exec "$h" ip link set eth0 up
  e2e_exec "$h" ip route add default via $R_SERVER
  e2e_exec "$h" nft -f - <<EOF
table inet peers {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    udp dport $UDP_FLOOD_PORT counter drop
  }
}
EOF
done
# Replies to the clients: through lb (nat: nft, sluice-nat) or straight to the router.
return_via() { local h; for h in "${BACKENDS[@]}"; do e2e_exec "$h" ip route replace 203.0.113.0/24 via "$1"; done; }

# ---- the backends' servers: HAProxy answering HTTP 200 itself, and a UDP echo
for h in "${BACKENDS[@]}"; do
  cat >"$E2E_WORK/backend-$h.cfg" <<EOF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend web
  bind :$TCP_PORT
  http-request return status 200 content-type text/plain string "$h"
EOF
  e2e_spawn "$h" "$E2E_WORK/haproxy-$h.log" haproxy -db -f "$E2E_WORK/backend-$h.cfg"
  e2e_spawn "$h" "$E2E_WORK/echo-$h.log" "$PY" "$PEERS_PY" echo --bind "$(addr "$h")" $VIP --port $UDP_ECHO_PORT
done
for h in "${BACKENDS[@]}"; do
  e2e_wait_for 10 e2e_exec client curl -sf --noproxy '*' --max-time 1 "http://$(addr "$h"):$TCP_PORT/" \
    || e2e_die "HAProxy on $h does not answer"
done
e2e_log "topology up, backends serving: namespaces $(e2e_ns '*')"

# ---- the balancer namespace, per path
lb_kernel() { # on|off: lb's kernel owns eth0 (an address, a default route) or leaves it to sluice
  if [ "$1" = on ]; then
    e2e_exec lb ip addr add $LB/24 dev eth0
    e2e_exec lb ip route add default via $R_SERVER
  else
    e2e_exec lb ip addr flush dev eth0
    e2e_exec lb nft flush ruleset
    e2e_exec lb ip addr del $VIP/32 dev lo 2>/dev/null || true
    e2e_sysctl lb net.ipv4.ip_forward=0
  fi
}
nft_up() {
  e2e_sysctl lb net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
  local map="0 : $(addr b1), 1 : $(addr b2), 2 : $(addr b3)"
  e2e_exec lb nft -f - <<EOF
table ip peers {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr $VIP tcp dport $TCP_PORT dnat to jhash ip saddr . tcp sport mod 3 map { $map }
    ip daddr $VIP udp dport { $UDP_FLOOD_PORT, $UDP_ECHO_PORT } dnat to jhash ip saddr . udp sport mod 3 map { $map }
  }
}
EOF
}
haproxy_up() {
  e2e_exec lb ip addr add $VIP/32 dev lo
  {
    printf 'global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n'
    printf 'frontend vip\n  bind %s:%s\n  default_backend web\nbackend web\n  balance roundrobin\n' $VIP $TCP_PORT
    for h in "${BACKENDS[@]}"; do printf '  server %s %s:%s\n' "$h" "$(addr "$h")" $TCP_PORT; done
  } >"$E2E_WORK/lb-haproxy.cfg"
  e2e_spawn lb "$E2E_WORK/lb-haproxy.log" haproxy -db -f "$E2E_WORK/lb-haproxy.cfg"
  LB_PID=$E2E_PID
}
sluice_up() { # nat|l2-dsr af_packet|af_xdp
  local mode=$1 kind=$2 svc
  local cfg=$E2E_WORK/sluice-$mode-$kind.yaml pmd=net_$kind
  {
    e2e_config_head 512 8191 "${pmd}0,iface=eth0" segment "$LB/24"
    echo "    queues: 1"
    echo "    mtu: 1500"
    echo "services:"
    for svc in "tcp $TCP_PORT" "udp $UDP_FLOOD_PORT" "udp $UDP_ECHO_PORT"; do
      set -- $svc
      printf '  - {name: %s%s, vip: %s, port: %s, protocol: %s, forwarding: %s, backends: [%s]}\n' \
        "$1" "$2" $VIP "$2" "$1" "$mode" "$(for h in "${BACKENDS[@]}"; do printf '{address: %s}, ' "$(addr "$h")"; done | sed 's/, $//')"
    done
    echo "metrics:"
    echo "  listen: 127.0.0.1:9610"
  } >"$cfg"
  "$SLUICE" check -c "$cfg" >"$E2E_WORK/check-$mode-$kind.log" 2>&1 || { cat "$cfg" "$E2E_WORK/check-$mode-$kind.log" >&2; e2e_die "sluice check rejects $cfg"; }
  e2e_spawn lb "$E2E_WORK/sluice-$mode-$kind.log" nice -n "$SLUICE_NICE" "$SLUICE" run -c "$cfg"
  LB_PID=$E2E_PID
}
sluice_busy() { # seconds the worker spent on bursts that received packets, so far
  e2e_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics \
    | awk '$1 ~ /^sluice_worker_busy_seconds_total/ { s += $2 } END { printf "%.6f\n", s }'
}

# Set up PATH; leaves the client's targets in TCP_TARGETS, UDP_TARGETS and RR_TARGET, and the
# balancer's process (if any) in LB_PID.
path_up() {
  LB_PID=""
  TCP_TARGETS=($VIP $VIP $VIP) UDP_TARGETS=($VIP) RR_TARGET=$VIP
  case $1 in
    direct)
      return_via $R_SERVER
      TCP_TARGETS=() UDP_TARGETS=()
      for h in "${BACKENDS[@]}"; do TCP_TARGETS+=("$(addr "$h")"); UDP_TARGETS+=("$(addr "$h")"); done
      RR_TARGET=$(addr b1) ;;
    nft) lb_kernel on; nft_up; return_via $LB ;;
    haproxy) lb_kernel on; haproxy_up; return_via $R_SERVER; UDP_TARGETS=() ;;
    sluice-nat) sluice_up nat af_packet; return_via $LB ;;
    sluice-l2dsr) sluice_up l2-dsr af_packet; return_via $R_SERVER ;;
    sluice-nat-xdp) sluice_up nat af_xdp; return_via $LB ;;
    *) e2e_die "unknown path $1" ;;
  esac
  # Ready = the client gets an answer through it (for sluice: ARP for the backends done).
  local t0=$SECONDS
  until e2e_exec client curl -sf --noproxy '*' --max-time 0.5 "http://${TCP_TARGETS[0]}:$TCP_PORT/" >/dev/null 2>&1; do
    [ -z "$LB_PID" ] || kill -0 "$LB_PID" 2>/dev/null || e2e_die "$1: the balancer exited before it answered"
    [ $((SECONDS - t0)) -lt 30 ] || e2e_die "$1: no answer through it within 30 s"
    sleep 0.3
  done
}
path_down() {
  # HAProxy exits non-zero on SIGTERM (a hard stop); sluice must exit 0.
  if [ -n "$LB_PID" ]; then e2e_stop_pid "$LB_PID" 10 || [[ $1 != sluice-* ]] || e2e_die "$1: sluice exited badly on SIGTERM"; fi
  case $1 in direct) ;; *) lb_kernel off ;; esac
}

cpu_stat() { awk '$1 == "cpu" { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6, $8 }' /proc/stat; }  # total idle softirq (ticks)
proc_ticks() { [ -n "$1" ] && awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
udp_counted() { # datagrams the backends' nft counters have seen so far
  local h n=0 c
  for h in "${BACKENDS[@]}"; do
    c=$(e2e_exec "$h" nft list chain inet peers pre | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
    n=$((n + c))
  done
  echo $n
}

# One path, one round: appends a JSON row to $ROWS.
run_path() { # round path
  local rd=$1 p=$2 i pids=() c0 c1 l0 l1 b0 b1 u0 u1 load1
  load1=$(cut -d' ' -f1 /proc/loadavg)
  path_up "$p"
  local per=$((CONNS / 3 > 0 ? CONNS / 3 : 1))
  # -- short TCP connections
  read -r -a c0 < <(cpu_stat); l0=$(proc_ticks "$LB_PID"); b0=0
  [[ $p != sluice-* ]] || b0=$(sluice_busy)
  for i in 0 1 2; do
    e2e_spawn client "$E2E_WORK/wrk-$i.log" wrk -t1 -c"$per" -d"${SECONDS_PER_RUN}s" --timeout 2s --latency \
      -H "Connection: close" "http://${TCP_TARGETS[$i]}:$TCP_PORT/"
    pids+=("$E2E_PID")
  done
  for i in "${pids[@]}"; do wait "$i" || e2e_die "$p: wrk failed"; done
  read -r -a c1 < <(cpu_stat); l1=$(proc_ticks "$LB_PID"); b1=0
  [[ $p != sluice-* ]] || b1=$(sluice_busy)
  local tcp
  tcp=$("$PY" - "$E2E_WORK"/wrk-[012].log <<'EOF'
import json, re, sys
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
rps, p50, p99, errs = 0.0, [], [], 0
for f in sys.argv[1:]:
    t = open(f).read()
    rps += float(re.search(r"Requests/sec:\s+([0-9.]+)", t).group(1))
    for q, acc in (("50", p50), ("99", p99)):
        m = re.search(r"^\s+%s%%\s+([0-9.]+)(us|ms|s)\s*$" % q, t, re.M)
        if m:
            acc.append(float(m.group(1)) * unit[m.group(2)])
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    errs += sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    errs += int(m.group(1)) if m else 0
print(json.dumps({"tcp_rps": round(rps), "wrk_p50_ms": round(sum(p50) / len(p50), 3) if p50 else None,
                  "wrk_p99_ms": round(max(p99), 3) if p99 else None, "wrk_errors": errs}))
EOF
)
  local lb_tcp=null busy_tcp=null
  [ -z "$LB_PID" ] || lb_tcp=$(awk -v a="$l0" -v b="$l1" -v t=$((c1[0] - c0[0])) -v n="$(nproc)" 'BEGIN { printf "%.1f", (b - a) * 100 * n / t }')
  [[ $p != sluice-* ]] || busy_tcp=$(awk -v a="$b0" -v b="$b1" -v s="$SECONDS_PER_RUN" 'BEGIN { printf "%.1f", (b - a) * 100 / s }')
  # -- UDP datagrams per second
  local udp='{}' lb_udp=null busy_udp=null idle=null softirq=null
  if [ ${#UDP_TARGETS[@]} -gt 0 ]; then
    u0=$(udp_counted); read -r -a c0 < <(cpu_stat); l0=$(proc_ticks "$LB_PID")
    [[ $p != sluice-* ]] || b0=$(sluice_busy)
    local sent
    if [ "$UDP_SENDER" = c ]; then
      sent=$(e2e_exec client "$E2E_WORK/peers-flood" "$SECONDS_PER_RUN" $UDP_FLOOD_PORT "$(IFS=,; echo "${CLIENTS[*]}")" \
        "$(IFS=,; echo "${UDP_TARGETS[*]}")" "$UDP_PROCS" "$UDP_FLOWS") || e2e_die "$p: the UDP sender failed"
    else
      sent=$(e2e_exec client "$PY" "$PEERS_PY" flood --target "${UDP_TARGETS[@]}" --port $UDP_FLOOD_PORT \
        --source "${CLIENTS[@]}" --seconds "$SECONDS_PER_RUN" --procs "$UDP_PROCS" --flows "$UDP_FLOWS") \
        || e2e_die "$p: the UDP sender failed"
    fi
    sleep 0.2  # what is still in flight
    u1=$(udp_counted); read -r -a c1 < <(cpu_stat); l1=$(proc_ticks "$LB_PID")
    [[ $p != sluice-* ]] || b1=$(sluice_busy)
        # Rates over the sending time asked for (the sender's own clock adds its start-up and join).
    udp=$("$PY" -c 'import json, sys; s = json.loads(sys.argv[1]); n, t = int(sys.argv[2]), float(sys.argv[3])
print(json.dumps({"udp_sent_pps": round(s["sent"] / t), "udp_pps": round(n / t), "udp_delivered": n, "udp_sent": s["sent"]}))' \
      "$sent" $((u1 - u0)) "$SECONDS_PER_RUN")
    idle=$(awk -v t=$((c1[0] - c0[0])) -v i=$((c1[1] - c0[1])) 'BEGIN { printf "%.1f", i * 100 / t }')
    softirq=$(awk -v t=$((c1[0] - c0[0])) -v i=$((c1[2] - c0[2])) 'BEGIN { printf "%.1f", i * 100 / t }')
    [ -z "$LB_PID" ] || lb_udp=$(awk -v a="$l0" -v b="$l1" -v t=$((c1[0] - c0[0])) -v n="$(nproc)" 'BEGIN { printf "%.1f", (b - a) * 100 * n / t }')
    [[ $p != sluice-* ]] || busy_udp=$(awk -v a="$b0" -v b="$b1" -v s="$SECONDS_PER_RUN" 'BEGIN { printf "%.1f", (b - a) * 100 / s }')
  fi
  # -- latency, one request at a time
  local rr
  local echo_port=$UDP_ECHO_PORT
  [ ${#UDP_TARGETS[@]} -gt 0 ] || echo_port=0
  rr=$(e2e_exec client "$PY" "$PEERS_PY" rr --target "$RR_TARGET" --tcp-port $TCP_PORT --udp-port $echo_port \
    --seconds "$RR_SECONDS") || e2e_die "$p: the latency client failed"
  path_down "$p"
  "$PY" -c 'import json, sys
row = {"time": sys.argv[1], "round": int(sys.argv[2]), "path": sys.argv[3], "load1": float(sys.argv[4]),
       "seconds": float(sys.argv[5]), "conns": int(sys.argv[6]), "udp_idle_pct": json.loads(sys.argv[7]),
       "lb_cpu_tcp_pct": json.loads(sys.argv[8]), "lb_cpu_udp_pct": json.loads(sys.argv[9]),
       "worker_busy_tcp_pct": json.loads(sys.argv[10]), "worker_busy_udp_pct": json.loads(sys.argv[11]),
       "udp_softirq_pct": json.loads(sys.argv[12])}
for extra in sys.argv[13:]:
    row.update(json.loads(extra))
print(json.dumps(row, sort_keys=True))' "$stamp" "$rd" "$p" "$load1" "$SECONDS_PER_RUN" "$CONNS" "$idle" \
    "$lb_tcp" "$lb_udp" "$busy_tcp" "$busy_udp" "$softirq" "$tcp" "$udp" "$rr" >>"$ROWS"
  tail -n 1 "$ROWS" | "$PY" -c 'import json, sys; r = json.load(sys.stdin)
print("peers: round %d %-13s tcp %7d req/s (errors %d)  udp %8s/s of %8s/s sent  rr tcp p50 %s us udp p50 %s us (failed %d, lost %d)  load %.2f" % (
    r["round"], r["path"], r["tcp_rps"], r["wrk_errors"], r.get("udp_pps", "-"), r.get("udp_sent_pps", "-"),
    r["tcp_p50_us"], r["udp_p50_us"], r["tcp_failed"], r["udp_lost"], r["load1"]))' >&2
}

for rd in $(seq 1 "$ROUNDS"); do
  for p in $PATHS; do run_path "$rd" "$p"; done
done

# Every path must have carried its traffic (HAProxy no UDP), every request of the latency run
# answered (tcp_failed, udp_lost) and no wrk request failed (wrk_errors): all 0 in every row of
# bench/results/peers-*.jsonl (141 rows, 1-min load average up to 11.4) and in CI's smoke runs.
"$PY" - "$ROWS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = [(r["path"], r["round"]) for r in rows if r["tcp_rps"] <= 0 or r["tcp_n"] <= 0
       or (r["path"] != "haproxy" and (r.get("udp_pps", 0) <= 0 or r["udp_n"] <= 0))]
if not rows or bad:
    sys.exit("peers: no traffic through %s" % (bad or "any path"))
failed = ["%s round %d: tcp_failed %d, udp_lost %d, wrk_errors %d" % (r["path"], r["round"], r["tcp_failed"],
          r["udp_lost"], r["wrk_errors"]) for r in rows if r["tcp_failed"] or r["udp_lost"] or r["wrk_errors"]]
if failed:
    sys.exit("peers: requests not answered: " + "; ".join(failed))
EOF
e2e_log "every path carried TCP and UDP, every request answered"
if [ "$SMOKE" = 1 ]; then echo "peers: smoke OK"; exit 0; fi

cp "$ROWS" "$OUT"
cmd="bash bench/peers.sh (ROUNDS=$ROUNDS SECONDS_PER_RUN=$SECONDS_PER_RUN RR_SECONDS=$RR_SECONDS CONNS=$CONNS UDP_PROCS=$UDP_PROCS UDP_FLOWS=$UDP_FLOWS UDP_SENDER=$UDP_SENDER SLUICE_NICE=$SLUICE_NICE PATHS=\"$PATHS\")"
when="$(date -u '+%-d %b %Y, %H:%M UTC'), $(nproc) CPUs, raw rows in \`${OUT#"$REPO"/}\`"
if [ -n "$ADHOC" ]; then
  "$PY" "$PEERS_PY" summarize "$OUT" "${OUT%.jsonl}.md" --command "$cmd" --when "$when"
  echo "peers: raw rows in $OUT, tables in ${OUT%.jsonl}.md"
  exit 0
fi
"$PY" "$PEERS_PY" summarize "$OUT" "$E2E_WORK/peers.md" --command "$cmd" --when "$when"
# The tables go between the markers of RESULTS.md's peers section (the reading around them is prose).
"$PY" "$REPO/bench/block.py" "$REPO/bench/RESULTS.md" peers bench/peers.sh "$E2E_WORK/peers.md" \
  "## Peers: nftables and HAProxy on veth (issue 19 item 4)"
echo "peers: raw rows in $OUT; tables in bench/RESULTS.md"
