#!/usr/bin/env bash
# deploy/'s Grafana dashboard and Prometheus alert rules against the real /metrics.
# (a) deploy/grafana/sluice.json is importable Grafana JSON: unique panel ids, a prometheus
#     `datasource` variable and an `instance` variable, every query panel on ${datasource} with
#     targets and unique refIds, no overlapping panels.
# (b) With promtool (Debian's `prometheus` package; SKIPPED without it): `promtool check rules`
#     on deploy/prometheus/sluice.rules.yml, `promtool test rules` on its unit tests
#     (sluice.rules.test.yml: each alert fires on series that should fire it, and only then), and
#     `promtool check rules` on every dashboard expression written as a recording rule (PromQL
#     syntax, Grafana's variables replaced).
# (c) `sluice demo` runs and /metrics is scraped twice while traffic flows: every metric an alert
#     rule, a panel, an annotation or a variable selects is a sample name in the scrape, every
#     label it matches or groups on is one those samples have, every literal label value
#     (reason="...", result="...") one the scrape has (tests/pcap/exprs.py check). The demo has no
#     exception path, fullnat connection or announced VIP: their families (sluice_exception_*,
#     sluice_nat_ports_in_use, sluice_vip_announced) are declared in its scrape with no samples,
#     so their names and types are checked against the scrape and their labels and values
#     against docs/design.md's metrics table here, and against live samples by the tests that
#     make them (e2e_check_live in 33 exception path, 35 announce, 38 fullnat).
# (d) With promtool: every dashboard expression evaluated over the two scrapes (as two
#     instances) gives at least one series, so no panel is empty for a join on a missing label;
#     the families declared without samples get one series each with docs/design.md's labels.
# `promtool check metrics` is not run on the scrape: promtool 2.42 lints the Prometheus text
# format, and OpenMetrics names HELP/TYPE after the family (sluice_rx_packets, samples
# sluice_rx_packets_total), so it reports "no help text" for every counter although the
# exposition is valid OpenMetrics (tests/e2e/21 parses it with the OpenMetrics parser).
# Environment: SLUICE (default: build target/release), PROMTOOL (default: promtool on PATH).
set -euo pipefail
E2E_NAME=dashboards
source "$(dirname "$0")/lib/sluice.sh"
W=$E2E_WORK
RULES=$E2E_REPO/deploy/prometheus/sluice.rules.yml
RULE_TESTS=$E2E_REPO/deploy/prometheus/sluice.rules.test.yml
DASH=$E2E_REPO/deploy/grafana/sluice.json
DESIGN=$E2E_REPO/docs/design.md
X=("$PY" "$E2E_REPO/tests/pcap/exprs.py")
PROMTOOL=${PROMTOOL:-promtool}
# run WHAT CMD...: PASS with WHAT, or FAIL with the command's output.
run() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    e2e_pass "$what"
  else
    printf '%s\n' "$out" | sed 's/^/    /'
    e2e_fail "$what"
  fi
}

# --- (a) the dashboard's JSON -------------------------------------------------------------
if out=$("${X[@]}" dashboard "$DASH" 2>&1); then
  e2e_pass "dashboard JSON: ${out#"$E2E_REPO/"}"
else
  printf '%s\n' "$out" | sed 's/^/    /'
  e2e_fail "deploy/grafana/sluice.json is not a dashboard Grafana can import (above)"
fi

# --- (b) promtool on the rules and the dashboard's PromQL ------------------------------------
have_promtool=0
if command -v "$PROMTOOL" >/dev/null 2>&1; then
  have_promtool=1
  e2e_log "$("$PROMTOOL" --version 2>&1 | head -n 1)"
  run "promtool check rules $(basename "$RULES")" "$PROMTOOL" check rules "$RULES"
  # The unit tests expect alerts by their labels; the copy without annotations spares them
  # repeating the prose (`promtool check rules` above has parsed the annotation templates).
  mkdir -p "$W/rules"
  "${X[@]}" promtool-dir "$RULES" "$DASH" "$W/rules" >/dev/null
  cp "$RULE_TESTS" "$W/rules/"
  run "promtool test rules $(basename "$RULE_TESTS")" \
    bash -c 'cd "$1" && "$2" test rules "$3"' _ "$W/rules" "$PROMTOOL" "$(basename "$RULE_TESTS")"
  run "promtool check rules: every dashboard expression parses as PromQL" \
    "$PROMTOOL" check rules "$W/rules/dashboard.rules.yml"
else
  e2e_skip_part "promtool not installed (Debian package prometheus): rules syntax, rule unit tests and PromQL parsing not checked"
fi

# --- (c) the expressions' metrics against a real /metrics ---------------------------------------
e2e_binary
LOG=$W/demo.log
e2e_demo "$LOG"
# Traffic flowing and every service's table exported before the first scrape.
deadline=$((SECONDS + 20))
until e2e_get /metrics >"$W/scrape1.txt" 2>/dev/null &&
  grep -Eq '^sluice_rx_packets_total\{.*\} [1-9]' "$W/scrape1.txt" &&
  [ "$(grep -c '^sluice_table_info{' "$W/scrape1.txt")" -ge 2 ]; do
  [ "$SECONDS" -lt "$deadline" ] || e2e_die "no traffic or no sluice_table_info in /metrics after 20 s"
  kill -0 "$SLUICE_PID" 2>/dev/null || e2e_die "sluice demo exited early"
  sleep 0.2
done
sleep 1
e2e_get /metrics >"$W/scrape2.txt" || e2e_die "second scrape of $METRICS/metrics failed"
e2e_stop 20
[ "$SLUICE_RC" -eq 0 ] || e2e_fail "sluice demo exited with $SLUICE_RC after SIGTERM (want 0)"
e2e_log "scraped $(grep -vc '^#' "$W/scrape2.txt") samples"

if out=$("${X[@]}" check "$RULES" "$DASH" "$W/scrape2.txt" "$DESIGN" 2>&1); then
  grep '^declared' <<<"$out" | sed 's/^/    /' || true
  e2e_pass "every metric, label and label value the rules and the dashboard use is in /metrics: $(tail -n 1 <<<"$out")"
else
  printf '%s\n' "$out" | sed 's/^/    /'
  e2e_fail "the rules or the dashboard use metrics, labels or values /metrics does not have (above)"
fi

# --- (d) the dashboard's expressions evaluated over the real scrapes -----------------------------
if [ "$have_promtool" -eq 1 ]; then
  mkdir -p "$W/eval"
  n=$("${X[@]}" eval-dir "$DASH" "$W/scrape1.txt" "$W/scrape2.txt" "$W/eval" "$DESIGN")
  run "every dashboard expression gives a series over the real scrapes (${n#*: })" \
    bash -c 'cd "$1" && "$2" test rules eval.test.yml' _ "$W/eval" "$PROMTOOL"
else
  e2e_skip_part "promtool not installed: dashboard expressions not evaluated over the scrape"
fi

[ "$E2E_FAILED" -eq 0 ] || exit 1
e2e_pass "dashboard and alert rules match the real /metrics"
