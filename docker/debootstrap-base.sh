#!/usr/bin/env bash
# Makes a local Debian 12 image with debootstrap, for a machine that cannot pull debian:12 (the
# project's machines reach Debian's package mirror but no image registry). Kept under a stable
# tag, so only the first call pays (debootstrap: about a minute and a half here).
#   docker/debootstrap-base.sh [TAG]     (default localhost/sluice-base:bookworm)
# ENGINE=podman|docker (default podman); MIRROR overrides http://deb.debian.org/debian.
set -euo pipefail
TAG=${1:-localhost/sluice-base:bookworm}
ENGINE=${ENGINE:-podman}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
if "$ENGINE" image inspect "$TAG" >/dev/null 2>&1; then
  echo "debootstrap-base: $TAG exists"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap-base: no debootstrap (apt-get install debootstrap)"; exit 1; }
root=$(mktemp -d /tmp/sluice-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
start=$SECONDS
echo "debootstrap-base: debootstrap --variant=minbase bookworm ($MIRROR) into $root"
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 \
  || { tail -n 20 "$root.log"; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# Like the debian:12 image: main, updates and security, and no package cache or lists inside.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
tar -C "$root" --numeric-owner -c . | "$ENGINE" import --change 'CMD ["/bin/bash"]' - "$TAG" \
  >"$root.log" 2>&1 || { cat "$root.log"; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
echo "debootstrap-base: made $TAG in $((SECONDS - start)) s"
