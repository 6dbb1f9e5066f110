#!/usr/bin/env bash
# The lifecycle endpoints (POST /-/reload) answer only the clients metrics.lifecycle names, while
# /metrics stays scrapeable by anyone: sluice listens on a veth address; a client in another
# network namespace is refused with 403 and a one-line reason under the default `local`,
# served under `any`; a client on the host itself is served under `local`; `off` refuses
# everyone over HTTP while SIGHUP still reloads, and so do `sluice reload` and `sluice drain` as
# root, through the control socket; as another user they are refused, and root's CLI sends
# nothing to a socket another user took first.
# Environment: SLUICE (default: build target/release).
set -euo pipefail
E2E_NAME=lifecycle
source "$(dirname "$0")/lib/sluice.sh"
W=$E2E_WORK
e2e_binary
NS="sluice-lc-$$"
VH="sllc$$h"
VC="sllc$$c"
cleanup_net() {
  local rc=$?
  set +e # under errexit the `(exit "$rc")` below would end the trap before e2e_cleanup on a failure
  ip netns del "$NS" 2>/dev/null || true
  ip link del "$VH" 2>/dev/null || true
  (exit "$rc")
  e2e_cleanup
}
trap cleanup_net EXIT

ip netns add "$NS"
ip link add "$VH" type veth peer name "$VC"
ip link set "$VC" netns "$NS"
ip addr add 198.51.100.1/24 dev "$VH"
ip link set "$VH" up
ip -n "$NS" addr add 198.51.100.2/24 dev "$VC"
ip -n "$NS" link set "$VC" up
ip -n "$NS" link set lo up

config() { e2e_pcap_config "$W/sluice.yaml" listen=198.51.100.1:0 lifecycle="$1"; } # config LIFECYCLE
# status [NETNS] METHOD PATH: the HTTP status code; the body goes to $W/body.
status() {
  local run=()
  if [ "$1" = in-ns ]; then run=(ip netns exec "$NS"); shift; fi
  "${run[@]}" curl -sS --noproxy '*' --max-time 15 -o "$W/body" -w '%{http_code}' -X "$1" "$METRICS$2" || echo "000"
}
expect() { # expect WHAT GOT WANT
  if [ "$2" = "$3" ]; then e2e_pass "$1: $3"; else e2e_fail "$1: got '$2', want '$3' ($(head -c 300 "$W/body" 2>/dev/null))"; fi
}
run_with() { # run_with LIFECYCLE
  config "$1"
  "$SLUICE" check -c "$W/sluice.yaml" >"$W/check.log" 2>&1 || e2e_die "sluice check refused lifecycle: $1: $(cat "$W/check.log")"
  # Emptied first: `off` runs twice, and the background start truncates the log only when it
  # gets going, so the wait below could read the first run's metrics line (a dead port) and the
  # checks race ahead of the second sluice.
  : >"$W/run-$1.log"
  e2e_start "$W/sluice.yaml" "$W/run-$1.log"
  e2e_wait_metrics "$W/run-$1.log" 30 || e2e_die "sluice did not start with lifecycle: $1"
}

run_with local
expect "local: a client in another namespace scrapes /metrics" "$(status in-ns GET /metrics)" 200
expect "local: the same client's POST /-/reload" "$(status in-ns POST /-/reload)" 403
grep -q "metrics.lifecycle" "$W/body" && e2e_pass "the 403 says why: $(head -n1 "$W/body")" \
  || e2e_fail "the 403 does not name metrics.lifecycle: $(cat "$W/body")"
expect "local: POST /-/reload from this host, to the routable address" "$(status POST /-/reload)" 200
e2e_stop 15
[ "$SLUICE_RC" = 0 ] || e2e_fail "sluice (local) exited $SLUICE_RC"

run_with any
expect "any: POST /-/reload from another namespace" "$(status in-ns POST /-/reload)" 200
e2e_stop 15

run_with off
expect "off: POST /-/reload from this host" "$(status POST /-/reload)" 403
expect "off: /metrics still served" "$(status in-ns GET /metrics)" 200
# metric NAME_AND_VALUE: whether /metrics has exactly that line (anchored both ends: "... 1"
# must not match 10-19; read whole first: grep -q would cut curl off mid-write, which pipefail
# counts as a failure).
metric() { local m; m=$(e2e_get /metrics) && grep -q "^$1\$" <<<"$m"; }
kill -HUP "$SLUICE_PID"
e2e_wait_for -p "$SLUICE_PID" 10 metric 'sluice_config_reloads_total{result="success"} 1' \
  && e2e_pass "off: SIGHUP still reloads (1 success)" || e2e_fail "off: SIGHUP did not reload: $(e2e_get /metrics | grep '^sluice_config_reloads_total')"
# The CLI as root goes through the control socket (named after metrics.listen, port 0 and all),
# which metrics.lifecycle does not close.
if out=$("$SLUICE" reload -c "$W/sluice.yaml" 2>&1); then
  e2e_pass "off: sluice reload as root, through the control socket: $out"
else
  e2e_fail "off: sluice reload as root failed: $out"
fi
metric 'sluice_config_reloads_total{result="success"} 2' \
  && e2e_pass "off: the CLI's reload was applied (2 successes)" || e2e_fail "off: the CLI's reload is not counted"
out=$("$SLUICE" drain -c "$W/sluice.yaml" 2>&1) && metric 'sluice_draining 1' \
  && e2e_pass "off: sluice drain as root: $out" || e2e_fail "off: sluice drain as root: $out"
out=$("$SLUICE" drain --undo -c "$W/sluice.yaml" 2>&1) && metric 'sluice_draining 0' \
  && e2e_pass "off: sluice drain --undo as root: $out" || e2e_fail "off: sluice drain --undo as root: $out"
# Another user is refused by the socket (SO_PEERCRED) and by HTTP: exit 1, both reasons.
chmod 711 "$W" && chmod 644 "$W/sluice.yaml"
rc=0
out=$(runuser -u nobody -- "$SLUICE" reload -c "$W/sluice.yaml" 2>&1) || rc=$?
if [ "$rc" = 1 ] && grep -q "control socket answers root" <<<"$out"; then
  e2e_pass "off: sluice reload as nobody refused (exit 1): $out"
else
  e2e_fail "off: sluice reload as nobody: exit $rc, $out"
fi
metric 'sluice_config_reloads_total{result="success"} 2' \
  && e2e_pass "off: nobody's attempt changed nothing" || e2e_fail "off: nobody's attempt reloaded"
e2e_stop 15
[ "$SLUICE_RC" = 0 ] || e2e_fail "sluice (off) exited $SLUICE_RC"

# The name is first come, first served: another user who takes it before sluice starts gets no
# request from root's CLI (which checks the holder's uid), and sluice starts without a socket.
# With port 0 the name carries the file's fingerprint: `sluice check` prints it.
sock=$("$SLUICE" check -c "$W/sluice.yaml" | grep -o 'control socket @sluice/198\.51\.100\.1:0/[0-9a-f]*' | cut -d@ -f2)
[ -n "$sock" ] && e2e_pass "sluice check names the port-0 socket after the file: @$sock" \
  || e2e_fail "sluice check printed no port-0 control socket name: $("$SLUICE" check -c "$W/sluice.yaml" 2>&1 | grep -i socket)"
setpriv --reuid=65534 --regid=65534 --clear-groups "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind("\0" + sys.argv[1])
s.listen()
time.sleep(60)' "$sock" &
squatter=$!
E2E_PIDS+=("$squatter")
for _ in $(seq 50); do grep -q "@$sock" /proc/net/unix && break; sleep 0.1; done
run_with off
# sluice logs the missing socket just after the metrics line run_with waited for: wait for it.
e2e_wait_for -p "$SLUICE_PID" 10 grep -q "no control socket @$sock" "$W/run-off.log" \
  && e2e_pass "off: sluice starts without the socket another user holds" \
  || e2e_fail "off: sluice did not say the socket was taken: $(grep -i socket "$W/run-off.log")"
rc=0
out=$("$SLUICE" reload -c "$W/sluice.yaml" 2>&1) || rc=$?
if [ "$rc" = 2 ] && grep -q "held by uid 65534" <<<"$out"; then
  e2e_pass "off: root's sluice reload sends nothing to the squatter (exit 2): $out"
else
  e2e_fail "off: root's sluice reload with the name taken: exit $rc, $out"
fi
kill "$squatter" 2>/dev/null || true
e2e_stop 15
[ "$SLUICE_RC" = 0 ] || e2e_fail "sluice (off, name taken) exited $SLUICE_RC"
exit "$E2E_FAILED"
