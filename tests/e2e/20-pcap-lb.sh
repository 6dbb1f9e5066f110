#!/usr/bin/env bash
# pcap end to end: the real `sluice run` on a net_pcap vdev. Mixed traffic goes in (TCP and UDP
# flows to IPv4 ipip, gue and l2-dsr services and IPv6 ipip and gue services, non-VIP packets,
# ARP, neighbour solicitation and ICMP echo for the VIPs, an oversized packet, malformed
# frames); the tx captures are checked field by field with scapy (tests/pcap/lb_verify.py):
# encapsulation headers, checksums, inner bytes, the spread over backends, one backend (and one
# IPv6 flow label) per flow, the appliance's replies and requests, and /metrics counters;
# tshark re-checks every checksum.
#
# The input is a FIFO fed in phases (tests/pcap/lb_feed.py) so the on-link backends' ARP
# replies and neighbour advertisements arrive after sluice asked for them (a FIFO read blocks
# until a 32-frame burst is full, so that phase ends with 32 filler frames). tx_pcap is given
# twice: queue 0 is the worker's, queue 1 control's (its ARP and ND requests).
# Environment: SLUICE (default: build target/release).
set -euo pipefail
E2E_NAME=pcap-lb
source "$(dirname "$0")/lib/sluice.sh"
W=$E2E_WORK
e2e_binary

mkfifo "$W/in.fifo"
PYTHONPATH="$E2E_REPO/tests/pcap" "$PY" -c '
import sys, lb_traffic
cfg, prefix, w = sys.argv[1:4]
vdev = f"--vdev=net_pcap0,rx_pcap={w}/in.fifo,tx_pcap={w}/out0.pcap,tx_pcap={w}/out1.pcap"
args = ["--no-huge", "--no-pci", "-m", "256", "-l", "0-1", "--main-lcore", "0",
        "--file-prefix", prefix, "--log-level", "lib.eal:error", vdev]
open(cfg, "w").write(lb_traffic.config_yaml(args))
' "$W/sluice.yaml" "$E2E_PREFIX" "$W"
"$SLUICE" check -c "$W/sluice.yaml" >"$W/check.log" 2>&1 || e2e_die "sluice check rejects the config: $(cat "$W/check.log")"

# The feeder first: sluice's EAL blocks opening the FIFO until a writer has it open.
PYTHONPATH="$E2E_REPO/tests/pcap" timeout 60 "$PY" "$E2E_REPO/tests/pcap/lb_feed.py" \
  --fifo "$W/in.fifo" --ctl-capture "$W/out1.pcap" --log "$W/sluice.log" \
  --record "$W/in.pcap" --manifest "$W/manifest.json" --timeout 40 >"$W/feed.log" 2>&1 &
feeder=$!
E2E_PIDS+=("$feeder")
e2e_start "$W/sluice.yaml" "$W/sluice.log"
e2e_wait_metrics "$W/sluice.log" 30 || e2e_die "sluice did not start (no metrics address)"
e2e_log "sluice pid $SLUICE_PID, metrics at $METRICS"

feed_rc=0
wait "$feeder" || feed_rc=$?
cat "$W/feed.log"
[ "$feed_rc" -eq 0 ] || e2e_die "the feeder failed (exit $feed_rc)"
fed=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["intents"]))' "$W/manifest.json")

# All input consumed: rx equals what was fed, and the drop counters stop moving.
rx=0 last="" stable=0 deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ]; do
  rx=$(e2e_sample 'sluice_rx_packets_total{port="uplink",queue="0"}' || true)
  snap=$(e2e_get /metrics | grep -E '^sluice_(tx_packets|dropped_packets|service_packets)_total' || true)
  if [ "${rx:-0}" = "$fed" ] && [ "$snap" = "$last" ]; then
    stable=$((stable + 1))
    [ "$stable" -ge 3 ] && break
  else
    stable=0
  fi
  last=$snap
  sleep 0.2
done
[ "${rx:-0}" = "$fed" ] || e2e_die "sluice received ${rx:-nothing} of $fed frames"
e2e_pass "sluice received all $fed frames"
e2e_get /metrics >"$W/metrics.txt" || e2e_die "cannot scrape /metrics"

e2e_stop 20
grep -q '^sluice: stopped cleanly$' "$W/sluice.log" || e2e_fail "sluice did not log a clean stop"
[ "$SLUICE_RC" -eq 0 ] || e2e_die "sluice exited with $SLUICE_RC after SIGTERM (want 0)"
e2e_pass "SIGTERM: sluice stopped cleanly, exit 0"

PYTHONPATH="$E2E_REPO/tests/pcap" timeout 120 "$PY" "$E2E_REPO/tests/pcap/lb_verify.py" \
  --input "$W/in.pcap" --manifest "$W/manifest.json" --output "$W/out0.pcap" \
  --ctl-output "$W/out1.pcap" --metrics "$W/metrics.txt" || e2e_fail "the captures or counters are wrong"

# A second opinion on every checksum in the capture (outer and inner), from Wireshark's
# dissectors. TCP inside an ICMP error is excluded: the quote is cut short on purpose.
if command -v tshark >/dev/null; then
  ts() { tshark -n -r "$W/out0.pcap" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -o tcp.check_checksum:TRUE "$@" 2>/dev/null | wc -l; }
  total=$(ts) arp=$(ts -Y arp) good=$(ts -Y 'ip.checksum.status == 1 || (ipv6 && !ip)')
  bad=$(ts -Y 'ip.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0 || icmpv6.checksum.status == 0 || (tcp.checksum.status == 0 && !icmp)')
  if [ "$total" -gt 0 ] && [ "$bad" -eq 0 ] && [ $((good + arp)) -eq "$total" ]; then
    e2e_pass "tshark: $good IP frames with good checksums, none bad, $arp ARP"
  else
    e2e_fail "tshark: $total frames, $good with a good IP checksum, $arp ARP, $bad with a bad checksum"
  fi
else
  e2e_skip_part "tshark not installed (Debian package tshark): its checksum cross-check not run"
fi
[ "$E2E_FAILED" -eq 0 ] || exit 1
e2e_pass "pcap load balancing end to end"
