#!/usr/bin/env python3
"""Plots the raw benchmark results: throughput against the number of flows, the flow-count
sweep's busy time per packet and ratio to testpmd macswap (sweep.png), and the latency
distribution, as PNGs, plus min/median/max tables (Markdown) of the same numbers.

Throughput input, one JSON line per run, either shape:
  bench/run.sh:   {"scenario": "sluice-ipip"|"testpmd-io"|..., "flows": N, "rx_pps": X,
                   "round": k, "latency_ns": {"p50": .., "p99": .., "p99.9": .., "max": ..,
                   "count": ..}, ...}
  hand-made:      {"system": "sluice", "mode": "ipip", "flows": N, "pps": X, "repeat": k}
Latency input: the run.sh lines' latency_ns percentiles, or a latency.jsonl of
  {"load_pct": 10, "p50_ns": .., "p99_ns": .., "p999_ns": .., "hist": [[upper_ns, count], ...]}
  (optional "system", "mode", "repeat").
usage: bench/plot.py [--results DIR] [--throughput FILE] [--latency FILE] [--out DIR]
  --throughput defaults to DIR/throughput.jsonl, else the newest DIR/throughput-*.jsonl;
  --latency to DIR/latency.jsonl, else the throughput file's latency percentiles.
Exit status: 0 if at least one plot was written, 2 if there was nothing to plot.
"""

import argparse
import glob
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Percentiles a run.sh line carries, as (key, share of packets slower).
QUANTILES = (("p50", 0.5), ("p99", 0.01), ("p99.9", 0.001))


def import_pyplot():
    """matplotlib from this interpreter, else from Debian's (python3-matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        system = "/usr/bin/python3"
        if os.path.realpath(sys.executable) != os.path.realpath(system) and os.path.exists(system) \
                and not os.environ.get("SLUICE_PLOT_REEXEC"):
            os.environ["SLUICE_PLOT_REEXEC"] = "1"
            os.execv(system, [system, os.path.abspath(__file__)] + sys.argv[1:])
        sys.exit("plot.py: matplotlib is not installed (Debian: apt-get install python3-matplotlib)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def read_jsonl(path):
    """The JSON objects of a JSON-lines file; bad lines are reported and skipped."""
    records = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                print(f"plot.py: {path}:{n}: not JSON ({e.msg}); skipped", file=sys.stderr)
                continue
            if not isinstance(r, dict):
                print(f"plot.py: {path}:{n}: not an object; skipped", file=sys.stderr)
                continue
            r["_where"] = f"{path}:{n}"
            records.append(r)
    return records


def system_mode(r):
    """(system, mode) of a throughput record; run.sh's scenario "sluice-ipip" is sluice, ipip."""
    if "system" in r:
        return str(r["system"]), str(r.get("mode") or "")
    sc = str(r.get("scenario", ""))
    if sc.startswith("sluice-"):
        return "sluice", sc[len("sluice-"):]
    return sc, ""


def label(system, mode):
    return f"{system} {mode}" if mode else system


def summarize(values):
    return min(values), statistics.median(values), max(values)


def throughput_groups(records):
    """{(system, mode): {flows or None: [pps, ...]}}; None = a new flow per packet (SYN)."""
    groups = {}
    for r in records:
        if str(r.get("scenario", "")).startswith("latency-"):
            continue  # a light fixed rate, not a throughput measurement
        pps = r.get("pps", r.get("rx_pps"))
        if pps is None or "flows" not in r:
            print(f"plot.py: {r['_where']}: no pps/rx_pps or flows; skipped", file=sys.stderr)
            continue
        flows = None if r["flows"] is None else int(r["flows"])
        groups.setdefault(system_mode(r), {}).setdefault(flows, []).append(float(pps))
    return groups


def throughput_table(groups):
    lines = ["| run | flows | runs | min Mpps | median Mpps | max Mpps |", "|---|---|---|---|---|---|"]
    for (system, mode), by_flows in sorted(groups.items()):
        for flows, pps in sorted(by_flows.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
            lo, med, hi = summarize(pps)
            shown = "new per packet" if flows is None else str(flows)
            lines.append(f"| {label(system, mode)} | {shown} | {len(pps)} | {lo / 1e6:.3f} | "
                         f"{med / 1e6:.3f} | {hi / 1e6:.3f} |")
    return "\n".join(lines)


def save(plt, fig, axes, out):
    """Every figure's finish, so all look alike: grid and small legend on each axes, 110 dpi."""
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_throughput(plt, groups, out):
    fig, ax = plt.subplots(figsize=(8, 5))
    for (system, mode), by_flows in sorted(groups.items()):
        flows = sorted(f for f in by_flows if f is not None)
        if not flows:
            continue  # SYN runs have no flow count: in the table only
        stats = [summarize(by_flows[f]) for f in flows]
        med = [s[1] / 1e6 for s in stats]
        err = [[(s[1] - s[0]) / 1e6 for s in stats], [(s[2] - s[1]) / 1e6 for s in stats]]
        ax.errorbar(flows, med, yerr=err, marker="o", capsize=3, label=label(system, mode))
    ax.set_xscale("log")
    ax.set_xlabel("concurrent flows")
    ax.set_ylabel("forwarded Mpps (median; bars: min-max)")
    ax.set_ylim(bottom=0)
    ax.set_title("Throughput against the number of flows")
    save(plt, fig, [ax], out)


def sweep_points(records):
    """run.sh's flow-count sweep: {flows: {"sluice": [busy ns], "macswap": [busy ns],
    "capacity": [per-round ratio], "rate": [per-round ratio]}} for sluice-ipip and macswap."""
    rounds = {}
    for r in records:
        if r.get("scenario") in ("sluice-ipip", "testpmd-macswap") and r.get("flows") and r.get("round") is not None:
            rounds.setdefault((int(r["flows"]), r["round"]), {})[r["scenario"]] = r
    points = {}
    for (flows, _), pair in sorted(rounds.items()):
        p = points.setdefault(flows, {"sluice": [], "macswap": [], "capacity": [], "rate": []})
        s, m = pair.get("sluice-ipip"), pair.get("testpmd-macswap")
        if s and s.get("busy_ns_per_packet"):
            p["sluice"].append(float(s["busy_ns_per_packet"]))
        if m and m.get("busy_ns_per_packet"):
            p["macswap"].append(float(m["busy_ns_per_packet"]))
        if s and m and s.get("busy_ns_per_packet") and m.get("busy_ns_per_packet"):
            p["capacity"].append(m["busy_ns_per_packet"] / s["busy_ns_per_packet"])
        if s and m and m.get("rx_pps"):
            p["rate"].append(s["rx_pps"] / m["rx_pps"])
    return {f: p for f, p in points.items() if p["sluice"]}


def plot_sweep(plt, points, out):
    """Busy ns/packet (top) and sluice over macswap (bottom) against the flow count, log x."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    flows = sorted(points)

    def series(ax, key, name, marker):
        xs = [f for f in flows if points[f][key]]
        if not xs:
            return
        stats = [summarize(points[f][key]) for f in xs]
        ax.errorbar(xs, [s[1] for s in stats], yerr=[[s[1] - s[0] for s in stats], [s[2] - s[1] for s in stats]],
                    marker=marker, capsize=3, label=name)

    series(top, "sluice", "sluice ipip (1 worker)", "o")
    series(top, "macswap", "testpmd macswap", "s")
    top.set_ylabel("busy ns / packet (median; bars: min-max)")
    top.set_ylim(bottom=0)
    top.set_title("Flow-count sweep: cost per packet against the flows in the table")
    series(bottom, "capacity", "capacity ratio (macswap busy / sluice busy)", "o")
    series(bottom, "rate", "rate ratio (sluice Mpps / macswap Mpps)", "^")
    bottom.axhline(0.8, color="grey", linestyle="--", linewidth=1, label="target 0.8")
    bottom.set_ylabel("sluice / macswap, per round")
    bottom.set_ylim(bottom=0)
    bottom.set_xscale("log")
    bottom.set_xlabel("concurrent flows (prewarmed; 2 flow-table slots each)")
    save(plt, fig, [top, bottom], out)


def sweep_table(points):
    lines = ["| flows | sluice busy ns/packet (min / median / max) | macswap busy ns/packet | "
             "capacity ratio | rate ratio |", "|---|---|---|---|---|"]
    for f in sorted(points):
        p = points[f]
        cells = ["%.1f / %.1f / %.1f" % summarize(p[k]) if p[k] else "-" for k in ("sluice", "macswap")]
        cells += ["%.2f / %.2f / %.2f" % summarize(p[k]) if p[k] else "-" for k in ("capacity", "rate")]
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def latency_from_hist(records):
    """{label: {"points": [(ns, share slower)], "pct": {name: [ns per run]}}} from histograms."""
    groups = {}
    hists = {}
    for r in records:
        missing = [k for k in ("load_pct", "p50_ns", "p99_ns", "p999_ns", "hist") if k not in r]
        if missing:
            print(f"plot.py: {r['_where']}: missing {', '.join(missing)}; skipped", file=sys.stderr)
            continue
        parts = [str(r[k]) for k in ("system", "mode") if k in r]
        name = " ".join(parts + [f"{r['load_pct']}% load"])
        g = groups.setdefault(name, {"points": [], "pct": {"p50": [], "p99": [], "p99.9": []},
                                     "steps": True})
        for key, field in (("p50", "p50_ns"), ("p99", "p99_ns"), ("p99.9", "p999_ns")):
            g["pct"][key].append(float(r[field]))
        h = hists.setdefault(name, {})
        for upper, count in r["hist"]:
            h[float(upper)] = h.get(float(upper), 0) + int(count)
    for name, h in hists.items():
        total, above = sum(h.values()), sum(h.values())
        for upper in sorted(h):
            above -= h[upper]
            # An open last bucket has no bound, and a share of 0 has no place on a log axis.
            if total and not math.isinf(upper) and above > 0:
                groups[name]["points"].append((upper, above / total))
    return groups


def latency_from_percentiles(records):
    """The same shape from run.sh lines: their percentiles are points of the distribution."""
    groups = {}
    hists = {}
    # Runs at a set load are the latency measurements; saturated runs only show ring queueing.
    if any(str(r.get("scenario", "")).startswith("latency-") for r in records):
        records = [r for r in records if str(r.get("scenario", "")).startswith("latency-")]
    for r in records:
        lat = r.get("latency_ns")
        if not isinstance(lat, dict):
            continue
        hist = r.get("sluice", {}).get("latency_hist")
        if hist and r.get("load_pct") is not None:
            h = hists.setdefault(f"in sluice (rx to tx) {r['load_pct']}% load", {})
            for le, cumulative in hist:
                h[float(le)] = h.get(float(le), 0) + int(cumulative)
        system, mode = system_mode(r)
        name = label(system, mode)
        if r.get("load_pct") is not None:
            name += f" {r['load_pct']}% load"
        g = groups.setdefault(name, {"points": [], "pct": {}, "runs": [], "steps": False})
        g["runs"].append(lat)
    for g in groups.values():
        for key, share in QUANTILES + (("max", None),):
            vals = [float(lat[key]) for lat in g["runs"] if lat.get(key) is not None]
            if vals:
                g["pct"][key] = vals
                counts = [lat.get("count") for lat in g["runs"] if lat.get("count")]
                if share is None:  # the slowest packet: a share of one in count
                    share = 1.0 / statistics.median(counts) if counts else None
                if share:
                    g["points"].append((statistics.median(vals), share))
        g["points"].sort()
    for name, h in hists.items():  # Prometheus buckets: cumulative counts per upper bound
        bounds = sorted(h)
        total = h[bounds[-1]] if bounds else 0
        if total <= 0:
            continue
        g = {"points": [], "pct": {"p50": [], "p99": [], "p99.9": []}, "steps": True}
        for key, share in QUANTILES:
            g["pct"][key].append(next((b * 1e9 for b in bounds if h[b] >= (1 - share) * total), math.inf))
        for b in bounds:
            if not math.isinf(b) and total - h[b] > 0:
                g["points"].append((b * 1e9, (total - h[b]) / total))
        groups[name] = g
    return {k: g for k, g in groups.items() if g["pct"]}


def latency_table(groups):
    keys = [k for k in ("p50", "p99", "p99.9", "max") if any(k in g["pct"] for g in groups.values())]
    lines = ["| run | runs | " + " | ".join(f"{k} us (min / median / max)" for k in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for name, g in sorted(groups.items()):
        cells = []
        for k in keys:
            if k in g["pct"]:
                lo, med, hi = summarize(g["pct"][k])
                cells.append(f"{lo / 1e3:.1f} / {med / 1e3:.1f} / {hi / 1e3:.1f}")
            else:
                cells.append("-")
        runs = max(len(v) for v in g["pct"].values())
        lines.append(f"| {name} | {runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_latency(plt, groups, out):
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, g in sorted(groups.items()):
        if not g["points"]:
            continue
        xs = [p[0] / 1e3 for p in g["points"]]
        ys = [p[1] for p in g["points"]]
        p99 = statistics.median(g["pct"]["p99"]) / 1e3 if g["pct"].get("p99") else float("nan")
        name = f"{name} (p99 {p99:.1f} us)"
        if g["steps"]:  # histogram buckets: the share is flat between bucket bounds
            ax.step(xs, ys, where="post", label=name)
        else:  # a few percentiles: points joined by lines
            ax.plot(xs, ys, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency (us)")
    ax.set_ylabel("share of packets slower")
    ax.set_title("Latency distribution (complementary CDF; medians over runs)")
    save(plt, fig, [ax], out)


def default_throughput(results):
    plain = os.path.join(results, "throughput.jsonl")
    if os.path.exists(plain):
        return plain
    stamped = sorted(glob.glob(os.path.join(results, "throughput-*.jsonl")))
    return stamped[-1] if stamped else plain


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=os.path.join(HERE, "results"), help="raw results directory")
    ap.add_argument("--throughput", help="throughput JSON lines (see above for the default)")
    ap.add_argument("--latency", help="latency JSON lines with histograms")
    ap.add_argument("--out", help="where the PNGs go (default: --results)")
    a = ap.parse_args()
    out = a.out or a.results
    tput = a.throughput or default_throughput(a.results)
    lat = a.latency or os.path.join(a.results, "latency.jsonl")

    # Before any output: this may re-run the script under Debian's Python.
    plt = import_pyplot() if os.path.exists(tput) or os.path.exists(lat) else None
    tput_records = []
    if os.path.exists(tput):
        tput_records = read_jsonl(tput)
    else:
        print(f"plot.py: no {tput} (`make bench` writes bench/results/throughput-<time>.jsonl); "
              "no throughput plot")
    jobs = []
    groups = throughput_groups(tput_records)
    if groups:
        jobs.append(("throughput", groups, f"from {tput}"))
    points = sweep_points(tput_records)
    if len(points) > 1:
        jobs.append(("sweep", points, f"from {tput}"))
    elif tput_records:
        print(f"plot.py: {tput} has no throughput records; no throughput plot")
    if os.path.exists(lat):
        groups = latency_from_hist(read_jsonl(lat))
        source = f"from {lat}"
    else:
        groups = latency_from_percentiles(tput_records)
        source = f"percentiles from {tput}"
    if groups:
        jobs.append(("latency", groups, source))
    else:
        print(f"plot.py: no latency data (no {lat}, no latency_ns in the throughput file); "
              "no latency plot")
    if not jobs:
        print("plot.py: nothing to plot", file=sys.stderr)
        return 2

    os.makedirs(out, exist_ok=True)
    for kind, groups, source in jobs:
        png = os.path.join(out, f"{kind}.png")
        if kind == "throughput":
            plot_throughput(plt, groups, png)
            print(throughput_table(groups))
        elif kind == "sweep":
            plot_sweep(plt, groups, png)
            print(sweep_table(groups))
        else:
            plot_latency(plt, groups, png)
            print(latency_table(groups))
        print(f"plot.py: wrote {png} ({source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
