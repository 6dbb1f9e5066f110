#!/usr/bin/env python3
"""Userspace IPIP/GUE decapsulator for a test backend whose kernel has no ipip, sit, ip6_tunnel or fou.

In:  raw IP sockets for protocols 4 (IPv4 inside) and 41 (IPv6 inside), over IPv4 and IPv6,
     and a UDP socket on the GUE port (6080): GUE version 0 (4-byte header, optional words
     skipped, protocol field 4 or 41) or version 1 (the IP packet right after UDP).
Out: the inner packet is written to a TUN device, so the kernel receives it as if it had
     arrived there and delivers it to the VIP on lo; replies route straight to the client (DSR).
Having a raw socket open for a protocol is also what keeps the kernel from answering each
packet with ICMP protocol-unreachable (as long as its receive queue has room).
Counters (per kind, per outer source, drops) go to --stats as JSON when it exits on SIGTERM.
"""
import argparse
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
GUE_PORT = 6080
PROTO_IPIP = 4
PROTO_IPV6 = 41
# Since Linux 6.9 a raw socket with a full receive queue no longer counts as a listener, and
# the kernel answers that packet with ICMP protocol-unreachable: keep the queues deep.
RCVBUF = 16 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # root may exceed rmem_max
SOL_UDP = 17
UDP_NO_CHECK6_RX = 102


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ifr = fcntl.ioctl(ctl, SIOCGIFFLAGS, struct.pack("16sH", name.encode(), 0))
    flags = struct.unpack("16sH", ifr[:18])[1] | IFF_UP
    fcntl.ioctl(ctl, SIOCSIFFLAGS, struct.pack("16sH", name.encode(), flags))
    ctl.close()
    # Inner packets come from the client, whose route is out of eth0: loose reverse-path check.
    with open(f"/proc/sys/net/ipv4/conf/{name}/rp_filter", "w") as f:
        f.write("0")
    return fd


def inner_matches(proto, inner):
    """The inner packet is the IP version the outer header announced."""
    if not inner:
        return False
    version = inner[0] >> 4
    return (proto == PROTO_IPIP and version == 4) or (proto == PROTO_IPV6 and version == 6)


def gue_inner(payload):
    """(kind, inner packet) of a GUE payload, or (reason, None)."""
    if not payload:
        return "gue_short", None
    version = payload[0] >> 6
    if version == 1:  # direct IP encapsulation: the first nibble is the IP version (4 or 6)
        return ("gue1_v4" if payload[0] >> 4 == 4 else "gue1_v6"), payload
    if version != 0:
        return "gue_bad_version", None
    if payload[0] & 0x20:
        return "gue_control", None
    hlen = 4 + 4 * (payload[0] & 0x1F)
    if len(payload) < hlen:
        return "gue_short", None
    proto = payload[1]
    inner = payload[hlen:]
    if not inner_matches(proto, inner):
        return "gue_bad_inner", None
    return ("gue_v4" if proto == PROTO_IPIP else "gue_v6"), inner


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tun", default="slcdecap0")
    ap.add_argument("--stats", help="write counters here as JSON on exit")
    args = ap.parse_args()

    counts = {}
    sources = {}

    def count(key, src=None):
        counts[key] = counts.get(key, 0) + 1
        if src is not None:
            sources[src] = sources.get(src, 0) + 1

    def finish(*_):
        if args.stats:
            tmp = args.stats + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"counts": counts, "outer_sources": sources}, f)
            os.replace(tmp, args.stats)
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)

    tun = open_tun(args.tun)
    socks = {}
    for family, proto, kind in (
        (socket.AF_INET, PROTO_IPIP, "ipip_4in4"),
        (socket.AF_INET, PROTO_IPV6, "ipip_6in4"),
        (socket.AF_INET6, PROTO_IPIP, "ipip_4in6"),
        (socket.AF_INET6, PROTO_IPV6, "ipip_6in6"),
    ):
        s = socket.socket(family, socket.SOCK_RAW, proto)
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        socks[s.fileno()] = (s, family, proto, kind)
    gue = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    gue.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    gue.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    # Like the kernel's fou: a zero UDP checksum over IPv6 is fine for a tunnel (RFC 6935).
    gue.setsockopt(SOL_UDP, UDP_NO_CHECK6_RX, 1)
    gue.bind(("::", GUE_PORT))
    socks[gue.fileno()] = (gue, socket.AF_INET6, None, "gue")
    print("ready", args.tun, flush=True)

    poller = select.poll()
    for fd in socks:
        poller.register(fd, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            s, family, proto, kind = socks[fd]
            data, peer = s.recvfrom(65535)
            src = peer[0].removeprefix("::ffff:")
            if proto is None:
                kind, inner = gue_inner(data)
                if inner is None:
                    count(kind)
                    continue
            elif family == socket.AF_INET:  # IPv4 raw sockets hand over the outer header too
                ihl = (data[0] & 0x0F) * 4 if data else 0
                inner = data[ihl:]
            else:  # IPv6 raw sockets hand over the payload only
                inner = data
            if proto is not None and not inner_matches(proto, inner):
                count(kind + "_bad_inner")
                continue
            try:
                os.write(tun, inner)
            except OSError as e:
                count(f"tun_error_{e.errno}")
                continue
            count(kind, src)


if __name__ == "__main__":
    main()
