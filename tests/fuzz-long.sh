#!/usr/bin/env bash
# `make fuzz`: every cargo-fuzz target for a set number of executions, then a table of what each did.
# FUZZ_RUNS (default 10,000,000) executions per target, one target at a time, each growing its
# corpus in <crate>/fuzz/corpus/<target> (the seed-* files in it are committed; what libFuzzer
# adds is not). FUZZ_TARGETS (default: all) limits it to some, e.g. "process config".
# FUZZ_SANITIZER (default address, as the smoke run; none is several times faster, and enough
# for targets whose code has no unsafe: all but process, which reaches flow.rs).
# FUZZ_TRACE_COMPARES (default yes): no builds without libFuzzer's compare tracing, which hands
# the mutator the operands of every comparison (how a corpus grows from seeds past magic values)
# but costs 3-6x the executions per second in loop-heavy targets (table_build, controller_events);
# for long runs from a corpus that has stopped growing.
# Every build has debug assertions and overflow checks on (cargo fuzz's -a, off by default in
# its release builds): an integer overflow in a parser panics and is found instead of wrapping.
# Per target the table gives libFuzzer's final counts: executions, cov (edges) and ft
# (features), corpus entries, seconds and executions per second. A crash, leak, timeout or
# out-of-memory fails the run and says where the input is and how to make it a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${FUZZ_RUNS:-10000000}
only=${FUZZ_TARGETS:-}
sanitizer=${FUZZ_SANITIZER:-address}
trace_compares=${FUZZ_TRACE_COMPARES:-yes}
trace=()
case $trace_compares in
  yes) ;;
  no) trace=(--no-trace-compares) ;;
  *) echo "fuzz: FUZZ_TRACE_COMPARES must be yes or no, got '$trace_compares'" >&2; exit 2 ;;
esac
[[ $runs =~ ^[0-9]+$ ]] && [ "$runs" -gt 0 ] || { echo "fuzz: FUZZ_RUNS must be a positive number, got '$runs'" >&2; exit 2; }
cargo +nightly --version >/dev/null 2>&1 || { echo "fuzz: needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz >/tmp/sluice-cargo-fuzz.log 2>&1 \
  || { cat /tmp/sluice-cargo-fuzz.log; exit 1; }

logs=$(mktemp -d /tmp/sluice-fuzz.XXXXXX)
rows=()
failed=0
# The root package's fuzz/ (crate ".") and every member crate's.
for dir in fuzz */fuzz; do
  [ -d "$dir" ] || continue
  crate=$(dirname "$dir")
  targets=$(cd "$crate" && cargo +nightly fuzz list)
  for target in $targets; do
    if [ -n "$only" ] && [[ " $only " != *" $target "* ]]; then continue; fi
    log="$logs/$crate-$target.log"
    mkdir -p "$crate/fuzz/corpus/$target"
    echo "fuzz: $crate/$target, $runs executions, sanitizer $sanitizer, trace compares $trace_compares, debug assertions (log: $log)"
    rc=0
    (cd "$crate" && cargo +nightly fuzz run --debug-assertions --sanitizer "$sanitizer" "${trace[@]}" "$target" "fuzz/corpus/$target" -- \
      -runs="$runs" -rss_limit_mb=4096 -print_final_stats=1) >"$log" 2>&1 || rc=$?
    # libFuzzer's own clock: the build before the run is not counted.
    secs=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log" | tail -1)
    rate=$(awk '/^stat::average_exec_per_sec:/ { print $2 }' "$log" | tail -1)
    # The final stats (stat::number_of_executed_units) and the last status line (cov:, ft:, corp:).
    execs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log" | tail -1)
    status=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$status")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$status")
    corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$status")
    result=ok
    if [ "$rc" -ne 0 ]; then
      result="FAIL (exit $rc)"
      failed=$((failed + 1))
      artifact=$(sed -nE 's/.*Test unit written to (\S+).*/\1/p' "$log" | tail -1)
      echo "fuzz: $crate/$target FAILED; the end of its log:" >&2
      grep -vE '^#[0-9]+' "$log" | tail -30 >&2
      if [ -n "$artifact" ]; then
        cat >&2 <<EOF
fuzz: the input is $artifact. To make it a regression test:
  reproduce:  (cd $crate && cargo +nightly fuzz run --debug-assertions $target $artifact)
  keep it:    cp $artifact $crate/fuzz/corpus/$target/seed-regression-<what-it-found>
  the corpus replay test ($crate/tests/*fuzz*.rs, which replays every seed-* file) now fails
  under 'cargo test' until the bug is fixed; commit the seed with the fix.
EOF
      fi
    fi
    rows+=("$(printf '%-10s %-18s %12s %7s %7s %7s %9s %10s  %s' "$crate" "$target" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${secs:-?}" "${rate:-?}" "$result")")
  done
done
[ "${#rows[@]}" -gt 0 ] || { echo "fuzz: no target ran (FUZZ_TARGETS='$only')" >&2; exit 1; }
echo
echo "fuzz: sanitizer $sanitizer, trace compares $trace_compares, debug assertions, $runs executions asked per target"
printf '%-10s %-18s %12s %7s %7s %7s %9s %10s  %s\n' crate target executions cov ft corpus seconds "execs/s" result
printf '%s\n' "${rows[@]}"
echo "fuzz: logs in $logs"
[ "$failed" -eq 0 ] || { echo "fuzz: $failed target(s) failed" >&2; exit 1; }
