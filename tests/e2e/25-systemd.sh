#!/usr/bin/env bash
# sluice under systemd, without systemd: `sluice run` with NOTIFY_SOCKET on a datagram socket this
# test listens on sends READY=1 only once it logs "running" and /metrics answers, RELOADING=1
# then READY=1 with the epoch on SIGHUP, the refusal's reason when a reload fails (which
# `sluice reload -c` reports with exit 1) and STOPPING=1 on SIGTERM. Then the hugepages script
# on a fake sysfs, `make install DESTDIR=...`, and `systemd-analyze verify` of the installed units.
# Environment: SLUICE (default: build target/release).
set -euo pipefail
E2E_NAME=systemd
source "$(dirname "$0")/lib/sluice.sh"
W=$E2E_WORK
e2e_binary

# The notify listener: one line per datagram, "pid=SENDER KEY=V|KEY=V..."; when the first
# READY=1 arrives it first records whether the log said "running" and /metrics answered.
"$PY" - "$W/notify.sock" "$W/notify.log" "$W/run.log" <<'EOF' &
import re, socket, struct, sys, time, urllib.request
path, out, runlog = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # the sender's pid, as systemd sees it
s.bind(path)
s.settimeout(0.5)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
checked = False
end = time.monotonic() + 300
with open(out, "a", buffering=1) as f:
    while time.monotonic() < end:
        try:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            continue
        pid = "?"
        for level, kind, d in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = str(struct.unpack("iII", d[:12])[0])
        lines = data.decode(errors="replace").splitlines()
        if "READY=1" in lines and not checked:
            checked = True
            log = open(runlog).read()
            running = "yes" if re.search(r"^sluice: running \(epoch", log, re.M) else "no"
            m = re.search(r"^sluice: metrics on http://([^/]*)/metrics$", log, re.M)
            code = "no-address"
            if m:
                try:
                    code = str(opener.open(f"http://{m.group(1)}/metrics", timeout=2).status)
                except Exception as e:
                    code = type(e).__name__
            f.write(f"CHECK running={running} metrics={code}\n")
        f.write(f"pid={pid} " + "|".join(lines) + "\n")
EOF
E2E_PIDS+=("$!")
for _ in $(seq 50); do [ -S "$W/notify.sock" ] && break; sleep 0.1; done
[ -S "$W/notify.sock" ] || e2e_die "the notify listener did not bind $W/notify.sock"
touch "$W/notify.log"

# wait_notify PATTERN SECONDS: waits for a notify.log line matching the extended regex.
wait_notify() {
  local deadline=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$deadline" ]; do
    grep -Eq "$1" "$W/notify.log" && return 0
    sleep 0.1
  done
  return 1
}
# since N: notify.log after its first N lines.
since() { tail -n "+$(($1 + 1))" "$W/notify.log"; }
count() { wc -l <"$W/notify.log"; }

# A free port for metrics.listen: `sluice reload -c` reads the address from the file.
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
config() { e2e_pcap_config "$W/sluice.yaml" listen=127.0.0.1:$PORT weight="$1"; } # config WEIGHT
config 100
"$SLUICE" check -c "$W/sluice.yaml" >"$W/check.log" 2>&1 || e2e_die "sluice check refused the config: $(cat "$W/check.log")"

NOTIFY_SOCKET="$W/notify.sock" "$SLUICE" run -c "$W/sluice.yaml" >"$W/run.log" 2>&1 &
SLUICE_PID=$!
E2E_PIDS+=("$SLUICE_PID")

# 1. READY=1 once running, with the status and the main pid, and nothing before it.
wait_notify 'READY=1' 30 || e2e_die "no READY=1 within 30 s: $(cat "$W/notify.log")"
first=$(grep -v '^CHECK' "$W/notify.log" | head -n 1)
[[ "$first" == "pid=$SLUICE_PID READY=1|STATUS=running (epoch "*")|MAINPID=$SLUICE_PID" ]] \
  && e2e_pass "the first message: $first" || e2e_fail "the first message is not READY=1 from pid $SLUICE_PID: $first"
check=$(grep -m1 '^CHECK' "$W/notify.log")
[ "$check" = "CHECK running=yes metrics=200" ] \
  && e2e_pass "at READY=1 the log said running and /metrics answered 200" \
  || e2e_fail "READY=1 came too early: $check"
METRICS="http://127.0.0.1:$PORT"

# 2. SIGHUP: RELOADING=1 with the monotonic clock, then READY=1 with the new epoch.
n=$(count)
kill -HUP "$SLUICE_PID"
wait_notify 'STATUS=reloaded \(epoch' 30 || e2e_die "no READY=1 after SIGHUP: $(since "$n")"
epoch=$(sed -n 's/^sluice: reloaded .* (epoch \([0-9]*\))$/\1/p' "$W/run.log" | tail -n 1)
got=$(since "$n")
if [[ "$(head -n 1 <<<"$got")" =~ ^pid=$SLUICE_PID\ RELOADING=1\|STATUS=reloading\|MONOTONIC_USEC=[0-9]+$ ]] \
  && [ "$(sed -n 2p <<<"$got")" = "pid=$SLUICE_PID READY=1|STATUS=reloaded (epoch $epoch)" ]; then
  e2e_pass "SIGHUP: RELOADING=1 then READY=1 (epoch $epoch)"
else
  e2e_fail "SIGHUP: want RELOADING=1 then READY=1 (epoch $epoch), got: $got"
fi

# 3. `sluice reload -c` (ExecReload): exit 0 with the epoch, READY=1 with the same.
n=$(count)
rc=0
timeout 60 "$SLUICE" reload -c "$W/sluice.yaml" >"$W/reload.out" 2>"$W/reload.err" || rc=$?
out=$(cat "$W/reload.out")
if [ "$rc" = 0 ] && [[ "$out" =~ ^reloaded\ \(epoch\ ([0-9]+)\)$ ]]; then
  epoch=${BASH_REMATCH[1]}
  e2e_pass "sluice reload -c: exit 0, $out"
  wait_notify "READY=1\|STATUS=reloaded \(epoch $epoch\)" 10 \
    && e2e_pass "notified READY=1 (epoch $epoch)" || e2e_fail "no READY=1 (epoch $epoch): $(since "$n")"
else
  e2e_fail "sluice reload -c: exit $rc, $out $(cat "$W/reload.err")"
fi

# 4. A refused file: `sluice reload -c` exits 1 with the reason, the unit is READY again.
config -5
n=$(count)
rc=0
timeout 60 "$SLUICE" reload -c "$W/sluice.yaml" >"$W/reload.out" 2>"$W/reload.err" || rc=$?
if [ "$rc" = 1 ] && grep -q "refused" "$W/reload.err" && grep -q "weight" "$W/reload.err"; then
  e2e_pass "sluice reload -c of a bad file: exit 1: $(tr '\n' ' ' <"$W/reload.err")"
else
  e2e_fail "sluice reload -c of a bad file: exit $rc, want 1 with the reason: $(cat "$W/reload.out" "$W/reload.err")"
fi
wait_notify 'READY=1\|STATUS=reload refused: .*weight' 10 || true
got=$(since "$n")
if [[ "$(head -n 1 <<<"$got")" == "pid=$SLUICE_PID RELOADING=1|"* ]] \
  && [[ "$(sed -n 2p <<<"$got")" == "pid=$SLUICE_PID READY=1|STATUS=reload refused: "*weight* ]]; then
  e2e_pass "notified: $(sed -n 2p <<<"$got")"
else
  e2e_fail "want RELOADING=1 then READY=1 with the refusal, got: $got"
fi
[ "$(e2e_sample 'sluice_config_reloads_total{result="failure"}')" = 1 ] \
  && e2e_pass "the refusal is counted" || e2e_fail "sluice_config_reloads_total{result=\"failure\"} is not 1"

# 5. SIGTERM: STOPPING=1, then a clean exit.
n=$(count)
e2e_stop 30
[ "$SLUICE_RC" = 0 ] && e2e_pass "SIGTERM: exit 0" || e2e_fail "SIGTERM: sluice exited $SLUICE_RC"
got=$(since "$n")
[ "$got" = "pid=$SLUICE_PID STOPPING=1|STATUS=stopping" ] \
  && e2e_pass "SIGTERM: STOPPING=1" || e2e_fail "SIGTERM: want STOPPING=1, got: $got"

# 6. The hugepages script on a fake sysfs (the real one is the host's to change).
F=$W/fakesys
mkdir -p "$F/sys/kernel/mm/hugepages/hugepages-2048kB"
echo 16 >"$F/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
echo "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0" >"$F/mounts"
hp() { env SLUICE_SYSFS="$F/sys" SLUICE_MOUNTS="$F/mounts" "$@" sh "$E2E_REPO/deploy/systemd/sluice-hugepages"; }
if hp SLUICE_HUGEPAGES=64 >"$W/hp.log" 2>&1 \
  && [ "$(cat "$F/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")" = 64 ] \
  && grep -q "already mounted" "$W/hp.log"; then
  e2e_pass "sluice-hugepages: 64 pages reserved, the existing mount used"
else
  e2e_fail "sluice-hugepages: $(cat "$W/hp.log")"
fi
hp SLUICE_HUGEPAGES=8 >/dev/null 2>&1
[ "$(cat "$F/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")" = 64 ] \
  && e2e_pass "sluice-hugepages never lowers the count" || e2e_fail "sluice-hugepages lowered the count"
if hp SLUICE_HUGEPAGE_SIZE_KB=1048576 >"$W/hp.log" 2>&1; then
  e2e_fail "sluice-hugepages accepted a size the kernel does not offer"
else
  e2e_pass "an unoffered size fails: $(cat "$W/hp.log")"
fi

# 7. make install into a DESTDIR: the expected files, modes and paths; a second install keeps
# the config.
D=$W/destdir
# A make running this test passes its own command-line variables down (PREFIX=...): not here.
unset MAKEFLAGS MFLAGS MAKELEVEL
make -s -C "$E2E_REPO" install DESTDIR="$D" SLUICE_BIN="$SLUICE" >"$W/install.log" 2>&1 \
  || e2e_die "make install DESTDIR=$D failed: $(cat "$W/install.log")"
files=$(cd "$D" && find . -type f | sort | tr '\n' ' ')
want="./etc/default/sluice ./etc/sluice/sluice.yaml ./usr/local/bin/sluice ./usr/local/lib/systemd/system/sluice-hugepages.service ./usr/local/lib/systemd/system/sluice.service ./usr/local/libexec/sluice/sluice-hugepages ./usr/local/share/doc/sluice/systemd.md "
[ "$files" = "$want" ] && e2e_pass "make install DESTDIR: $files" || e2e_fail "make install DESTDIR: got $files, want $want"
U=$D/usr/local/lib/systemd/system/sluice.service
grep -qx "ExecStart=/usr/local/bin/sluice run -c /etc/sluice/sluice.yaml" "$U" \
  && grep -qx "ExecReload=/usr/local/bin/sluice reload -c /etc/sluice/sluice.yaml" "$U" \
  && ! grep -q "@" "$U" "$D/usr/local/lib/systemd/system/sluice-hugepages.service" \
  && e2e_pass "the installed units name /usr/local/bin/sluice and /etc/sluice/sluice.yaml" \
  || e2e_fail "the installed unit's paths: $(grep -h '@\|^Exec' "$U")"
"$D/usr/local/bin/sluice" version >/dev/null && e2e_pass "the installed binary runs" || e2e_fail "the installed binary does not run"
echo "# edited" >>"$D/etc/sluice/sluice.yaml"
make -s -C "$E2E_REPO" install DESTDIR="$D" SLUICE_BIN="$SLUICE" >"$W/install.log" 2>&1 || e2e_fail "a second make install failed"
tail -n 1 "$D/etc/sluice/sluice.yaml" | grep -q "# edited" \
  && e2e_pass "a second install keeps the config" || e2e_fail "a second install replaced the config"

# 8. systemd-analyze verify on units installed with paths that exist (DESTDIR=/ keeps make
# from telling systemd; without --root verify resolves the targets the units name).
if command -v systemd-analyze >/dev/null 2>&1; then
  V=$W/verify
  make -s -C "$E2E_REPO" install DESTDIR=/ PREFIX="$V/usr/local" SYSCONFDIR="$V/etc" SLUICE_BIN="$SLUICE" \
    >"$W/install.log" 2>&1 || e2e_die "make install PREFIX=$V failed: $(cat "$W/install.log")"
  rc=0
  timeout 60 systemd-analyze verify "$V"/usr/local/lib/systemd/system/sluice.service \
    "$V"/usr/local/lib/systemd/system/sluice-hugepages.service >"$W/verify.log" 2>&1 || rc=$?
  # verify exits 0 on warnings (an unknown key, say): any output counts as a failure.
  if [ "$rc" = 0 ] && [ ! -s "$W/verify.log" ]; then
    e2e_pass "systemd-analyze verify ($(systemd-analyze --version | head -n 1)): no complaints"
  else
    e2e_fail "systemd-analyze verify exit $rc: $(cat "$W/verify.log")"
  fi
else
  e2e_log "no systemd-analyze: units not verified"
fi
exit "$E2E_FAILED"
