#!/usr/bin/python3
"""Reads sluice's /metrics with the official Python client's OpenMetrics parser.

  om.py families URL              every family below (docs/design.md, "Metrics") present, with
                                  its type and label names
  om.py get URL SAMPLE [K=V ...]  one sample's value (exit 3 when absent), e.g.
                                  om.py get URL sluice_config_reloads_total result=success
  om.py dump URL                  every sample as `name{labels} value`, sorted (for diffs/logs)
"""

import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

# Families from docs/design.md ("Metrics"): name (as the parser names the family) ->
# (type, label names).
FAMILIES = {
    "sluice_rx_packets": ("counter", {"port", "queue"}),
    "sluice_tx_packets": ("counter", {"port", "queue"}),
    "sluice_dropped_packets": ("counter", {"reason"}),
    "sluice_port_rx_dropped": ("counter", {"port", "reason"}),
    "sluice_service_packets": ("counter", {"service"}),
    "sluice_service_bytes": ("counter", {"service"}),
    "sluice_backend_packets": ("counter", {"service", "backend"}),
    "sluice_backend_up": ("gauge", {"service", "backend"}),
    "sluice_backend_flows": ("gauge", {"service", "backend"}),
    "sluice_flows": ("gauge", {"core"}),
    "sluice_flows_created": ("counter", set()),
    "sluice_flows_evicted": ("counter", {"reason"}),
    "sluice_config_reloads": ("counter", {"result"}),
    "sluice_config_epoch": ("gauge", set()),
    "sluice_table_info": ("gauge", {"service", "fingerprint"}),
    "sluice_packet_latency_seconds": ("histogram", set()),
    "sluice_mempool_free": ("gauge", {"port"}),
    "sluice_build_info": ("gauge", {"version", "dpdk"}),
    "sluice_start_time_seconds": ("gauge", set()),
    # The per-core worker families.
    "sluice_worker_busy_seconds": ("counter", {"core"}),
    "sluice_worker_bursts": ("counter", {"core"}),
}


def scrape(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=3) as r:
        ctype = r.headers.get("Content-Type", "")
        return r.read().decode(), ctype


def parse(text):
    # The parser is lazy: list() makes it read (and validate) the whole exposition.
    return list(text_string_to_metric_families(text))


def families(url):
    text, ctype = scrape(url)
    fams = {f.name: f for f in parse(text)}
    failed = 0

    def check(ok, what, detail=""):
        nonlocal failed
        print(("PASS: " if ok else "FAIL: ") + what + ("" if ok else f": {detail}"))
        failed += not ok

    check(ctype.startswith("application/openmetrics-text"), "/metrics is OpenMetrics text", ctype)
    for name, (mtype, labels) in FAMILIES.items():
        f = fams.get(name)
        if f is None:
            check(False, f"family {name} exists", "absent")
            continue
        seen = set()
        for s in f.samples:
            seen |= set(s.labels) - {"le"}
        ok = f.type == mtype and (seen == labels if f.samples else True)
        check(ok and bool(f.samples), f"{name}: {mtype} with labels {sorted(labels)}",
              f"type {f.type}, labels {sorted(seen)}, {len(f.samples)} samples")
    h = fams.get("sluice_packet_latency_seconds")
    if h is not None:
        names = {s.name for s in h.samples}
        check({"sluice_packet_latency_seconds_bucket", "sluice_packet_latency_seconds_count",
               "sluice_packet_latency_seconds_sum"} <= names,
              "the latency histogram has buckets, _count and _sum", sorted(names))
    return 1 if failed else 0


def get(url, sample, pairs):
    want = dict(p.split("=", 1) for p in pairs)
    text, _ = scrape(url)
    for f in parse(text):
        for s in f.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in want.items()):
                v = s.value
                print(int(v) if float(v).is_integer() else v)
                return 0
    return 3


def dump(url):
    text, _ = scrape(url)
    lines = []
    for f in parse(text):
        for s in f.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            lines.append(f"{s.name}{{{labels}}} {s.value}")
    print("\n".join(sorted(lines)))
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "families":
        return families(argv[1] + "/metrics")
    if len(argv) >= 3 and argv[0] == "get":
        return get(argv[1] + "/metrics", argv[2], argv[3:])
    if len(argv) >= 2 and argv[0] == "dump":
        return dump(argv[1] + "/metrics")
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
