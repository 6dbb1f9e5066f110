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
E2E_NAME=netns-selftest
source "$(dirname "$0")/lib/netns.sh"
e2e_require
e2e_topology_up servers

pylb_start() { # mode [extra pylb args]
  local mode=$1; shift
  e2e_spawn lb "$E2E_WORK/pylb-$mode.log" "$PY" "$E2E_NETNS_DIR/pylb.py" --mode "$mode" "$@" --iface eth0 \
    --addr4 $E2E_LB4 --addr6 $E2E_LB6 --vip $E2E_VIP4 --vip $E2E_VIP6 \
    $(for h in "${E2E_BACKENDS[@]}"; do printf -- '--backend %s=%s --backend %s=%s ' \
      "$(e2e_addr4 "$h")" "$(e2e_mac "$h")" "$(e2e_addr6 "$h")" "$(e2e_mac "$h")"; done) \
    --stats "$E2E_WORK/pylb-$mode.json"
  PYLB_PID=$E2E_PID
  e2e_wait_ready "$PYLB_PID" "$E2E_WORK/pylb-$mode.log" 10 "pylb ($mode)"
}

# The appliance's side: a DPDK process with the EAL arguments 31 gives sluice attaches to the
# appliance's veth through the af_packet PMD, takes the veth's MAC and receives the segment's
# frames (the client's ARP requests for the appliance). Checked with dpdk-testpmd when installed.
if command -v dpdk-testpmd >/dev/null 2>&1; then
  mapfile -t eal < <(e2e_eal_args 512 net_af_packet0,iface=eth0)
  e2e_spawn lb "$E2E_WORK/testpmd.log" dpdk-testpmd "${eal[@]}" -- --forward-mode=rxonly --total-num-mbufs=4096 --stats-period 1
  tp=$E2E_PID
  e2e_wait_for 20 grep -qi "^Port 0: $(e2e_mac lb)" "$E2E_WORK/testpmd.log" \
    || e2e_die "dpdk-testpmd did not bring up net_af_packet0 with the veth's MAC $(e2e_mac lb)"
  e2e_exec client curl -s --noproxy '*' --max-time 1 "http://$E2E_VIP4/" >/dev/null 2>&1 || true  # nobody answers: ARP only
  e2e_wait_for 10 grep -Eq 'RX-packets: [1-9]' "$E2E_WORK/testpmd.log" || e2e_die "dpdk-testpmd received nothing on net_af_packet0"
  e2e_stop_pid "$tp" 10 || e2e_die "dpdk-testpmd did not stop cleanly"
  e2e_log "DPDK af_packet port ok: net_af_packet0 on the appliance's veth, MAC $(e2e_mac lb)"
else
  e2e_log "dpdk-testpmd not installed: not checking the af_packet attachment"
fi


# Negative control: IPIP to a backend with no decapsulator is answered with ICMP
# protocol-unreachable and never reaches the server.
pylb_start ipip
if e2e_exec client "$PY" - $E2E_VIP4 $E2E_UDP_PORT <<'EOF'
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
then e2e_die "negative control: a UDP reply arrived over IPIP with no decapsulator running"; fi
e2e_stop_pid "$PYLB_PID" || e2e_die "pylb exited badly"
icmp=$(e2e_json "$E2E_WORK/pylb-ipip.json" 'd["icmp_errors"]')
[ "$icmp" -gt 0 ] || e2e_die "negative control: expected ICMP errors for undecapsulated IPIP, saw none"
e2e_log "negative control ok: no reply without the decapsulator, $icmp ICMP errors to the balancer"

# Negative control: the checker notices a balancer that sends a flow's packets to several backends.
pylb_start l2-dsr --spray
if e2e_client_check --vip $E2E_VIP4 --requests 3 --udp 3 --download-bytes 100000 --upload-bytes 100000 \
  --timeout 2 --ready-timeout 0 >"$E2E_WORK/spray-check.out" 2>&1; then
  cat "$E2E_WORK/spray-check.out" >&2
  e2e_die "negative control: the checks passed with packets sprayed over the backends"
fi
grep -q "several backends" "$E2E_WORK/spray-check.out" || { cat "$E2E_WORK/spray-check.out" >&2; e2e_die "negative control: no affinity failure reported"; }
e2e_stop_pid "$PYLB_PID" || e2e_die "pylb exited badly"
e2e_log "negative control ok: spraying a flow over the backends fails the checks ($(grep -c FAIL "$E2E_WORK/spray-check.out") failures)"

# gue1: GUE version 1 (the IP packet straight after UDP), which the decapsulator also accepts.
for mode in l2-dsr ipip gue gue1; do
  e2e_log "mode $mode"
  e2e_start_decap
  pylb_start "$mode"
  e2e_client_check --vip $E2E_VIP4 --vip $E2E_VIP6 --ready-timeout 10 || e2e_die "client checks failed in mode $mode"
  e2e_stop_pid "$PYLB_PID" || e2e_die "pylb exited badly"
  e2e_stop_decap
  icmp=$(e2e_json "$E2E_WORK/pylb-$mode.json" 'd["icmp_errors"]')
  [ "$icmp" -eq 0 ] || e2e_die "$mode: the balancer received ICMP errors: $(cat "$E2E_WORK/pylb-$mode.json")"
  for h in "${E2E_BACKENDS[@]}"; do
    f="$E2E_WORK/decap-$h.json"
    case $mode in
      l2-dsr) want='sum(d["counts"].values()) == 0' ;;
      ipip) want='d["counts"].get("ipip_4in4", 0) > 0 and d["counts"].get("ipip_6in6", 0) > 0' ;;
      gue) want='d["counts"].get("gue_v4", 0) > 0 and d["counts"].get("gue_v6", 0) > 0' ;;
      gue1) want='d["counts"].get("gue1_v4", 0) > 0 and d["counts"].get("gue1_v6", 0) > 0' ;;
    esac
    [ "$(e2e_json "$f" "$want")" = True ] || e2e_die "$mode: decapsulator on $h counted $(cat "$f")"
    # Only the balancer's own addresses may be outer sources.
    [ "$(e2e_json "$f" "set(d['outer_sources']) <= {'$E2E_LB4', '$E2E_LB6'}")" = True ] \
      || e2e_die "$mode: unexpected outer sources on $h: $(cat "$f")"
    e2e_log "$mode: $h decapsulated $(e2e_json "$f" 'd["counts"]')"
  done
done
e2e_pass "all checks"
