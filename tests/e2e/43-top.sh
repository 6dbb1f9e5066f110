#!/usr/bin/env bash
# `sluice top` against `sluice demo`:
# (a) `--once` prints one plain frame (no escapes) with both services, a backend forwarding, a
#     worker core's busy %.
# (b) The live view in a detached tmux session of 120x40 (its own tmux server, on a socket in
#     the work directory): after ~3 s the pane shows the same, on the alternate screen; `q`
#     ends it within 2 s, the shell's screen and prompt come back, and the terminal settings
#     (`stty -g`) are those from before. Ctrl-C (SIGINT) restores them the same way.
# The pane runs sh (no line editor that would reset the terminal itself), so `stty -g` after
# the view shows what sluice top left behind. SKIPPED without tmux (Debian package tmux).
set -euo pipefail
E2E_NAME=top
source "$(dirname "$0")/lib/sluice.sh"
W=$E2E_WORK
SOCK=$W/tmux.sock
PROMPT='top-e2e$ '
command -v tmux >/dev/null 2>&1 || e2e_skip "tmux not installed (Debian package tmux; make deps installs it)"
# The tmux server goes first, then the library's cleanup (it exits with the test's status).
# (set +e: under errexit the `(exit $rc)` that hands the status on would end the trap early.)
trap 'rc=$?; set +e; tmux -S "$SOCK" kill-server >/dev/null 2>&1; (exit $rc); e2e_cleanup' EXIT
tmx() { tmux -S "$SOCK" "$@"; }
pane() { tmx capture-pane -p -t top; }
# until_pane SECONDS REGEX...: waits until the pane matches every extended REGEX (0) or not (1).
until_pane() {
  local deadline=$((SECONDS + $1)) re ok
  shift
  while :; do
    pane >"$W/pane.txt" 2>/dev/null || true
    ok=1
    for re in "$@"; do grep -Eq -- "$re" "$W/pane.txt" || { ok=0; break; }; done
    [ "$ok" -eq 1 ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
# What a frame must show: both services' rows, a backend with a non-zero rate, a core's busy %.
FRAME_RES=(
  '^web +[^ ]+ +ipip +[1-9]'
  '^dns +[^ ]+ +gue +[1-9]'
  '^192\.0\.2\.[0-9]+ +(web|dns) +[1-9][0-9.]*k? '
  '^CORE +BUSY % +FLOWS +MEAN BURST'
  '^[0-9]+ +[0-9]+\.[0-9] +[0-9]+ +[0-9.]+$'
)

e2e_binary
LOG=$W/demo.log
e2e_demo "$LOG"
deadline=$((SECONDS + 20))
until [ "$(e2e_sample 'sluice_rx_packets_total{port="wire",queue="0"}')" != "" ] &&
  [ "$(e2e_sample 'sluice_rx_packets_total{port="wire",queue="0"}')" != 0 ]; do
  [ "$SECONDS" -lt "$deadline" ] || e2e_die "no traffic in /metrics after 20 s"
  sleep 0.2
done

# --- (a) --once ---------------------------------------------------------------------------------
if timeout 20 "$SLUICE" top --once --url "$METRICS" --interval 0.5 >"$W/once.txt" 2>"$W/once.err"; then
  missing=()
  for re in "${FRAME_RES[@]}"; do grep -Eq -- "$re" "$W/once.txt" || missing+=("$re"); done
  if grep -q $'\x1b' "$W/once.txt"; then missing+=("no escape sequences"); fi
  if [ "${#missing[@]}" -eq 0 ]; then
    e2e_pass "top --once: $(grep -c '^192\.0\.2\.' "$W/once.txt") backends, $(grep -E '^rx ' "$W/once.txt")"
  else
    sed 's/^/    /' "$W/once.txt"
    e2e_fail "top --once lacks: ${missing[*]}"
  fi
else
  cat "$W/once.txt" "$W/once.err" | sed 's/^/    /'
  e2e_fail "sluice top --once exited non-zero"
fi

# --- (b) the live view under tmux ----------------------------------------------------------------
tmx -f /dev/null new-session -d -s top -x 120 -y 40 "env PS1='$PROMPT' sh"
until_pane 10 "^top-e2e\\$" || e2e_die "no shell prompt in the tmux pane"
tmx send-keys -t top -l "stty -g >$W/before.stty"
tmx send-keys -t top Enter

gone() { ! kill -0 "$1" 2>/dev/null; }
# live KEYS NAME: runs the view in the pane, checks a frame, ends it with KEYS; PASS or FAIL.
live() {
  local keys=$1 name=$2 pid=""
  rm -f "$W/top.pid" "$W/after.stty"
  tmx send-keys -t top -l "clear; sh -c 'echo \$\$ >$W/top.pid; exec $SLUICE top --url $METRICS --interval 0.5'"
  tmx send-keys -t top Enter
  e2e_wait_for 10 test -s "$W/top.pid" || { e2e_fail "$name: sluice top did not start"; return; }
  pid=$(cat "$W/top.pid")
  E2E_PIDS+=("$pid")
  sleep 3
  if ! until_pane 10 '^sluice top ' "${FRAME_RES[@]}"; then
    sed 's/^/    /' "$W/pane.txt"
    e2e_fail "$name: the pane lacks a service, a forwarding backend or a busy % line (above)"
  fi
  cp "$W/pane.txt" "$W/frame-$name.txt"
  [ "$(tmx display -p -t top '#{alternate_on}')" = 1 ] ||
    e2e_fail "$name: the view is not on the alternate screen"
  tmx send-keys -t top "$keys"
  e2e_wait_for 2 gone "$pid" || { e2e_fail "$name: sluice top still running 2 s after $keys"; return; }
  if ! until_pane 2 "^top-e2e\\$ *$"; then
    sed 's/^/    /' "$W/pane.txt"
    e2e_fail "$name: no shell prompt after sluice top exited (above)"
  fi
  [ "$(tmx display -p -t top '#{alternate_on}')" = 0 ] ||
    e2e_fail "$name: the alternate screen is still on after exit"
  tmx send-keys -t top -l "stty -g >$W/after.stty"
  tmx send-keys -t top Enter
  e2e_wait_for 5 test -s "$W/after.stty" || { e2e_fail "$name: the shell did not run stty after the view"; return; }
  if cmp -s "$W/before.stty" "$W/after.stty"; then
    e2e_pass "live view under tmux 120x40: frame shown, $keys ends it, terminal restored"
  else
    e2e_fail "$name: terminal settings differ after exit: $(cat "$W/before.stty") vs $(cat "$W/after.stty")"
  fi
}
live q quit
live C-c sigint

if [ -n "${E2E_KEEP:-}" ] || [ "${TOP_SHOW:-}" = 1 ]; then
  echo "--- the tmux pane while sluice top ran:"
  cat "$W/frame-quit.txt"
fi

e2e_stop 20
[ "$SLUICE_RC" -eq 0 ] || e2e_fail "sluice demo exited with $SLUICE_RC after SIGTERM (want 0)"
[ "$E2E_FAILED" -eq 0 ] || exit 1
e2e_pass "sluice top shows the demo's services, backends and cores, and quits cleanly"
