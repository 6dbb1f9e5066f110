#!/usr/bin/env python3
"""Plots the raw benchmark results: throughput against the number of flows and the latency
distribution, as PNGs, plus a min/median/max table (Markdown) of the same numbers.

Inputs (JSON lines, written by bench/run.sh; either may be missing):
  throughput.jsonl  {"system": "sluice"|"testpmd-io"|..., "flows": N, "mode": "ipip",
                     "pps": X, "repeat": k}            one line per run
  latency.jsonl     {"load_pct": 10, "p50_ns": .., "p99_ns": .., "p999_ns": ..,
                     "hist": [[upper_ns, count], ...]} one line per run (optional "mode",
                     "system", "repeat")
usage: bench/plot.py [--results DIR] [--out DIR]   (both default to bench/results)
Exit status: 0 if at least one plot was written, 2 if there was nothing to plot.
"""

import argparse
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


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


def read_jsonl(path, required):
    """The valid records of a JSON-lines file; bad lines are reported and skipped."""
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
            missing = [k for k in required if k not in r]
            if not isinstance(r, dict) or missing:
                print(f"plot.py: {path}:{n}: missing {', '.join(missing) or 'an object'}; skipped",
                      file=sys.stderr)
                continue
            records.append(r)
    return records


def summarize(values):
    return min(values), statistics.median(values), max(values)


def throughput_groups(records):
    """{(system, mode): {flows: [pps, ...]}}"""
    groups = {}
    for r in records:
        key = (str(r["system"]), str(r.get("mode", "")))
        groups.setdefault(key, {}).setdefault(int(r["flows"]), []).append(float(r["pps"]))
    return groups


def throughput_table(groups):
    lines = ["| system | mode | flows | runs | min Mpps | median Mpps | max Mpps |",
             "|---|---|---|---|---|---|---|"]
    for (system, mode), by_flows in sorted(groups.items()):
        for flows, pps in sorted(by_flows.items()):
            lo, med, hi = summarize(pps)
            lines.append(f"| {system} | {mode or '-'} | {flows} | {len(pps)} | {lo / 1e6:.3f} | "
                         f"{med / 1e6:.3f} | {hi / 1e6:.3f} |")
    return "\n".join(lines)


def plot_throughput(plt, groups, out):
    fig, ax = plt.subplots(figsize=(8, 5))
    for (system, mode), by_flows in sorted(groups.items()):
        flows = sorted(by_flows)
        stats = [summarize(by_flows[f]) for f in flows]
        med = [s[1] / 1e6 for s in stats]
        err = [[(s[1] - s[0]) / 1e6 for s in stats], [(s[2] - s[1]) / 1e6 for s in stats]]
        label = system if not mode or system.startswith("testpmd") else f"{system} ({mode})"
        ax.errorbar(flows, med, yerr=err, marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("concurrent flows")
    ax.set_ylabel("forwarded Mpps (median; bars: min-max over repeats)")
    ax.set_ylim(bottom=0)
    ax.set_title("Throughput against the number of flows")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def latency_label(r):
    parts = [str(r[k]) for k in ("system", "mode") if k in r]
    return " ".join(parts + [f"{r['load_pct']}% load"])


def latency_groups(records):
    """{label: (merged histogram {upper_ns: count}, [(p50, p99, p999) per run])}"""
    groups = {}
    for r in records:
        hist, pcts = groups.setdefault(latency_label(r), ({}, []))
        for upper, count in r["hist"]:
            hist[float(upper)] = hist.get(float(upper), 0) + int(count)
        pcts.append((float(r["p50_ns"]), float(r["p99_ns"]), float(r["p999_ns"])))
    return groups


def latency_table(groups):
    lines = ["| run | runs | p50 us (min/median/max) | p99 us | p99.9 us |", "|---|---|---|---|---|"]
    for label, (_, pcts) in sorted(groups.items(), key=lambda kv: kv[0]):
        cells = []
        for i in range(3):
            lo, med, hi = summarize([p[i] for p in pcts])
            cells.append(f"{lo / 1e3:.1f} / {med / 1e3:.1f} / {hi / 1e3:.1f}")
        lines.append(f"| {label} | {len(pcts)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_latency(plt, groups, out):
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, (hist, pcts) in sorted(groups.items()):
        total = sum(hist.values())
        if total == 0:
            continue
        # Complementary CDF at each bucket's upper bound: the share of packets slower than it.
        xs, ys, above = [], [], total
        for upper in sorted(hist):
            above -= hist[upper]
            # An open last bucket has no bound, and a share of 0 has no place on a log axis.
            if math.isinf(upper) or above <= 0:
                continue
            xs.append(upper / 1e3)
            ys.append(above / total)
        p99 = statistics.median(p[1] for p in pcts) / 1e3
        ax.step(xs, ys, where="post", label=f"{label} (p99 {p99:.1f} us)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency, rx to tx (us)")
    ax.set_ylabel("share of packets slower")
    ax.set_title("Latency distribution (complementary CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    default = os.path.join(HERE, "results")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=default, help="directory of the .jsonl files")
    ap.add_argument("--out", default=None, help="where the PNGs go (default: --results)")
    a = ap.parse_args()
    out = a.out or a.results
    tput = os.path.join(a.results, "throughput.jsonl")
    lat = os.path.join(a.results, "latency.jsonl")

    # Before any output: this may re-run the script under Debian's Python.
    plt = import_pyplot() if os.path.exists(tput) or os.path.exists(lat) else None
    jobs = []
    if os.path.exists(tput):
        recs = read_jsonl(tput, ("system", "flows", "pps"))
        if recs:
            jobs.append(("throughput", throughput_groups(recs)))
        else:
            print(f"plot.py: {tput} has no valid records; no throughput plot")
    else:
        print(f"plot.py: no {tput} (written by `make bench`); no throughput plot")
    if os.path.exists(lat):
        recs = read_jsonl(lat, ("load_pct", "p50_ns", "p99_ns", "p999_ns", "hist"))
        if recs:
            jobs.append(("latency", latency_groups(recs)))
        else:
            print(f"plot.py: {lat} has no valid records; no latency plot")
    else:
        print(f"plot.py: no {lat} (written by `make bench`); no latency plot")
    if not jobs:
        print("plot.py: nothing to plot", file=sys.stderr)
        return 2

    os.makedirs(out, exist_ok=True)
    for kind, groups in jobs:
        png = os.path.join(out, f"{kind}.png")
        if kind == "throughput":
            plot_throughput(plt, groups, png)
            print(throughput_table(groups))
        else:
            plot_latency(plt, groups, png)
            print(latency_table(groups))
        print(f"plot.py: wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
