# Shared helpers for the end-to-end tests that drive the real `sluice run` binary.
# Source it after setting E2E_NAME; it creates $E2E_WORK, and its EXIT trap stops every process
# the test started (by pid), removes the work directory and the test's DPDK runtime directory.
# shellcheck shell=bash

E2E_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# Debian's interpreter: it has scapy and prometheus_client (a pyenv `python3` may not).
PY=${PY:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree
SLUICE=${SLUICE:-}
E2E_PREFIX="sluice-e2e-${E2E_NAME:?set E2E_NAME}-$$"
E2E_WORK=$(mktemp -d "/tmp/sluice-e2e-${E2E_NAME}.XXXXXX")
E2E_PIDS=()
E2E_FAILED=0

e2e_log() { printf '%s: %s\n' "$E2E_NAME" "$*" >&2; }
e2e_pass() { printf 'PASS: %s: %s [%ss]\n' "$E2E_NAME" "$*" "$SECONDS"; }
e2e_fail() {
  printf 'FAIL: %s: %s\n' "$E2E_NAME" "$*"
  E2E_FAILED=1
}
e2e_die() {
  e2e_fail "$*"
  exit 1
}

e2e_cleanup() {
  local rc=$? pid
  for pid in "${E2E_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ] && [ -z "${E2E_KEEP:-}" ]; then
    for f in "$E2E_WORK"/*.log; do
      [ -f "$f" ] || continue
      echo "--- $f (last 40 lines)" >&2
      tail -n 40 "$f" >&2
    done
  fi
  if [ -n "${E2E_KEEP:-}" ]; then
    echo "kept $E2E_WORK" >&2
  else
    rm -rf "$E2E_WORK"
  fi
  rm -rf "/var/run/dpdk/$E2E_PREFIX"
  exit "$rc"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM

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

# e2e_start CONFIG LOG: starts `sluice run -c CONFIG` in the background; sets SLUICE_PID.
e2e_start() {
  "$SLUICE" run -c "$1" >"$2" 2>&1 &
  SLUICE_PID=$!
  E2E_PIDS+=("$SLUICE_PID")
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

# e2e_metric_sum NAME [LABEL-REGEX] < exposition: the sum of every sample of NAME whose labels
# match. %.0f, not %d: mawk's %d stops at 2^31-1, which a 30-minute soak's counters pass.
e2e_metric_sum() {
  awk -v n="$1" -v l="${2:-}" '{ split($1, a, "{") } a[1] == n && $1 ~ l { s += $2 } END { printf "%.0f\n", s }'
}

# e2e_check WHAT COMMAND...: PASS or FAIL (counted in E2E_FAILED) as COMMAND succeeds.
e2e_check() {
  local what=$1
  shift
  if "$@"; then e2e_pass "$what"; else e2e_fail "$what"; fi
}

# e2e_stop SECONDS: SIGTERM, then waits for the exit; sets SLUICE_RC (124 when it hung).
e2e_stop() {
  local deadline=$((SECONDS + $1))
  kill -TERM "$SLUICE_PID" 2>/dev/null || true
  while kill -0 "$SLUICE_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  if kill -0 "$SLUICE_PID" 2>/dev/null; then
    SLUICE_RC=124
    kill -KILL "$SLUICE_PID" 2>/dev/null || true
    wait "$SLUICE_PID" 2>/dev/null || true
  else
    SLUICE_RC=0
    wait "$SLUICE_PID" || SLUICE_RC=$?
  fi
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

# e2e_memif_config PREFIX SOCK GATEWAY: the head of the memif load tests' config (test 22, the
# soak), to stdout: sluice as memif client on SOCK with EAL file prefix PREFIX, 192.0.2.10/24
# with GATEWAY ("" = on-link backends, else the gateway lines), 262,144 flow slots, no new-flow
# cap, and service web (198.51.100.10:80/tcp, ipip, M = 65537) up to its `backends:` key.
e2e_memif_config() {
  cat <<YAML
dpdk:
  args: ["--no-huge", "--no-pci", "-m", "512", "-l", "0-1", "--main-lcore", "0",
         "--file-prefix", "$1", "--log-level", "lib.eal:error",
         "--vdev", "net_memif0,role=client,socket=$2,socket-abstract=no"]
  mbufs: 16383
interfaces:
  - name: uplink
    device: net_memif0
    address: 192.0.2.10/24
YAML
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
    cat <<YAML
dpdk:
  args: ["--no-huge", "--no-pci", "-m", "$mem", "-l", "0-1", "--main-lcore", "0",
         "--file-prefix", "$E2E_PREFIX", "--log-level", "lib.eal:error",
         "--vdev=net_pcap0,rx_pcap=$E2E_WORK/empty.pcap,tx_pcap=$E2E_WORK/out.pcap"]
  mbufs: $mbufs
interfaces:
  - name: uplink
    device: net_pcap0
    address: 192.0.2.10/24
YAML
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
