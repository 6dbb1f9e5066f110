#!/usr/bin/env bash
# sluice forwarding real traffic, end to end, in network namespaces.
# The appliance runs `sluice run` in its own namespace on a veth through DPDK's af_packet PMD;
# a client namespace talks to the VIPs (IPv4 and IPv6) with curl and UDP; three backend
# namespaces run HTTP and UDP echo servers on the VIPs on lo and answer the client directly
# (DSR). For each forwarding mode (l2-dsr, ipip, gue): every request succeeds, every backend
# gets a share, a connection's packets stay on one backend (keep-alive, one UDP flow, a 4 MiB
# download and a 1 MiB upload arrive intact), replies never come back through the appliance,
# and sluice stops cleanly (exit 0) on SIGTERM. For ipip and gue the backends decapsulate in
# userspace (tests/netns/decap.py): this kernel has no ipip or fou module.
# The harness itself is proven without sluice by 30-netns-decap-selftest.sh.
#
# Environment: SLUICE (default target/release/sluice), MODES (default "l2-dsr ipip gue"),
# FAMILIES (default "4 6"), READY_SECONDS (default 30).
set -euo pipefail
SLC_TEST=netns-forwarding
REPO=$(cd "$(dirname "$0")/../.." && pwd)
source "$REPO/tests/netns/lib.sh"
SLUICE=${SLUICE:-$REPO/target/release/sluice}
MODES=${MODES:-l2-dsr ipip gue}
FAMILIES=${FAMILIES:-4 6}
READY_SECONDS=${READY_SECONDS:-30}

slc_require
[ -x "$SLUICE" ] || slc_die "no sluice binary at $SLUICE (make release builds it)"
SLUICE=$(realpath "$SLUICE")

slc_init
slc_topology_up
slc_start_servers

vips=()
for fam in $FAMILIES; do
  case $fam in
    4) vips+=(--vip "$SLC_VIP4") ;;
    6) vips+=(--vip "$SLC_VIP6") ;;
    *) slc_die "FAMILIES: expected 4 and/or 6, got $fam" ;;
  esac
done
first_host=${vips[1]}
[[ $first_host != *:* ]] || first_host="[$first_host]"

for mode in $MODES; do
  slc_log "mode $mode"
  cfg="$SLC_WORK/sluice-$mode.yaml"
  log="$SLC_WORK/sluice-$mode.log"
  slc_write_sluice_config "$mode" "$cfg" "$FAMILIES"
  "$SLUICE" check -c "$cfg" >"$SLC_WORK/check-$mode.log" 2>&1 || { cat "$cfg" "$SLC_WORK/check-$mode.log" >&2; slc_die "sluice check rejects the generated config"; }
  [ "$mode" = l2-dsr ] || slc_start_decap

  slc_spawn lb "$log" "$SLUICE" run -c "$cfg"
  sluice_pid=$SLC_PID
  # Up = the client gets an answer through it (its ARP reply, the forwarding, the backends).
  up=0 started=$SECONDS
  while [ $((SECONDS - started)) -lt "$READY_SECONDS" ]; do
    kill -0 "$sluice_pid" 2>/dev/null || { wait "$sluice_pid" && rc=0 || rc=$?; slc_die "sluice run exited with $rc before forwarding"; }
    if slc_exec client curl -sS -g --noproxy '*' --max-time 0.5 "http://$first_host/" >/dev/null 2>&1; then up=1; break; fi
    sleep 0.3
  done
  [ "$up" = 1 ] || slc_die "$mode: no answer through sluice within ${READY_SECONDS}s"
  slc_log "$mode: sluice forwards after ~$((SECONDS - started))s"

  slc_check "${vips[@]}" --ready-timeout 5 && ok=1 || ok=0
  # sluice's own view, for the log on failure: packets per backend and every drop reason.
  slc_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics 2>&1 \
    | grep -E '^sluice_(rx_packets|tx_packets|dropped_packets|backend_packets)_total|curl' >"$SLC_WORK/metrics-$mode.log" || true
  [ "$ok" = 1 ] || slc_die "client checks failed in mode $mode"

  slc_stop "$sluice_pid" 10 && rc=0 || rc=$?
  [ "$rc" -eq 0 ] || slc_die "$mode: sluice run exited with $rc on SIGTERM, expected 0"
  if [ "$mode" != l2-dsr ]; then
    slc_stop_decap
    for h in "${SLC_BACKENDS[@]}"; do
      f="$SLC_WORK/decap-$h.json"
      for fam in $FAMILIES; do
        case $mode/$fam in
          ipip/4) want='d["counts"].get("ipip_4in4", 0) > 0' ;;
          ipip/6) want='d["counts"].get("ipip_6in6", 0) > 0' ;;
          gue/4) want='d["counts"].get("gue_v4", 0) + d["counts"].get("gue1_v4", 0) > 0' ;;
          gue/6) want='d["counts"].get("gue_v6", 0) + d["counts"].get("gue1_v6", 0) > 0' ;;
        esac
        [ "$(slc_json "$f" "$want")" = True ] || slc_die "$mode: IPv$fam decapsulation on $h: $(cat "$f")"
      done
      slc_log "$mode: $h decapsulated $(slc_json "$f" 'd["counts"]') from $(slc_json "$f" 'd["outer_sources"]')"
    done
  fi
done
slc_log "PASS"
