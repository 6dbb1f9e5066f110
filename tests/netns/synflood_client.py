#!/usr/bin/env python3
"""The legitimate side of the SYN-flood test (tests/e2e/34-netns-synflood.sh), in the client namespace.

run: opens --streams long-lived connections to VIP:--stream-port, each asking the backend for
  an endless paced body (backend.py's GET /stream/N/MS), and reads them for --seconds,
  recording the time and size of every read and how each ended (a reset, an EOF or an error
  before the end is a failure). Alongside, every --probe-interval seconds, a new connection
  to VIP:--probe-port (GET /, --probe-timeout seconds for all of it: connect, SYN
  retransmissions included, request and answer). Prints "ready" once every stream has its
  response headers, and writes everything to --out as JSON when the time is up.
analyse: reads that JSON and the flooder's (synflood.py's output line) and checks, over the
  flood window: every stream received bytes with no gap longer than --max-gap seconds and
  ended without a reset or error; at least --min-probe-fraction of the probes started in the
  window completed. Prints a report; exits 1 on a failed check.
"""
import argparse
import json
import socket
import sys
import threading
import time


class Stream(threading.Thread):
    def __init__(self, vip, port, path, until):
        super().__init__(daemon=True)
        self.vip, self.port, self.path, self.until = vip, port, path, until
        self.reads = []  # (time, bytes)
        self.backend = None
        self.error = None
        self.error_at = None
        self.ready = threading.Event()

    def fail(self, what):
        self.error, self.error_at = what, time.time()
        self.ready.set()

    def run(self):
        try:
            s = socket.create_connection((self.vip, self.port), timeout=5)
        except OSError as e:
            return self.fail(f"connect: {e!r}")
        with s:
            s.settimeout(0.5)
            s.sendall(f"GET {self.path} HTTP/1.1\r\nHost: {self.vip}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    if time.time() > self.until:
                        return self.fail("no response headers")
                    continue
                except OSError as e:
                    return self.fail(f"headers: {e!r}")
                if not chunk:
                    return self.fail("EOF before the response headers")
                head += chunk
            head, body = head.split(b"\r\n\r\n", 1)
            for line in head.decode(errors="replace").split("\r\n"):
                if line.lower().startswith("x-backend:"):
                    self.backend = line.split(":", 1)[1].strip()
            if body:
                self.reads.append((time.time(), len(body)))
            self.ready.set()
            while True:
                now = time.time()
                if now >= self.until:
                    return
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    return self.fail("reset")
                except OSError as e:
                    return self.fail(f"recv: {e!r}")
                if not chunk:
                    return self.fail("EOF (the backend closed the stream)")
                self.reads.append((time.time(), len(chunk)))


def probe(vip, port, timeout, out):
    t0 = time.time()
    rec = {"t": t0, "ok": False}
    try:
        with socket.create_connection((vip, port), timeout=timeout) as s:
            rec["connect_ms"] = round((time.time() - t0) * 1000, 1)
            s.settimeout(max(0.1, timeout - (time.time() - t0)))
            s.sendall(f"GET / HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        body = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").strip()
        if body.startswith("backend="):
            rec.update(ok=True, backend=body[len("backend="):])
        else:
            rec["error"] = f"unexpected answer {data[:80]!r}"
    except OSError as e:
        rec["error"] = repr(e)
    rec["ms"] = round((time.time() - t0) * 1000, 1)
    out.append(rec)


def run(args):
    until = time.time() + args.seconds
    path = f"/stream/{args.chunk}/{args.interval_ms}"
    streams = [Stream(args.vip, args.stream_port, path, until) for _ in range(args.streams)]
    for s in streams:
        s.start()
    for s in streams:
        s.ready.wait(max(0.1, until - time.time()))
    bad = [s.error for s in streams if s.error or not s.ready.is_set()]
    print("ready" if not bad else f"streams failed to start: {bad}", flush=True)
    probes, threads = [], []
    next_probe = time.time()
    while time.time() < until:
        if time.time() >= next_probe and time.time() + args.probe_timeout < until:
            t = threading.Thread(target=probe, args=(args.vip, args.probe_port, args.probe_timeout, probes), daemon=True)
            t.start()
            threads.append(t)
            next_probe += args.probe_interval
        time.sleep(0.02)
    for t in threads + streams:
        t.join(args.probe_timeout + 1)
    result = {
        "started": until - args.seconds,
        "until": until,
        "streams": [{"backend": s.backend, "error": s.error, "error_at": s.error_at, "reads": s.reads} for s in streams],
        "probes": sorted(probes, key=lambda p: p["t"]),
    }
    with open(args.out, "w") as f:
        json.dump(result, f)
    print("done", flush=True)


def analyse(args):
    c = json.load(open(args.client))
    f = json.load(open(args.flood))
    start, end = f["start"], f["start"] + f["seconds"]
    failures = []
    gaps, totals, by_backend = [], [], {}
    for i, s in enumerate(c["streams"]):
        by_backend[s["backend"]] = by_backend.get(s["backend"], 0) + 1
        if s["error"]:
            failures.append(f"stream {i} (backend {s['backend']}): {s['error']} at flood+{s['error_at'] - start:.1f}s")
        # The reads during the flood, and the last one before it, bound the gaps.
        times = [t for t, _ in s["reads"] if t <= end]
        before = [t for t in times if t < start]
        during = [t for t in times if t >= start]
        edge = ([before[-1]] if before else []) + during + [end]
        gap = max((b - a for a, b in zip(edge, edge[1:])), default=end - start)
        gaps.append(gap)
        got = sum(n for t, n in s["reads"] if start <= t <= end)
        totals.append(got)
        if gap > args.max_gap:
            failures.append(f"stream {i} (backend {s['backend']}): no byte for {gap:.2f}s during the flood")
        after = [t for t, _ in s["reads"] if t > end]
        if not after and not s["error"]:
            failures.append(f"stream {i} (backend {s['backend']}): nothing received after the flood")
    window = [p for p in c["probes"] if start <= p["t"] <= end]
    ok = [p for p in window if p["ok"]]
    frac = len(ok) / len(window) if window else 0.0
    slow = sorted(p["ms"] for p in ok)
    connects = sorted(p["connect_ms"] for p in ok if "connect_ms" in p)
    print(f"flood: {f['sent']} SYNs in {f['seconds']}s = {f['rate']}/s (per second: {f['per_second']})")
    print(f"streams: {len(c['streams'])} on {dict(sorted(by_backend.items()))}; "
          f"{sum(1 for s in c['streams'] if not s['error'])} unbroken; during the flood each got "
          f"{min(totals)}..{max(totals)} bytes, longest gap {max(gaps):.2f}s (allowed {args.max_gap}s)")
    print(f"new connections during the flood: {len(ok)}/{len(window)} completed ({frac:.0%}) within "
          f"{args.probe_timeout}s; time to answer "
          f"median {slow[len(slow) // 2] if slow else '-'} ms, max {slow[-1] if slow else '-'} ms (connect: max "
          f"{connects[-1] if connects else '-'} ms, {sum(1 for c in connects if c > 900)} over 0.9 s, i.e. a SYN or "
          f"SYN-ACK retransmitted)")
    errs = {}
    for p in window:
        if not p["ok"]:
            errs[p.get("error", "?")] = errs.get(p.get("error", "?"), 0) + 1
    if errs:
        print(f"  failed probes: {errs}")
    if len(window) < args.min_probes:
        failures.append(f"only {len(window)} probes started during the flood (want >= {args.min_probes})")
    if frac < args.min_probe_fraction:
        failures.append(f"{frac:.0%} of new connections completed during the flood (want >= {args.min_probe_fraction:.0%})")
    for m in failures:
        print(f"  FAIL {m}")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--vip", required=True)
    r.add_argument("--stream-port", type=int, default=8080)
    r.add_argument("--probe-port", type=int, default=80)
    r.add_argument("--streams", type=int, default=20)
    r.add_argument("--chunk", type=int, default=1024)
    r.add_argument("--interval-ms", type=int, default=50)
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--probe-interval", type=float, default=0.2)
    r.add_argument("--probe-timeout", type=float, default=3)
    r.add_argument("--out", required=True)
    a = sub.add_parser("analyse")
    a.add_argument("--client", required=True)
    a.add_argument("--flood", required=True)
    a.add_argument("--max-gap", type=float, default=2)
    a.add_argument("--min-probes", type=int, default=30)
    a.add_argument("--min-probe-fraction", type=float, default=0.9)
    a.add_argument("--probe-timeout", type=float, default=3)
    args = ap.parse_args()
    return run(args) if args.cmd == "run" else analyse(args)


if __name__ == "__main__":
    sys.exit(main())
