#!/usr/bin/env bash
# A start that fails after the workers launched (the metrics address is taken) ends at once:
# `sluice run` exits non-zero within seconds, names the address, and leaves no worker spinning.
# Environment: SLUICE (default: build target/release).
set -euo pipefail
E2E_NAME=start-failure
source "$(dirname "$0")/lib/sluice.sh"
W=$E2E_WORK
e2e_binary

# Something else holds the metrics port (bound and listening) for the whole test.
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); sys.stdout.flush()
time.sleep(120)' "$W/port" &
E2E_PIDS+=("$!")
for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
PORT=$(cat "$W/port")
[ -n "$PORT" ] || e2e_die "the port holder did not start"

e2e_pcap_config "$W/sluice.yaml" listen=127.0.0.1:$PORT

"$SLUICE" check -c "$W/sluice.yaml" >"$W/check.log" 2>&1 || e2e_die "sluice check refused the config"
rc=0
SECONDS=0
# A hung sluice ignores SIGTERM (it only sets the stop flag): KILL it 5 s later.
timeout -k 5 60 "$SLUICE" run -c "$W/sluice.yaml" >"$W/run.log" 2>&1 || rc=$?
took=$SECONDS
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  e2e_fail "sluice run still running after 60 s with its metrics port taken"
elif [ "$rc" -ne 1 ]; then
  e2e_fail "sluice run exited $rc with its metrics port taken (want 1: an error, not a crash)"
elif grep -q "panicked" "$W/run.log"; then
  e2e_fail "sluice run panicked: $(grep -m1 panicked "$W/run.log")"
elif [ "$took" -gt 20 ]; then
  e2e_fail "sluice run took ${took}s to give up (the test bound is 20 s)"
else
  e2e_pass "sluice run exits 1 when its metrics port is taken"
fi
if grep -q "127.0.0.1:$PORT" "$W/run.log"; then
  e2e_pass "the error names the address: $(grep -m1 "127.0.0.1:$PORT" "$W/run.log")"
else
  e2e_fail "the error does not name 127.0.0.1:$PORT"
  cat "$W/run.log" >&2
fi
exit "$E2E_FAILED"
