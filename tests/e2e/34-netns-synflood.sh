#!/usr/bin/env bash
# A SYN flood through sluice (issue 22, item 1), in network namespaces (tests/e2e/lib/netns.sh),
# l2-dsr over af_packet. The flow table is small (CAPACITY entries, one worker) and so is the
# new-flow cap (MAX_NEW per second); the SYN timeout is the default 5 s, so the admitted SYNs
# alone (MAX_NEW x 5 s) overfill the table.
#   before: STREAMS long-lived connections to the VIP's stream service (port 8080, backends b1
#           and b2) each read an endless paced body (backend.py GET /stream/1024/50: 20 kB/s);
#   flood:  synflood.py sends FLOOD_RATE SYNs/s for FLOOD_SECONDS from spoofed 203.0.113.0/24
#           sources (a new tuple each) to VIP:80 as prebuilt raw frames on an AF_PACKET socket;
#           at least MIN_FACTOR x CAPACITY per second must reach sluice's pipeline. The backends
#           route the SYN-ACKs to a next hop that never answers, so their SYN queues fill and
#           they answer with SYN cookies, as on the Internet;
#           RELOAD_AT seconds in, a reload adds b3 to the stream service. A stream whose entry
#           survived stays on its backend; one whose entry had been evicted (now or later) is
#           re-hashed by the new Maglev table and about a third land on b3, whose kernel resets
#           them: this is how a lost established entry becomes visible to a client;
#           a new connection to VIP:80 every 0.2 s throughout, each with PROBE_TIMEOUT s.
#   checks: every stream got bytes with no gap over MAX_GAP s and none was reset or closed;
#           at least MIN_PROBE_FRACTION of the new connections started during the flood
#           completed; sluice's counters show the flood (flows created + stateless ~ the SYNs it
#           received, evictions for capacity, stateless forwards, none of an established
#           flow) and the stream service still has its STREAMS entries, none on b3.
# It fails when established entries are evicted for embryonic ones: shown with SYN_TIMEOUT=1h
# (embryonic entries then outlive established ones, and eviction goes by expiry) and with a
# flow.rs that evicts the entry furthest from expiry (bench/RESULTS.md, "SYN flood").
# Environment: SLUICE (default target/release/sluice), CAPACITY (1024), MAX_NEW (500),
# SYN_TIMEOUT (5s), FLOOD_RATE (30000; 0 = flat out), FLOOD_SECONDS (10), MIN_FACTOR (10),
# STREAMS (20).
set -euo pipefail
E2E_NAME=netns-synflood
source "$(dirname "$0")/lib/netns.sh"
# FLOOD_RATE: SYNs per second offered (0: as fast as Python can send)
e2e_defaults CAPACITY=1024 MAX_NEW=500 SYN_TIMEOUT=5s FLOOD_SECONDS=10 FLOOD_RATE=30000 \
  MIN_FACTOR=10 STREAMS=20
STREAM_PORT=8080
PRE_SECONDS=3          # streams run this long before the flood
POST_SECONDS=4         # and this long after it
RELOAD_AT=4            # seconds into the flood
MAX_GAP=2              # a stream may go this long without a byte (it gets one every 50 ms)
PROBE_TIMEOUT=3        # a new connection's budget: one lost SYN (1 s retransmission) fits
MIN_PROBE_FRACTION=0.9

e2e_require
e2e_binary
e2e_topology_up servers
# The backends answer the spoofed SYNs towards a next hop that never answers ARP (192.0.2.254):
# each SYN-ACK is made and dies in the neighbour queue, so the backends' SYN queues fill and
# their SYN cookies work as on the Internet (with no route, or a blackhole, the kernel drops
# each SYN before it queues anything: ListenDrops).
for h in "${E2E_BACKENDS[@]}"; do e2e_exec "$h" ip route add 203.0.113.0/24 via 192.0.2.254; done
# The stream servers: a second backend.py on every backend (b3's takes connections only after
# the reload; its kernel resets anything else).
for h in "${E2E_BACKENDS[@]}"; do
  e2e_spawn "$h" "$E2E_WORK/stream-$h.log" "$PY" "$E2E_NETNS_DIR/backend.py" --name "$h" --tcp-port $STREAM_PORT
  e2e_wait_ready "$E2E_PID" "$E2E_WORK/stream-$h.log" 10 "stream server on $h"
done

# Config: e2e_netns_config's IPv4 services, a small flow table and new-flow cap, and the stream service
# over b1 and b2; the reload's version adds b3 to it.
cfg="$E2E_WORK/sluice.yaml"
e2e_netns_config l2-dsr "$cfg" 4
"$PY" - "$cfg" "$CAPACITY" "$MAX_NEW" "$SYN_TIMEOUT" "$STREAM_PORT" "$E2E_VIP4" "$(e2e_addr4 b1)" "$(e2e_addr4 b2)" "$(e2e_addr4 b3)" <<'EOF'
import sys
path, capacity, max_new, syn_timeout, port, vip, b1, b2, b3 = sys.argv[1:]
text = open(path).read()
head, rest = text.split("flows:\n", 1)
services = rest.split("services:\n", 1)[1].split("metrics:\n")[0]
flows = (f"flows:\n  capacity: {capacity}\n  max_new_flows_per_second: {max_new}\n"
         f"  tcp_syn_timeout: {syn_timeout}\n")
def stream(backends):
    return (f"  - name: stream4\n    vip: {vip}\n    port: {port}\n    protocol: tcp\n"
            f"    hash: five-tuple\n    table_size: 1031\n    forwarding: l2-dsr\n    backends:\n"
            + "".join(f"      - address: {b}\n" for b in backends))
metrics = "metrics:\n  listen: 127.0.0.1:9610\n"
open(path, "w").write(head + flows + "services:\n" + services + stream([b1, b2]) + metrics)
open(path + ".reload", "w").write(head + flows + "services:\n" + services + stream([b1, b2, b3]) + metrics)
EOF
for f in "$cfg" "$cfg.reload"; do
  "$SLUICE" check -c "$f" >"$E2E_WORK/check.log" 2>&1 || { cat "$f" "$E2E_WORK/check.log" >&2; e2e_die "sluice check rejects $f"; }
done

e2e_spawn lb "$E2E_WORK/sluice.log" "$SLUICE" run -c "$cfg"
sluice_pid=$E2E_PID
started=$SECONDS
e2e_wait_for 30 e2e_exec client curl -sS --noproxy '*' --max-time 0.5 "http://$E2E_VIP4/" \
  || e2e_die "no answer through sluice within 30s"
e2e_log "sluice forwards after ~$((SECONDS - started))s (capacity $CAPACITY, max_new_flows_per_second $MAX_NEW)"

scrape() { e2e_exec lb curl -sS --noproxy '*' --max-time 2 http://127.0.0.1:9610/metrics; }
# The mbuf leak check (tests/e2e/lib/sluice.sh).
e2e_mempool_start segment
# The sum of the samples of a file's lines starting with $2 (a name plus, optionally, labels).

# The flooder builds its frames first (a few seconds of Python), then waits for the go file.
e2e_spawn client "$E2E_WORK/flood.log" "$PY" "$E2E_NETNS_DIR/synflood.py" --dst-mac "$(e2e_mac lb)" \
  --src-mac "$(e2e_mac client)" --vip "$E2E_VIP4" --port $E2E_TCP_PORT --source-net 203.0.113.0/24 \
  --rate "$FLOOD_RATE" --seconds "$FLOOD_SECONDS" --go-file "$E2E_WORK/flood.go"
flood_pid=$E2E_PID
e2e_wait_ready "$flood_pid" "$E2E_WORK/flood.log" 40 "the flooder"

# Streams and probes for the whole run, the flood inside it.
client_seconds=$((PRE_SECONDS + FLOOD_SECONDS + POST_SECONDS))
e2e_spawn client "$E2E_WORK/client.log" "$PY" "$E2E_NETNS_DIR/synflood_client.py" run \
  --vip "$E2E_VIP4" --stream-port $STREAM_PORT --probe-port $E2E_TCP_PORT --streams "$STREAMS" \
  --seconds "$client_seconds" --probe-timeout $PROBE_TIMEOUT --out "$E2E_WORK/client.json"
client_pid=$E2E_PID
e2e_wait_ready "$client_pid" "$E2E_WORK/client.log" 10 "the stream client"
scrape >"$E2E_WORK/metrics-before.txt" || e2e_die "cannot scrape /metrics"
[ "$(e2e_metric_sum sluice_backend_flows 'service="stream4"' <"$E2E_WORK/metrics-before.txt")" -ge "$STREAMS" ] \
  || e2e_die "the $STREAMS streams have no flow entries: $(grep '^sluice_backend_flows' "$E2E_WORK/metrics-before.txt")"
sleep "$PRE_SECONDS"
touch "$E2E_WORK/flood.go"
# Table fill while the flood runs, once a second, for the report.
fill=()
for ((i = 1; i <= FLOOD_SECONDS; i++)); do
  sleep 1
  n=$(scrape 2>/dev/null | awk '/^sluice_flows\{/ { s += $NF } END { printf "%.0f", s }') || n="?"
  fill+=("$n")
  if [ "$i" = "$RELOAD_AT" ]; then
    cp "$cfg.reload" "$cfg"
    kill -HUP "$sluice_pid"
    e2e_wait_for 10 grep -q 'sluice: reloaded' "$E2E_WORK/sluice.log" || e2e_die "the reload did not apply within 10s"
    e2e_log "reloaded during the flood: b3 joins the stream service"
  fi
done
e2e_log "flow entries, once a second during the flood: ${fill[*]} (capacity $CAPACITY)"
# The flooder stops at its deadline and prints its result.
e2e_wait_for 20 sh -c "! kill -0 $flood_pid" || e2e_log "the flooder outlived its deadline by 20s"
e2e_stop_pid "$flood_pid" 5 || e2e_die "the flooder failed: $(cat "$E2E_WORK/flood.log")"
grep '^{' "$E2E_WORK/flood.log" >"$E2E_WORK/flood.json" || e2e_die "no result from the flooder"
# Wait for the client to finish on its own (it stops at its deadline).
for ((i = 0; i < (POST_SECONDS + PRE_SECONDS + PROBE_TIMEOUT + 20) * 10; i++)); do
  grep -q '^done' "$E2E_WORK/client.log" && break
  kill -0 "$client_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q '^done' "$E2E_WORK/client.log" || e2e_die "the stream client did not finish"
e2e_stop_pid "$client_pid" 5 || true
scrape >"$E2E_WORK/metrics-after.txt" || e2e_die "cannot scrape /metrics after the flood"

# The client's view.
ok=1
e2e_exec client "$PY" "$E2E_NETNS_DIR/synflood_client.py" analyse --client "$E2E_WORK/client.json" \
  --flood "$E2E_WORK/flood.json" --max-gap $MAX_GAP --min-probe-fraction $MIN_PROBE_FRACTION \
  --probe-timeout $PROBE_TIMEOUT >"$E2E_WORK/analysis.txt" 2>&1 || ok=0
while IFS= read -r line; do e2e_log "$line"; done <"$E2E_WORK/analysis.txt"

# sluice's view: deltas over the run.
delta() { echo $(($(e2e_metric_sum "$@" <"$E2E_WORK/metrics-after.txt") - $(e2e_metric_sum "$@" <"$E2E_WORK/metrics-before.txt"))); }
sent=$(e2e_json "$E2E_WORK/flood.json" 'd["sent"]')
rate=$(e2e_json "$E2E_WORK/flood.json" 'd["rate"]')
rx=$(delta 'sluice_rx_packets_total')
created=$(delta 'sluice_flows_created_total')
stateless=$(delta 'sluice_flows_stateless_total')
ev_cap=$(delta sluice_flows_evicted_total 'reason="capacity"')
ev_to=$(delta sluice_flows_evicted_total 'reason="timeout"')
ev_est=$(delta sluice_flows_evicted_established_total)
tcp80=$(delta sluice_service_packets_total 'service="tcp4"')
busy=$(awk 'FNR == 1 { f++ } /^sluice_worker_busy_seconds_total/ { s[f] += $NF } END { printf "%.2f", s[2] - s[1] }' \
  "$E2E_WORK/metrics-before.txt" "$E2E_WORK/metrics-after.txt")
bursts=$(delta 'sluice_worker_bursts_total')
e2e_log "worker: busy ${busy}s of the run, $bursts bursts"
drops=$(awk '/^sluice_dropped_packets_total/ && $NF != 0 { printf "%s ", $0 }' "$E2E_WORK/metrics-after.txt")
e2e_log "sluice: rx $rx packets (flooder sent $sent), tcp4 forwarded $tcp80; flows created $created, stateless $stateless, evicted capacity $ev_cap (established $ev_est), timeout $ev_to"
e2e_log "sluice drops: ${drops:-none}"
# The backends' kernels met the flood too (port 80): their SYN-cookie and listen-queue counters.
for h in "${E2E_BACKENDS[@]}"; do
  e2e_log "$h kernel: $(e2e_exec "$h" env NSTAT_HISTORY="$E2E_WORK/nstat-$h" nstat -asz TcpExtSyncookiesSent TcpExtSyncookiesRecv TcpExtTCPReqQFullDrop TcpExtListenDrops 2>/dev/null \
    | awk '/^TcpExt/ { printf "%s=%s ", substr($1, 7), $2 }')"
done
grep -E '^sluice_backend_flows\{service="stream4"' "$E2E_WORK/metrics-after.txt" | while IFS= read -r l; do e2e_log "after: $l"; done

need=$((MIN_FACTOR * CAPACITY))
secs=$(e2e_json "$E2E_WORK/flood.json" 'd["seconds"]')
arrived=$("$PY" -c "print(round($tcp80 / $secs))")
e2e_log "flood: offered $rate SYN/s, $arrived/s reached sluice's pipeline ($MIN_FACTOR x capacity = $need/s)"
[ "$arrived" -ge "$need" ] || { ok=0; e2e_fail "the flood reached sluice at $arrived/s, below $MIN_FACTOR x capacity = $need/s"; }
# The SYNs sluice saw (tcp4's packets, less the probes' few) became entries or stateless forwards.
[ $((created + stateless)) -ge $((tcp80 * 9 / 10)) ] \
  || { ok=0; e2e_fail "created + stateless = $((created + stateless)) for $tcp80 packets to tcp4"; }
[ "$tcp80" -ge $((sent / 2)) ] || { ok=0; e2e_fail "sluice forwarded $tcp80 of the $sent SYNs sent"; }
[ "$ev_cap" -gt 0 ] || { ok=0; e2e_fail "the flood never filled the table (no eviction for capacity)"; }
[ "$stateless" -gt 0 ] || { ok=0; e2e_fail "the new-flow cap never refused an entry (stateless 0)"; }
# Every capacity victim was half-open (or closing): no established flow made room for a SYN.
[ "$ev_est" -eq 0 ] || { ok=0; e2e_fail "$ev_est established flows were evicted for capacity during the flood"; }
kept=$(e2e_metric_sum sluice_backend_flows 'service="stream4"' <"$E2E_WORK/metrics-after.txt")
on_b3=$(e2e_metric_sum sluice_backend_flows "service=\"stream4\",backend=\"$(e2e_addr4 b3)\"" <"$E2E_WORK/metrics-after.txt")
[ "$kept" -ge "$STREAMS" ] || { ok=0; e2e_fail "only $kept stream-service entries after the flood (want $STREAMS)"; }
[ "$on_b3" -eq 0 ] || { ok=0; e2e_fail "$on_b3 stream entries were re-created on b3 after the reload: established entries were lost"; }

# Every mbuf of the flood (entries, stateless forwards, evictions, the reload) back in the pool.
e2e_mempool_check -t 10 segment || ok=0
e2e_stop_pid "$sluice_pid" 10 && rc=0 || rc=$?
[ "$rc" -eq 0 ] || e2e_die "sluice run exited with $rc on SIGTERM, expected 0"
[ "$ok" = 1 ] || e2e_die "SYN flood checks failed (above)"
e2e_pass "all checks"
