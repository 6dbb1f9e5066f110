#!/usr/bin/python3
"""The metrics-and-reload end-to-end test's world (tests/e2e/21-metrics-reload.sh).

  reload_world.py traffic OUT.pcap
      writes the input capture and prints what sluice must count, as JSON
  reload_world.py config OUT.yaml VARIANT --eal JSON --hc-port N
      writes one config (EAL arguments as a JSON list); VARIANT is one of VARIANTS. Every variant is the base file with one
      edit, so the line an invalid variant breaks is known (printed as JSON: {"line": L}).
"""

import argparse
import json
import os
import random
import sys

from scapy.all import ARP, IP, TCP, UDP, Ether, Raw, wrpcap

APPLIANCE_MAC = "02:70:63:61:70:00"  # any: sluice does not filter on destination MAC
GATEWAY_MAC = "02:00:00:00:00:01"
WEB = ("198.51.100.10", 80, ["203.0.113.11", "203.0.113.12"])
DNS = ("198.51.100.20", 53, ["203.0.113.21", "203.0.113.22"])
HC = ("198.51.100.40", 8080, ["127.0.0.2", "127.0.0.3"])
TABLE_SIZE = 4099

BASE = """\
dpdk:
  args: [{eal}]
  mbufs: 4095
interfaces:
  - name: uplink
    device: net_pcap0
    address: 192.0.2.10/24
    gateway: 192.0.2.1
    gateway_mac: "{gw}"
flows:
  # Longer than the test: the flow counts it checks must not age out.
  udp_timeout: 10m
  tcp_established_timeout: 10m
services:
  - name: web
    vip: {web_vip}
    port: {web_port}
    protocol: tcp
    forwarding: ipip
    table_size: {size}
    backends:
      - address: {web0}
      - address: {web1}
  - name: dns
    vip: {dns_vip}
    port: {dns_port}
    protocol: udp
    forwarding: gue
    table_size: {size}
    backends:
      - address: {dns0}
      - address: {dns1}
  - name: hc
    vip: {hc_vip}
    port: {hc_port}
    protocol: tcp
    forwarding: ipip
    table_size: {size}
    backends:
      - address: {hc0}
      - address: {hc1}
    health_check:
      kind: http
      port: {probe_port}
      path: /
      interval: 500ms
      timeout: 400ms
      rise: 1
      fall: 3
metrics:
  listen: 127.0.0.1:0
"""

# variant -> (old text, new text): one edit of BASE.
VARIANTS = {
    "base": None,
    # Valid: a third web backend.
    "more": ("      - address: 203.0.113.12\n",
             "      - address: 203.0.113.12\n      - address: 203.0.113.13\n"),
    # Invalid YAML on the web service's protocol line.
    "bad-syntax": ("    protocol: tcp\n    forwarding: ipip\n    table_size: 4099\n"
                   "    backends:\n      - address: 203.0.113.11",
                   "    protocol: tcp: [\n    forwarding: ipip\n    table_size: 4099\n"
                   "    backends:\n      - address: 203.0.113.11"),
    # Valid YAML, invalid value: a table size that is not prime (dns service).
    "bad-table": ("    forwarding: gue\n    table_size: 4099\n",
                  "    forwarding: gue\n    table_size: 4000\n"),
    # A restart-only setting.
    "restart": ("  udp_timeout: 10m\n", "  udp_timeout: 10m\n  capacity: 4096\n"),
    # Valid: "more" plus a draining-weight change, for the SIGHUP storm.
    "storm": ("      - address: 203.0.113.12\n",
              "      - address: 203.0.113.12\n        weight: 50\n      - address: 203.0.113.13\n"),
    # Valid: "storm" plus a third dns backend, applied with POST /-/reload.
    "post": ("      - address: 203.0.113.22\n",
             "      - address: 203.0.113.22\n      - address: 203.0.113.23\n"),
    # Valid with a warning: "post" with the dns table below 100 x its 3 backends.
    "warned": ("    forwarding: gue\n    table_size: 4099\n",
               "    forwarding: gue\n    table_size: 211\n"),
    # Valid: "post" without the hc service's health_check block (its backends are always up).
    "unchecked": ("    health_check:\n      kind: http\n      port: {probe_port}\n      path: /\n"
                  "      interval: 500ms\n      timeout: 400ms\n      rise: 1\n      fall: 3\n", ""),
}


def config(variant, eal, probe_port):
    text = BASE.format(
        eal=", ".join(json.dumps(a) for a in eal), gw=GATEWAY_MAC, size=TABLE_SIZE,
        web_vip=WEB[0], web_port=WEB[1], web0=WEB[2][0], web1=WEB[2][1],
        dns_vip=DNS[0], dns_port=DNS[1], dns0=DNS[2][0], dns1=DNS[2][1],
        hc_vip=HC[0], hc_port=HC[1], hc0=HC[2][0], hc1=HC[2][1], probe_port=probe_port)
    chain = {"storm": ["storm"], "post": ["storm", "post"],
             "unchecked": ["storm", "post", "unchecked"],
             "warned": ["storm", "post", "warned"]}.get(variant, [variant])
    line = None
    for v in chain:
        edit = VARIANTS[v]
        if edit is None:
            continue
        old, new = (x.format(probe_port=probe_port) for x in edit)
        assert text.count(old) == 1, (v, old)
        at = text.index(old)
        text = text.replace(old, new)
        # The line the edit changes first.
        first = next((i for i, (x, y) in enumerate(zip(old.split("\n"), new.split("\n")))
                      if x != y), 0)
        line = text[:at].count("\n") + 1 + first
    return text, line


def traffic(path):
    rng = random.Random(21)
    frames = []
    want = {"web": 0, "dns": 0, "hc": 0, "web_bytes": 0, "dns_bytes": 0, "hc_bytes": 0,
            "not_vip": 0, "replies": 0, "flows": 0}

    def eth():
        return Ether(src=GATEWAY_MAC, dst=APPLIANCE_MAC)

    streams = []
    for _ in range(40):
        src, sport = f"192.0.2.{rng.randint(100, 199)}", rng.randint(1024, 65535)
        base = eth() / IP(src=src, dst=WEB[0]) / TCP(sport=sport, dport=WEB[1])
        s = []
        for f in ("S", "A", "PA"):
            p = base.copy()
            p[TCP].flags = f
            if f == "PA":
                p = p / Raw(bytes(rng.randint(1, 400)))
            s.append(("web", p))
        streams.append(s)
    for _ in range(30):
        src, sport = f"192.0.2.{rng.randint(100, 199)}", rng.randint(1024, 65535)
        streams.append([("dns", eth() / IP(src=src, dst=DNS[0]) / UDP(sport=sport, dport=DNS[1])
                         / Raw(bytes(rng.randint(0, 300)))) for _ in range(2)])
    for i in range(7):
        streams.append([("not_vip", eth() / IP(src="192.0.2.99", dst="198.51.100.99")
                         / UDP(sport=1000 + i, dport=9))])
    for vip in (WEB[0], DNS[0]):
        streams.append([("replies", Ether(src="02:00:00:00:03:01", dst="ff:ff:ff:ff:ff:ff")
                         / ARP(op=1, hwsrc="02:00:00:00:03:01", psrc="192.0.2.77", pdst=vip))])
    want.update(web_flows=40, dns_flows=30, flows=70)
    while streams:
        i = rng.randrange(len(streams))
        kind, p = streams[i].pop(0)
        if not streams[i]:
            streams.pop(i)
        frames.append(p)
        want[kind] += 1
        if kind in ("web", "dns"):
            want[kind + "_bytes"] += len(p[IP])
    wrpcap(path, frames)
    want["frames"] = len(frames)
    want["forwarded"] = want["web"] + want["dns"]
    return want


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("traffic")
    t.add_argument("out")
    c = sub.add_parser("config")
    c.add_argument("out")
    c.add_argument("variant", choices=sorted(VARIANTS))
    c.add_argument("--eal", required=True, help="EAL arguments as a JSON list")
    c.add_argument("--hc-port", type=int, required=True)
    a = ap.parse_args()
    if a.cmd == "traffic":
        print(json.dumps(traffic(a.out)))
    else:
        text, line = config(a.variant, json.loads(a.eal), a.hc_port)
        with open(a.out + ".tmp", "w") as f:
            f.write(text)
        # Renamed into place: a reload never reads a half-written file.
        os.replace(a.out + ".tmp", a.out)
        print(json.dumps({"line": line}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
