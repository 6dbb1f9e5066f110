#!/usr/bin/env bash
# Short run of every cargo-fuzz target (needs the nightly toolchain; cargo-fuzz is installed if missing).
# Built with debug assertions and overflow checks (cargo fuzz's -a, off by default in its release
# builds), so an integer overflow in a parser panics and fails the run instead of wrapping.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-15}"
# cargo-fuzz needs nightly: rustup fetches it when it can (a fresh machine has only stable).
if ! cargo +nightly --version >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1; then
  echo "fuzz-smoke: installing the nightly toolchain with rustup" >&2
  timeout 600 rustup toolchain install nightly --profile minimal >/tmp/sluice-nightly.log 2>&1 || true
fi
# No fuzzing is a failure, not a pass: FUZZ_SKIP_OK=1 accepts it (a machine without rustup).
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz-smoke: no nightly toolchain could be installed (see /tmp/sluice-nightly.log);" \
    "the corpus replay in 'cargo test' still ran" >&2
  [ "${FUZZ_SKIP_OK:-0}" = 1 ] && { echo "fuzz-smoke: SKIPPED (FUZZ_SKIP_OK=1)" >&2; exit 0; }
  exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz >/tmp/sluice-cargo-fuzz.log 2>&1 \
  || { cat /tmp/sluice-cargo-fuzz.log; exit 1; }
ran=0
# The root package's fuzz/ (crate ".": the command line's readers) and every member crate's.
for dir in fuzz */fuzz; do
  [ -d "$dir" ] || continue
  crate="$(dirname "$dir")"
  # An assignment, so that a failing `cargo fuzz list` stops the script (set -e).
  targets=$(cd "$crate" && cargo +nightly fuzz list)
  [ -n "$targets" ] || { echo "fuzz-smoke: $crate lists no fuzz target" >&2; exit 1; }
  for target in $targets; do
    ran=$((ran + 1))
    echo "fuzz-smoke: $crate/$target for ${secs}s"
    corpus="$crate/fuzz/corpus/$target"
    mkdir -p "$corpus"
    (cd "$crate" && cargo +nightly fuzz run --debug-assertions "$target" "fuzz/corpus/$target" -- \
      -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=0 >/tmp/sluice-fuzz-"$target".log 2>&1) \
      || { tail -50 /tmp/sluice-fuzz-"$target".log; exit 1; }
  done
done
[ "$ran" -gt 0 ] || { echo "fuzz-smoke: no fuzz target ran" >&2; exit 1; }
echo "fuzz-smoke: done ($ran targets)"
