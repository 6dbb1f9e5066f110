#!/usr/bin/env python3
"""A test backend: HTTP on every address and a UDP echo on each VIP, both answering with the backend's name.

HTTP (HTTP/1.1, keep-alive):
  GET /            -> "backend=NAME\n"
  GET /bytes/N     -> N bytes of a fixed pattern (see pattern()), header X-Backend: NAME
  GET /stream/N/MS -> an endless body (no length, Connection: close): N bytes every MS
                      milliseconds until the client goes away, header X-Backend: NAME
  POST /upload     -> "backend=NAME len=N sha256=HEX\n" over the received body
UDP: a datagram D to VIP:port is answered from VIP:port (so DSR replies carry the VIP as
source) with b"backend=NAME " + D. One socket per VIP, because a wildcard UDP socket would
answer from the backend's own address.
"""
import argparse
import hashlib
import http.server
import signal
import socket
import sys
import threading
import time


def pattern(n):
    """The body of GET /bytes/N; the checker rebuilds it to compare."""
    block = bytes(range(256))
    return (block * (n // 256 + 1))[:n]


class DualStackServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    request_queue_size = 128

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def make_handler(name):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "sluice-test-backend"

        def reply(self, body, ctype="text/plain"):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", name)
            self.end_headers()
            self.wfile.write(body)

        def stream(self):
            try:
                n, ms = (int(x) for x in self.path[len("/stream/"):].split("/"))
            except ValueError:
                self.send_error(400, "bad stream parameters")
                return
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.send_header("X-Backend", name)
            self.end_headers()
            chunk = pattern(min(n, 1 << 20))
            try:
                while True:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    time.sleep(ms / 1000)
            except OSError:
                pass  # the client went away (or was reset): the stream ends

        def do_GET(self):
            if self.path.startswith("/stream/"):
                self.stream()
            elif self.path.startswith("/bytes/"):
                try:
                    n = int(self.path[len("/bytes/"):])
                except ValueError:
                    self.send_error(400, "bad length")
                    return
                self.reply(pattern(min(n, 64 << 20)), "application/octet-stream")
            else:
                self.reply(f"backend={name}\n".encode())

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            digest = hashlib.sha256()
            left = n
            while left > 0:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
            self.reply(f"backend={name} len={n - left} sha256={digest.hexdigest()}\n".encode())

        def log_request(self, code="-", size="-"):
            pass  # one line per request would drown the errors in the log

        def log_message(self, fmt, *args):
            sys.stderr.write(f"{self.client_address[0]} {fmt % args}\n")

    return Handler


def udp_echo(sock, name):
    prefix = f"backend={name} ".encode()
    while True:
        data, peer = sock.recvfrom(65535)
        sock.sendto(prefix + data, peer)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True)
    ap.add_argument("--tcp-port", type=int, default=80)
    ap.add_argument("--udp-port", type=int, default=5353)
    ap.add_argument("--vip", action="append", default=[], help="UDP echo address (repeat)")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    httpd = DualStackServer(("::", args.tcp_port), make_handler(args.name))
    for vip in args.vip:
        family = socket.AF_INET6 if ":" in vip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((vip, args.udp_port))
        threading.Thread(target=udp_echo, args=(sock, args.name), daemon=True).start()
    print("ready", args.name, flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
