#!/usr/bin/env bash
# NAT and FullNAT end to end, with servers nobody here wrote: PostgreSQL (pgbench) behind a
# fullnat VIP, dnsmasq behind a nat VIP, HTTP through both modes over IPv4 and IPv6; then a
# PostgreSQL backend is killed mid-run and health checks take it out.
# QUEUES=2 runs two workers on two af_packet queues (kernel fanout spreads flows over them, so
# replies reach the worker that does not own their connection and are redirected to it);
# tests/e2e/39 does that, shorter, and NAT_KILL=0 leaves out the killed backend.
#
# One-armed: clients reach the VIPs through a router.
#   client 203.0.113.100 -- r (203.0.113.1 | 192.0.2.1) -- bridge -- sluice eth0 192.0.2.10 (DPDK)
#                                                            |-- f1 f2 f3, n1 n2, mgmt0 (192.0.2.9)
# f1-f3 (fullnat backends): PostgreSQL and HTTP on their own addresses, no VIP, no tunnel, and
#       no route beyond their link: they answer the local address 192.0.2.200 sluice owns.
# n1-n2 (nat backends): dnsmasq and HTTP on their own addresses; their route to the clients'
#       network is sluice.
# Health probes leave the appliance namespace's kernel through mgmt0.
set -euo pipefail
E2E_NAME=netns-nat
source "$(dirname "$0")/lib/netns.sh"
e2e_defaults "PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)" \
  PGBENCH_SECONDS=20 PGBENCH_CLIENTS=12 DNS_QUERIES=1000 QUEUES=1 NAT_KILL=1
case $QUEUES in
  1) LCORES=(-l 0-1) ;;
  # The main lcore and two workers on 2 CPUs: the workers share CPU 1 (slow, but correct).
  2) LCORES=(--lcores 0@0,1@1,2@1) ;;
  *) echo "QUEUES must be 1 or 2" >&2; exit 2 ;;
esac

VIP4=198.51.100.10
VIP6=2001:db8:100::10
CLIENT4=203.0.113.100
CLIENT6=2001:db8:c::100
LOCAL4=192.0.2.200
LOCAL6=2001:db8::200
FULL=(f1 f2 f3)
NAT=(n1 n2)
addr4() { case $1 in f*) echo 192.0.2.1${1#f} ;; n*) echo 192.0.2.2${1#n} ;; esac; }
addr6() { case $1 in f*) echo 2001:db8::1${1#f} ;; n*) echo 2001:db8::2${1#n} ;; esac; }
mac() { case $1 in f*) echo 02:5c:00:00:02:1${1#f} ;; n*) echo 02:5c:00:00:02:2${1#n} ;; esac; }

e2e_require dig dnsmasq runuser
[ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/pgbench" ] || e2e_die "no PostgreSQL server binaries (make deps installs postgresql)"
e2e_binary
chmod 755 "$E2E_WORK"  # the postgres user reaches its data directories below it
# A PostgreSQL that does not shut down cleanly (runuser SIGKILLs it 2 s after a SIGTERM, while a
# smart shutdown still waits for its clients; e2e_cleanup after 5 s) leaves its SysV segment and
# its dynamic shared memory behind. The latter goes into the data directory
# (dynamic_shared_memory_type=mmap below), removed with the work directory; the former is named
# in postmaster.pid (line 7: key and id), which a postmaster that died leaves behind.
pg_cleanup() {
  local pidfile key id
  for pidfile in "$E2E_WORK"/pg-*/data/postmaster.pid; do
    [ -f "$pidfile" ] || continue
    runuser -u postgres -- "$PG_BIN/pg_ctl" stop -D "${pidfile%/*}" -m immediate -t 5 >/dev/null 2>&1
    [ -f "$pidfile" ] || continue
    read -r key id < <(sed -n 7p "$pidfile") || continue
    [ -n "$id" ] || continue
    # Only that segment: the same id with the same key, owned by postgres (IPC_RMID frees it once
    # the last process still attached is gone).
    ipcs -m | awk -v k="$(printf '0x%08x' "$key")" -v i="$id" '$1 == k && $2 == i && $3 == "postgres" { f = 1 } END { exit !f }' \
      && ipcrm -m "$id"
  done
}
trap 'rc=$?; set +e; pg_cleanup; (exit $rc); e2e_cleanup' EXIT

# ---- topology
for h in client r lb sw "${FULL[@]}" "${NAT[@]}"; do e2e_add_ns "$h"; done
e2e_bridge_up
e2e_veth_pair client 02:5c:00:00:00:64 r 02:5c:00:00:00:01 # client <-> router
e2e_exec client ip addr add $CLIENT4/24 dev eth0
e2e_exec client ip -6 addr add $CLIENT6/64 dev eth0 nodad
e2e_exec client ip link set eth0 up
e2e_exec client ip route add default via 203.0.113.1
e2e_exec client ip -6 route add default via 2001:db8:c::1
e2e_bridge_port r eth1 02:5c:00:00:00:02
e2e_sysctl r net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
  net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
e2e_exec r ip addr add 203.0.113.1/24 dev eth0
e2e_exec r ip -6 addr add 2001:db8:c::1/64 dev eth0 nodad
e2e_exec r ip addr add 192.0.2.1/24 dev eth1
e2e_exec r ip -6 addr add 2001:db8::1/64 dev eth1 nodad
e2e_exec r ip link set eth0 up
e2e_exec r ip link set eth1 up
e2e_exec r ip route add $VIP4/32 via 192.0.2.10
e2e_exec r ip -6 route add $VIP6/128 via 2001:db8::10
# the appliance: its data port (DPDK's) and a management veth for health probes
e2e_bridge_port lb eth0 02:5c:00:00:00:0a
e2e_bridge_port lb mgmt0 02:5c:00:00:00:09
e2e_sysctl lb net.ipv6.conf.eth0.disable_ipv6=1
e2e_exec lb ip link set eth0 up
e2e_exec lb ip addr add 192.0.2.9/24 dev mgmt0
e2e_exec lb ip -6 addr add 2001:db8::9/64 dev mgmt0 nodad
e2e_exec lb ip link set mgmt0 up
for h in "${FULL[@]}" "${NAT[@]}"; do
  e2e_bridge_port "$h" eth0 "$(mac "$h")"
  e2e_exec "$h" ip addr add "$(addr4 "$h")/24" dev eth0
  e2e_exec "$h" ip -6 addr add "$(addr6 "$h")/64" dev eth0 nodad
  e2e_exec "$h" ip link set eth0 up
done
for h in "${NAT[@]}"; do  # nat: replies to clients must come back through the appliance
  e2e_exec "$h" ip route add 203.0.113.0/24 via 192.0.2.10
  e2e_exec "$h" ip -6 route add 2001:db8:c::/64 via 2001:db8::10
done
for h in "${FULL[@]}"; do
  ! e2e_exec "$h" ip route get $CLIENT4 >/dev/null 2>&1 || e2e_die "$h has a route to the client"
done
e2e_log "topology up: namespaces $(e2e_ns '*'), work dir $E2E_WORK"

# ---- servers
declare -A pg_pid
start_pg() { # host
  local h=$1 dir="$E2E_WORK/pg-$1"
  e2e_spawn "$h" "$E2E_WORK/pg-$h.log" runuser -u postgres -- "$PG_BIN/postgres" -D "$dir/data" \
    -c listen_addresses="$(addr4 "$h")" -c port=5432 -c unix_socket_directories="$dir" \
    -c fsync=off -c max_connections=100 -c dynamic_shared_memory_type=mmap
  pg_pid[$h]=$E2E_PID
  e2e_wait_for 20 e2e_exec "$h" runuser -u postgres -- "$PG_BIN/pg_isready" -q -h "$(addr4 "$h")" -p 5432 \
    || e2e_die "PostgreSQL on $h is not ready after 20s"
}
for h in "${FULL[@]}"; do
  dir="$E2E_WORK/pg-$h"
  install -d -o postgres -g postgres -m 700 "$dir" "$dir/data"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$E2E_WORK/initdb-$h.log" 2>&1 \
    || { cat "$E2E_WORK/initdb-$h.log" >&2; e2e_die "initdb failed for $h"; }
  echo "host all all 0.0.0.0/0 trust" >>"$dir/data/pg_hba.conf"
  start_pg "$h"
  # The same tables on every backend, and each one's name, to tell them apart.
  e2e_exec "$h" runuser -u postgres -- "$PG_BIN/pgbench" -i -q -s 1 -h "$(addr4 "$h")" -U postgres postgres \
    >"$E2E_WORK/pgbench-init-$h.log" 2>&1 || e2e_die "pgbench -i failed on $h"
  e2e_exec "$h" runuser -u postgres -- "$PG_BIN/psql" -q -h "$(addr4 "$h")" -U postgres -c "CREATE TABLE whoami AS SELECT '$h'::text AS name" postgres \
    >/dev/null || e2e_die "psql failed on $h"
  e2e_spawn "$h" "$E2E_WORK/http-$h.log" "$PY" "$E2E_NETNS_DIR/backend.py" --name "$h" --tcp-port 8080 --udp-port 5353
  e2e_wait_ready "$E2E_PID" "$E2E_WORK/http-$h.log" 10 "HTTP server on $h"
done
for h in "${NAT[@]}"; do
  e2e_spawn "$h" "$E2E_WORK/dns-$h.log" dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address="$(addr4 "$h")" --port=53 --txt-record="who.example,$h" --pid-file="$E2E_WORK/dnsmasq-$h.pid" \
    --user=root --log-facility=- --log-queries
  e2e_spawn "$h" "$E2E_WORK/http-$h.log" "$PY" "$E2E_NETNS_DIR/backend.py" --name "$h" --tcp-port 8080 --udp-port 5353
  e2e_wait_ready "$E2E_PID" "$E2E_WORK/http-$h.log" 10 "HTTP server on $h"
done
e2e_log "PostgreSQL on ${FULL[*]}, dnsmasq on ${NAT[*]}, HTTP on all"

# ---- sluice
cfg="$E2E_WORK/sluice-nat.yaml"
backends() { # family port hosts...
  local fam=$1 port=$2 h; shift 2
  for h in "$@"; do
    if [ "$fam" = 4 ]; then echo "      - address: $(addr4 "$h")"; else echo "      - address: $(addr6 "$h")"; fi
    [ "$port" = same ] || echo "        port: $port"
  done
}
service() { # name vip port protocol forwarding [local address]
  printf '  - name: %s\n    vip: "%s"\n    port: %s\n    protocol: %s\n    forwarding: %s\n' "$1" "$2" "$3" "$4" "$5"
  [ -z "${6:-}" ] || printf '    local_addresses: ["%s"]\n' "$6"
}
health() { # kind port
  printf '    health_check:\n      kind: %s\n      port: %s\n      path: /\n      interval: 400ms\n      timeout: 200ms\n      rise: 2\n      fall: 2\n' "$1" "$2"
}
{
  echo "# sluice e2e: nat and fullnat (generated by tests/e2e/38-netns-nat.sh)"
  e2e_config_head 512 8191 "net_af_packet0,iface=eth0,qpairs=$QUEUES" segment 192.0.2.10/24 "" "${LCORES[@]}"
  echo "    queues: $QUEUES"
  echo "    mtu: 1500"
  echo "    address6: 2001:db8::10/64"
  echo "flows:"
  # Each worker allocates 1/QUEUES of a local address's ports (its residue class).
  echo "  capacity: $((65536 / QUEUES))"
  echo "services:"
  service pg $VIP4 5432 tcp fullnat $LOCAL4
  health tcp 5432
  echo "    backends:"; backends 4 same "${FULL[@]}"
  service dns $VIP4 53 udp nat
  echo "    backends:"; backends 4 same "${NAT[@]}"
  for fam in 4 6; do
    if [ $fam = 4 ]; then vip=$VIP4 local=$LOCAL4; else vip=$VIP6 local=$LOCAL6; fi
    service http-nat$fam $vip 80 tcp nat
    health http 8080
    echo "    backends:"; backends $fam 8080 "${NAT[@]}"
    service http-fullnat$fam $vip 8080 tcp fullnat $local
    health http 8080
    echo "    backends:"; backends $fam same "${FULL[@]}"
  done
  echo "metrics:"
  echo "  listen: 127.0.0.1:9610"
} >"$cfg"
"$SLUICE" check -c "$cfg" >"$E2E_WORK/check.log" 2>&1 || { cat "$E2E_WORK/check.log" >&2; e2e_die "sluice check rejects the config"; }
e2e_spawn lb "$E2E_WORK/sluice.log" "$SLUICE" run -c "$cfg"
sluice_pid=$E2E_PID
metrics() { e2e_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics; }
backend_up() { # address [service] -> the distinct values of its sluice_backend_up samples
  metrics | awk -v b="$1" -v s="${2:-}" '$1 ~ /^sluice_backend_up\{/ && index($1, "backend=\"" b "\"") \
    && (s == "" || index($1, "service=\"" s "\"")) { print $2 }' | sort -u | tr -d '\n'
}
is_up() { [ "$(backend_up "$1" "${3:-}")" = "$2" ]; }  # address 1|0 [service]
for h in "${FULL[@]}" "${NAT[@]}"; do
  e2e_wait_for 30 is_up "$(addr4 "$h")" 1 \
    || e2e_die "$h not reported up within 30s: $(metrics | grep '^sluice_backend_up' | tr '\n' ' ')"
done
e2e_log "sluice up, every backend healthy"
# The mbuf leak check (tests/e2e/lib/sluice.sh).
e2e_mempool_start segment

# ---- HTTP through both modes, both families: the backend named, the client's address seen
# by nat backends, the local address by fullnat ones.
declare -A seen
for url in "http://$VIP4/" "http://[$VIP6]/" "http://$VIP4:8080/" "http://[$VIP6]:8080/"; do
  seen=()
  for i in $(seq 1 30); do
    out=$(e2e_exec client curl -sS --noproxy '*' --max-time 3 "$url") || e2e_die "curl $url failed (attempt $i)"
    name=$(echo "$out" | sed -n 's/^backend=\([a-z0-9]*\).*/\1/p')
    [ -n "$name" ] || e2e_die "curl $url: unexpected answer '$out'"
    seen[$name]=1
  done
  case $url in *:8080/) want=3 ;; *) want=2 ;; esac
  [ ${#seen[@]} -eq $want ] || e2e_die "$url reached ${!seen[*]}, expected $want backends"
  e2e_log "curl $url: 30/30 answered by ${!seen[*]}"
done

# ---- DNS over nat: every query answered.
for i in $(seq 1 "$DNS_QUERIES"); do echo "@$VIP4 who.example TXT +short +tries=1 +time=2"; done >"$E2E_WORK/queries"
e2e_exec client dig -f "$E2E_WORK/queries" >"$E2E_WORK/dig.out" 2>&1 || true
answered=$(grep -c '^"n[12]"$' "$E2E_WORK/dig.out" || true)
per=$(grep '^"n' "$E2E_WORK/dig.out" | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')
[ "$answered" -eq "$DNS_QUERIES" ] || { head -20 "$E2E_WORK/dig.out" >&2; e2e_die "dns: $answered of $DNS_QUERIES queries answered ($per)"; }
for h in "${NAT[@]}"; do grep -q "^\"$h\"$" "$E2E_WORK/dig.out" || e2e_die "dns: $h answered no query ($per)"; done
e2e_log "dns: $answered/$DNS_QUERIES queries answered through the nat VIP ($per)"
# nat keeps the client's address: the backends saw it as the source.
grep -q "query\[TXT\] who.example from $CLIENT4\$" "$E2E_WORK"/dns-n*.log || e2e_die "nat backends never saw the client's address"


# ---- PostgreSQL over fullnat: pgbench, 0 failed transactions, every backend used.
pgbench_via_vip() { # seconds log extra-args...
  local secs=$1 log=$2; shift 2
  e2e_exec client runuser -u postgres -- "$PG_BIN/pgbench" -h $VIP4 -p 5432 -U postgres -n -C \
    -c "$PGBENCH_CLIENTS" -j 2 -T "$secs" "$@" postgres >"$log" 2>&1
}
served() { # host -> transactions its server committed (pg_stat_database)
  e2e_exec "$1" runuser -u postgres -- "$PG_BIN/psql" -At -h "$(addr4 "$1")" -U postgres \
    -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'" postgres
}
declare -A before
for h in "${FULL[@]}"; do before[$h]=$(served "$h"); done
pgbench_via_vip "$PGBENCH_SECONDS" "$E2E_WORK/pgbench.log" || { cat "$E2E_WORK/pgbench.log" >&2; e2e_die "pgbench through the fullnat VIP failed"; }
# Within tcp_closing_timeout (10 s) of pgbench's last connections their ports are still held.
metrics >"$E2E_WORK/metrics-pgbench.txt"
e2e_check_live "$E2E_WORK/metrics-pgbench.txt" sluice_nat_ports_
done_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$E2E_WORK/pgbench.log")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$E2E_WORK/pgbench.log")
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$E2E_WORK/pgbench.log" | head -1)
[ -n "$done_tx" ] && [ "$done_tx" -gt 0 ] || { cat "$E2E_WORK/pgbench.log" >&2; e2e_die "pgbench processed no transaction"; }
[ "${failed:-0}" -eq 0 ] || { cat "$E2E_WORK/pgbench.log" >&2; e2e_die "pgbench: $failed failed transactions"; }
! grep -q "aborted" "$E2E_WORK/pgbench.log" || { cat "$E2E_WORK/pgbench.log" >&2; e2e_die "pgbench: clients aborted"; }
use=""
for h in "${FULL[@]}"; do
  n=$(( $(served "$h") - before[$h] ))
  use="$use$h=$n "
  [ "$n" -gt 0 ] || e2e_die "pgbench: backend $h served no transaction ($use)"
done
e2e_log "pgbench: $PGBENCH_CLIENTS clients x ${PGBENCH_SECONDS}s, a connection per transaction: $done_tx transactions, 0 failed, $tps tps; per backend: $use"

# fullnat hides the client: the server sees the local address.
seen_as=$(e2e_exec client runuser -u postgres -- "$PG_BIN/psql" -At -h $VIP4 -U postgres -c "SELECT host(inet_client_addr())" postgres) \
  || e2e_die "psql through the fullnat VIP failed"
[ "$seen_as" = "$LOCAL4" ] || e2e_die "a fullnat backend saw the client as $seen_as, expected the local address $LOCAL4"

# ---- a backend's PostgreSQL dies mid-run: health checks take it out, pgbench reconnects.
if [ "$NAT_KILL" = 1 ]; then
  victim=f2
  pgbench_via_vip 8 "$E2E_WORK/pgbench-kill.log" &
  bench=$!
  sleep 2
  e2e_exec "$victim" runuser -u postgres -- "$PG_BIN/pg_ctl" stop -D "$E2E_WORK/pg-$victim/data" -m immediate >/dev/null 2>&1 \
    || kill -KILL "${pg_pid[$victim]}"
  t0=$(date +%s%3N)
  e2e_wait_for 10 is_up "$(addr4 $victim)" 0 pg || e2e_die "$victim not marked down within 10s"
  e2e_log "$victim's PostgreSQL killed: marked down after $(( $(date +%s%3N) - t0 ))ms"
  wait "$bench" || true
  e2e_log "pgbench during the kill: $(grep -E '^number of (transactions actually|failed)|aborted' "$E2E_WORK/pgbench-kill.log" | tr '\n' ';')"
  for h in "${FULL[@]}"; do before[$h]=$(served "$h" 2>/dev/null || echo 0); done
  pgbench_via_vip 6 "$E2E_WORK/pgbench-after.log" || { cat "$E2E_WORK/pgbench-after.log" >&2; e2e_die "pgbench after the kill failed"; }
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$E2E_WORK/pgbench-after.log")
  [ "${failed:-0}" -eq 0 ] && ! grep -q aborted "$E2E_WORK/pgbench-after.log" \
    || { cat "$E2E_WORK/pgbench-after.log" >&2; e2e_die "pgbench after $victim went down had failures"; }
  use=""
  for h in "${FULL[@]}"; do
    [ "$h" = "$victim" ] && continue
    n=$(( $(served "$h") - before[$h] ))
    use="$use$h=$n "
    [ "$n" -gt 0 ] || e2e_die "after the kill, $h served no transaction ($use)"
  done
  e2e_log "pgbench after $victim went down: $(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$E2E_WORK/pgbench-after.log") transactions, 0 failed, served by $use"
fi

# ---- the operator's view
metrics >"$E2E_WORK/metrics.txt"
grep -E '^sluice_nat_ports_(in_use|exhausted_total)' "$E2E_WORK/metrics.txt" >&2 || e2e_die "no NAT metrics in /metrics"
exhausted=$(e2e_metric_sum sluice_nat_ports_exhausted_total <"$E2E_WORK/metrics.txt")
[ "$exhausted" -eq 0 ] || e2e_die "ports exhausted $exhausted times"
redirected=$(awk '$1 == "sluice_nat_redirected_total" { print $2 }' "$E2E_WORK/metrics.txt")
full=$(awk '$1 == "sluice_dropped_packets_total{reason=\"redirect_queue_full\"}" { print $2 }' "$E2E_WORK/metrics.txt")
e2e_log "$QUEUES worker(s): $redirected packets redirected to the worker owning their connection, ${full:-0} dropped for a full queue"
if [ "$QUEUES" -gt 1 ]; then
  [ "${redirected:-0}" -gt 0 ] || e2e_die "two workers, yet no packet was redirected: did every reply reach its owner's queue?"
fi
# A redirected packet is received once (where it arrived) and ends once (at its owner), so over
# the workers rx = tx + dropped + control frames; polled, for the packets still in flight.
accounted() {
  metrics >"$E2E_WORK/accounting.txt"
  awk '$1 ~ /^sluice_rx_packets_total\{/ { rx += $2 } $1 ~ /^sluice_tx_packets_total\{/ { tx += $2 }
    $1 ~ /^sluice_dropped_packets_total\{/ { d += $2 } $1 == "sluice_control_frames_total" { c += $2 }
    END { printf "%.0f %.0f %.0f %.0f\n", rx, tx, d, c; exit !(rx > 0 && rx == tx + d + c) }' "$E2E_WORK/accounting.txt" >"$E2E_WORK/accounting.sum"
}
e2e_wait_for 5 accounted || e2e_die "rx != tx + dropped + control frames (rx tx dropped control: $(cat "$E2E_WORK/accounting.sum"))"
e2e_log "every received packet accounted for once (rx tx dropped control: $(cat "$E2E_WORK/accounting.sum"))"
# Every mbuf back in the pool: none lost on the nat paths (two entries per connection, replies
# translated back, packets handed between workers, the killed backend's connections).
e2e_mempool_check -t 10 segment || e2e_die "mbufs leaked (above)"
e2e_stop_pid "$sluice_pid" 10 && rc=0 || rc=$?
[ "$rc" -eq 0 ] || e2e_die "sluice run exited with $rc on SIGTERM, expected 0"
e2e_pass "all checks"
