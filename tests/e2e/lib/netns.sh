# shellcheck shell=bash
# Network-namespace topology for the data-path end-to-end tests and bench/peers.sh: build it,
# run processes in it. Sources sluice.sh (logging, PASS/FAIL, the EXIT trap, which also stops
# whatever runs in these namespaces and deletes them); set E2E_NAME before sourcing this file.
#
# One L2 segment: a Linux bridge in its own "switch" namespace joins
#   client   eth0 192.0.2.100/24  2001:db8::100/64  routes the VIPs via the appliance
#   lb       eth0 (no kernel address: the appliance owns it through DPDK's af_packet PMD
#                  or the userspace reference balancer) 192.0.2.10, 2001:db8::10
#   lb2..lb9 not made here: more appliances a test adds itself (e2e_add_ns, e2e_attach),
#            with MAC 02:5c:00:00:00:14 (lb2) ..., 192.0.2.20 (lb2) ... (tests/e2e/36)
#   b1..b3   eth0 192.0.2.11-13/24, 2001:db8::11-13/64, the VIPs on lo (DSR)
# Nothing is created in the root namespace: every veth is created straight into its
# namespaces, and the namespace names carry a per-run id, so parallel runs never collide.
# Source this file (it picks the run's namespace id), then e2e_topology_up (or build your own from
# e2e_add_ns, e2e_bridge_up, e2e_bridge_port, e2e_veth_pair); sluice.sh's EXIT trap removes
# every namespace and every process this run started, also on failure or interrupt.

source "$(dirname "${BASH_SOURCE[0]}")/sluice.sh"
E2E_NETNS_DIR="$E2E_REPO/tests/netns" # the Python helpers: backend.py, check.py, decap.py, ...
# What sluice.sh's readers (e2e_sample, the mbuf leak check) scrape: the sluice in lb's
# namespace, whose metrics.listen is 127.0.0.1:9610 there.
e2e_get() { e2e_exec lb curl -sS --noproxy '*' --max-time 2 -f "http://127.0.0.1:9610$1"; }

E2E_VIP4=198.51.100.10
E2E_VIP6=2001:db8:100::10
E2E_LB4=192.0.2.10
E2E_LB6=2001:db8::10
E2E_CLIENT4=192.0.2.100
E2E_CLIENT6=2001:db8::100
E2E_BACKENDS=(b1 b2 b3)
E2E_TCP_PORT=80
E2E_UDP_PORT=5353
E2E_LB_MTU=1600         # appliance and backend links: room for a 1500-byte packet plus IPIP/GUE
E2E_CLIENT_MTU=1500

# Fixed, locally administered MACs (each run has its own bridge, so they never meet).
e2e_mac() { # host -> MAC
  case $1 in
    client) echo 02:5c:00:00:00:64 ;;
    lb) echo 02:5c:00:00:00:0a ;;
    lb[2-9]) printf '02:5c:00:00:00:%02x\n' $((10 * ${1#lb})) ;;  # more appliances (tests/e2e/36)
    b[1-9]) printf '02:5c:00:00:00:%02x\n' $((10 + ${1#b})) ;;
    *) echo "e2e_mac: unknown host $1" >&2; return 1 ;;
  esac
}
e2e_addr4() { case $1 in client) echo $E2E_CLIENT4 ;; lb) echo $E2E_LB4 ;; lb[2-9]) echo 192.0.2.$((10 * ${1#lb})) ;; b*) echo 192.0.2.$((10 + ${1#b})) ;; esac; }
e2e_addr6() { case $1 in client) echo $E2E_CLIENT6 ;; lb) echo $E2E_LB6 ;; lb[2-9]) echo 2001:db8::$((10 * ${1#lb})) ;; b*) echo 2001:db8::$((10 + ${1#b})) ;; esac; }

# Skip (e2e_skip: exit 77) unless we can do namespaces; fail if a needed tool is missing.
e2e_require() {
  [ "$(id -u)" -eq 0 ] || e2e_skip "needs root (network namespaces)"
  local t missing=""
  for t in ip ethtool curl "$PY" "$@"; do command -v "$t" >/dev/null 2>&1 || missing="$missing $t"; done
  [ -z "$missing" ] || e2e_die "missing tools:$missing (make deps installs them)"
  [ -c /dev/net/tun ] || e2e_die "/dev/net/tun is missing (the decapsulator needs TUN)"
}

# This run's namespace id: namespace names are slc-ID-HOST.
E2E_ID=""
for _ in $(seq 50); do
  E2E_ID=$(printf '%04x' $(( (RANDOM << 1 ^ $$) & 0xffff )))
  ip netns list 2>/dev/null | grep -q "^slc-$E2E_ID-" || break
  E2E_ID=""
done
[ -n "$E2E_ID" ] || e2e_die "no free namespace id"
e2e_ns() { echo "slc-$E2E_ID-$1"; }
e2e_exec() { local ns; ns=$(e2e_ns "$1"); shift; ip netns exec "$ns" "$@"; }

# Start a command in a namespace in the background (e2e_bg: output to a log, pid in E2E_PID).
# `ip netns exec` execs the command, so the pid is the command's own.
e2e_spawn() { # host logfile cmd...
  local host=$1 log=$2; shift 2
  e2e_bg "$log" ip netns exec "$(e2e_ns "$host")" "$@"
}

# Wait up to $3 s for a process we started to print "ready" at the start of a line in its log.
e2e_wait_ready() { # pid log limit what
  local pid=$1 log=$2 limit=$3 what=$4 i
  for ((i = 0; i < limit * 10; i++)); do
    grep -q '^ready' "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || e2e_die "$what exited before it was ready"
    sleep 0.1
  done
  e2e_die "$what not ready after ${limit}s"
}

e2e_add_ns() {
  local ns; ns=$(e2e_ns "$1")
  ip netns add "$ns" || e2e_die "cannot create namespace $ns"
  E2E_NSS+=("$ns")
  ip -n "$ns" link set lo up
  # A new namespace inherits the host's forwarding (a container engine turns it on): a host
  # that forwards would route, or answer with ICMP unreachable, the frames sluice owns on its
  # veth. Hosts are hosts unless a test makes one a router.
  e2e_sysctl "$1" net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 net.ipv6.conf.default.forwarding=0
}

# No offloads: frames on these veths must carry complete checksums and be at most one MTU,
# because the appliance reads and rewrites them from userspace.
e2e_no_offload() { # host dev
  e2e_exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 \
    || e2e_die "ethtool -K $2 failed in $1"
}

# Set sysctls in a namespace through its /proc/sys (no dependency on procps' sysctl).
e2e_sysctl() { # host key=value...
  local host=$1 kv; shift
  for kv in "$@"; do
    e2e_exec "$host" sh -c 'echo "$2" >"/proc/sys/$1"' sh "$(echo "${kv%%=*}" | tr . /)" "${kv#*=}" \
      || e2e_die "cannot set $kv in $host"
  done
}

# e2e_bridge_up: the segment's bridge, br0 in the "sw" namespace (made with e2e_add_ns sw).
e2e_bridge_up() {
  ip -n "$(e2e_ns sw)" link add br0 type bridge forward_delay 0 stp_state 0 mcast_snooping 0 \
    || e2e_die "cannot create the bridge"
  ip -n "$(e2e_ns sw)" link set br0 up
}

# e2e_bridge_port HOST DEV MAC [MTU]: a veth from the bridge (port p-HOST-DEV) to DEV, with
# MAC, in HOST's namespace; no offloads on either end.
e2e_bridge_port() {
  local host=$1 dev=$2 mac=$3 sw mtu=()
  sw=$(e2e_ns sw)
  [ -z "${4:-}" ] || mtu=(mtu "$4")
  ip link add name "p-$host-$dev" netns "$sw" "${mtu[@]}" type veth \
    peer name "$dev" netns "$(e2e_ns "$host")" address "$mac" "${mtu[@]}" \
    || e2e_die "cannot create the veth for $host"
  ip -n "$sw" link set "p-$host-$dev" master br0 up
  e2e_no_offload sw "p-$host-$dev"
  e2e_no_offload "$host" "$dev"
}

# e2e_veth_pair HOST1 MAC1 HOST2 MAC2: a point-to-point veth, eth0 in each namespace; no offloads.
e2e_veth_pair() {
  ip link add name eth0 netns "$(e2e_ns "$1")" address "$2" type veth \
    peer name eth0 netns "$(e2e_ns "$3")" address "$4" || e2e_die "cannot create the veth $1-$3"
  e2e_no_offload "$1" eth0
  e2e_no_offload "$3" eth0
}

# A veth from the switch's bridge to `eth0` in host's namespace.
e2e_attach() { e2e_bridge_port "$1" eth0 "$(e2e_mac "$1")" "$2"; } # host mtu

# e2e_topology_up [servers]: the topology above; with "servers", e2e_start_servers too.
e2e_topology_up() {
  local h
  for h in sw client lb "${E2E_BACKENDS[@]}"; do e2e_add_ns "$h"; done
  e2e_bridge_up

  # Client: everything to the VIPs goes through the appliance.
  e2e_attach client $E2E_CLIENT_MTU
  e2e_sysctl client net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
  e2e_exec client ip addr add $E2E_CLIENT4/24 dev eth0
  e2e_exec client ip -6 addr add $E2E_CLIENT6/64 dev eth0 nodad
  e2e_exec client ip link set eth0 up
  e2e_exec client ip route add $E2E_VIP4/32 via $E2E_LB4
  e2e_exec client ip -6 route add $E2E_VIP6/128 via $E2E_LB6

  # Appliance: the link only; the kernel keeps quiet on it (no address, no IPv6 autoconf).
  e2e_attach lb $E2E_LB_MTU
  e2e_sysctl lb net.ipv6.conf.eth0.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  e2e_exec lb ip link set eth0 up

  # Backends: VIPs on lo, never answered for on the segment (classic DSR), loose rp_filter
  # because decapsulated packets arrive on a TUN device while the route to the client is eth0.
  for h in "${E2E_BACKENDS[@]}"; do
    e2e_attach "$h" $E2E_LB_MTU
    e2e_sysctl "$h" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
      net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.lo.rp_filter=0 \
      net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
      net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
    e2e_exec "$h" ip addr add "$(e2e_addr4 "$h")/24" dev eth0
    e2e_exec "$h" ip -6 addr add "$(e2e_addr6 "$h")/64" dev eth0 nodad
    e2e_exec "$h" ip addr add $E2E_VIP4/32 dev lo
    e2e_exec "$h" ip -6 addr add $E2E_VIP6/128 dev lo nodad
    e2e_exec "$h" ip link set eth0 up
  done
  e2e_log "topology up: namespaces $(e2e_ns '*'), work dir $E2E_WORK"
  [ "${1:-}" != servers ] || e2e_start_servers
}

# HTTP + UDP echo on every backend, each answering with its own name; waits until they listen.
e2e_start_servers() {
  local h pids=()
  for h in "${E2E_BACKENDS[@]}"; do
    e2e_spawn "$h" "$E2E_WORK/server-$h.log" "$PY" "$E2E_NETNS_DIR/backend.py" --name "$h" \
      --tcp-port $E2E_TCP_PORT --udp-port $E2E_UDP_PORT --vip $E2E_VIP4 --vip $E2E_VIP6
    pids+=("$E2E_PID")
  done
  for h in "${E2E_BACKENDS[@]}"; do
    e2e_wait_ready "${pids[0]}" "$E2E_WORK/server-$h.log" 10 "server on $h"
    pids=("${pids[@]:1}")
  done
}

# The IPIP/GUE decapsulator on every backend; waits until its TUN device is up.
e2e_start_decap() {
  local h
  E2E_DECAP_PIDS=()
  for h in "${E2E_BACKENDS[@]}"; do
    e2e_spawn "$h" "$E2E_WORK/decap-$h.log" "$PY" "$E2E_NETNS_DIR/decap.py" --stats "$E2E_WORK/decap-$h.json"
    E2E_DECAP_PIDS+=("$E2E_PID")
  done
  local i=0
  for h in "${E2E_BACKENDS[@]}"; do
    e2e_wait_ready "${E2E_DECAP_PIDS[$i]}" "$E2E_WORK/decap-$h.log" 10 "decapsulator on $h"
    i=$((i + 1))
  done
}

# Stop the decapsulators (they write their counters to decap-<host>.json on the way out).
e2e_stop_decap() {
  local pid
  for pid in "${E2E_DECAP_PIDS[@]}"; do e2e_stop_pid "$pid" 5 || e2e_die "decapsulator $pid exited badly"; done
  E2E_DECAP_PIDS=()
}

# The client-side checks (curl, UDP, keep-alive, large transfers, DSR source MACs).
e2e_client_check() { # extra check.py args...
  e2e_exec client "$PY" "$E2E_NETNS_DIR/check.py" --backends "${E2E_BACKENDS[*]}" \
    --lb-mac "$(e2e_mac lb)" $(for h in "${E2E_BACKENDS[@]}"; do printf -- '--backend-mac %s=%s ' "$h" "$(e2e_mac "$h")"; done) \
    "$@"
}

# e2e_netns_config MODE FILE [FAMILIES] (schema: docs/design.md, "Configuration"): a sluice
# config for the topology: one interface on the segment (af_packet on lb's eth0), a TCP and a
# UDP service per VIP family ("4 6" by default) over the three backends, forwarding MODE.
e2e_netns_config() {
  local mode=$1 file=$2 families=${3:-4 6} fam vip svc proto port h
  {
    echo "# sluice e2e: $mode over the netns topology (generated by tests/e2e/lib/netns.sh)"
    e2e_config_head 512 8191 net_af_packet0,iface=eth0 segment "$E2E_LB4/24"
    echo "    queues: 1"
    echo "    mtu: $E2E_LB_MTU"
    echo "    address6: $E2E_LB6/64"
    echo "flows:"
    echo "  capacity: 65536"
    echo "services:"
    for fam in $families; do
      if [ "$fam" = 4 ]; then vip=$E2E_VIP4; else vip=$E2E_VIP6; fi
      for proto in tcp udp; do
        if [ "$proto" = tcp ]; then port=$E2E_TCP_PORT; else port=$E2E_UDP_PORT; fi
        svc="$proto$fam"
        echo "  - name: $svc"
        echo "    vip: $vip"
        echo "    port: $port"
        echo "    protocol: $proto"
        echo "    hash: five-tuple"
        echo "    table_size: 1031"
        echo "    forwarding: $mode"
        echo "    backends:"
        for h in "${E2E_BACKENDS[@]}"; do
          if [ "$fam" = 4 ]; then echo "      - address: $(e2e_addr4 "$h")"; else echo "      - address: $(e2e_addr6 "$h")"; fi
        done
      done
    done
    echo "metrics:"
    echo "  listen: 127.0.0.1:9610"
  } >"$file"
}
