#!/usr/bin/env bash
# `make docker`: the image built from source (the Dockerfile's default target: rustup and a
# release build of the workspace inside the build stage; many minutes on 2 cores).
#   DOCKER_TAG   the image's tag (default sluice:latest)
#   DOCKER_BASE  the Debian 12 image to start from (default debian:12); `local` makes one with
#                docker/debootstrap-base.sh, for a machine that cannot pull (this project's).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=docker/engine.sh
source docker/engine.sh
engine_find || { echo "make docker: no container engine can run here: $ENGINE_WHY"; exit 1; }
TAG=${DOCKER_TAG:-sluice:latest}
BASE=${DOCKER_BASE:-debian:12}
if [ "$BASE" = local ]; then
  BASE=localhost/sluice-base:bookworm
  ENGINE=$ENGINE docker/debootstrap-base.sh "$BASE"
fi
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || rev="$rev-dirty"
# The host's own CAs (a TLS-intercepting proxy's, on machines like this project's) for rustup and
# crates.io in the build stage; DOCKER_EXTRA_CA=FILE instead, or DOCKER_EXTRA_CA=none.
ca=""
case ${DOCKER_EXTRA_CA:-} in
  none) ;;
  "") for f in /usr/local/share/ca-certificates/*.crt; do [ -f "$f" ] && ca+="$(cat "$f")"$'\n'; done ;;
  *) ca=$(cat "$DOCKER_EXTRA_CA") ;;
esac
[ -z "$ca" ] || echo "make docker: the build stage trusts the host's extra CAs too"
start=$SECONDS
"$ENGINE" build -f docker/Dockerfile --build-arg BASE="$BASE" --build-arg GIT_REVISION="$rev" \
  --build-arg EXTRA_CA_CERTS="$ca" -t "$TAG" .
echo "make docker: built $TAG from $BASE with $ENGINE in $((SECONDS - start)) s;" \
  "$("$ENGINE" image inspect --format '{{.Size}}' "$TAG") bytes"
"$ENGINE" run --rm "$TAG" version
