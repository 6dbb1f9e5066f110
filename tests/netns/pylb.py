#!/usr/bin/env python3
"""A reference L4 balancer in userspace Python: stands in for the appliance in the harness self-test.

It proves the harness (topology, decapsulator, servers, checker) works without sluice, so
when `sluice run` takes its place the only new variable is sluice. Deliberately simple:
stateless 5-tuple hash over the backends, one AF_PACKET socket on one interface, no flow
table. It answers ARP and neighbour solicitations for its own addresses, forwards TCP/UDP for
the VIPs by l2-dsr, ipip (4in4, 6in6) or gue (GUE version 0 to UDP port 6080; gue1: GUE
version 1, the IP packet right after the UDP header), and counts
ICMP errors sent to it (a backend refusing IPIP would send protocol-unreachable).
"""
import argparse
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import zlib

from inet import checksum

ETH_P_ALL = 0x0003
ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
PACKET_OUTGOING = 4
GUE_PORT = 6080


def pseudo(src, dst, proto, length):
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def ipv4_header(src, dst, proto, payload_len, tos=0):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + payload_len, 0, 0, 64, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]


def ipv6_header(src, dst, nh, payload_len):
    return struct.pack("!IHBB16s16s", 6 << 28, payload_len, nh, 64, src, dst)


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(":"))


class Balancer:
    def __init__(self, args):
        self.mode = args.mode
        self.spray = args.spray
        self.sprayed = 0
        self.mac = mac_bytes(open(f"/sys/class/net/{args.iface}/address").read().strip())
        self.addr4 = ipaddress.IPv4Address(args.addr4).packed
        self.addr6 = ipaddress.IPv6Address(args.addr6).packed
        self.vips = {ipaddress.ip_address(v).packed for v in args.vip}
        self.backends = {4: [], 6: []}
        for spec in args.backend:
            addr, mac = spec.split("=")
            ip = ipaddress.ip_address(addr)
            self.backends[ip.version].append((ip.packed, mac_bytes(mac), str(ip)))
        self.stats = {"forwarded": {}, "arp_replies": 0, "na_replies": 0, "icmp_errors": 0, "ignored": 0}
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((args.iface, 0))

    def send(self, dst_mac, ethertype, payload):
        self.sock.send(dst_mac + self.mac + struct.pack("!H", ethertype) + payload)

    def handle(self, frame):
        if len(frame) < 14:
            return
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        src_mac, l3 = frame[6:12], frame[14:]
        if ethertype == ETH_ARP:
            self.arp(src_mac, l3)
        elif ethertype == ETH_IPV4 and len(l3) >= 20:
            ihl = (l3[0] & 0x0F) * 4
            proto, dst = l3[9], l3[16:20]
            if proto == 1 and len(l3) > ihl + 1 and l3[ihl] in (3, 11, 12):
                self.icmp_error(f"icmp {l3[12:16].hex()} type {l3[ihl]} code {l3[ihl + 1]}", l3[ihl + 8:])
            elif dst in self.vips and proto in (6, 17) and len(l3) >= ihl + 4:
                self.forward(4, l3, l3[12:16], dst, proto, l3[ihl:ihl + 4])
            else:
                self.stats["ignored"] += 1
        elif ethertype == ETH_IPV6 and len(l3) >= 40:
            nh, src, dst = l3[6], l3[8:24], l3[24:40]
            if nh == 58 and len(l3) >= 48 and l3[40] == 135:
                self.neighbour_solicitation(src_mac, l3)
            elif nh == 58 and len(l3) > 41 and l3[40] < 128:
                self.icmp_error(f"icmp6 {l3[8:24].hex()} type {l3[40]} code {l3[41]}", l3[48:])
            elif dst in self.vips and nh in (6, 17) and len(l3) >= 44:
                self.forward(6, l3, src, dst, nh, l3[40:44])
            else:
                self.stats["ignored"] += 1

    def icmp_error(self, what, quoted):
        self.stats["icmp_errors"] += 1
        print(what, "about", quoted[:48].hex(), flush=True)
        kinds = self.stats.setdefault("icmp_error_kinds", {})
        kinds[what] = kinds.get(what, 0) + 1

    def arp(self, src_mac, arp):
        if len(arp) < 28 or struct.unpack_from("!HHBBH", arp) != (1, ETH_IPV4, 6, 4, 1):
            return
        sender_mac, sender_ip, target_ip = arp[8:14], arp[14:18], arp[24:28]
        if target_ip != self.addr4:
            return
        reply = struct.pack("!HHBBH", 1, ETH_IPV4, 6, 4, 2) + self.mac + self.addr4 + sender_mac + sender_ip
        self.send(src_mac, ETH_ARP, reply)
        self.stats["arp_replies"] += 1

    def neighbour_solicitation(self, src_mac, pkt):
        if len(pkt) < 64 or pkt[48:64] != self.addr6:
            return
        requester = pkt[8:24]
        dst = requester if any(requester) else ipaddress.IPv6Address("ff02::1").packed
        icmp = struct.pack("!BBHI", 136, 0, 0, 0x60000000) + self.addr6 + bytes([2, 1]) + self.mac
        icmp = icmp[:2] + struct.pack("!H", checksum(pseudo(self.addr6, dst, 58, len(icmp)) + icmp)) + icmp[4:]
        hdr = struct.pack("!IHBB16s16s", 6 << 28, len(icmp), 58, 255, self.addr6, dst)
        self.send(src_mac, ETH_IPV6, hdr + icmp)
        self.stats["na_replies"] += 1

    def forward(self, version, pkt, src, dst, proto, ports):
        backends = self.backends[version]
        if not backends:
            self.stats["ignored"] += 1
            return
        flow_hash = zlib.crc32(src + dst + bytes([proto]) + ports)
        if self.spray:  # deliberately broken: each packet to the next backend
            self.sprayed += 1
            flow_hash = self.sprayed
        baddr, bmac, bname = backends[flow_hash % len(backends)]
        fwd = self.stats["forwarded"]
        fwd[bname] = fwd.get(bname, 0) + 1
        if self.mode == "l2-dsr":
            self.send(bmac, ETH_IPV4 if version == 4 else ETH_IPV6, pkt)
            return
        inner_proto = 4 if version == 4 else 41
        if self.mode in ("gue", "gue1"):
            # GUE version 0: a 4-byte header naming the inner protocol; version 1: the bare IP packet.
            gue = (bytes([0, inner_proto, 0, 0]) if self.mode == "gue" else b"") + pkt
            sport = 0xC000 | (flow_hash & 0x3FFF)
            osrc = self.addr4 if version == 4 else self.addr6
            udp = struct.pack("!HHHH", sport, GUE_PORT, 8 + len(gue), 0) + gue
            check = checksum(pseudo(osrc, baddr, 17, len(udp)) + udp) or 0xFFFF
            payload, outer_proto = udp[:6] + struct.pack("!H", check) + udp[8:], 17
        else:
            payload, outer_proto = pkt, inner_proto
        if version == 4:
            outer = ipv4_header(self.addr4, baddr, outer_proto, len(payload), tos=pkt[1])
            self.send(bmac, ETH_IPV4, outer + payload)
        else:
            self.send(bmac, ETH_IPV6, ipv6_header(self.addr6, baddr, outer_proto, len(payload)) + payload)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--mode", choices=("l2-dsr", "ipip", "gue", "gue1"), required=True)
    ap.add_argument("--addr4", required=True)
    ap.add_argument("--addr6", required=True)
    ap.add_argument("--vip", action="append", required=True)
    ap.add_argument("--backend", action="append", required=True, help="ADDRESS=MAC (repeat)")
    ap.add_argument("--stats", help="write counters here as JSON on exit")
    ap.add_argument("--spray", action="store_true", help="break flow affinity (negative control)")
    args = ap.parse_args()
    lb = Balancer(args)

    def finish(*_):
        if args.stats:
            with open(args.stats + ".tmp", "w") as f:
                json.dump(lb.stats, f)
            os.replace(args.stats + ".tmp", args.stats)
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    print("ready", args.mode, flush=True)
    while True:
        frame, addr = lb.sock.recvfrom(65535)
        if addr[2] != PACKET_OUTGOING:
            lb.handle(frame)


if __name__ == "__main__":
    main()
