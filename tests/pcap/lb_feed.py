#!/usr/bin/python3
"""Feeds sluice's net_pcap rx_pcap through a FIFO, in phases that follow what sluice does.

net_pcap replays a file as fast as the worker polls, so an ARP reply in a plain file would
arrive before sluice asks (and be ignored: it learns only next hops it is resolving). Through
a FIFO the feed waits: the pcap header first (EAL blocks opening the FIFO until then), then,
once sluice's ARP and ND requests for the on-link backends appear in control's tx capture,
phases A and B (unresolved packets, the backends' ARP replies and neighbour advertisements),
then, once /state shows every backend MAC learned, phase C (the mixed traffic); closing the
FIFO ends the input.
Everything fed is also written to --record (a plain pcap) with the intents in --manifest.
"""

import argparse
import json
import re
import struct
import sys
import time
import urllib.request

from scapy.all import ARP, Ether, ICMPv6ND_NS, RawPcapReader

import lb_traffic

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def record(frame, ts):
    return struct.pack("<IIII", int(ts), int(ts * 1e6) % 1000000, len(frame), len(frame)) + frame


def requests(path):
    """(appliance MAC, addresses asked by ARP or ND) from a capture still being written."""
    asked, mac = set(), None
    try:
        for data, _ in RawPcapReader(path):
            p = Ether(data)
            if ARP in p and p[ARP].op == 1 and p[ARP].psrc == lb_traffic.APPLIANCE_IP:
                asked.add(p[ARP].pdst)
                mac = p[ARP].hwsrc
            elif ICMPv6ND_NS in p:
                asked.add(p[ICMPv6ND_NS].tgt)
    except Exception:  # a record cut short by the writer: read what is complete
        pass
    return mac, asked


def wait(what, deadline, probe):
    while time.monotonic() < deadline:
        r = probe()
        if r:
            return r
        time.sleep(0.05)
    sys.exit(f"lb_feed: timed out waiting for {what}")


def metrics_url(log):
    m = re.search(r"^sluice: metrics on (http://[^/\s]+)/metrics$", open(log).read(), re.M)
    return m.group(1) if m else None


def resolved(base, wanted):
    try:
        with urllib.request.urlopen(base + "/state", timeout=2) as r:
            state = json.load(r)
    except OSError:
        return False
    known = {n["address"]: n["mac"] for n in state.get("neighbours", [])}
    return all(known.get(ip) == mac for ip, mac in wanted.items())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fifo", required=True)
    ap.add_argument("--ctl-capture", required=True, help="tx_pcap of sluice's control queue")
    ap.add_argument("--log", required=True, help="sluice's stderr (for the metrics address)")
    ap.add_argument("--record", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--timeout", type=float, default=40)
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    urllib.request.install_opener(opener)

    fifo = open(a.fifo, "wb", buffering=0)  # blocks until sluice's EAL opens it
    fifo.write(PCAP_HEADER)
    rec = open(a.record, "wb")
    rec.write(PCAP_HEADER)
    on_link = lb_traffic.ON_LINK

    def asked_for_every_backend():
        mac, asked = requests(a.ctl_capture)
        return mac if set(on_link) <= asked else None

    mac = wait("sluice's ARP and ND requests for the on-link backends", deadline,
               asked_for_every_backend)
    phase_a, phase_b, phase_c = lb_traffic.build(mac)
    fed = []

    def send(frames):
        buf = b""
        for frame, intent in frames:
            fed.append((frame, intent))
            buf += record(frame, time.time())
        fifo.write(buf)
        rec.write(buf)

    send(phase_a + phase_b)
    base = wait("sluice's metrics address", deadline, lambda: metrics_url(a.log))
    wait("/state to show every on-link backend's MAC", deadline, lambda: resolved(base, on_link))
    send(phase_c)
    fifo.close()
    rec.close()
    json.dump({"appliance_mac": mac, "intents": [i for _, i in fed]}, open(a.manifest, "w"))
    print(f"lb_feed: fed {len(fed)} frames (A {len(phase_a)}, B {len(phase_b)}, C {len(phase_c)})")


if __name__ == "__main__":
    main()
