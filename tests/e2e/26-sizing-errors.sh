#!/usr/bin/env bash
# Sizing: a start that runs out of DPDK memory, or whose MTU the device refuses, exits 1 at once
# and says what to change; `sluice check` shows the memory the config needs and warns first.
# (a) --no-huge -m 64 with dpdk.mbufs 262143: the error names the pool, the MiB and -m.
# (b) mtu 9000 on net_pcap (no MTU setting): the error names the interface, 9000, the limit
#     and the config's file:line:col.
# (c) `sluice check` on (a)'s config prints the memory block and the warning, and exits 0.
# Environment: SLUICE (default: build target/release).
set -euo pipefail
E2E_NAME=sizing-errors
source "$(dirname "$0")/lib/sluice.sh"
W=$E2E_WORK
e2e_binary

# config FILE MBUFS MTU: -m 64, as a user with --no-huge would start
config() { e2e_pcap_config "$1" mem=64 mbufs="$2" mtu="$3"; }

# run_fails NAME CONFIG: `sluice run` must exit 1 within 20 s, without a panic; log in $W/NAME.log.
run_fails() {
  local rc=0 took
  SECONDS=0
  # A hung sluice ignores SIGTERM (it only sets the stop flag): KILL it 5 s later.
  timeout -k 5 60 "$SLUICE" run -c "$2" >"$W/$1.log" 2>&1 || rc=$?
  took=$SECONDS
  if [ "$rc" -ne 1 ]; then
    e2e_fail "$1: sluice run exited $rc (want 1: an error, not a crash or a run)"
  elif grep -q "panicked" "$W/$1.log"; then
    e2e_fail "$1: sluice run panicked: $(grep -m1 panicked "$W/$1.log")"
  elif [ "$took" -gt 20 ]; then
    e2e_fail "$1: sluice run took ${took}s to give up (the test bound is 20 s)"
  else
    e2e_pass "$1: sluice run exits 1 in ${took}s"
  fi
}

# expect NAME WHAT PATTERN: the log of NAME has PATTERN (grep -E).
expect() {
  if grep -Eq -- "$3" "$W/$1.log"; then
    e2e_pass "$1: the output names $2"
  else
    e2e_fail "$1: the output does not name $2 (/$3/)"
    cat "$W/$1.log" >&2
  fi
}

# (a) 262143 mbufs take about 1 GiB of 4 KiB pages; -m 64 has 64 MiB.
config "$W/pool.yaml" 262143 1500
run_fails pool "$W/pool.yaml"
expect pool "the pool" "uplink: its mbuf pool of 262143 mbufs"
expect pool "the MiB needed" "about 1026 MiB"
expect pool "EAL's memory" "64 MiB \(-m 64 with --no-huge\)"
expect pool "the fix (-m, dpdk.mbufs)" "fix: raise -m to [0-9]+ in dpdk.args.*lower dpdk.mbufs to [0-9]+"

# (b) net_pcap has no MTU setting: sluice accepts 1500 or less on it.
config "$W/mtu.yaml" 4095 9000
run_fails mtu "$W/mtu.yaml"
expect mtu "the interface, device and MTU" "uplink: net_pcap0 refused mtu 9000"
expect mtu "the limit" "no MTU setting \(sluice then accepts mtu 1500 or less\)"
line=$(grep -n "mtu: 9000" "$W/mtu.yaml" | cut -d: -f1)
expect mtu "the config line" "$W/mtu.yaml:$line:10: interfaces\[0\]\.mtu: set it to 1500 or less"

# (c) check: exit 0 (a warning is not an error), the memory block and the warning.
rc=0
"$SLUICE" check -c "$W/pool.yaml" >"$W/check.log" 2>&1 || rc=$?
if [ "$rc" -eq 0 ]; then
  e2e_pass "check: exit 0 with a memory warning"
else
  e2e_fail "check: exit $rc (want 0: a memory warning is not an error)"
fi
expect check "the memory block" "^memory \(an estimate\):"
expect check "the pool" "mbuf pool uplink \(net_pcap0\): 262143 x 4096 B"
expect check "the flow tables" "flow tables: 1 worker\(s\) x 68 MiB"
expect check "the Maglev tables" "maglev tables: 1 service\(s\), 251 slots"
expect check "the warning" "warning: EAL gets 64 MiB \(-m 64 with --no-huge\) but the mbuf pools need 1026 MiB.*raise -m to [0-9]+"
expect check "the warning count" "OK \(1 warning\)"
exit "$E2E_FAILED"
