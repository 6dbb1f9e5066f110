# shellcheck shell=bash
# Network-namespace topology for the data-path end-to-end tests: build it, run processes in it, tear it all down.
#
# One L2 segment: a Linux bridge in its own "switch" namespace joins
#   client   eth0 192.0.2.100/24  2001:db8::100/64  routes the VIPs via the appliance
#   lb       eth0 (no kernel address: the appliance owns it through DPDK's af_packet PMD
#                  or the userspace reference balancer) 192.0.2.10, 2001:db8::10
#   lb2..lb9 not made here: more appliances a test adds itself (slc_add_ns, slc_attach),
#            with MAC 02:5c:00:00:00:14 (lb2) ..., 192.0.2.20 (lb2) ... (tests/e2e/36)
#   b1..b3   eth0 192.0.2.11-13/24, 2001:db8::11-13/64, the VIPs on lo (DSR)
# Nothing is created in the root namespace: every veth is created straight into its
# namespaces, and the namespace names carry a per-run id, so parallel runs never collide.
# Source this file, call slc_init, then slc_topology_up; the EXIT trap removes every
# namespace and every process this run started, also on failure or interrupt.

SLC_PY=${SLC_PY:-/usr/bin/python3}          # Debian's python3 (standard library only)
export PYTHONDONTWRITEBYTECODE=1             # no __pycache__ in the source tree
SLC_NETNS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

SLC_VIP4=198.51.100.10
SLC_VIP6=2001:db8:100::10
SLC_LB4=192.0.2.10
SLC_LB6=2001:db8::10
SLC_CLIENT4=192.0.2.100
SLC_CLIENT6=2001:db8::100
SLC_BACKENDS=(b1 b2 b3)
SLC_TCP_PORT=80
SLC_UDP_PORT=5353
SLC_LB_MTU=1600         # appliance and backend links: room for a 1500-byte packet plus IPIP/GUE
SLC_CLIENT_MTU=1500

# Fixed, locally administered MACs (each run has its own bridge, so they never meet).
slc_mac() { # host -> MAC
  case $1 in
    client) echo 02:5c:00:00:00:64 ;;
    lb) echo 02:5c:00:00:00:0a ;;
    lb[2-9]) printf '02:5c:00:00:00:%02x\n' $((10 * ${1#lb})) ;;  # more appliances (tests/e2e/36)
    b[1-9]) printf '02:5c:00:00:00:%02x\n' $((10 + ${1#b})) ;;
    *) echo "slc_mac: unknown host $1" >&2; return 1 ;;
  esac
}
slc_addr4() { case $1 in client) echo $SLC_CLIENT4 ;; lb) echo $SLC_LB4 ;; lb[2-9]) echo 192.0.2.$((10 * ${1#lb})) ;; b*) echo 192.0.2.$((10 + ${1#b})) ;; esac; }
slc_addr6() { case $1 in client) echo $SLC_CLIENT6 ;; lb) echo $SLC_LB6 ;; lb[2-9]) echo 2001:db8::$((10 * ${1#lb})) ;; b*) echo 2001:db8::$((10 + ${1#b})) ;; esac; }

slc_log() { printf '[%s %s] %s\n' "$(date -u +%T)" "${SLC_TEST:-netns}" "$*" >&2; }
slc_die() { slc_log "FAIL: $*"; exit 1; }

# Exit 0 with a loud SKIP unless we can do namespaces; fail if a needed tool is missing.
slc_require() {
  if [ "$(id -u)" -ne 0 ]; then slc_log "SKIP: needs root (network namespaces)"; exit 0; fi
  local t missing=""
  for t in ip ethtool curl "$SLC_PY" "$@"; do command -v "$t" >/dev/null 2>&1 || missing="$missing $t"; done
  [ -z "$missing" ] || slc_die "missing tools:$missing (make deps installs them)"
  [ -c /dev/net/tun ] || slc_die "/dev/net/tun is missing (the decapsulator needs TUN)"
}

# Names, work directory and the cleanup trap. Call once, before creating anything.
slc_init() {
  local tries=0
  while :; do
    SLC_ID=$(printf '%04x' $(( (RANDOM << 1 ^ $$ + tries) & 0xffff )))
    ip netns list | grep -q "^slc-$SLC_ID-" || break
    tries=$((tries + 1))
    [ $tries -lt 50 ] || slc_die "no free namespace id"
  done
  SLC_WORK=$(mktemp -d "/tmp/slc-netns-$SLC_ID.XXXXXX")
  SLC_PIDS=()
  SLC_NSS=()
  trap slc_cleanup EXIT
  trap 'slc_log "interrupted"; exit 130' INT TERM HUP
}
slc_ns() { echo "slc-$SLC_ID-$1"; }
slc_exec() { local ns; ns=$(slc_ns "$1"); shift; ip netns exec "$ns" "$@"; }

# Start a command in a namespace in the background, output to a log; its pid is left in
# SLC_PID (not printed: a $(...) subshell would make it someone else's child).
# `ip netns exec` execs the command, so the pid is the command's own.
slc_spawn() { # host logfile cmd...
  local host=$1 log=$2; shift 2
  ip netns exec "$(slc_ns "$host")" "$@" >"$log" 2>&1 </dev/null &
  SLC_PID=$!
  SLC_PIDS+=("$SLC_PID")
}

# SIGTERM a process we started, wait up to $2 s (default 5), then SIGKILL; returns its exit status.
slc_stop() {
  local pid=$1 limit=${2:-5} i rc
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return $?; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    slc_log "pid $pid ignored SIGTERM for ${limit}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null
    return 137
  fi
  wait "$pid" 2>/dev/null && rc=0 || rc=$?
  return $rc
}

# slc_msum FILE PREFIX: the sum of the last field of FILE's lines that start with PREFIX (a
# metric's samples). %.0f, not %d: mawk's %d stops at 2^31-1.
slc_msum() { awk -v p="$2" 'index($0, p) == 1 { s += $NF } END { printf "%.0f\n", s }' "$1"; }

# Evaluate a Python expression over a JSON file (as `d`) and print the result.
slc_json() { # file expression
  "$SLC_PY" -c 'import json, sys; print(eval(sys.argv[2], {}, {"d": json.load(open(sys.argv[1]))}))' "$@"
}

# Poll `cmd...` every 0.1 s for up to $1 seconds.
slc_wait_for() {
  local limit=$1 i; shift
  for ((i = 0; i < limit * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# Wait up to $3 s for a process we started to print "ready" at the start of a line in its log.
slc_wait_ready() { # pid log limit what
  local pid=$1 log=$2 limit=$3 what=$4 i
  for ((i = 0; i < limit * 10; i++)); do
    grep -q '^ready' "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || slc_die "$what exited before it was ready"
    sleep 0.1
  done
  slc_die "$what not ready after ${limit}s"
}

slc_cleanup() {
  local rc=$? pid ns
  trap - EXIT INT TERM HUP
  set +e
  for pid in "${SLC_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  # Anything else still inside our namespaces was started by this run too.
  for ns in "${SLC_NSS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
  done
  local i left
  for ((i = 0; i < 30; i++)); do  # up to 3 s to exit on their own
    left=""
    for ns in "${SLC_NSS[@]}"; do left="$left$(ip netns pids "$ns" 2>/dev/null)"; done
    [ -z "$left" ] && break
    sleep 0.1
  done
  for ns in "${SLC_NSS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  for pid in "${SLC_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  for ns in "${SLC_NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ "$rc" -ne 0 ] && [ -n "${SLC_WORK:-}" ] && [ -d "$SLC_WORK" ]; then
    local f
    for f in "$SLC_WORK"/*.log "$SLC_WORK"/*.yaml; do
      [ -s "$f" ] || continue
      if [[ $f == *.yaml ]]; then
        echo "----- $(basename "$f")" >&2
        cat "$f" >&2
      else
        echo "----- $(basename "$f") (last 40 lines)" >&2
        tail -n 40 "$f" >&2
      fi
    done
  fi
  [ -n "${SLC_WORK:-}" ] && rm -rf "$SLC_WORK"
  # DPDK leaves its runtime directory behind; the prefix is this run's own (a test running
  # several instances gives each its own, slc-e2e-$SLC_ID-NAME).
  [ -n "${SLC_ID:-}" ] && rm -rf "/var/run/dpdk/slc-e2e-$SLC_ID" "/var/run/dpdk/slc-e2e-$SLC_ID"-*
  exit "$rc"
}

slc_add_ns() {
  local ns; ns=$(slc_ns "$1")
  ip netns add "$ns" || slc_die "cannot create namespace $ns"
  SLC_NSS+=("$ns")
  ip -n "$ns" link set lo up
  # A new namespace inherits the host's forwarding (a container engine turns it on): a host
  # that forwards would route, or answer with ICMP unreachable, the frames sluice owns on its
  # veth. Hosts are hosts unless a test makes one a router.
  slc_sysctl "$1" net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 net.ipv6.conf.default.forwarding=0
}

# No offloads: frames on these veths must carry complete checksums and be at most one MTU,
# because the appliance reads and rewrites them from userspace.
slc_no_offload() { # host dev
  slc_exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 \
    || slc_die "ethtool -K $2 failed in $1"
}

# Set sysctls in a namespace through its /proc/sys (no dependency on procps' sysctl).
slc_sysctl() { # host key=value...
  local host=$1 kv; shift
  for kv in "$@"; do
    slc_exec "$host" sh -c 'echo "$2" >"/proc/sys/$1"' sh "$(echo "${kv%%=*}" | tr . /)" "${kv#*=}" \
      || slc_die "cannot set $kv in $host"
  done
}

# A veth from the switch's bridge to `eth0` in host's namespace.
slc_attach() { # host mtu
  local host=$1 mtu=$2 sw; sw=$(slc_ns sw)
  ip link add name "p-$host" netns "$sw" mtu "$mtu" type veth \
    peer name eth0 netns "$(slc_ns "$host")" address "$(slc_mac "$host")" mtu "$mtu" \
    || slc_die "cannot create the veth for $host"
  ip -n "$sw" link set "p-$host" master br0
  ip -n "$sw" link set "p-$host" up
  slc_no_offload sw "p-$host"
  slc_no_offload "$host" eth0
}

slc_topology_up() {
  local h
  for h in sw client lb "${SLC_BACKENDS[@]}"; do slc_add_ns "$h"; done
  ip -n "$(slc_ns sw)" link add br0 type bridge forward_delay 0 stp_state 0 mcast_snooping 0 \
    || slc_die "cannot create the bridge"
  ip -n "$(slc_ns sw)" link set br0 up

  # Client: everything to the VIPs goes through the appliance.
  slc_attach client $SLC_CLIENT_MTU
  slc_sysctl client net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
  slc_exec client ip addr add $SLC_CLIENT4/24 dev eth0
  slc_exec client ip -6 addr add $SLC_CLIENT6/64 dev eth0 nodad
  slc_exec client ip link set eth0 up
  slc_exec client ip route add $SLC_VIP4/32 via $SLC_LB4
  slc_exec client ip -6 route add $SLC_VIP6/128 via $SLC_LB6

  # Appliance: the link only; the kernel keeps quiet on it (no address, no IPv6 autoconf).
  slc_attach lb $SLC_LB_MTU
  slc_sysctl lb net.ipv6.conf.eth0.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  slc_exec lb ip link set eth0 up

  # Backends: VIPs on lo, never answered for on the segment (classic DSR), loose rp_filter
  # because decapsulated packets arrive on a TUN device while the route to the client is eth0.
  for h in "${SLC_BACKENDS[@]}"; do
    slc_attach "$h" $SLC_LB_MTU
    slc_sysctl "$h" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
      net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.lo.rp_filter=0 \
      net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
      net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
    slc_exec "$h" ip addr add "$(slc_addr4 "$h")/24" dev eth0
    slc_exec "$h" ip -6 addr add "$(slc_addr6 "$h")/64" dev eth0 nodad
    slc_exec "$h" ip addr add $SLC_VIP4/32 dev lo
    slc_exec "$h" ip -6 addr add $SLC_VIP6/128 dev lo nodad
    slc_exec "$h" ip link set eth0 up
  done
  slc_log "topology up: namespaces $(slc_ns '*'), work dir $SLC_WORK"
}

# HTTP + UDP echo on every backend, each answering with its own name; waits until they listen.
slc_start_servers() {
  local h pids=()
  for h in "${SLC_BACKENDS[@]}"; do
    slc_spawn "$h" "$SLC_WORK/server-$h.log" "$SLC_PY" "$SLC_NETNS_DIR/backend.py" --name "$h" \
      --tcp-port $SLC_TCP_PORT --udp-port $SLC_UDP_PORT --vip $SLC_VIP4 --vip $SLC_VIP6
    pids+=("$SLC_PID")
  done
  for h in "${SLC_BACKENDS[@]}"; do
    slc_wait_ready "${pids[0]}" "$SLC_WORK/server-$h.log" 10 "server on $h"
    pids=("${pids[@]:1}")
  done
}

# The IPIP/GUE decapsulator on every backend; waits until its TUN device is up.
slc_start_decap() {
  local h
  SLC_DECAP_PIDS=()
  for h in "${SLC_BACKENDS[@]}"; do
    slc_spawn "$h" "$SLC_WORK/decap-$h.log" "$SLC_PY" "$SLC_NETNS_DIR/decap.py" --stats "$SLC_WORK/decap-$h.json"
    SLC_DECAP_PIDS+=("$SLC_PID")
  done
  local i=0
  for h in "${SLC_BACKENDS[@]}"; do
    slc_wait_ready "${SLC_DECAP_PIDS[$i]}" "$SLC_WORK/decap-$h.log" 10 "decapsulator on $h"
    i=$((i + 1))
  done
}

# Stop the decapsulators (they write their counters to decap-<host>.json on the way out).
slc_stop_decap() {
  local pid
  for pid in "${SLC_DECAP_PIDS[@]}"; do slc_stop "$pid" 5 || slc_die "decapsulator $pid exited badly"; done
  SLC_DECAP_PIDS=()
}

# The client-side checks (curl, UDP, keep-alive, large transfers, DSR source MACs).
slc_check() { # extra check.py args...
  slc_exec client "$SLC_PY" "$SLC_NETNS_DIR/check.py" --backends "${SLC_BACKENDS[*]}" \
    --lb-mac "$(slc_mac lb)" $(for h in "${SLC_BACKENDS[@]}"; do printf -- '--backend-mac %s=%s ' "$h" "$(slc_mac "$h")"; done) \
    "$@"
}

# EAL arguments for a DPDK process on the appliance's veth (af_packet PMD, no hugepages,
# no PCI, this run's own file prefix), one per line. The port takes the veth's MAC.
slc_eal_args() {
  printf '%s\n' -l 0-1 --main-lcore 0 --no-huge -m 512 --no-pci --file-prefix "slc-e2e-$SLC_ID" \
    --vdev "net_af_packet0,iface=eth0"
}

# A sluice config (schema: docs/design.md, "Configuration") for the topology: one interface on the
# segment, a TCP and a UDP service per VIP family over the three backends, forwarding $1.
slc_write_sluice_config() { # mode file families(e.g. "4 6")
  local mode=$1 file=$2 families=${3:-4 6} fam vip svc proto port h arg args=""
  while read -r arg; do args="$args${args:+, }\"$arg\""; done < <(slc_eal_args)
  {
    echo "# sluice e2e: $mode over the netns topology (generated by tests/netns/lib.sh)"
    echo "dpdk:"
    echo "  args: [$args]"
    echo "  mbufs: 8191"
    echo "interfaces:"
    echo "  - name: segment"
    echo "    device: net_af_packet0"
    echo "    queues: 1"
    echo "    mtu: $SLC_LB_MTU"
    echo "    address: $SLC_LB4/24"
    echo "    address6: $SLC_LB6/64"
    echo "flows:"
    echo "  capacity: 65536"
    echo "services:"
    for fam in $families; do
      if [ "$fam" = 4 ]; then vip=$SLC_VIP4; else vip=$SLC_VIP6; fi
      for proto in tcp udp; do
        if [ "$proto" = tcp ]; then port=$SLC_TCP_PORT; else port=$SLC_UDP_PORT; fi
        svc="$proto$fam"
        echo "  - name: $svc"
        echo "    vip: $vip"
        echo "    port: $port"
        echo "    protocol: $proto"
        echo "    hash: five-tuple"
        echo "    table_size: 1031"
        echo "    forwarding: $mode"
        echo "    backends:"
        for h in "${SLC_BACKENDS[@]}"; do
          if [ "$fam" = 4 ]; then echo "      - address: $(slc_addr4 "$h")"; else echo "      - address: $(slc_addr6 "$h")"; fi
        done
      done
    done
    echo "metrics:"
    echo "  listen: 127.0.0.1:9610"
  } >"$file"
}
