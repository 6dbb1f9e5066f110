#!/usr/bin/env bash
# NAT and FullNAT with two workers: tests/e2e/38 on two af_packet queues, shorter (curl through
# both modes and families, DNS, a short pgbench; no killed backend). Replies land on either
# queue, so the worker not owning a connection hands its packets over; every request must
# still succeed and the redirect counter must move.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
QUEUES=2 NAT_KILL=0 PGBENCH_SECONDS=${PGBENCH_SECONDS:-5} DNS_QUERIES=${DNS_QUERIES:-300} \
  exec bash "$REPO/tests/e2e/38-netns-nat.sh"
