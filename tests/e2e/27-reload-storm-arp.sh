#!/usr/bin/env bash
# 22's reload storm with every backend on the link, resolved by ARP (issue 17: neighbours before
# traffic): not one packet dropped for an unresolved next hop during 50 reloads at 200k pps.
E2E_NAME=reload-storm-arp ONLINK=1 exec bash "$(dirname "$0")/22-reload-under-load.sh"
