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
from socket import AF_INET6, inet_ntop, inet_pton

from prometheus_client.openmetrics.parser import text_string_to_metric_families
from scapy.all import (ARP, ICMP, IP, UDP, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA,
                       ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, IPerror, IPv6,
                       in6_getnsma, in6_getnsmac, rdpcap)

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


def checksum_ok(pkt, layer, field):
    """The checksum `field` of `layer`, as scapy computes it afresh, equals the one on the wire."""
    fresh = pkt.copy()
    delattr(fresh[layer], field)
    return getattr(type(pkt)(bytes(fresh))[layer], field) == getattr(pkt[layer], field)


def carried(p, raw, outer, proto, ipip):
    """A forwarded frame's inner packet and mode; `ipip` is the family's IP-in-IP protocol (4 or 41)."""
    if proto == ipip:
        return bytes(outer.payload), "ipip"
    if proto == 17 and UDP in p and p[UDP].dport == GUE_PORT:
        return bytes(p[UDP].payload), "gue"
    return raw[14:], "l2-dsr"


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
            forward[bytes(p)[14:]] = i
    check(len(forward) == sum(1 for x in intents if x["kind"] == "forward"),
          "every input packet to forward is unique (so outputs map back to one input)")
    dropped_inputs = {bytes(p)[14:] for p, x in zip(inp, intents) if x["kind"] == "drop"}

    seen = Counter()  # input index -> times it came out
    flow_backends = defaultdict(set)
    flow_labels = defaultdict(set)
    backend_packets = Counter()
    service_bytes = Counter()
    replies = Counter()
    problems = defaultdict(list)
    gw, app_ip, app_ip6 = lb_traffic.GATEWAY_MAC, lb_traffic.APPLIANCE_IP, lb_traffic.APPLIANCE_IP6
    asker_mac = "02:00:00:00:03:01"

    def bad(kind, msg):
        problems[kind].append(msg)

    for n, p in enumerate(out):
        raw = bytes(p)
        if p.src != mac:
            bad("source MAC", f"out #{n}: {p.src}")
        if ARP in p:
            x = p[ARP]
            if (x.op != 2 or x.hwsrc != mac or p.dst != asker_mac
                    or x.hwdst != asker_mac or x.pdst != "192.0.2.77"):
                bad("ARP reply", f"out #{n}: {x.summary()}")
            replies[("arp", x.psrc)] += 1
            continue
        if p.type == 0x86DD and IPv6 in p:
            o, v6 = p[IPv6], True
            if ICMPv6ND_NA in p:
                na = p[ICMPv6ND_NA]
                opt = p.getlayer(ICMPv6NDOptDstLLAddr)
                if (not checksum_ok(p, ICMPv6ND_NA, "cksum") or o.hlim != 255 or na.S != 1
                        or o.src != na.tgt or o.dst != "2001:db8::77" or p.dst != asker_mac
                        or opt is None or opt.lladdr != mac):
                    bad("neighbour advertisement", f"out #{n}: {p.summary()}")
                replies[("na", na.tgt)] += 1
                continue
            if ICMPv6EchoReply in p:
                e = p[ICMPv6EchoReply]
                if not checksum_ok(p, ICMPv6EchoReply, "cksum") or p.dst != lb_traffic.CLIENT_L2_SRC:
                    bad("ICMPv6 echo reply", f"out #{n}: {p.summary()}")
                replies[("echo", o.src, o.dst, e.id, e.seq, bytes(e.data))] += 1
                continue
            inner, mode = carried(p, raw, o, o.nh, 41)
        elif p.type == 0x0800 and IP in p:
            o, v6 = p[IP], False
            if not checksum_ok(o, IP, "chksum"):
                bad("IP checksum", f"out #{n}: {o.summary()}")
            if o.proto == 1 and ICMP in p:
                ic = p[ICMP]
                if not checksum_ok(p, ICMP, "chksum"):
                    bad("ICMP checksum", f"out #{n}")
                if ic.type == 0:
                    replies[("echo", o.src, o.dst, ic.id, ic.seq, bytes(ic.payload))] += 1
                    if p.dst != lb_traffic.CLIENT_L2_SRC:
                        bad("echo reply", f"out #{n}: {o.summary()} to {p.dst}")
                elif ic.type == 3 and ic.code == 4:
                    replies[("too_big", o.dst, ic.nexthopmtu)] += 1
                    q = p[IPerror] if IPerror in p else None
                    if q is None or q.src != o.dst or q.dst != o.src:
                        bad("too-big quote", f"out #{n}: {p.summary()}")
                else:
                    bad("unexpected", f"out #{n}: ICMP {ic.type}/{ic.code}")
                continue
            inner, mode = carried(p, raw, o, o.proto, 4)
        else:
            bad("unexpected", f"out #{n}: {p.summary()}")
            continue
        # Forwarded: find the input packet and its service, then check the encapsulation.
        i = forward.get(inner)
        if i is None:
            bad("unexpected", f"out #{n}: {p.summary()}"
                + (" (a dropped input came out)" if inner in dropped_inputs else ""))
            continue
        seen[i] += 1
        intent = intents[i]
        svc = lb_traffic.BY_NAME[intent["service"]]
        flow = tuple(intent["flow"])
        src = inp[i].payload  # the client's IP header
        if svc.forwarding != mode:
            bad("forwarding mode", f"out #{n}: {mode} for service {svc.name} ({svc.forwarding})")
            continue
        if mode == "l2-dsr":
            backend = next((b for b, m in svc.macs.items() if m == p.dst), None)
            if backend is None:
                bad("l2-dsr next hop", f"out #{n}: to {p.dst}, not a backend MAC")
                continue
            if p.type != inp[i].type:
                bad("l2-dsr ethertype", f"out #{n}: {p.type:#x}")
        elif v6:
            backend = o.dst
            ok = (p.dst == svc.macs.get(o.dst) and o.version == 6 and o.src == app_ip6
                  and o.dst in svc.backends and o.hlim == 64 and o.tc == src.tc
                  and o.plen == len(inner) + (8 if mode == "gue" else 0)
                  and o.nh == (41 if mode == "ipip" else 17))
            if not ok:
                bad(f"{mode} outer header", f"out #{n}: {p.dst} {o.summary()} hlim {o.hlim} "
                    f"plen {o.plen} tc {o.tc}/{src.tc}")
            # The flow label is the flow's: routers' ECMP keeps a flow on one path.
            flow_labels[(svc.name, flow)].add(o.fl)
        else:
            backend = o.dst
            outer_len = 20 + len(inner) + (8 if mode == "gue" else 0)
            ok = (p.dst == gw and o.version == 4 and o.ihl == 5
                  and o.src == app_ip and o.dst in svc.backends and o.ttl == 64
                  and o.len == outer_len and o.tos == src.tos and o.frag == 0
                  and o.flags.MF == 0 and o.proto == (4 if mode == "ipip" else 17))
            if not ok:
                bad(f"{mode} outer header", f"out #{n}: {p.dst} {o.summary()} ttl {o.ttl} "
                    f"len {o.len} tos {o.tos}/{src.tos}")
        if mode == "gue":
            u = p[UDP]
            # GUE variant 1: the inner IP header follows the UDP header directly.
            if u.len != 8 + len(inner) or inner[0] >> 6 != 1 or not 49152 <= u.sport:
                bad("gue header", f"out #{n}: sport {u.sport} len {u.len} "
                    f"first byte {inner[0]:#x}")
            # RFC 768 / 6935: a zero checksum means none over IPv4 only; any other must verify.
            if (u.chksum != 0 or v6) and not checksum_ok(p, UDP, "chksum"):
                bad("gue UDP checksum", f"out #{n}: {u.chksum:#x} over IPv{6 if v6 else 4}")
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
    for mode in ("ipip", "gue", "l2-dsr"):  # over IPv4 and IPv6
        check(not any(k.startswith(mode) for k in problems),
              f"{mode}: outer Ethernet/IP/UDP headers, checksums and inner bytes as expected")

    split = {k: v for k, v in flow_backends.items() if len(v) != 1}
    check(not split, f"each of {len(flow_backends)} flows reached exactly one backend",
          f"{len(split)} flows split, e.g. {list(split.items())[:2]}")
    labels = {k: v for k, v in flow_labels.items() if len(v) != 1}
    check(flow_labels and not labels,
          f"each of {len(flow_labels)} IPv6 flows kept one outer flow label",
          f"{len(labels)} flows with several, e.g. {list(labels.items())[:2]}")
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
            if ICMPv6EchoRequest in p:
                ip, e = p[IPv6], p[ICMPv6EchoRequest]
                key = ("echo", ip.dst, ip.src, e.id, e.seq, bytes(e.data))
            else:
                ip, e = p[IP], p[ICMP]
                key = ("echo", ip.dst, ip.src, e.id, e.seq, bytes(e.payload))
            check(replies[key] == 1, f"ICMP echo to {ip.dst} answered once, same id, seq, data",
                  f"{replies[key]} replies")
        elif x["kind"] == "na_reply":
            check(replies[("na", x["asked"])] == 1,
                  f"neighbour solicitation for {x['asked']} answered once",
                  f"{replies[('na', x['asked'])]} advertisements")
        elif x["kind"] == "too_big":
            key = ("too_big", p[IP].src, x["mtu"])
            check(replies[key] == 1, f"oversized packet answered by fragmentation-needed "
                  f"(next-hop MTU {x['mtu']})", f"{dict(replies)}")

    # Control's queue: one kind of request per on-link backend (ARP or ND), well formed.
    asked = Counter()
    for p in ctl:
        x, ns = p.getlayer(ARP), p.getlayer(ICMPv6ND_NS)
        if (x is not None and x.op == 1 and p.dst == "ff:ff:ff:ff:ff:ff" and p.src == mac
                and x.hwsrc == mac and x.psrc == app_ip):
            asked[x.pdst] += 1
        elif ns is not None and IPv6 in p:
            group = inet_ntop(AF_INET6, in6_getnsma(inet_pton(AF_INET6, ns.tgt)))
            opt = p.getlayer(ICMPv6NDOptSrcLLAddr)
            ok = (p.src == mac and p.dst == in6_getnsmac(inet_pton(AF_INET6, group))
                  and p[IPv6].src == app_ip6 and p[IPv6].dst == group and p[IPv6].hlim == 255
                  and opt is not None and opt.lladdr == mac
                  and checksum_ok(p, ICMPv6ND_NS, "cksum"))
            check(ok, f"neighbour solicitation for {ns.tgt} well formed", p.summary())
            asked[ns.tgt] += 1
        else:
            check(False, "control queue sends only ARP requests and neighbour solicitations",
                  p.summary())
    check(set(asked) == set(lb_traffic.ON_LINK),
          "ARP/ND requests for exactly the on-link backends", f"{dict(asked)}")

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
