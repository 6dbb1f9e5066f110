#!/usr/bin/env python3
"""Datagrams larger than the MTU through a VIP: a sink on each backend, a sender on the client.

sink (backend): one UDP socket per VIP on --port. Each datagram the kernel hands over is whole
  (the kernel reassembled it from its fragments); the sink answers from the VIP (DSR) with
  b"ack NAME ID LEN SHA256" and records the datagram's id and length. On SIGTERM it writes
  {"name", "ids": {id: count}, "sizes": {len: count}} to --stats.
send (client): for every source address (--source, repeat) and --ports-per-source source
  ports, --per-port datagrams of the --sizes in turn, each b"ID " + a pattern of that id, to
  VIP:port with fragmentation allowed (the client's MTU is below the size, so its kernel
  fragments). One datagram in flight per socket: it waits --timeout s for the ack and sends
  again up to --retries times. Prints a JSON result: acked, missing, bad (ack with the
  wrong length or digest), retries, per backend counts, and the backends each source address
  reached (every fragment hashes on the addresses only, so one per address).
"""
import argparse
import hashlib
import json
import os
import select
import signal
import socket
import sys
import time

IP_MTU_DISCOVER = 10
IP_PMTUDISC_DONT = 0
IPV6_MTU_DISCOVER = 23
IPV6_PMTUDISC_DONT = 0


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def payload(ident, size):
    head = f"{ident} ".encode()
    body = hashlib.sha256(head).digest() * (size // 32 + 1)
    return (head + body)[:size]


def sink(args):
    ids, sizes = {}, {}

    def finish(*_):
        tmp = args.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"name": args.name, "ids": ids, "sizes": sizes}, f)
        os.replace(tmp, args.stats)
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    socks = []
    for vip in args.vip:
        s = socket.socket(family_of(vip), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((vip, args.port))
        socks.append(s)
    print("ready", args.name, flush=True)
    while True:
        readable, _, _ = select.select(socks, [], [])
        for s in readable:
            data, peer = s.recvfrom(65535)
            ident = data.split(b" ", 1)[0].decode(errors="replace")
            ids[ident] = ids.get(ident, 0) + 1
            sizes[str(len(data))] = sizes.get(str(len(data)), 0) + 1
            digest = hashlib.sha256(data).hexdigest()
            s.sendto(f"ack {args.name} {ident} {len(data)} {digest}".encode(), peer)


def send(args):
    sizes = [int(x) for x in args.sizes.split(",")]
    fam = family_of(args.vip)
    socks = []
    for src in args.source:
        for _ in range(args.ports_per_source):
            s = socket.socket(fam, socket.SOCK_DGRAM)
            if fam == socket.AF_INET:
                s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
            else:
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DONT)
            s.bind((src, 0))
            s.setblocking(False)
            socks.append((src, s))
    # Per socket: the datagrams still to send, and the one in flight (id, bytes, sent at, tries).
    queue = {}
    n = 0
    for i, (src, s) in enumerate(socks):
        q = []
        for j in range(args.per_port):
            size = sizes[n % len(sizes)]
            ident = f"{args.tag}-{i}-{j}"
            q.append((ident, payload(ident, size)))
            n += 1
        queue[s.fileno()] = q
    by_fd = {s.fileno(): (src, s) for src, s in socks}
    inflight = {}
    acked, missing, bad, retries = 0, [], [], 0
    per_backend, per_source = {}, {}

    def launch(fd, tries):
        ident, data = queue[fd][0]
        by_fd[fd][1].sendto(data, (args.vip, args.port))
        inflight[fd] = (ident, data, time.monotonic(), tries)

    deadline = time.monotonic() + args.max_seconds
    for fd in list(queue):
        launch(fd, 1)
    while inflight and time.monotonic() < deadline:
        readable, _, _ = select.select(list(inflight), [], [], 0.05)
        now = time.monotonic()
        for fd in readable:
            try:
                reply = by_fd[fd][1].recv(4096)
            except BlockingIOError:
                continue
            parts = reply.decode(errors="replace").split()
            ident, data, _, _ = inflight[fd]
            if len(parts) != 5 or parts[0] != "ack" or parts[2] != ident:
                continue  # a late ack of an earlier try: ignore
            name, length, digest = parts[1], int(parts[3]), parts[4]
            if length != len(data) or digest != hashlib.sha256(data).hexdigest():
                bad.append(f"{ident}: {name} got {length} bytes, sha256 {digest[:12]}")
            else:
                acked += 1
                per_backend[name] = per_backend.get(name, 0) + 1
                per_source.setdefault(by_fd[fd][0], set()).add(name)
            queue[fd].pop(0)
            del inflight[fd]
            if queue[fd]:
                launch(fd, 1)
        for fd, (ident, _, at, tries) in list(inflight.items()):
            if now - at < args.timeout:
                continue
            if tries > args.retries:
                missing.append(ident)
                queue[fd].pop(0)
                del inflight[fd]
                if queue[fd]:
                    launch(fd, 1)
            else:
                retries += 1
                launch(fd, tries + 1)
    missing += [ident for fd in queue for ident, _ in queue[fd]]  # out of time: never acked
    print(json.dumps({
        "datagrams": n, "acked": acked, "missing": missing, "bad": bad, "retries": retries,
        "per_backend": per_backend,
        "per_source": {k: sorted(v) for k, v in per_source.items()},
    }), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sk = sub.add_parser("sink")
    sk.add_argument("--name", required=True)
    sk.add_argument("--vip", action="append", required=True)
    sk.add_argument("--port", type=int, required=True)
    sk.add_argument("--stats", required=True)
    sd = sub.add_parser("send")
    sd.add_argument("--vip", required=True)
    sd.add_argument("--port", type=int, required=True)
    sd.add_argument("--source", action="append", required=True)
    sd.add_argument("--ports-per-source", type=int, default=4)
    sd.add_argument("--per-port", type=int, default=4)
    sd.add_argument("--sizes", default="4000")
    sd.add_argument("--tag", default="d")
    sd.add_argument("--timeout", type=float, default=1.0)
    sd.add_argument("--retries", type=int, default=2)
    sd.add_argument("--max-seconds", type=float, default=60)
    args = ap.parse_args()
    return sink(args) if args.cmd == "sink" else send(args)


if __name__ == "__main__":
    sys.exit(main())
