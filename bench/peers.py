#!/usr/bin/env python3
"""The traffic pieces of bench/peers.sh (Python standard library only), one subcommand each.

  echo    --bind ADDR... --port P          UDP echo on each ADDR:P (a reply leaves from the
                                           address the datagram reached: the VIP under l2-dsr)
  flood   --target ADDR... --port P --source ADDR... --seconds S [--procs N] [--flows F]
                                           UDP datagrams as fast as N processes can send them,
                                           F sockets (flows) each, spread over the targets;
                                           prints {"sent": n, "seconds": s}
  rr      --target ADDR --tcp-port P --udp-port Q --seconds S
                                           one request at a time: a whole short TCP connection
                                           (connect, GET, read to EOF, close) for S/2 s, then a
                                           UDP echo (none with Q = 0) for S/2 s; prints their
                                           round-trip percentiles (us) as JSON
  summarize ROWS.jsonl OUT.md --command C  the markdown tables of a run (bench/RESULTS.md)
"""
import argparse
import json
import multiprocessing
import select
import socket
import statistics
import sys
import time

PAYLOAD = b"sluice-peers-bench"  # 18 bytes: a 64-byte frame with Ethernet, IPv4 and UDP headers


def cmd_echo(a):
    socks = []
    for addr in a.bind:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, a.port))
        socks.append(s)
    print("ready", flush=True)
    while True:
        for s in select.select(socks, [], [])[0]:
            data, peer = s.recvfrom(2048)
            s.sendto(data, peer)


def flood_worker(targets, port, sources, flows, first, deadline, out):
    socks = []
    for i in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((sources[(first + i) % len(sources)], 0))
        s.connect((targets[(first + i) % len(targets)], port))
        socks.append(s)
    sent = 0
    while time.monotonic() < deadline:
        # 64 datagrams per socket between clock reads: the clock costs more than a send.
        for s in socks:
            for _ in range(64):
                try:
                    s.send(PAYLOAD)
                    sent += 1
                except OSError:  # ENOBUFS or a refused send under overload: keep going
                    pass
    out.put(sent)


def cmd_flood(a):
    out = multiprocessing.Queue()
    start = time.monotonic()
    deadline = start + a.seconds
    procs = [
        multiprocessing.Process(target=flood_worker, args=(a.target, a.port, a.source, a.flows, i * a.flows, deadline, out))
        for i in range(a.procs)
    ]
    for p in procs:
        p.start()
    sent = sum(out.get(timeout=a.seconds + 30) for _ in procs)
    for p in procs:
        p.join(10)
    print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - start, 3)}))


def pct(xs, q):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q / 100 * len(xs)))], 1) if xs else None


def cmd_rr(a):
    req = b"GET / HTTP/1.1\r\nHost: peers\r\nConnection: close\r\n\r\n"
    tcp, udp, tcp_fail, udp_lost = [], [], 0, 0
    half = time.monotonic() + a.seconds / 2
    end = half + a.seconds / 2
    while time.monotonic() < half:
        t0 = time.perf_counter()
        try:
            s = socket.create_connection((a.target, a.tcp_port), timeout=1)
            s.sendall(req)
            while s.recv(4096):
                pass
            s.close()
            tcp.append((time.perf_counter() - t0) * 1e6)
        except OSError:
            tcp_fail += 1
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(0.5)
    u.connect((a.target, a.udp_port or 9))
    n = 0
    while a.udp_port and time.monotonic() < end:
        n += 1
        msg = b"%d" % n
        t0 = time.perf_counter()
        u.send(msg)
        try:
            while u.recv(2048) != msg:  # a late answer to an earlier probe: skip it
                pass
            udp.append((time.perf_counter() - t0) * 1e6)
        except OSError:
            udp_lost += 1
    r = {"tcp_n": len(tcp), "tcp_failed": tcp_fail, "udp_n": len(udp), "udp_lost": udp_lost}
    for name, xs in (("tcp", tcp), ("udp", udp)):
        r[name + "_p50_us"], r[name + "_p99_us"] = pct(xs, 50), pct(xs, 99)
    print(json.dumps(r))


# ---- summary

PATHS = {
    "direct": "no balancer: client -> router -> the backends' own addresses",
    "nft": "nftables `jhash ip saddr . port mod 3` DNAT in the balancer namespace's kernel",
    "haproxy": "HAProxy `mode tcp`, roundrobin (TCP only: HAProxy 2.6 does not balance UDP)",
    "sluice-nat": "sluice `run`, forwarding `nat`, `net_af_packet` on the balancer's veth",
    "sluice-l2dsr": "sluice `run`, forwarding `l2-dsr` (backends answer the client directly)",
    "sluice-nat-xdp": "sluice `run`, forwarding `nat`, `net_af_xdp` on the balancer's veth",
}


def mmm(xs, fmt="{:,.0f}"):
    """median (min-max) of the values present, or "-"."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    if len(xs) == 1:
        return fmt.format(xs[0])
    return "%s (%s-%s)" % tuple(fmt.format(v) for v in (statistics.median(xs), min(xs), max(xs)))


def cmd_summarize(a):
    rows = [json.loads(line) for line in open(a.rows)]
    order = [p for p in PATHS if any(r["path"] == p for r in rows)]
    by = {(r["path"], r["round"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})

    def per_round(path, key, f):
        xs = []
        for rd in rounds:
            d, r = by.get(("direct", rd)), by.get((path, rd))
            if d and r and d.get(key) is not None and r.get(key) is not None:
                xs.append(f(r[key], d[key]))
        return xs

    def col(path, key, fmt="{:,.0f}"):
        return mmm([r.get(key) for r in rows if r["path"] == path], fmt)

    def vs_direct(path, key, f, fmt):
        # direct is the baseline: it has no ratio or difference to itself.
        return "-" if path == "direct" else mmm(per_round(path, key, f), fmt)

    def ratio(path, key):
        return vs_direct(path, key, lambda x, d: x / d, "{:.2f}")

    def added(path, key):
        return vs_direct(path, key, lambda x, d: x - d, "{:+.0f}")

    L = ["Command: `%s`. %s. Load average (1 min) at the start of each run: %s." % (
        a.command, a.when, mmm([r["load1"] for r in rows], "{:.2f}")), ""]
    L.append("Each cell is the median (min-max) over %d rounds, paths interleaved within each round; "
             "ratios are to `direct` in the same round. *Balancer CPU* is the balancer process's user + "
             "system time as a share of one core (sluice: all its threads; nft runs in softirq, "
             "charged to whichever task is on the CPU)." % len(rounds))
    L.append("")
    L.append("| path | what | TCP requests/s (a connection each) | / direct | UDP datagrams/s at the backends "
             "| / direct | UDP sent/s by the client | balancer CPU, TCP / UDP |")
    L.append("|---|---|---|---|---|---|---|---|")
    for p in order:
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
            p, PATHS[p], col(p, "tcp_rps"), ratio(p, "tcp_rps"), col(p, "udp_pps"), ratio(p, "udp_pps"),
            col(p, "udp_sent_pps"), col(p, "lb_cpu_tcp_pct", "{:.0f}%"), col(p, "lb_cpu_udp_pct", "{:.0f}%")))
    idle = [r.get("udp_idle_pct") for r in rows if r.get("udp_idle_pct") is not None]
    if idle:
        L.append("")
        L.append("CPU idle (whole machine, /proc/stat) during the UDP runs: %s; softirq share: %s." % (
            mmm(idle, "{:.0f}%"), mmm([r.get("udp_softirq_pct") for r in rows], "{:.0f}%")))
    L.append("")
    L.append("Latency in microseconds. *One at a time*: a whole short TCP connection (connect, GET, "
             "response, close) or a UDP echo, one request after the other, nothing else of ours "
             "running; *added* is the path's p50 minus direct's in the same round. *Under load*: "
             "wrk's own p50 / p99 during the TCP rate runs (request sent to response, %s connections):" % (
                 rows[0].get("conns", "-")))
    L.append("")
    L.append("| path | TCP connection p50 | p99 | added p50 | UDP echo p50 | p99 | added p50 "
             "| under load: wrk p50 | wrk p99 | TCP failed / UDP lost |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for p in order:
        rs = [r for r in rows if r["path"] == p]
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d / %d |" % (
            p, col(p, "tcp_p50_us"), col(p, "tcp_p99_us"), added(p, "tcp_p50_us"),
            col(p, "udp_p50_us"), col(p, "udp_p99_us"), added(p, "udp_p50_us"),
            mmm([r.get("wrk_p50_ms") and r["wrk_p50_ms"] * 1e3 for r in rs]),
            mmm([r.get("wrk_p99_ms") and r["wrk_p99_ms"] * 1e3 for r in rs]),
            sum(r.get("tcp_failed", 0) for r in rs), sum(r.get("udp_lost", 0) for r in rs)))
    sl = [p for p in order if p.startswith("sluice")]
    if sl:
        L.append("")
        L.append("sluice's worker (`sluice_worker_busy_seconds_total` over the run's wall time: bursts that "
                 "received packets, rx to tx, timed by the TSC, so time the thread spent preempted inside a "
                 "burst counts as busy): " + "; ".join(
                     "%s TCP %s, UDP %s" % (p, col(p, "worker_busy_tcp_pct", "{:.0f}%"), col(p, "worker_busy_udp_pct", "{:.0f}%"))
                     for p in sl) + ".")
    errs = [(r["path"], r["round"], r["wrk_errors"]) for r in rows if r.get("wrk_errors")]
    if errs:
        L.append("")
        L.append("wrk socket errors and non-2xx answers (summed over its processes): " + "; ".join(
            "%s round %d: %s" % e for e in errs) + ".")
    with open(a.out, "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("echo")
    p.add_argument("--bind", nargs="+", required=True)
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("flood")
    p.add_argument("--target", nargs="+", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", nargs="+", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--flows", type=int, default=8)
    p = sub.add_parser("rr")
    p.add_argument("--target", required=True)
    p.add_argument("--tcp-port", type=int, default=80)
    p.add_argument("--udp-port", type=int, default=7)
    p.add_argument("--seconds", type=float, required=True)
    p = sub.add_parser("summarize")
    p.add_argument("rows")
    p.add_argument("out")
    p.add_argument("--command", required=True)
    p.add_argument("--when", default="")
    a = ap.parse_args()
    {"echo": cmd_echo, "flood": cmd_flood, "rr": cmd_rr, "summarize": cmd_summarize}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
