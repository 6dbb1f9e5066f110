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
E2E_NAME=netns-forwarding
source "$(dirname "$0")/lib/netns.sh"
e2e_defaults "MODES=l2-dsr ipip gue" "FAMILIES=4 6" READY_SECONDS=30

e2e_require
e2e_binary

e2e_topology_up servers

vips=()
for fam in $FAMILIES; do
  case $fam in
    4) vips+=(--vip "$E2E_VIP4") ;;
    6) vips+=(--vip "$E2E_VIP6") ;;
    *) e2e_die "FAMILIES: expected 4 and/or 6, got $fam" ;;
  esac
done
first_host=${vips[1]}
[[ $first_host != *:* ]] || first_host="[$first_host]"

for mode in $MODES; do
  e2e_log "mode $mode"
  cfg="$E2E_WORK/sluice-$mode.yaml"
  log="$E2E_WORK/sluice-$mode.log"
  e2e_netns_config "$mode" "$cfg" "$FAMILIES"
  "$SLUICE" check -c "$cfg" >"$E2E_WORK/check-$mode.log" 2>&1 || { cat "$cfg" "$E2E_WORK/check-$mode.log" >&2; e2e_die "sluice check rejects the generated config"; }
  [ "$mode" = l2-dsr ] || e2e_start_decap

  e2e_spawn lb "$log" "$SLUICE" run -c "$cfg"
  sluice_pid=$E2E_PID
  # Up = the client gets an answer through it (its ARP reply, the forwarding, the backends).
  up=0 started=$SECONDS
  while [ $((SECONDS - started)) -lt "$READY_SECONDS" ]; do
    kill -0 "$sluice_pid" 2>/dev/null || { wait "$sluice_pid" && rc=0 || rc=$?; e2e_die "sluice run exited with $rc before forwarding"; }
    if e2e_exec client curl -sS -g --noproxy '*' --max-time 0.5 "http://$first_host/" >/dev/null 2>&1; then up=1; break; fi
    sleep 0.3
  done
  [ "$up" = 1 ] || e2e_die "$mode: no answer through sluice within ${READY_SECONDS}s"
  e2e_log "$mode: sluice forwards after ~$((SECONDS - started))s"
  e2e_mempool_start segment

  e2e_client_check "${vips[@]}" --ready-timeout 5 && ok=1 || ok=0
  # sluice's own view, for the log on failure: packets per backend and every drop reason.
  e2e_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics 2>&1 \
    | grep -E '^sluice_(rx_packets|tx_packets|dropped_packets|backend_packets)_total|curl' >"$E2E_WORK/metrics-$mode.log" || true
  [ "$ok" = 1 ] || e2e_die "client checks failed in mode $mode"
  e2e_mempool_check -t 10 segment || e2e_die "$mode: mbufs leaked (above)"

  e2e_stop_pid "$sluice_pid" 10 && rc=0 || rc=$?
  [ "$rc" -eq 0 ] || e2e_die "$mode: sluice run exited with $rc on SIGTERM, expected 0"
  if [ "$mode" != l2-dsr ]; then
    e2e_stop_decap
    for h in "${E2E_BACKENDS[@]}"; do
      f="$E2E_WORK/decap-$h.json"
      for fam in $FAMILIES; do
        case $mode/$fam in
          ipip/4) want='d["counts"].get("ipip_4in4", 0) > 0' ;;
          ipip/6) want='d["counts"].get("ipip_6in6", 0) > 0' ;;
          gue/4) want='d["counts"].get("gue_v4", 0) + d["counts"].get("gue1_v4", 0) > 0' ;;
          gue/6) want='d["counts"].get("gue_v6", 0) + d["counts"].get("gue1_v6", 0) > 0' ;;
        esac
        [ "$(e2e_json "$f" "$want")" = True ] || e2e_die "$mode: IPv$fam decapsulation on $h: $(cat "$f")"
      done
      e2e_log "$mode: $h decapsulated $(e2e_json "$f" 'd["counts"]') from $(e2e_json "$f" 'd["outer_sources"]')"
    done
  fi
done
e2e_pass "all checks"
