#!/usr/bin/env python3
"""Client-side checks of a load-balanced VIP, run in the client namespace.

Per address family:
  - N curl requests, each a new TCP connection: every one succeeds, every backend answers some;
  - M UDP exchanges, each from a new socket (new source port): same two rules;
  - one HTTP/1.1 keep-alive connection with several requests and one UDP socket sending
    several datagrams: each stays on one backend;
  - a large download and a large upload over one connection each (many packets through the
    balancer): the bytes arrive intact, so every packet of the flow reached the same backend.
Throughout, a sniffer on the client's interface checks DSR: every frame from a VIP comes
from a backend's MAC, none from the balancer's.
Exit 0 when every check passes; otherwise print each failure and exit 1.
"""
import argparse
import hashlib
import http.client
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backend import pattern  # noqa: E402

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class DsrSniffer(threading.Thread):
    """Counts frames whose IP source is a VIP, by source MAC."""

    def __init__(self, iface, vips):
        super().__init__(daemon=True)
        self.vips = {socket.inet_pton(socket.AF_INET6 if ":" in v else socket.AF_INET, v) for v in vips}
        self.by_mac = {}
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((iface, 0))
        self.sock.settimeout(0.2)

    def run(self):
        while not self.stop.is_set():
            try:
                frame, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            if addr[2] == PACKET_OUTGOING or len(frame) < 34:
                continue
            ethertype = struct.unpack_from("!H", frame, 12)[0]
            if ethertype == 0x0800:
                src = frame[26:30]
            elif ethertype == 0x86DD and len(frame) >= 54:
                src = frame[22:38]
            else:
                continue
            if src in self.vips:
                mac = ":".join(f"{b:02x}" for b in frame[6:12])
                self.by_mac[mac] = self.by_mac.get(mac, 0) + 1


def url(vip, port, path="/"):
    host = f"[{vip}]" if ":" in vip else vip
    return f"http://{host}:{port}{path}"


def curl(vip, port, max_time):
    r = subprocess.run(
        ["curl", "-sS", "-g", "--noproxy", "*", "--max-time", str(max_time), url(vip, port)],
        capture_output=True, text=True, timeout=max_time + 5,
    )
    if r.returncode != 0:
        return None, f"curl exit {r.returncode}: {r.stderr.strip()}"
    body = r.stdout.strip()
    if not body.startswith("backend="):
        return None, f"unexpected body {body!r}"
    return body[len("backend="):], None


def udp_exchange(sock, vip, port, payload, timeout):
    sock.settimeout(timeout)
    sock.sendto(payload, (vip, port))
    try:
        data, peer = sock.recvfrom(65535)
    except socket.timeout:
        return None, "no UDP reply"
    if peer[0] != vip or peer[1] != port:
        return None, f"UDP reply from {peer[0]}:{peer[1]}, not the VIP"
    if not data.startswith(b"backend=") or not data.endswith(b" " + payload):
        return None, f"unexpected UDP reply {data!r}"
    return data[len(b"backend="):-len(payload) - 1].decode(), None


class Checker:
    def __init__(self, args):
        self.args = args
        self.failures = []

    def fail(self, msg):
        print(f"  FAIL {msg}", flush=True)
        self.failures.append(msg)

    def share(self, what, counts):
        line = " ".join(f"{b}={counts.get(b, 0)}" for b in self.args.backends)
        print(f"  {what}: {line}", flush=True)
        for b in self.args.backends:
            if counts.get(b, 0) == 0:
                self.fail(f"{what}: backend {b} got no share ({line})")
        unknown = set(counts) - set(self.args.backends)
        if unknown:
            self.fail(f"{what}: answers from unknown backends {sorted(unknown)}")

    def wait_ready(self, vip):
        if self.args.ready_timeout <= 0:
            return True
        deadline = time.monotonic() + self.args.ready_timeout
        while True:
            name, err = curl(vip, self.args.tcp_port, 1)
            if name:
                return True
            if time.monotonic() >= deadline:
                self.fail(f"{vip}: no successful HTTP request within {self.args.ready_timeout}s ({err})")
                return False
            time.sleep(0.2)

    def tcp_share(self, vip):
        self.tally(vip, "tcp", "curl", self.args.requests, lambda _: curl(vip, self.args.tcp_port, self.args.timeout))

    def udp_share(self, vip):
        family = socket.AF_INET6 if ":" in vip else socket.AF_INET

        def one(i):
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                return udp_exchange(s, vip, self.args.udp_port, f"ping {i}".encode(), self.args.timeout)

        self.tally(vip, "udp", "udp #{}", self.args.udp, one)

    def tally(self, vip, proto, what, n, attempt):
        """One share check for both protocols: `what` names a failed attempt (`{}`: its index)."""
        counts, errors = {}, 0
        for i in range(n):
            name, err = attempt(i)
            if name is None:
                errors += 1
                self.fail(f"{vip} {what.format(i)}: {err}")
                continue
            counts[name] = counts.get(name, 0) + 1
        print(f"  {vip} {what.split()[0]}: {n - errors}/{n} succeeded", flush=True)
        self.share(f"{vip} {proto} share", counts)

    def udp_sticky(self, vip):
        family = socket.AF_INET6 if ":" in vip else socket.AF_INET
        seen = []
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            for i in range(10):
                name, err = udp_exchange(s, vip, self.args.udp_port, f"same-flow {i}".encode(), self.args.timeout)
                if name is None:
                    self.fail(f"{vip} udp flow #{i}: {err}")
                    return
                seen.append(name)
        if len(set(seen)) != 1:
            self.fail(f"{vip} one UDP flow went to several backends: {seen}")
        else:
            print(f"  {vip} one udp flow, 10 datagrams: all on {seen[0]}", flush=True)

    def keepalive(self, vip):
        conn = http.client.HTTPConnection(vip, self.args.tcp_port, timeout=self.args.timeout)
        seen, sockets = [], set()
        try:
            for _ in range(10):
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read().decode().strip()
                sockets.add(conn.sock.getsockname())
                seen.append(body.removeprefix("backend="))
        except (OSError, http.client.HTTPException) as e:
            self.fail(f"{vip} keep-alive: {e!r} after {len(seen)} requests")
            return
        finally:
            conn.close()
        if len(sockets) != 1:
            self.fail(f"{vip} keep-alive used {len(sockets)} connections, expected 1")
        if len(set(seen)) != 1:
            self.fail(f"{vip} one TCP connection answered by several backends: {seen}")
        else:
            print(f"  {vip} keep-alive, 10 requests on one connection: all on {seen[0]}", flush=True)

    def download(self, vip):
        n = self.args.download_bytes
        conn = http.client.HTTPConnection(vip, self.args.tcp_port, timeout=self.args.timeout)
        try:
            conn.request("GET", f"/bytes/{n}")
            resp = conn.getresponse()
            body = resp.read()
            backend = resp.getheader("X-Backend")
        except (OSError, http.client.HTTPException) as e:
            self.fail(f"{vip} download of {n} bytes: {e!r}")
            return
        finally:
            conn.close()
        if body != pattern(n):
            self.fail(f"{vip} download: got {len(body)} bytes, not the {n} expected")
        else:
            print(f"  {vip} download {n} bytes from {backend}: intact", flush=True)

    def upload(self, vip):
        n = self.args.upload_bytes
        data = os.urandom(n)
        conn = http.client.HTTPConnection(vip, self.args.tcp_port, timeout=self.args.timeout)
        try:
            conn.request("POST", "/upload", body=data, headers={"Content-Type": "application/octet-stream"})
            body = conn.getresponse().read().decode().strip()
        except (OSError, http.client.HTTPException) as e:
            self.fail(f"{vip} upload of {n} bytes: {e!r}")
            return
        finally:
            conn.close()
        fields = dict(kv.split("=", 1) for kv in body.split())
        if fields.get("len") != str(n) or fields.get("sha256") != hashlib.sha256(data).hexdigest():
            self.fail(f"{vip} upload: backend saw {body!r}")
        else:
            print(f"  {vip} upload {n} bytes to {fields.get('backend')}: intact", flush=True)

    def dsr(self, sniffer):
        macs = dict(m.split("=", 1)[::-1] for m in self.args.backend_mac)  # mac -> backend
        line = " ".join(f"{macs.get(m, m)}={c}" for m, c in sorted(sniffer.by_mac.items()))
        print(f"  frames from the VIPs by source: {line}", flush=True)
        if not sniffer.by_mac:
            self.fail("DSR: saw no frame from a VIP at all")
        if self.args.lb_mac in sniffer.by_mac:
            self.fail(f"DSR: {sniffer.by_mac[self.args.lb_mac]} replies came back through the balancer")
        strangers = set(sniffer.by_mac) - set(macs) - {self.args.lb_mac}
        if strangers:
            self.fail(f"DSR: replies from unknown MACs {sorted(strangers)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vip", action="append", required=True, help="repeat for each family")
    ap.add_argument("--backends", required=True, help="space-separated backend names")
    ap.add_argument("--backend-mac", action="append", default=[], help="NAME=MAC (repeat)")
    ap.add_argument("--lb-mac", required=True)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--tcp-port", type=int, default=80)
    ap.add_argument("--udp-port", type=int, default=5353)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--udp", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=5)
    ap.add_argument("--ready-timeout", type=float, default=10, help="0: do not wait for a first success")
    ap.add_argument("--download-bytes", type=int, default=4 << 20)
    ap.add_argument("--upload-bytes", type=int, default=1 << 20)
    args = ap.parse_args()
    args.backends = args.backends.split()

    sniffer = DsrSniffer(args.iface, args.vip)
    sniffer.start()
    c = Checker(args)
    for vip in args.vip:
        print(f"{vip}:", flush=True)
        if not c.wait_ready(vip):
            continue
        c.tcp_share(vip)
        c.udp_share(vip)
        c.keepalive(vip)
        c.udp_sticky(vip)
        c.download(vip)
        c.upload(vip)
    time.sleep(0.3)
    sniffer.stop.set()
    sniffer.join(2)
    c.dsr(sniffer)
    if c.failures:
        print(f"check: {len(c.failures)} failure(s)", flush=True)
        sys.exit(1)
    print("check: all passed", flush=True)


if __name__ == "__main__":
    main()
