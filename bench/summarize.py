#!/usr/bin/env python3
"""Summarises a bench/run.sh JSONL file into the "Throughput and latency (make bench)" section
of bench/RESULTS.md (replacing only that section): min/median/max per scenario, and ratios to
testpmd computed within each round (the runs of one round ran back to back, same load)."""

import argparse
import json
import os
import statistics
import subprocess

HEADER = "## Throughput and latency (make bench)"

DESCRIPTIONS = {
    "testpmd-io": "dpdk-testpmd `io`: receive and send back unchanged",
    "testpmd-macswap": "dpdk-testpmd `macswap`: swap the MACs, send back",
    "sluice-ipip": "sluice, TCP ACK, IPv4, IPIP, 100 backends, flows prewarmed (all hits)",
    "sluice-syn": "sluice, TCP SYN, a new 5-tuple per packet (all misses: Maglev + insert, and once "
                  "the table is full an eviction per insert)",
    "sluice-ipip6": "sluice, TCP ACK, IPv6, IPv6-in-IPv6, 100 backends, flows prewarmed, 84-byte frames "
                    "(the smallest IPv6 TCP frame with the generator's stamp)",
    "sluice-gue": "sluice, TCP ACK, IPv4, GUE (UDP 6080), 100 backends, flows prewarmed",
    "sluice-l2dsr": "sluice, TCP ACK, IPv4, l2-dsr (MAC rewrite, ARP-resolved backends)",
    "sluice-ipip-2w": "as sluice-ipip with two workers on two memif queue pairs (flow f on queue f % 2)",
    "latency-testpmd-io": "testpmd `io` at a fixed light rate",
    "latency-sluice": "sluice IPIP at the same fixed light rate",
    # Sweep runs (NAME@FLOWS) share their scenario's description.
}


def mmm(values):
    values = sorted(values)
    return values[0], statistics.median(values), values[-1]


def fmt_pps(v):
    return "%.3f" % (v / 1e6)


def fmt_us(v):
    return "-" if v is None else "%.1f" % (v / 1e3)


def machine(load=None):
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        dpdk = subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True, text=True).stdout.strip()
    except OSError:
        dpdk = "?"
    if load is None:
        load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"] * 3
    return "%d vCPUs (%s), DPDK %s; load average at the end: %s" % (os.cpu_count() or 0, model, dpdk, " ".join(load))


def frame_sizes(rows):
    """The frame sizes of the run, e.g. "64-byte" or "64-byte (84 for sluice-ipip6)"."""
    sizes = {}
    for r in rows:
        sizes.setdefault(r["frame_size"], set()).add(r["scenario"])
    common = max(sizes, key=lambda k: len(sizes[k]))
    rest = ["%d for %s" % (k, ", ".join(sorted(v))) for k, v in sorted(sizes.items()) if k != common]
    return "%d-byte" % common + (" (%s)" % "; ".join(rest) if rest else "")


def run_of(r):
    """The run's name: scenario, or scenario@flows for the flow-count sweep (older files lack it)."""
    return r.get("run", r["scenario"])


def hist_quantile(buckets, q):
    """The upper bound of the histogram bucket holding quantile q ([[le, cumulative], ...])."""
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    for le, n in buckets:
        if n >= q * total:
            return float(le)
    return float("inf")


def fmt_bound(seconds):
    if seconds is None:
        return "-"
    if seconds == float("inf"):
        return "> %.0f us" % 1e3
    return "<= %g us" % round(seconds * 1e6, 3)


def in_sluice(rs, q):
    """The in-sluice percentile q per round (the bucket bound of each round's own histogram): the
    median round's and the worst round's. Pooling the rounds would let one disturbed round set it."""
    bounds = []
    for r in rs:
        hist = r.get("sluice", {}).get("latency_hist", [])
        b = hist_quantile(sorted(hist, key=lambda kv: float(kv[0])), q)
        if b is not None:
            bounds.append(b)
    if not bounds:
        return None, None
    return statistics.median_high(bounds), max(bounds)


def fmt_in_sluice(rs, q):
    med, worst = in_sluice(rs, q)
    return fmt_bound(med) if med == worst else "%s (worst %s)" % (fmt_bound(med), fmt_bound(worst))


def per_round_ratios(by, run, ref, rounds, key="rx_pps"):
    """run's `key` over ref's, in each round where both have it."""
    ratios = []
    for rd in rounds:
        a = [r[key] for r in by.get(run, []) if r["round"] == rd and r.get(key)]
        b = [r[key] for r in by.get(ref, []) if r["round"] == rd and r.get(key)]
        if a and b:
            ratios.append(a[0] / b[0])
    return ratios


def capacity_ratios(by, run, ref, rounds):
    """ref's busy time per packet over run's, per round: the rate ratio if both were CPU-bound."""
    return per_round_ratios(by, ref, run, rounds, "busy_ns_per_packet")


def busy_share(r):
    """The share of the forwarding core that was busy (busy time per packet x packets per second)."""
    return r["busy_ns_per_packet"] * r["rx_pps"] / 1e9 if r.get("busy_ns_per_packet") else None


def verdict(ok, short):
    return "**met**" if ok else "**not met** (%s)" % short


def least_busy(rs):
    """The lowest busy time per packet of these runs (the least disturbed one), or None."""
    b = [r["busy_ns_per_packet"] for r in rs if r.get("busy_ns_per_packet")]
    return min(b) if b else None


def budget(by, rows):
    """What 0.8 of macswap leaves sluice for its own work, beside what that work takes: both
    over testpmd io's busy time, the topology's floor (memif receive and transmit, nothing else)."""
    io, mac, sl = (least_busy(by.get(r, [])) for r in ("testpmd-io", "testpmd-macswap", "sluice-ipip"))
    if None in (io, mac, sl):
        return []
    allowed = mac / 0.8
    line = ("  What that leaves sluice (least disturbed runs, busy ns per packet): testpmd `io`, "
            "memif's receive and transmit alone, %.1f; macswap %.1f, so 0.8 allows sluice %.1f in all, "
            "**%.1f ns of its own work** over `io`'s floor; sluice-ipip took %.1f, %.1f over the floor "
            "(%.1fx the allowance)" % (io, mac, allowed, allowed - io, sl, sl - io,
                                       (sl - io) / max(allowed - io, 0.1)))
    # The sweep's smallest point (as `sweep_section` finds it): a table that fits in the caches.
    sweep = sorted({r["flows"] for r in rows if r["scenario"] == "sluice-ipip" and r.get("flows")})
    if len(sweep) > 1:
        small = least_busy([r for r in rows if r["scenario"] == "sluice-ipip" and r.get("flows") == sweep[0]])
        if small is not None:
            line += (", and with %d flows (the table in cache) %.1f, %.1f over the floor" %
                     (sweep[0], small, small - io))
    return [line + "."]


def targets(by, rows, rounds, callgrind):
    """Issue 6's three targets, judged from this run's rows (and the callgrind counts)."""
    out = ["", "Targets (issue 6), judged from this run:", ""]
    ratios = per_round_ratios(by, "sluice-ipip", "testpmd-macswap", rounds)
    if ratios:
        med = statistics.median(ratios)
        best = max(r["rx_pps"] for r in by["sluice-ipip"]) / max(r["rx_pps"] for r in by["testpmd-macswap"])
        busy = capacity_ratios(by, "sluice-ipip", "testpmd-macswap", rounds)
        shares = [busy_share(r) for r in by["testpmd-macswap"] if busy_share(r) is not None]
        # The rate ratio measures the forwarders only if macswap saturated its core; when the
        # generator bounded both, busy time per packet is what compares them.
        if busy and shares and statistics.median(shares) < 0.9:
            bmed = statistics.median(busy)
            # memif's own cost swings 2-3x with the vCPUs' placement, so per-round ratios are
            # bimodal; the least disturbed run of each side (its lowest busy time) is the judge.
            fastest = least_busy(by["testpmd-macswap"]) / least_busy(by["sluice-ipip"])
            out.append("- sluice >= 80%% of testpmd macswap with %d flows: the rate ratio per round is median "
                       "%.2f (min %.2f, max %.2f), best / best %.2f, but macswap's core was busy only %.0f%% "
                       "of the time (median): the generator bounded both. Judged by busy time per packet "
                       "instead (macswap's over sluice's; what the rate ratio would be if both were "
                       "CPU-bound): per round median %.2f (min %.2f, max %.2f); the least disturbed run of "
                       "each (lowest busy time, as best / best for the rates) %.2f, which is the verdict's: "
                       "%s." % (
                           by["sluice-ipip"][0].get("flows") or 0, med, min(ratios), max(ratios), best,
                           statistics.median(shares) * 100, bmed, min(busy), max(busy), fastest,
                           verdict(fastest >= 0.8, "%.0f%% short of 0.80" % ((0.8 - fastest) / 0.8 * 100))))
            out.extend(budget(by, rows))
        else:
            out.append("- sluice >= 80%% of testpmd macswap with %d flows: per-round ratio median %.2f (min %.2f, "
                       "max %.2f), best / best %.2f: %s." % (
                           by["sluice-ipip"][0].get("flows") or 0, med, min(ratios), max(ratios), best,
                           verdict(med >= 0.8, "%.0f%% short of 0.80" % ((0.8 - med) / 0.8 * 100))))
    sl = [r for r in rows if r.get("load_pct") == 50 and r["scenario"] == "latency-sluice"]
    if sl:
        bound, worst = in_sluice(sl, 0.999)
        tp = [r for r in rows if r.get("load_pct") == 50 and r["scenario"] == "latency-testpmd-io"]
        diffs = []
        for rd in rounds:
            a = [r["latency_ns"]["p99.9"] for r in sl if r["round"] == rd and r["latency_ns"]["p99.9"] is not None]
            b = [r["latency_ns"]["p99.9"] for r in tp if r["round"] == rd and r["latency_ns"]["p99.9"] is not None]
            if a and b:
                diffs.append(a[0] - b[0])
        added = statistics.median(diffs) if diffs else None
        ok = bound is not None and bound <= 5e-6
        out.append("- p99.9 added latency under 5 us at 50%% load: inside sluice (rx burst to tx burst) "
                   "p99.9 %s in the median round (worst round %s); one-way added over testpmd `io` "
                   "(median over rounds) %s us, which also holds the generator's and memif's queueing: "
                   "%s." % (
                       fmt_bound(bound), fmt_bound(worst), fmt_us(added),
                       verdict(ok, "in-sluice p99.9 %s" % fmt_bound(bound))))
    # Time per packet, miss over hit: by rate, the hit's rate over the miss's.
    ratios = per_round_ratios(by, "sluice-ipip", "sluice-syn", rounds)
    busy = per_round_ratios(by, "sluice-syn", "sluice-ipip", rounds, "busy_ns_per_packet")
    if ratios and busy:
        med, bmed = statistics.median(ratios), statistics.median(busy)
        out.append("- a miss costs at most 2x a hit: busy time per packet, all-miss (`sluice-syn`) over "
                   "all-hit (`sluice-ipip`), per-round median %.2fx (min %.2f, max %.2f; memif's own cost "
                   "included); by rate %.2fx (min %.2f, max %.2f), which the generator can bound: %s." % (
                       bmed, min(busy), max(busy), med, min(ratios), max(ratios),
                       verdict(bmed <= 2.0, "%.2fx" % bmed)))
    elif ratios:
        med = statistics.median(ratios)
        out.append("- a miss costs at most 2x a hit: time per packet, all-miss (`sluice-syn`) over all-hit "
                   "(`sluice-ipip`), per-round median %.2fx (min %.2f, max %.2f; memif's own cost "
                   "included): %s." % (med, min(ratios), max(ratios),
                                       verdict(med <= 2.0, "%.2fx" % med)))
    try:
        cells = json.load(open(callgrind))["results"]
        ir = {(c["api"], c["mode"], c["path"]): c["ir_per_packet"] for c in cells}
        pairs = ["%s %.2fx" % (m, ir[("burst", m, "miss-syn")] / ir[("burst", m, "hit")])
                 for m in ("ipip", "gue", "l2-dsr") if ("burst", m, "hit") in ir and ("burst", m, "miss-syn") in ir]
        if pairs:
            out.append("  Instructions of the pure per-packet function (callgrind, `bench/callgrind.sh`), "
                       "new flow by SYN over hit: %s." % ", ".join(pairs))
    except (OSError, ValueError, KeyError, ZeroDivisionError):
        pass
    return out


def med(values, fmt="%.1f"):
    values = [v for v in values if v is not None]
    return fmt % statistics.median(values) if values else "-"


def sweep_section(rows, rounds):
    """Issue 19 item 2: sluice-ipip and testpmd macswap against the flow count, the measured
    phase's misses, and the memory per flow."""
    sweep = sorted({r["flows"] for r in rows if r["scenario"] == "sluice-ipip" and r.get("flows")})
    if len(sweep) < 2:
        return []
    out = ["", "Flow-count sweep (sluice IPIP, all flows prewarmed, one worker, against testpmd `macswap` "
           "with the same generator settings; median over rounds; ratios are medians of the per-round "
           "ratios). *Capacity ratio* is macswap's busy time per packet over sluice's (the rate ratio "
           "if both were CPU-bound); *miss ratio* is the measured phase's new flow entries plus "
           "stateless forwards (`sluice_flows_created_total`, `sluice_flows_stateless_total`) over "
           "its packets received, and *evicted* its `sluice_flows_evicted_total`:", "",
           "| flows | sluice-ipip Mpps | macswap Mpps | rate ratio | sluice busy ns/packet | macswap busy "
           "ns/packet | capacity ratio | miss ratio | evicted |",
           "|---|---|---|---|---|---|---|---|---|"]
    per_flows = {}
    for f in sweep:
        s_runs = [r for r in rows if r["scenario"] == "sluice-ipip" and r.get("flows") == f]
        m_runs = [r for r in rows if r["scenario"] == "testpmd-macswap" and r.get("flows") == f]
        per_flows[f] = s_runs
        ratios, caps = [], []
        for rd in rounds:
            a = [r for r in s_runs if r["round"] == rd]
            b = [r for r in m_runs if r["round"] == rd]
            if a and b and b[0]["rx_pps"] > 0:
                ratios.append(a[0]["rx_pps"] / b[0]["rx_pps"])
            if a and b and a[0].get("busy_ns_per_packet") and b[0].get("busy_ns_per_packet"):
                caps.append(b[0]["busy_ns_per_packet"] / a[0]["busy_ns_per_packet"])
        misses = [r["miss_ratio"] for r in s_runs if r.get("miss_ratio") is not None]
        evicted = [r["measured"]["flows_evicted"] for r in s_runs if r.get("measured")]
        out.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            f, fmt_pps(statistics.median([r["rx_pps"] for r in s_runs])),
            fmt_pps(statistics.median([r["rx_pps"] for r in m_runs])) if m_runs else "-",
            med(ratios, "%.2f"), med([r.get("busy_ns_per_packet") for r in s_runs]),
            med([r.get("busy_ns_per_packet") for r in m_runs]), med(caps, "%.2f"),
            ("%.2g" % statistics.median(misses)) if misses else "-", med(evicted, "%d")))
    sized = [f for f in sweep if any(r.get("flow_slots") for r in per_flows[f])]
    if sized:
        out += ["", "Memory per flow. *Table* is the flow table as `sluice check` sizes it (`flows.capacity` = 2 "
                "slots per flow, rounded up to a power of two times 8; each slot a 64-byte entry and a "
                "quarter of a 32-byte 8-way bucket, 68 bytes), allocated and touched in full at start, so "
                "its share per flow is 68 x slots / flows, 136-272 bytes with the rounding. *RSS* is "
                "sluice's VmRSS once the prewarm is in (median over rounds); *RSS - table* what the "
                "rest of the process holds (mbuf pool, EAL, Maglev tables), which should not depend on "
                "the flows; *RSS per added flow* the RSS difference to the previous point over the "
                "flows added:", "",
                "| flows | flow capacity | slots | table MiB | table bytes per flow | RSS MiB | RSS - table MiB "
                "| RSS per added flow (bytes) |", "|---|---|---|---|---|---|---|---|"]
        prev = None
        for f in sized:
            rs = [r for r in per_flows[f] if r.get("flow_slots")]
            table = statistics.median([r["flow_table_bytes"] for r in rs])
            rss = [r["rss_kb"] * 1024 for r in rs if r.get("rss_kb")]
            rss_med = statistics.median(rss) if rss else None
            added = "-"
            if prev and rss_med is not None and prev[1] is not None:
                added = "%.0f" % ((rss_med - prev[1]) / (f - prev[0]))
            out.append("| %d | %d | %d | %.1f | %.0f | %s | %s | %s |" % (
                f, rs[0]["flow_capacity"], rs[0]["flow_slots"], table / 2**20, table / f,
                "%.1f" % (rss_med / 2**20) if rss_med is not None else "-",
                "%.1f" % ((rss_med - table) / 2**20) if rss_med is not None else "-", added))
            prev = (f, rss_med)
    return out


def two_workers(by, rounds):
    """Issue 19 item 5: NAME-2w (two workers, two memif queue pairs) against NAME in the same rounds."""
    pairs = [(run, run[:-3]) for run in by if run.endswith("-2w") and run[:-3] in by]
    if not pairs:
        return []
    out = ["", "Two workers (`NAME-2w`: sluice `queues: 2` on its memif interface, one worker per queue, "
           "the generator sending flow f on queue f %% 2) against one, in the same rounds. On this "
           "2-vCPU machine the workers cannot have a core each: lcores %s. *Busy ns/packet* is "
           "`sluice_worker_busy_seconds_total` over the packets of that worker's queue; *CPU "
           "ns/packet* the worker thread's time on a CPU (`/proc/PID/task/TID/schedstat`) over the "
           "same packets, idle polls included; *per-worker cost ratio* is 1 worker's ns/packet over a "
           "2-worker run's mean per worker, by busy time and by CPU time (1.0: a worker costs the "
           "same per packet beside another); the capacity two workers would have with a core each "
           "is twice that:" % (
               ", ".join(sorted({str(r.get("lcores_2w", "0@0,1@1,2@1")) for run, _ in pairs for r in by[run]}))), "",
           "| run | Mpps: 1 worker / 2 workers | rate ratio per round | busy ns/packet: 1 worker / each of 2 "
           "| CPU ns/packet: 1 worker / each of 2 | packets per worker (2w) | workers on CPU % (2w) "
           "| preempted /s per worker (2w) | per-worker cost ratio per round: busy; CPU | capacity with a "
           "core each (2 x ratio, median): busy; CPU |", "|---|---|---|---|---|---|---|---|---|---|"]
    for run, one in pairs:
        rates, costs, cpu_costs = [], [], []
        for rd in rounds:
            a = [r for r in by[run] if r["round"] == rd]
            b = [r for r in by[one] if r["round"] == rd]
            if a and b and b[0]["rx_pps"] > 0:
                rates.append(a[0]["rx_pps"] / b[0]["rx_pps"])
            per = [w["busy_ns_per_packet"] for w in (a[0].get("per_worker", []) if a else []) if w.get("busy_ns_per_packet")]
            if per and b and b[0].get("busy_ns_per_packet"):
                costs.append(b[0]["busy_ns_per_packet"] / statistics.mean(per))
            cpu = [w["cpu_ns_per_packet"] for w in (a[0].get("per_worker", []) if a else []) if w.get("cpu_ns_per_packet")]
            one_cpu = [w["cpu_ns_per_packet"] for w in (b[0].get("per_worker", []) if b else []) if w.get("cpu_ns_per_packet")]
            if cpu and one_cpu:
                cpu_costs.append(one_cpu[0] / statistics.mean(cpu))

        def per_worker(rs, key, fmt="%.0f"):
            n = max((len(r.get("per_worker", [])) for r in rs), default=0)
            cells = [med([r["per_worker"][i].get(key) for r in rs if len(r.get("per_worker", [])) > i], fmt)
                     for i in range(n)]
            return " / ".join(cells) if cells else "-"

        def threads(rs, key):
            n = max((len(r.get("host", {}).get("threads", [])) for r in rs), default=0)
            cells = [med([r["host"]["threads"][i][key] for r in rs if len(r.get("host", {}).get("threads", [])) > i], "%.0f")
                     for i in range(n)]
            return " / ".join(cells) if cells else "-"

        out.append("| %s vs %s | %s / %s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %s |" % (
            run, one, fmt_pps(statistics.median([r["rx_pps"] for r in by[one]])),
            fmt_pps(statistics.median([r["rx_pps"] for r in by[run]])),
            "%.2f / %.2f / %.2f" % mmm(rates) if rates else "-",
            med([r.get("busy_ns_per_packet") for r in by[one]]), per_worker(by[run], "busy_ns_per_packet"),
            per_worker(by[one], "cpu_ns_per_packet"), per_worker(by[run], "cpu_ns_per_packet"),
            per_worker(by[run], "rx"), threads(by[run], "on_cpu_pct"), threads(by[run], "preempted_per_s"),
            "; ".join("%.2f / %.2f / %.2f" % mmm(c) if c else "-" for c in (costs, cpu_costs)),
            "; ".join("%.2f" % (2 * statistics.median(c)) if c else "-" for c in (costs, cpu_costs))))
    out += ["", "What the ratio means here: with both workers on one CPU (the default lcores) the two "
            "share that CPU's time, so the rate ratio can only show what splitting costs (at best "
            "1.0), never a gain; with the second worker on the generator's CPU it takes time from "
            "the generator instead. Busy ns/packet is inflated when the scheduler switches a "
            "worker out during a poll (its span starts at the poll, and the ring it returns to is "
            "full: the other worker's slice counts as busy); "
            "the CPU time per packet does not have that error but counts idle polls. A scaling "
            "measurement needs 4 or more cores: one for the generator (better, another host), one "
            "for control, one per worker, isolated (`isolcpus`, `nohz_full`)."]
    return out


def host_during_latency(rows, loads):
    """Issue 19 item 3: what the host did while the latency runs ran (median over rounds)."""
    lat = [r for r in rows if r.get("load_pct") is not None and r.get("host")]
    if not lat:
        return []
    cpus = sorted({c for r in lat for c in r["host"]["cpus"]})
    out = ["", "The host during the latency runs (median over rounds; `/proc/stat`, `/proc/interrupts` and "
           "the forwarding thread's `/proc/PID/task/TID/status` and `schedstat` over each run's measured "
           "phase). *Steal* is time the hypervisor ran something else on that vCPU; *preempted* counts "
           "the forwarding thread's involuntary context switches (another task, e.g. the generator's "
           "helper or a kernel thread, took its CPU):", "",
           "| load | run | steal %% (%s) | busy %% (%s) | interrupts /s (%s) | local timer /s (%s) "
           "| forwarding thread preempted /s | on CPU %% |" % ((" / ".join(cpus),) * 4),
           "|---|---|---|---|---|---|---|---|"]
    for p in loads:
        for sc in ("latency-sluice", "latency-testpmd-io"):
            rs = [r for r in lat if r["load_pct"] == p and r["scenario"] == sc]
            if not rs:
                continue

            def cpu(key, fmt):
                return " / ".join(med([r["host"]["cpus"].get(c, {}).get(key) for r in rs], fmt) for c in cpus)

            def thread(key):
                return med([sum(t[key] for t in r["host"]["threads"]) for r in rs if r["host"]["threads"]], "%.1f")

            out.append("| %d%% | %s | %s | %s | %s | %s | %s | %s |" % (
                p, sc, cpu("steal_pct", "%.2f"), cpu("busy_pct", "%.0f"), cpu("interrupts_per_s", "%.0f"),
                cpu("timer_per_s", "%.0f"), thread("preempted_per_s"), thread("on_cpu_pct")))
    return out


def section(rows, source, command, callgrind="", load=None):
    by = {}
    for r in rows:
        by.setdefault(run_of(r), []).append(r)
    rounds = sorted({r["round"] for r in rows})
    first = rows[0]
    out = [HEADER, ""]
    out.append("Machine: %s. Generated by `bench/summarize.py` from `%s` (%s)." % (machine(load), source, first["time"]))
    out.append("")
    out.append("Command: `%s`. Topology: `sluice-gen` (our DPDK generator, `bench/src/`, memif server, lcore 0) "
               "-> `net_memif` -> forwarder (memif client; main lcore 0, one forwarding lcore 1) -> back "
               "to `sluice-gen`, which counts what returns and reads the TSC it stamped into each packet "
               "(one-way latency, same machine TSC). Each forwarder runs in its own process, started "
               "fresh for each run; the scenarios of a round run back to back (interleaved A/B/A/B), "
               "%d rounds, %.0f s per run, %s frames. sluice's flow table has 2 slots per flow "
               "(`flows.capacity`), and the generator sends every flow once before measuring "
               "(prewarm), so the measured packets are hits (except `sluice-syn`'s)." % (
                   command, len(rounds), first["duration_s"], frame_sizes(rows)))
    out.append("")
    out.append("This is a *shared 2-vCPU virtual machine*: the generator and the forwarder's control "
               "thread share one core, the forwarding lcore has the other. Absolute rates are the "
               "memif topology's on this machine, not a NIC's; only the ratios within a round mean much.")
    out.append("")
    out.append("Forwarded rate (packets back at the generator per second of sending; Mpps):")
    out.append("")
    out.append("| run | what | min | median | max | lost (median) |")
    out.append("|---|---|---|---|---|---|")
    for run, rs in by.items():
        sc = rs[0]["scenario"]
        if sc.startswith("latency-"):
            continue
        lo, med, hi = mmm([r["rx_pps"] for r in rs])
        lost = statistics.median([r["lost"] for r in rs])
        flows = rs[0].get("flows")
        what = DESCRIPTIONS.get(sc, sc)
        if flows:
            what += " (%d flows)" % flows
        out.append("| %s | %s | %s | %s | %s | %d |" % (run, what, fmt_pps(lo), fmt_pps(med), fmt_pps(hi), lost))
    out.append("")
    out.append("Ratios to testpmd: computed per round (min / median / max over rounds), and best run over "
               "best run (other jobs only ever slow a run down, so the fastest run of each is the least "
               "disturbed one). A sweep run (`@flows`) is compared with testpmd macswap at the same flow count "
               "and with testpmd io at the default flow count (io ignores the flows):")
    out.append("")
    out.append("| run | / testpmd io, per round | / testpmd macswap, per round | best / best io | best / best macswap |")
    out.append("|---|---|---|---|---|")
    for run, rs in by.items():
        if not run.startswith("sluice"):
            continue
        suffix = run[len(rs[0]["scenario"]):]
        cells = []
        refs = [ref + suffix if ref + suffix in by else ref for ref in ("testpmd-io", "testpmd-macswap")]
        for ref in refs:
            ratios = per_round_ratios(by, run, ref, rounds)
            cells.append("%.2f / %.2f / %.2f" % mmm(ratios) if ratios else "-")
        for ref in refs:
            best_ref = max([r["rx_pps"] for r in by.get(ref, [])], default=0)
            best = max(r["rx_pps"] for r in rs)
            cells.append("%.2f" % (best / best_ref) if best_ref else "-")
        out.append("| %s | %s | %s | %s | %s |" % (run, cells[0], cells[1], cells[2], cells[3]))

    costed = {run: rs for run, rs in by.items()
              if not rs[0]["scenario"].startswith("latency-") and any(r.get("busy_ns_per_packet") for r in rs)}
    if costed:
        out.append("")
        out.append("Busy time per packet: the forwarding core's time on bursts that received packets (from "
                   "before rx to after tx; idle polls excluded) over the packets received: testpmd's "
                   "`--record-core-cycles` at the TSC rate, sluice's `sluice_worker_busy_seconds_total` over "
                   "the measured phase. Unlike the rate, it does not depend on whether the generator kept "
                   "the forwarder busy, except that fuller bursts amortise more (a busier forwarder "
                   "gets fuller bursts). Capacity ratio = testpmd's busy time per packet over sluice's in "
                   "the same round (the rate ratio if both were CPU-bound):")
        out.append("")
        out.append("| run | busy ns / packet, min / median / max | core busy (median) | mean burst (median) "
                   "| capacity / testpmd io, per round | capacity / testpmd macswap, per round |")
        out.append("|---|---|---|---|---|---|")
        for run, rs in costed.items():
            vals = [r["busy_ns_per_packet"] for r in rs if r.get("busy_ns_per_packet")]
            shares = [busy_share(r) for r in rs if busy_share(r) is not None]
            cells = []
            suffix = run[len(rs[0]["scenario"]):]
            for ref in ("testpmd-io", "testpmd-macswap"):
                ref = ref + suffix if ref + suffix in by else ref
                ratios = capacity_ratios(by, run, ref, rounds) if run.startswith("sluice") else []
                cells.append("%.2f / %.2f / %.2f" % mmm(ratios) if ratios else "-")
            bursts = [r["mean_burst"] for r in rs if r.get("mean_burst")]
            out.append("| %s | %.1f / %.1f / %.1f | %.0f%% | %s | %s | %s |" % (
                (run,) + mmm(vals) + (statistics.median(shares) * 100,
                                      "%.1f" % statistics.median(bursts) if bursts else "-", cells[0], cells[1])))

    out.extend(sweep_section(rows, rounds))
    out.extend(two_workers(by, rounds))

    loads = sorted({r["load_pct"] for r in rows if r.get("load_pct") is not None})
    if loads:
        out.append("")
        out.append("Latency under load: each round runs sluice and testpmd `io` at P%% of that round's "
                   "`sluice-ipip` rate (%d flows, prewarmed). *One-way* is generator -> forwarder -> "
                   "generator from the TSC stamps (median over rounds of each round's percentile); "
                   "*added* is sluice's minus testpmd's in the same round (median over rounds), "
                   "*ratio* sluice's over testpmd's in the same round (median over rounds); "
                   "*in sluice* is `sluice_packet_latency_seconds` (rx burst to tx burst) over each "
                   "round's measured phase, given as the histogram bucket that holds the percentile, "
                   "in the median round (and the worst round where it differs). *Sent* is what the "
                   "generator achieved against the rate asked (median over rounds; in brackets, the rounds "
                   "where it sent under 95%% of it: it could not keep the pace, and that round ran "
                   "flat out). Microseconds." % next((r.get("flows") or 0 for r in rows if run_of(r) == "sluice-ipip"), 0))
        out.append("")
        out.append("| load | rate asked (Mpps) | sent: sluice / testpmd io | one-way sluice p50 / p99 / p99.9 "
                   "| one-way testpmd io p50 / p99 / p99.9 | added p50 / p99 / p99.9 | ratio p50 / p99 / p99.9 "
                   "| in sluice p50 | p99 | p99.9 | sluice's mean burst |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for p in loads:
            sl = [r for r in rows if r.get("load_pct") == p and r["scenario"] == "latency-sluice"]
            tp = [r for r in rows if r.get("load_pct") == p and r["scenario"] == "latency-testpmd-io"]

            def pct(rs):
                cells = []
                for k in ("p50", "p99", "p99.9"):
                    vals = [r["latency_ns"][k] for r in rs if r["latency_ns"][k] is not None]
                    cells.append(fmt_us(statistics.median(vals)) if vals else "-")
                return " / ".join(cells) if rs else "-"

            added, ratio = [], []
            for k in ("p50", "p99", "p99.9"):
                diffs, quotients = [], []
                for rd in rounds:
                    a = [r["latency_ns"][k] for r in sl if r["round"] == rd and r["latency_ns"][k] is not None]
                    b = [r["latency_ns"][k] for r in tp if r["round"] == rd and r["latency_ns"][k] is not None]
                    if a and b:
                        diffs.append(a[0] - b[0])
                        if b[0] > 0:
                            quotients.append(a[0] / b[0])
                added.append("%.1f" % (statistics.median(diffs) / 1e3) if diffs else "-")
                ratio.append("%.2f" % statistics.median(quotients) if quotients else "-")
            rate = statistics.median([r["rate_asked_pps"] for r in sl + tp]) if sl + tp else 0
            bursts = [r["mean_burst"] for r in sl if r.get("mean_burst")]

            def sent(rs):
                if not rs:
                    return "-"
                short = sum(1 for r in rs if r["tx_pps"] < 0.95 * r["rate_asked_pps"])
                return fmt_pps(statistics.median([r["tx_pps"] for r in rs])) + (" [%d]" % short if short else "")

            out.append("| %d%% | %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                p, fmt_pps(rate), sent(sl), sent(tp), pct(sl), pct(tp), " / ".join(added), " / ".join(ratio),
                fmt_in_sluice(sl, 0.5), fmt_in_sluice(sl, 0.99), fmt_in_sluice(sl, 0.999),
                "%.1f" % statistics.median(bursts) if bursts else "-"))

    if loads:
        out.extend(host_during_latency(rows, loads))

    lat = {run: rs for run, rs in by.items() if rs[0]["scenario"].startswith("latency-")
           and rs[0].get("load_pct") is None}
    if lat:
        rate = next(iter(lat.values()))[0]["rate_asked_pps"]
        out.append("")
        out.append("One-way latency generator -> forwarder -> generator at a fixed %d pps (10 000 flows; "
                   "microseconds, median over rounds of each round's percentile; max is the largest seen; "
                   "the best round is the least disturbed by other jobs):" % rate)
        out.append("")
        out.append("| scenario | what | p50 | p99 | p99.9 | max | p50, best round | p99, best round |")
        out.append("|---|---|---|---|---|---|---|---|")
        for sc, rs in lat.items():
            med = lambda k: statistics.median([r["latency_ns"][k] for r in rs if r["latency_ns"][k] is not None])
            mx = max(r["latency_ns"]["max"] or 0 for r in rs)
            best = lambda k: min(r["latency_ns"][k] for r in rs if r["latency_ns"][k] is not None)
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                sc, DESCRIPTIONS.get(sc, sc), fmt_us(med("p50")), fmt_us(med("p99")), fmt_us(med("p99.9")),
                fmt_us(mx), fmt_us(best("p50")), fmt_us(best("p99"))))
    sat = [r for r in rows if not r["scenario"].startswith("latency-")]
    if sat:
        p50 = statistics.median([r["latency_ns"]["p50"] for r in sat if r["latency_ns"]["p50"]])
        out.append("")
        out.append("At full rate the one-way latency is queueing in the memif rings (median p50 over those "
                   "runs: %s us), so it is reported at fixed shares of the maximum above." % fmt_us(p50))
    out.extend(targets(by, rows, rounds, callgrind))
    drops = {}
    for r in rows:
        for reason, n in r.get("sluice", {}).get("dropped", {}).items():
            key = (run_of(r), reason)
            drops[key] = drops.get(key, 0) + n
    out.append("")
    out.append("sluice's drop counters, summed over the rounds (prewarm included; `tx_queue_full` is the "
               "memif ring back to the generator being full; l2-dsr's `unresolved_next_hop` are prewarm "
               "packets sent before ARP for the on-link backends had completed): %s." % (
        ", ".join("%s %s %d" % (sc, reason, n) for (sc, reason), n in sorted(drops.items())) or "none"))
    out.append("")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("results_md")
    ap.add_argument("--command", default="make bench")
    ap.add_argument("--load", help="the load average to print (when summarising an older file); "
                    "default: /proc/loadavg now, i.e. at the end of the run that just wrote the file")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.jsonl) if l.strip()]
    new = section(rows, os.path.relpath(a.jsonl, os.path.dirname(os.path.abspath(a.results_md)) + "/.."), a.command,
                  os.path.join(os.path.dirname(os.path.abspath(a.jsonl)), "callgrind.json"),
                  a.load.split() if a.load else None)
    text = open(a.results_md).read() if os.path.exists(a.results_md) else "# sluice benchmark results\n"
    start = text.find(HEADER)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + new
    else:
        # The generated part ends at the next heading, "##" or a hand-written "###" under it.
        ends = [e for e in (text.find(h, start + len(HEADER)) for h in ("\n## ", "\n### ")) if e >= 0]
        end = min(ends) if ends else -1
        text = text[:start] + new + (text[end + 1:] if end >= 0 else "")
    open(a.results_md, "w").write(text)


if __name__ == "__main__":
    main()
