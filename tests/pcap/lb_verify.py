#!/usr/bin/python3
"""Checks what sluice wrote (tx captures, /metrics) against the fed input and its intents.

Every packet is read with scapy and every checksum recomputed by scapy; the scrape is parsed by
prometheus_client's OpenMetrics parser. Nothing here trusts sluice's own parsers. Prints one
PASS/FAIL line per check and exits 1 if any failed.
"""

import argparse
import json
import sys
from collections import Counter, defaultdict

from prometheus_client.openmetrics.parser import text_string_to_metric_families
from scapy.all import ARP, ICMP, IP, UDP, IPerror, rdpcap

import lb_traffic

GUE_PORT = 6080
failures = 0


def check(ok, what, detail=""):
    global failures
    if ok:
        print(f"PASS: {what}")
    else:
        failures += 1
        print(f"FAIL: {what}" + (f": {detail}" if detail else ""))
    return ok


def ip_checksum_ok(ip):
    """The IPv4 header checksum as scapy computes it equals the one on the wire."""
    fresh = ip.copy()
    del fresh.chksum
    return IP(bytes(fresh)).chksum == ip.chksum


def l4_checksum_ok(pkt, layer):
    fresh = pkt.copy()
    del fresh[layer].chksum
    return type(pkt)(bytes(fresh))[layer].chksum == pkt[layer].chksum


def samples(text):
    """{(name, frozenset(labels)): value} and {family: (type, set of label-name tuples)}."""
    values, families = {}, {}
    for fam in text_string_to_metric_families(text):
        names = set()
        for s in fam.samples:
            values[(s.name, frozenset(s.labels.items()))] = s.value
            names.add(tuple(sorted(s.labels)))
        families[fam.name] = (fam.type, names)
    return values, families


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--output", required=True, help="tx_pcap of the worker's queue")
    ap.add_argument("--ctl-output", required=True, help="tx_pcap of control's queue")
    ap.add_argument("--metrics", required=True, help="a /metrics scrape after the input ended")
    a = ap.parse_args()

    manifest = json.load(open(a.manifest))
    intents = manifest["intents"]
    mac = manifest["appliance_mac"]
    inp = rdpcap(a.input)
    out = rdpcap(a.output)
    ctl = rdpcap(a.ctl_output)
    if not check(len(inp) == len(intents), "the recorded input matches its manifest",
                 f"{len(inp)} frames, {len(intents)} intents"):
        return 1

    # The IP packet of every input frame to be forwarded, by its exact bytes.
    forward = {}
    for i, (p, intent) in enumerate(zip(inp, intents)):
        if intent["kind"] == "forward":
            forward[bytes(p[IP])] = i
    check(len(forward) == sum(1 for x in intents if x["kind"] == "forward"),
          "every input packet to forward is unique (so outputs map back to one input)")
    dropped_inputs = {bytes(p)[14:] for p, x in zip(inp, intents) if x["kind"] == "drop"}

    seen = Counter()  # input index -> times it came out
    flow_backends = defaultdict(set)
    backend_packets = Counter()
    service_bytes = Counter()
    replies = Counter()
    problems = defaultdict(list)
    gw, app_ip = lb_traffic.GATEWAY_MAC, lb_traffic.APPLIANCE_IP

    def bad(kind, msg):
        problems[kind].append(msg)

    for n, p in enumerate(out):
        raw = bytes(p)
        if p.src != mac:
            bad("source MAC", f"out #{n}: {p.src}")
        if ARP in p:
            x = p[ARP]
            if (x.op != 2 or x.hwsrc != mac or p.dst != "02:00:00:00:03:01"
                    or x.hwdst != "02:00:00:00:03:01" or x.pdst != "192.0.2.77"):
                bad("ARP reply", f"out #{n}: {x.summary()}")
            replies[("arp", x.psrc)] += 1
            continue
        if IP not in p:
            bad("unexpected", f"out #{n}: {p.summary()}")
            continue
        o = p[IP]
        if not ip_checksum_ok(o):
            bad("IP checksum", f"out #{n}: {o.summary()}")
        if o.proto == 1 and ICMP in p:
            ic = p[ICMP]
            if not l4_checksum_ok(p, ICMP):
                bad("ICMP checksum", f"out #{n}")
            if ic.type == 0:
                replies[("echo", o.src, ic.id, ic.seq, bytes(ic.payload))] += 1
                if o.dst != "192.0.2.150" or p.dst != lb_traffic.CLIENT_L2_SRC:
                    bad("echo reply", f"out #{n}: {o.summary()} to {p.dst}")
            elif ic.type == 3 and ic.code == 4:
                replies[("too_big", o.dst, ic.nexthopmtu)] += 1
                q = p[IPerror] if IPerror in p else None
                if q is None or q.src != o.dst or q.dst != o.src:
                    bad("too-big quote", f"out #{n}: {p.summary()}")
            else:
                bad("unexpected", f"out #{n}: ICMP {ic.type}/{ic.code}")
            continue
        # Forwarded: find the input packet and its service, then check the encapsulation.
        if o.proto == 4:
            inner, mode = bytes(o.payload), "ipip"
        elif o.proto == 17 and UDP in p and p[UDP].dport == GUE_PORT:
            inner, mode = bytes(p[UDP].payload), "gue"
        else:
            inner, mode = raw[14:], "l2-dsr"
        i = forward.get(inner)
        if i is None:
            bad("unexpected", f"out #{n}: {p.summary()}"
                + (" (a dropped input came out)" if inner in dropped_inputs else ""))
            continue
        seen[i] += 1
        intent = intents[i]
        svc = lb_traffic.BY_NAME[intent["service"]]
        src_ip = inp[i][IP]
        if svc.forwarding != mode:
            bad("forwarding mode", f"out #{n}: {mode} for service {svc.name} ({svc.forwarding})")
            continue
        if mode == "l2-dsr":
            backend = next((b for b, m in svc.macs.items() if m == p.dst), None)
            if backend is None:
                bad("l2-dsr next hop", f"out #{n}: to {p.dst}, not a backend MAC")
                continue
            if p.type != 0x0800:
                bad("l2-dsr ethertype", f"out #{n}: {p.type:#x}")
        else:
            backend = o.dst
            outer_len = 20 + len(inner) + (8 if mode == "gue" else 0)
            ok = (p.dst == gw and p.type == 0x0800 and o.version == 4 and o.ihl == 5
                  and o.src == app_ip and o.dst in svc.backends and o.ttl == 64
                  and o.len == outer_len and o.tos == src_ip.tos and o.frag == 0
                  and o.flags.MF == 0 and o.proto == (4 if mode == "ipip" else 17))
            if not ok:
                bad(f"{mode} outer header", f"out #{n}: {p.dst} {o.summary()} ttl {o.ttl} "
                    f"len {o.len} tos {o.tos}/{src_ip.tos}")
            if mode == "gue":
                u = p[UDP]
                # GUE variant 1: the inner IP header follows the UDP header directly.
                if u.len != 8 + len(inner) or inner[0] >> 6 != 1 or not 49152 <= u.sport:
                    bad("gue header", f"out #{n}: sport {u.sport} len {u.len} "
                        f"first byte {inner[0]:#x}")
                # RFC 768 / 8086: zero means no checksum over IPv4; anything else must verify.
                if u.chksum != 0 and not l4_checksum_ok(p, UDP):
                    bad("gue UDP checksum", f"out #{n}: {u.chksum:#x}")
        flow = tuple(intent["flow"])
        flow_backends[(svc.name, flow)].add(backend)
        backend_packets[(svc.name, backend)] += 1
        service_bytes[svc.name] += len(inner)

    for kind, msgs in sorted(problems.items()):
        check(False, f"output frames: {kind}", f"{len(msgs)} bad, first: {msgs[:3]}")
    nfwd = sum(1 for x in intents if x["kind"] == "forward")
    missing = [i for i in forward.values() if seen[i] == 0]
    dup = [i for i, c in seen.items() if c > 1]
    check(not missing, f"every one of {nfwd} packets to forward came out",
          f"{len(missing)} missing, e.g. inputs {missing[:5]}")
    check(not dup, "no packet came out twice", f"inputs {dup[:5]}")
    for mode in ("ipip", "gue", "l2-dsr"):
        check(not any(k.startswith(mode) for k in problems),
              f"{mode}: outer Ethernet/IP/UDP headers, checksums and inner bytes as expected")

    split = {k: v for k, v in flow_backends.items() if len(v) != 1}
    check(not split, f"each of {len(flow_backends)} flows reached exactly one backend",
          f"{len(split)} flows split, e.g. {list(split.items())[:2]}")
    for svc in lb_traffic.SERVICES:
        flows = Counter()
        for (name, _), bs in flow_backends.items():
            if name == svc.name:
                flows.update(bs)
        check(all(flows[b] > 0 for b in svc.backends),
              f"{svc.name}: flows spread over all {len(svc.backends)} backends",
              f"flows per backend {dict(flows)}")
        print(f"  {svc.name} ({svc.forwarding}): flows per backend "
              + ", ".join(f"{b}={flows[b]}" for b in svc.backends))

    # The appliance's own answers.
    for i, (p, x) in enumerate(zip(inp, intents)):
        if x["kind"] == "arp_reply":
            check(replies[("arp", x["asked"])] == 1, f"ARP request for {x['asked']} answered once",
                  f"{replies[('arp', x['asked'])]} replies")
        elif x["kind"] == "echo_reply":
            ic = p[ICMP]
            key = ("echo", p[IP].dst, ic.id, ic.seq, bytes(ic.payload))
            check(replies[key] == 1, f"ICMP echo to {p[IP].dst} answered once, same id, seq, data",
                  f"{replies[key]} replies")
        elif x["kind"] == "too_big":
            key = ("too_big", p[IP].src, x["mtu"])
            check(replies[key] == 1, f"oversized packet answered by fragmentation-needed "
                  f"(next-hop MTU {x['mtu']})", f"{dict(replies)}")

    # Control's queue: ARP requests for each l2-dsr backend, well formed.
    db = lb_traffic.BY_NAME["db"]
    asked = Counter()
    for p in ctl:
        x = p.getlayer(ARP)
        if (x is not None and x.op == 1 and p.dst == "ff:ff:ff:ff:ff:ff" and p.src == mac
                and x.hwsrc == mac and x.psrc == app_ip):
            asked[x.pdst] += 1
        else:
            check(False, "control queue sends only ARP requests", p.summary())
    check(set(asked) == set(db.backends), "ARP requests for exactly the l2-dsr backends",
          f"{dict(asked)}")

    # The counters tell the same story.
    values, _ = samples(open(a.metrics).read())

    def val(name, **labels):
        return values.get((name, frozenset(labels.items())))

    check(val("sluice_rx_packets_total", port="uplink", queue="0") == len(inp),
          f"sluice_rx_packets_total = {len(inp)} frames fed",
          f"{val('sluice_rx_packets_total', port='uplink', queue='0')}")
    check(val("sluice_tx_packets_total", port="uplink", queue="0") == len(out),
          f"sluice_tx_packets_total = {len(out)} frames in the worker's capture",
          f"{val('sluice_tx_packets_total', port='uplink', queue='0')}")
    want_drops = Counter(x["reason"] for x in intents if x["kind"] == "drop")
    want_drops["mtu_exceeded"] += sum(1 for x in intents if x["kind"] == "too_big")
    got_drops = {dict(k[1])["reason"]: v for k, v in values.items()
                 if k[0] == "sluice_dropped_packets_total"}
    for reason in sorted(set(want_drops) | {r for r, v in got_drops.items() if v}):
        check(got_drops.get(reason) == want_drops[reason],
              f'sluice_dropped_packets_total{{reason="{reason}"}} = {want_drops[reason]}',
              f"got {got_drops.get(reason)}")
    for svc in lb_traffic.SERVICES:
        sent = sum(1 for x in intents if x["kind"] == "forward" and x["service"] == svc.name)
        check(val("sluice_service_packets_total", service=svc.name) == sent,
              f"sluice_service_packets_total{{service={svc.name}}} = {sent}",
              f"got {val('sluice_service_packets_total', service=svc.name)}")
        check(val("sluice_service_bytes_total", service=svc.name) == service_bytes[svc.name],
              f"sluice_service_bytes_total{{service={svc.name}}} = {service_bytes[svc.name]}",
              f"got {val('sluice_service_bytes_total', service=svc.name)}")
        for b in svc.backends:
            got = val("sluice_backend_packets_total", service=svc.name, backend=b)
            check(got == backend_packets[(svc.name, b)],
                  f"sluice_backend_packets_total{{{svc.name},{b}}} = "
                  f"{backend_packets[(svc.name, b)]} (as captured)", f"got {got}")
    ptb = sum(v for k, v in replies.items() if k[0] == "too_big")
    nreplies = sum(replies.values()) - ptb
    check(val("sluice_replies_total") == nreplies, f"sluice_replies_total = {nreplies} (ARP, echo)",
          f"got {val('sluice_replies_total')}")
    check(val("sluice_icmp_too_big_sent_total") == ptb, f"sluice_icmp_too_big_sent_total = {ptb}",
          f"got {val('sluice_icmp_too_big_sent_total')}")
    print(f"lb_verify: {len(inp)} in, {len(out)} out, {len(ctl)} control frames, "
          f"{failures} failed checks")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
