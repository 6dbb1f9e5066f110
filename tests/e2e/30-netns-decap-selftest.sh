#!/usr/bin/env bash
# Self-test of the netns data-path harness, without sluice: a reference balancer in Python
# (tests/netns/pylb.py) takes the appliance's place, and for each forwarding mode (l2-dsr,
# ipip, gue, and GUE version 1) the same client checks as 31-netns-forwarding.sh must
# pass over IPv4 and IPv6: real curl/UDP to the VIPs, every backend gets a share, flows
# stay on one backend, replies come straight from the backends (DSR). For ipip and gue
# this proves the userspace decapsulator (tests/netns/decap.py) delivers to the VIP and keeps
# the kernel from sending ICMP errors. Negative controls: IPIP without the decapsulator is
# refused, and a balancer that sprays a flow's packets over the backends fails the checks.
# It also checks that DPDK's af_packet PMD attaches to the appliance's veth with the EAL
# arguments 31 gives sluice (dpdk-testpmd, when installed).
set -euo pipefail
SLC_TEST=netns-selftest
source "$(dirname "$0")/../netns/lib.sh"
slc_require
slc_init
slc_topology_up
slc_start_servers

pylb_start() { # mode [extra pylb args]
  local mode=$1; shift
  slc_spawn lb "$SLC_WORK/pylb-$mode.log" "$SLC_PY" "$SLC_NETNS_DIR/pylb.py" --mode "$mode" "$@" --iface eth0 \
    --addr4 $SLC_LB4 --addr6 $SLC_LB6 --vip $SLC_VIP4 --vip $SLC_VIP6 \
    $(for h in "${SLC_BACKENDS[@]}"; do printf -- '--backend %s=%s --backend %s=%s ' \
      "$(slc_addr4 "$h")" "$(slc_mac "$h")" "$(slc_addr6 "$h")" "$(slc_mac "$h")"; done) \
    --stats "$SLC_WORK/pylb-$mode.json"
  PYLB_PID=$SLC_PID
  slc_wait_ready "$PYLB_PID" "$SLC_WORK/pylb-$mode.log" 10 "pylb ($mode)"
}

# The appliance's side: a DPDK process with the EAL arguments 31 gives sluice attaches to the
# appliance's veth through the af_packet PMD, takes the veth's MAC and receives the segment's
# frames (the client's ARP requests for the appliance). Checked with dpdk-testpmd when installed.
if command -v dpdk-testpmd >/dev/null 2>&1; then
  mapfile -t eal < <(slc_eal_args)
  slc_spawn lb "$SLC_WORK/testpmd.log" dpdk-testpmd "${eal[@]}" -- --forward-mode=rxonly --total-num-mbufs=4096 --stats-period 1
  tp=$SLC_PID
  slc_wait_for 20 grep -qi "^Port 0: $(slc_mac lb)" "$SLC_WORK/testpmd.log" \
    || slc_die "dpdk-testpmd did not bring up net_af_packet0 with the veth's MAC $(slc_mac lb)"
  slc_exec client curl -s --noproxy '*' --max-time 1 "http://$SLC_VIP4/" >/dev/null 2>&1 || true  # nobody answers: ARP only
  slc_wait_for 10 grep -Eq 'RX-packets: [1-9]' "$SLC_WORK/testpmd.log" || slc_die "dpdk-testpmd received nothing on net_af_packet0"
  slc_stop "$tp" 10 || slc_die "dpdk-testpmd did not stop cleanly"
  slc_log "DPDK af_packet port ok: net_af_packet0 on the appliance's veth, MAC $(slc_mac lb)"
else
  slc_log "dpdk-testpmd not installed: not checking the af_packet attachment"
fi


# Negative control: IPIP to a backend with no decapsulator is answered with ICMP
# protocol-unreachable and never reaches the server.
pylb_start ipip
if slc_exec client "$SLC_PY" - $SLC_VIP4 $SLC_UDP_PORT <<'EOF'
import socket, sys
for i in range(6):  # six source ports: the hash spreads them over the backends
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
    try:
        s.recvfrom(100); sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
EOF
then slc_die "negative control: a UDP reply arrived over IPIP with no decapsulator running"; fi
slc_stop "$PYLB_PID" || slc_die "pylb exited badly"
icmp=$(slc_json "$SLC_WORK/pylb-ipip.json" 'd["icmp_errors"]')
[ "$icmp" -gt 0 ] || slc_die "negative control: expected ICMP errors for undecapsulated IPIP, saw none"
slc_log "negative control ok: no reply without the decapsulator, $icmp ICMP errors to the balancer"

# Negative control: the checker notices a balancer that sends a flow's packets to several backends.
pylb_start l2-dsr --spray
if slc_check --vip $SLC_VIP4 --requests 3 --udp 3 --download-bytes 100000 --upload-bytes 100000 \
  --timeout 2 --ready-timeout 0 >"$SLC_WORK/spray-check.out" 2>&1; then
  cat "$SLC_WORK/spray-check.out" >&2
  slc_die "negative control: the checks passed with packets sprayed over the backends"
fi
grep -q "several backends" "$SLC_WORK/spray-check.out" || { cat "$SLC_WORK/spray-check.out" >&2; slc_die "negative control: no affinity failure reported"; }
slc_stop "$PYLB_PID" || slc_die "pylb exited badly"
slc_log "negative control ok: spraying a flow over the backends fails the checks ($(grep -c FAIL "$SLC_WORK/spray-check.out") failures)"

# gue1: GUE version 1 (the IP packet straight after UDP), which the decapsulator also accepts.
for mode in l2-dsr ipip gue gue1; do
  slc_log "mode $mode"
  slc_start_decap
  pylb_start "$mode"
  slc_check --vip $SLC_VIP4 --vip $SLC_VIP6 --ready-timeout 10 || slc_die "client checks failed in mode $mode"
  slc_stop "$PYLB_PID" || slc_die "pylb exited badly"
  slc_stop_decap
  icmp=$(slc_json "$SLC_WORK/pylb-$mode.json" 'd["icmp_errors"]')
  [ "$icmp" -eq 0 ] || slc_die "$mode: the balancer received ICMP errors: $(cat "$SLC_WORK/pylb-$mode.json")"
  for h in "${SLC_BACKENDS[@]}"; do
    f="$SLC_WORK/decap-$h.json"
    case $mode in
      l2-dsr) want='sum(d["counts"].values()) == 0' ;;
      ipip) want='d["counts"].get("ipip_4in4", 0) > 0 and d["counts"].get("ipip_6in6", 0) > 0' ;;
      gue) want='d["counts"].get("gue_v4", 0) > 0 and d["counts"].get("gue_v6", 0) > 0' ;;
      gue1) want='d["counts"].get("gue1_v4", 0) > 0 and d["counts"].get("gue1_v6", 0) > 0' ;;
    esac
    [ "$(slc_json "$f" "$want")" = True ] || slc_die "$mode: decapsulator on $h counted $(cat "$f")"
    # Only the balancer's own addresses may be outer sources.
    [ "$(slc_json "$f" "set(d['outer_sources']) <= {'$SLC_LB4', '$SLC_LB6'}")" = True ] \
      || slc_die "$mode: unexpected outer sources on $h: $(cat "$f")"
    slc_log "$mode: $h decapsulated $(slc_json "$f" 'd["counts"]')"
  done
done
slc_log "PASS"
