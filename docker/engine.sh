# shellcheck shell=bash
# Sourced by `make docker` and tests/e2e/44-container.sh: picks a container engine that can run
# here and, for podman, writes a containers.conf for what this host needs.
#   engine_find  -> 0 with ENGINE (and CONTAINERS_CONF exported for podman), or
#                   1 with ENGINE_WHY saying why no engine can run.
# SLUICE_ENGINE=podman|docker chooses; otherwise podman, then docker with a running daemon.

engine_find() {
  ENGINE="" ENGINE_WHY=""
  local want=${SLUICE_ENGINE:-} e
  for e in ${want:-podman docker}; do
    command -v "$e" >/dev/null 2>&1 || { ENGINE_WHY+="no $e; "; continue; }
    if [ "$e" = podman ]; then
      engine_podman_conf || { ENGINE_WHY+="$ENGINE_CONF_WHY; "; continue; }
    fi
    if ! "$e" info >/dev/null 2>&1; then
      ENGINE_WHY+="'$e info' fails ($("$e" info 2>&1 | tail -n 1)); "
      continue
    fi
    ENGINE=$e
    return 0
  done
  ENGINE_WHY=${ENGINE_WHY%; }
  return 1
}

# Podman as root on a Debian 12 VM can still be refused two things, found out on the project's
# machines: crun 1.8 does not run containers on a hybrid cgroup v1/v2 host ("cgroups in hybrid
# mode not supported"), runc does; and a root without CAP_SYS_RESOURCE cannot raise the
# container's rlimits to podman's defaults (nofile 1048576; "setrlimit RLIMIT_NOFILE: Operation
# not permitted"). The file written here sets only what this host needs; podman, podman build
# and podman-compose (which runs podman) all read CONTAINERS_CONF.
engine_podman_conf() {
  ENGINE_CONF_WHY=""
  local conf=${ENGINE_CONF_DIR:-${TMPDIR:-/tmp}}/sluice-containers.conf ulimits="" runtime=""
  local capeff
  capeff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
  if (((0x$capeff >> 24) & 1)); then :; else
    local nofile
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
    ulimits="default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=4096:4096\"]"
  fi
  if [ -e /sys/fs/cgroup/unified/cgroup.controllers ]; then
    if command -v runc >/dev/null 2>&1; then
      runtime='runtime = "runc"'
    else
      ENGINE_CONF_WHY="podman: hybrid cgroups need runc (crun refuses them): apt-get install runc"
      return 1
    fi
  fi
  if [ -n "$ulimits$runtime" ]; then
    printf '[containers]\n%s\n[engine]\n%s\n' "$ulimits" "$runtime" >"$conf"
    export CONTAINERS_CONF=$conf
  fi
  return 0
}
