#!/usr/bin/env bash
# The Pktgen Lua script and TRex profile of bench/ (parse, dry-run, build streams against the
# TRex client library from PyPI) and bench/plot.py on synthetic results; no NIC, no DPDK.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash bench/check-profiles.sh
