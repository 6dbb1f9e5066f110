#!/usr/bin/env bash
# The Docker image, built and run with the engine this machine has (podman; docker with a running
# daemon otherwise; SKIPPED, with the reason, when none can run). The image is the Dockerfile's
# `prebuilt` target around the release binary (the from-source build is `make docker`), on a
# Debian 12 base made with debootstrap (no image registry is reachable here) and kept under a
# stable tag, so only the first run pays for it. Checks: `sluice demo` in the container prints
# its per-second lines and "result: OK"; /metrics answers through a port published on 127.0.0.1
# with --listen 0.0.0.0:9610, and does not with the demo's default (loopback) listener; the
# compose lab (docker/compose.yaml, with podman-compose or docker compose) serves /metrics on
# its published port. Every container, network and image the test makes is removed at the end.
# Environment: SLUICE (default: build target/release), SLUICE_ENGINE (podman|docker),
# SLUICE_TEST_BASE (a Debian 12 image to use instead of the debootstrapped one).
set -euo pipefail
E2E_NAME=container
source "$(dirname "$0")/lib/sluice.sh"
W=$E2E_WORK

ENGINE_CONF_DIR=$W
# shellcheck source=../../docker/engine.sh
source "$E2E_REPO/docker/engine.sh"
engine_find || e2e_skip "no container engine can run here: $ENGINE_WHY (make deps installs podman and runc)"
e2e_binary
e2e_log "engine $ENGINE; release binary ready at ${SECONDS}s"
TAG="sluice-e2e-$$"
IMAGE="localhost/sluice-e2e:$$"
NET="sluice-e2e-$$"
PULL=()
[ "$ENGINE" = podman ] && PULL=(--pull=never)
COMPOSE=()
if [ "$ENGINE" = podman ] && command -v podman-compose >/dev/null; then
  COMPOSE=(podman-compose)
elif [ "$ENGINE" = docker ] && docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
fi
cleanup_containers() {
  local c
  if [ ${#COMPOSE[@]} -gt 0 ] && [ -e "$W/compose.override.yaml" ]; then
    SLUICE_IMAGE=$IMAGE SLUICE_METRICS_PORT=1 "${COMPOSE[@]}" -p "$TAG" -f "$E2E_REPO/docker/compose.yaml" \
      -f "$W/compose.override.yaml" down >/dev/null 2>&1 || true
  fi
  for c in "$TAG-demo" "$TAG-metrics" "$TAG-loopback"; do
    "$ENGINE" rm -f "$c" >/dev/null 2>&1 || true
  done
  "$ENGINE" network rm -f "$NET" "${TAG}_default" >/dev/null 2>&1 || true
  "$ENGINE" rmi -f "$IMAGE" >/dev/null 2>&1 || true
}
# podman's networks turn the host's IPv4 forwarding on (and new network namespaces inherit
# it): leave the host as this test found it.
FORWARD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)
restore_forwarding() { echo "$FORWARD_BEFORE" >/proc/sys/net/ipv4/ip_forward; }
trap 'rc=$?; set +e; cleanup_containers; restore_forwarding; (exit $rc); e2e_cleanup' EXIT

# The base: a Debian 12 image from debootstrap, made once and kept (localhost/sluice-base:bookworm).
BASE=${SLUICE_TEST_BASE:-localhost/sluice-base:bookworm}
t=$SECONDS
if [ -z "${SLUICE_TEST_BASE:-}" ]; then
  ENGINE=$ENGINE "$E2E_REPO/docker/debootstrap-base.sh" "$BASE" >"$W/base.log" 2>&1 \
    || { cat "$W/base.log"; e2e_die "could not make the base image $BASE"; }
fi
e2e_log "base $BASE ready in $((SECONDS - t)) s ($(tail -n 1 "$W/base.log" 2>/dev/null))"

# The runtime image from the release binary: a context with just what the prebuilt stage copies.
mkdir -p "$W/ctx/target/release"
cp "$SLUICE" "$W/ctx/target/release/sluice"
cp "$E2E_REPO/sluice.example.yaml" "$W/ctx/"
t=$SECONDS
"$ENGINE" build "${PULL[@]}" -f "$E2E_REPO/docker/Dockerfile" --target prebuilt \
  --build-arg BASE="$BASE" -t "$IMAGE" "$W/ctx" >"$W/build.log" 2>&1 \
  || { tail -n 30 "$W/build.log"; e2e_die "$ENGINE build --target prebuilt failed"; }
size=$("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE")
e2e_log "image $IMAGE built in $((SECONDS - t)) s, $((size / 1000000)) MB"

# A network of our own (documentation addresses, not the engine's default private range).
"$ENGINE" network create --subnet 203.0.113.240/28 "$NET" >/dev/null || e2e_die "network create failed"

# 1. The demo runs in the container and says it worked.
timeout 120 "$ENGINE" run "${PULL[@]}" --rm --name "$TAG-demo" --network "$NET" "$IMAGE" \
  demo --seconds 3 >"$W/demo.log" 2>&1 || { cat "$W/demo.log"; e2e_die "sluice demo in the container exited non-zero"; }
for want in "result: OK" "reached a backend" "rx-to-tx latency"; do
  grep -q "$want" "$W/demo.log" || { cat "$W/demo.log"; e2e_die "no '$want' in the container's demo output"; }
done
lines=$(grep -cE '^ +[0-9]+s +[0-9]+ +[0-9]+ ' "$W/demo.log" || true)
[ "$lines" -ge 2 ] || { cat "$W/demo.log"; e2e_die "only $lines per-second lines from the container's demo"; }

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# metrics_up URL: /metrics (saved in metrics.txt) answers with sluice_build_info and traffic
# counted (rx > 0).
metrics_up() {
  curl -sf --noproxy '*' --max-time 2 "$1" >"$W/metrics.txt" && grep -q '^sluice_build_info' "$W/metrics.txt" &&
    [ "$(e2e_metric_sum sluice_rx_packets_total <"$W/metrics.txt")" -gt 0 ]
}

e2e_log "demo in the container: OK at ${SECONDS}s"

# 2. /metrics through a port published on 127.0.0.1, with --listen 0.0.0.0:9610.
port=$(free_port)
"$ENGINE" run "${PULL[@]}" -d --name "$TAG-metrics" --network "$NET" -p "127.0.0.1:$port:9610" "$IMAGE" \
  demo --seconds 60 --listen 0.0.0.0:9610 >/dev/null || e2e_die "could not start the metrics container"
e2e_wait_for 30 metrics_up "http://127.0.0.1:$port/metrics" || {
  "$ENGINE" logs "$TAG-metrics" 2>&1 | tail -n 20
  e2e_die "no /metrics with traffic on the published 127.0.0.1:$port"
}
rx=$(e2e_metric_sum sluice_rx_packets_total <"$W/metrics.txt")
"$ENGINE" rm -f "$TAG-metrics" >/dev/null

# 3. The demo's default listener (127.0.0.1 inside the container) is not reachable through the
# published port: why the lab needs --listen (and what this test would miss without it).
port=$(free_port)
"$ENGINE" run "${PULL[@]}" -d --name "$TAG-loopback" --network "$NET" -p "127.0.0.1:$port:9610" "$IMAGE" \
  demo --seconds 60 >/dev/null || e2e_die "could not start the loopback container"
# (The logs go to a file first: `logs | grep -q` can fail under pipefail when grep stops early.)
for _ in $(seq 40); do
  "$ENGINE" logs "$TAG-loopback" >"$W/loopback.log" 2>&1 || true
  grep -q 'metrics at http://127.0.0.1:' "$W/loopback.log" && break
  sleep 0.5
done
grep -q 'metrics at http://127.0.0.1:' "$W/loopback.log" \
  || { tail -n 20 "$W/loopback.log"; e2e_die "the loopback demo did not start"; }
if curl -sf --noproxy '*' --max-time 2 "http://127.0.0.1:$port/metrics" >/dev/null 2>&1; then
  e2e_die "/metrics answered through the published port with the demo on loopback: the check above proves nothing"
fi
"$ENGINE" rm -f "$TAG-loopback" >/dev/null
e2e_log "published port: /metrics with --listen, none without, at ${SECONDS}s"

# 4. The compose lab, on the image built above (SLUICE_IMAGE) and a network of documentation
# addresses (the override), its metrics on a free port of 127.0.0.1.
if [ ${#COMPOSE[@]} -eq 0 ]; then
  e2e_skip_part "compose lab: no podman-compose or docker compose (make deps installs podman-compose)"
  compose="compose lab SKIPPED"
else
  cat >"$W/compose.override.yaml" <<'YAML'
networks:
  default:
    ipam:
      config:
        - subnet: 203.0.113.224/28
YAML
  port=$(free_port)
  SLUICE_IMAGE=$IMAGE SLUICE_METRICS_PORT=$port timeout 120 "${COMPOSE[@]}" -p "$TAG" \
    -f "$E2E_REPO/docker/compose.yaml" -f "$W/compose.override.yaml" up -d >"$W/compose.log" 2>&1 \
    || { cat "$W/compose.log"; e2e_die "${COMPOSE[*]} up failed"; }
  e2e_wait_for 30 metrics_up "http://127.0.0.1:$port/metrics" || {
    cat "$W/compose.log"
    e2e_die "the compose lab's /metrics did not answer on 127.0.0.1:$port"
  }
  compose="compose lab (${COMPOSE[*]}) /metrics on 127.0.0.1:$port"
fi

e2e_pass "$ENGINE: image $((size / 1000000)) MB, demo OK in the container ($lines s), /metrics through a published port (rx $rx), not without --listen; $compose"
