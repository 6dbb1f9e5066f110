# shellcheck shell=bash
# The one helper library of the end-to-end tests (tests/e2e/*.sh), the soak (tests/soak.sh) and
# the bench scripts that drive the real `sluice` binary. Source it after setting E2E_NAME; it
# creates $E2E_WORK, and its one EXIT trap stops every process the run started (by pid, and
# anything left in its network namespaces), deletes those namespaces, removes the work
# directory and the run's DPDK runtime directories ($E2E_PREFIX, $E2E_PREFIX-*).
# Tests that build a network-namespace topology source tests/e2e/lib/netns.sh instead (it
# sources this file).

E2E_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# Debian's interpreter: it has scapy and prometheus_client (a pyenv `python3` may not).
PY=${PY:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree
SLUICE=${SLUICE:-}
E2E_PREFIX="sluice-e2e-${E2E_NAME:?set E2E_NAME}-$$" # this run's DPDK file prefix
E2E_WORK=$(mktemp -d "/tmp/sluice-e2e-${E2E_NAME}.XXXXXX")
E2E_PIDS=()
E2E_NSS=() # network namespaces this run made (tests/e2e/lib/netns.sh)
E2E_FAILED=0
E2E_SKIPPED=0 # e2e_skip_part was called

e2e_log() { printf '[%s %s] %s\n' "$(date -u +%T)" "$E2E_NAME" "$*" >&2; }
e2e_pass() { printf 'PASS: %s: %s [%ss]\n' "$E2E_NAME" "$*" "$SECONDS"; }
e2e_fail() {
  printf 'FAIL: %s: %s\n' "$E2E_NAME" "$*"
  E2E_FAILED=1
}
e2e_die() {
  e2e_fail "$*"
  exit 1
}
# A skip is never a pass: exit status 77, which tests/run-e2e.sh counts as skipped (and fails the
# run for, unless E2E_ALLOW_SKIP=1). e2e_skip WHY: the whole test cannot run here; exits 77.
e2e_skip() {
  printf 'SKIP: %s: %s\n' "$E2E_NAME" "$*"
  exit 77
}
# e2e_skip_part WHY: one part cannot run here (a tool missing); the rest runs, and a test that
# then passes exits 77 instead of 0 (a FAIL still exits 1).
e2e_skip_part() {
  printf 'SKIPPED: %s: %s\n' "$E2E_NAME" "$*"
  E2E_SKIPPED=1
}

e2e_cleanup() {
  local rc=$? pid ns f i left
  trap - EXIT INT TERM HUP
  set +e
  # A FAIL recorded with e2e_fail fails the run, whether or not the script ends with
  # `exit "$E2E_FAILED"`.
  [ "$rc" -eq 0 ] && [ "$E2E_FAILED" -ne 0 ] && rc=1
  if [ "$rc" -eq 0 ] && [ "$E2E_SKIPPED" -ne 0 ]; then
    printf 'SKIP: %s: passed, but with parts skipped (SKIPPED above): exit 77\n' "$E2E_NAME"
    rc=77
  fi
  for pid in "${E2E_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  # Anything else still inside our namespaces was started by this run too.
  for ns in "${E2E_NSS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
  done
  for ((i = 0; i < 50; i++)); do # up to 5 s to exit on their own
    left=""
    for pid in "${E2E_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && left="$left $pid"; done
    for ns in "${E2E_NSS[@]}"; do left="$left$(ip netns pids "$ns" 2>/dev/null)"; done
    [ -z "${left// /}" ] && break
    sleep 0.1
  done
  for pid in "${E2E_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for ns in "${E2E_NSS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  for ns in "${E2E_NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -z "${E2E_KEEP:-}" ]; then
    for f in "$E2E_WORK"/*.log "$E2E_WORK"/*.yaml; do
      [ -s "$f" ] || continue
      if [[ $f == *.yaml ]]; then
        echo "--- $f" >&2
        cat "$f" >&2
      else
        echo "--- $f (last 40 lines)" >&2
        tail -n 40 "$f" >&2
      fi
    done
  fi
  if [ -n "${E2E_KEEP:-}" ]; then
    echo "kept $E2E_WORK" >&2
  else
    rm -rf "$E2E_WORK"
  fi
  # DPDK leaves its runtime directory behind; a test running several instances gives each
  # its own prefix, $E2E_PREFIX-NAME.
  rm -rf "/var/run/dpdk/$E2E_PREFIX" "/var/run/dpdk/$E2E_PREFIX"-*
  exit "$rc"
}
trap e2e_cleanup EXIT
trap 'e2e_log "interrupted"; exit 130' INT TERM HUP

# e2e_defaults NAME=VALUE...: a test's environment knobs: each NAME keeps its value from the
# environment when set and not empty, else gets VALUE.
e2e_defaults() {
  local kv name
  for kv in "$@"; do
    name=${kv%%=*}
    [ -n "${!name:-}" ] || printf -v "$name" '%s' "${kv#*=}"
  done
}

# Finds (or builds) the release binary; SLUICE overrides.
e2e_binary() {
  if [ -z "$SLUICE" ]; then
    # Another build may hold cargo's lock: cargo waits for it.
    (cd "$E2E_REPO" && timeout 900 cargo build --release -q --bin sluice) || e2e_die "cargo build --release --bin sluice failed"
    SLUICE="${CARGO_TARGET_DIR:-$E2E_REPO/target}/release/sluice"
  fi
  [ -x "$SLUICE" ] || e2e_die "no sluice binary at $SLUICE"
  SLUICE=$(realpath "$SLUICE")
}

# e2e_bg LOG COMMAND...: starts COMMAND in the background (stdin /dev/null, output to LOG),
# tracked for the EXIT trap; its pid is left in E2E_PID (not printed: a $(...) subshell would
# make it someone else's child).
e2e_bg() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 </dev/null &
  E2E_PID=$!
  E2E_PIDS+=("$E2E_PID")
}

# e2e_start CONFIG LOG: starts `sluice run -c CONFIG` in the background; sets SLUICE_PID.
e2e_start() {
  e2e_bg "$2" "$SLUICE" run -c "$1"
  SLUICE_PID=$E2E_PID
}

# e2e_demo LOG: starts `sluice demo` (60 s at most: e2e_stop ends it once checked; the bound
# only matters if the test dies first) and waits up to 30 s for its metrics; sets SLUICE_PID
# and METRICS.
e2e_demo() {
  e2e_bg "$1" "$SLUICE" demo --seconds 60
  SLUICE_PID=$E2E_PID
  e2e_wait_metrics "$1" 30 || e2e_die "sluice demo did not start (no metrics address)"
  e2e_log "sluice demo pid $SLUICE_PID, metrics at $METRICS"
}

# e2e_wait_metrics LOG SECONDS: waits for "sluice: metrics on http://ADDR/metrics"; sets METRICS.
e2e_wait_metrics() {
  local log=$1 deadline=$((SECONDS + $2)) addr
  while [ "$SECONDS" -lt "$deadline" ]; do
    addr=$(sed -n 's|^sluice: metrics on http://\([^/]*\)/metrics$|\1|p' "$log" 2>/dev/null | head -n 1)
    if [ -n "$addr" ]; then
      METRICS="http://$addr"
      return 0
    fi
    kill -0 "$SLUICE_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# e2e_get PATH: the body of GET $METRICS/PATH (2 s timeout, no proxy).
e2e_get() { curl -sS --noproxy '*' --max-time 2 -f "$METRICS$1"; }

# e2e_sample NAME{LABELS}: one sample's value from /metrics (exact series match), or nothing.
e2e_sample() {
  e2e_get /metrics | awk -v s="$1" '$1 == s { v = $2 } END { if (v != "") print v }'
}

# e2e_check_live SCRAPE PREFIX...: the alert rules and dashboard panels that select metrics named
# PREFIX... against a /metrics saved by a test that makes them live (exception path, fullnat,
# announce): names, labels and literal values in live samples (tests/pcap/exprs.py check-live).
# e2e 42 checks the demo's scrape, where these families have no samples.
e2e_check_live() {
  local scrape=$1 out
  shift
  if out=$("$PY" "$E2E_REPO/tests/pcap/exprs.py" check-live "$E2E_REPO/deploy/prometheus/sluice.rules.yml"     "$E2E_REPO/deploy/grafana/sluice.json" "$scrape" "$@" 2>&1); then
    e2e_pass "rules and dashboard on live $* samples: $(tail -n 1 <<<"$out")"
  else
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    e2e_die "the rules or the dashboard use $* metrics, labels or values this /metrics lacks (above)"
  fi
}

# e2e_metric_sum NAME [LABEL-REGEX] < exposition: the sum of every sample of NAME whose labels
# match. %.0f, not %d: mawk's %d stops at 2^31-1, which a 30-minute soak's counters pass.
e2e_metric_sum() {
  awk -v n="$1" -v l="${2:-}" '{ split($1, a, "{") } a[1] == n && $1 ~ l { s += $2 } END { printf "%.0f\n", s }'
}

# e2e_smoke SECONDS OK-LINE SHOW-PREFIX COMMAND...: runs a whole benchmark's smoke mode (up to
# SECONDS); PASS (named by COMMAND) when it succeeds and prints the line OK-LINE, showing its
# lines that start with SHOW-PREFIX; else its output and FAIL, exit 1.
e2e_smoke() {
  local limit=$1 ok=$2 show=$3 out=$E2E_WORK/smoke.out
  shift 3
  if timeout "$limit" "$@" >"$out" 2>&1 && grep -qx -- "$ok" "$out"; then
    grep -- "^$show" "$out" || true
    e2e_pass "${*:2}"
  else
    cat "$out"
    e2e_die "${*:2}"
  fi
}

# e2e_check WHAT COMMAND...: PASS or FAIL (counted in E2E_FAILED) as COMMAND succeeds.
e2e_check() {
  local what=$1
  shift
  if "$@"; then e2e_pass "$what"; else e2e_fail "$what"; fi
}

# e2e_stop_pid PID [SECONDS]: SIGTERM a process this run started, wait up to SECONDS (default
# 5), then SIGKILL; returns its exit status (124 when it ignored SIGTERM).
e2e_stop_pid() {
  local pid=$1 limit=${2:-5} i rc
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return $?; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    e2e_log "pid $pid ignored SIGTERM for ${limit}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null
    return 124
  fi
  wait "$pid" 2>/dev/null && rc=0 || rc=$?
  return $rc
}

# e2e_stop SECONDS: e2e_stop_pid for the sluice e2e_start started; sets SLUICE_RC.
e2e_stop() { e2e_stop_pid "$SLUICE_PID" "$1" && SLUICE_RC=0 || SLUICE_RC=$?; }

# e2e_wait_for [-p PID] SECONDS COMMAND...: polls COMMAND (its output discarded) every 0.1 s
# until it succeeds (0) or SECONDS of wall-clock time have passed (1); with -p, gives up at
# once (1) when process PID has exited.
e2e_wait_for() {
  local pid="" end
  if [ "$1" = -p ]; then
    pid=$2
    shift 2
  fi
  end=$((${EPOCHREALTIME/./} + $1 * 1000000))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "${EPOCHREALTIME/./}" -lt "$end" ] || return 1
    [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
}

# e2e_json FILE EXPRESSION: a Python expression over a JSON file (as `d`), printed.
e2e_json() {
  "$PY" -c 'import json, sys; print(eval(sys.argv[2], {}, {"d": json.load(open(sys.argv[1]))}))' "$@"
}

# The mbuf leak check. A packet's mbuf goes back to its interface's pool once the packet is
# sent or dropped, so at idle the only mbufs out are the ones the driver holds by design:
# none for memif, pcap and af_packet (they allocate per packet), one per rx descriptor for a
# tap or a NIC (pre-filled rings). Per-lcore caches count as free. So sluice_mempool_free at
# idle after traffic must equal its value at idle before it; fewer is a leak, more means the
# starting value was not taken at idle.
declare -A E2E_MEMPOOL_START=()

# e2e_mempool_free PORT: sluice_mempool_free{port="PORT"} now (nothing if absent).
e2e_mempool_free() { e2e_sample "sluice_mempool_free{port=\"$1\"}"; }

# e2e_mempool_start PORT...: records each port's free mbufs; call it while sluice is idle.
# The gauge is refreshed a few times a second: it waits until two readings 0.5 s apart agree.
e2e_mempool_start() {
  local port a b
  for port in "$@"; do
    a=$(e2e_mempool_free "$port")
    for _ in $(seq 20); do
      sleep 0.5
      b=$(e2e_mempool_free "$port")
      [ -n "$a" ] && [ "$a" = "$b" ] && break
      a=$b
    done
    [ -n "$b" ] && [ "$a" = "$b" ] || e2e_die "sluice_mempool_free{port=$port} never settled ('$a', '$b')"
    E2E_MEMPOOL_START[$port]=$b
    e2e_log "mempool $port: $b free at idle"
  done
}

# e2e_mempool_check [-t SECONDS] PORT...: after traffic stopped, waits up to SECONDS
# (default 5) for each port's free mbufs to be back to what e2e_mempool_start recorded;
# a PASS or FAIL line per port. Returns 1 if any is not back.
e2e_mempool_check() {
  local wait=5 port want got deadline rc=0
  if [ "${1:-}" = -t ]; then
    wait=$2
    shift 2
  fi
  for port in "$@"; do
    want=${E2E_MEMPOOL_START[$port]:-}
    [ -n "$want" ] || e2e_die "e2e_mempool_check $port: no e2e_mempool_start $port"
    deadline=$((SECONDS + wait))
    while :; do
      got=$(e2e_mempool_free "$port")
      [ "$got" = "$want" ] && break
      [ "$SECONDS" -lt "$deadline" ] || break
      sleep 0.2
    done
    if [ "$got" = "$want" ]; then
      e2e_pass "mempool $port back to its idle count after traffic: $got free"
    elif [ -n "$got" ] && [ "$got" -lt "$want" ]; then
      e2e_fail "mempool $port: $got free at idle after traffic, $want before: $((want - got)) mbufs leaked"
      rc=1
    else
      e2e_fail "mempool $port: '$got' free at idle after traffic, $want before (was the start taken at idle?)"
      rc=1
    fi
  done
  return "$rc"
}

# e2e_eal_args MEM VDEV [FILE-PREFIX [LCORE-ARGS...]]: EAL arguments, one a line: no
# hugepages (-m MEM MB), no PCI, the device VDEV, this run's file prefix (or FILE-PREFIX), lcores
# 0-1 with 0 the main one (or LCORE-ARGS, e.g. --lcores 0@0,1@1,2@1).
e2e_eal_args() {
  local mem=$1 vdev=$2 prefix=${3:-$E2E_PREFIX}
  shift 2
  [ $# -eq 0 ] || shift
  [ $# -gt 0 ] || set -- -l 0-1
  printf '%s\n' --no-huge --no-pci -m "$mem" "$@" --main-lcore 0 --file-prefix "$prefix" \
    --log-level lib.eal:error --vdev "$vdev"
}

# e2e_config_head MEM MBUFS VDEV IFNAME ADDRESS [FILE-PREFIX [LCORE-ARGS...]]: the head every
# test's sluice config starts with, to stdout: the dpdk section (e2e_eal_args MEM VDEV ...,
# MBUFS mbufs) and the first interface, IFNAME on VDEV's device with ADDRESS; a caller adds
# the interface's other keys (4-space indent), then its own sections.
e2e_config_head() {
  local mem=$1 mbufs=$2 vdev=$3 ifname=$4 address=$5 arg args=""
  shift 5
  while read -r arg; do args="$args${args:+, }\"$arg\""; done < <(e2e_eal_args "$mem" "$vdev" "$@")
  cat <<YAML
dpdk:
  args: [$args]
  mbufs: $mbufs
interfaces:
  - name: $ifname
    device: ${vdev%%,*}
    address: $address
YAML
}

# e2e_memif_config PREFIX SOCK GATEWAY: the head of the memif load tests' config (test 22, the
# soak), to stdout: sluice as memif client on SOCK with EAL file prefix PREFIX, 192.0.2.10/24
# with GATEWAY ("" = on-link backends, else the gateway lines), 262,144 flow slots, no new-flow
# cap, and service web (198.51.100.10:80/tcp, ipip, M = 65537) up to its `backends:` key.
e2e_memif_config() {
  e2e_config_head 512 16383 "net_memif0,role=client,socket=$2,socket-abstract=no" uplink 192.0.2.10/24 "$1"
  [ -z "$3" ] || printf '%s\n' "$3"
  cat <<YAML
flows:
  capacity: 262144
  max_new_flows_per_second: 100000000
services:
  - name: web
    vip: 198.51.100.10
    port: 80
    protocol: tcp
    table_size: 65537
    forwarding: ipip
    backends:
YAML
}

# e2e_pcap_config FILE [KEY=VALUE...]: a one-interface net_pcap config for tests of sluice
# itself rather than of traffic: an empty capture in, a static gateway MAC, one TCP service.
# Keys (default): mem (256, EAL -m), mbufs (4095), mtu (unset), weight (100),
# listen (127.0.0.1:0), lifecycle (unset).
e2e_pcap_config() {
  local file=$1 kv mem=256 mbufs=4095 mtu="" weight=100 listen=127.0.0.1:0 lifecycle=""
  shift
  for kv in "$@"; do
    case ${kv%%=*} in
      mem) mem=${kv#*=} ;; mbufs) mbufs=${kv#*=} ;; mtu) mtu=${kv#*=} ;;
      weight) weight=${kv#*=} ;; listen) listen=${kv#*=} ;; lifecycle) lifecycle=${kv#*=} ;;
      *) e2e_die "e2e_pcap_config: unknown key ${kv%%=*}" ;;
    esac
  done
  # An rx_pcap with no packets: the port exists and stays quiet.
  [ -f "$E2E_WORK/empty.pcap" ] || "$PY" -c 'import struct, sys
open(sys.argv[1], "wb").write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))' "$E2E_WORK/empty.pcap"
  {
    e2e_config_head "$mem" "$mbufs" "net_pcap0,rx_pcap=$E2E_WORK/empty.pcap,tx_pcap=$E2E_WORK/out.pcap" \
      uplink 192.0.2.10/24
    [ -z "$mtu" ] || echo "    mtu: $mtu"
    cat <<YAML
    gateway: 192.0.2.1
    gateway_mac: "02:00:00:00:00:01"
services:
  - name: web
    vip: 198.51.100.10
    port: 80
    protocol: tcp
    table_size: 251
    backends:
      - address: 203.0.113.11
        weight: $weight
metrics:
  listen: $listen
YAML
    [ -z "$lifecycle" ] || echo "  lifecycle: $lifecycle"
  } >"$file"
}
