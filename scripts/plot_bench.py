#!/usr/bin/env python3
"""Chart `sluice-bench --json` results: throughput against the machine's limits, and
latency percentiles.

Usage:
    python3 scripts/plot_bench.py RESULTS.jsonl [MORE.jsonl ...] [-o bench.png] [--title T]

Each input file holds one JSON object per line, as printed by any `sluice-bench --json`
subcommand (append the outputs of `limits`, `produce`, `consume`, `e2e`, ... to one file).
The PNG has two panels:

* MB/s per result as bars, with the physical limits found in the input (`disk.write`:
  raw O_DIRECT disk bandwidth; `net.loopback_tcp`: loopback TCP bandwidth) drawn as
  horizontal lines, and the core count (`machine.cores`) in the title;
* latency percentiles (p50, p90, p99, p99.9, p99.99, max; log scale, ms) of every result
  that has a latency summary (`ack`, `e2e`, `append`, `durable`, ...).

With `--markdown FILE` it also writes the results as a Markdown table (the README's): the
limits first, then each result's records/s, MB/s, ratio to the disk and loopback limits,
and latency p50 / p99 / p99.9 (the producer's send → ack, and e2e publish → receive).

matplotlib is installed with pip (for this Python) if it is missing.
"""

import argparse
import json
import subprocess
import sys

LIMITS = {"disk.write": "disk write", "net.loopback_tcp": "loopback TCP"}
PERCENTILES = [
    ("p50_us", "p50"),
    ("p90_us", "p90"),
    ("p99_us", "p99"),
    ("p999_us", "p99.9"),
    ("p9999_us", "p99.99"),
    ("max_us", "max"),
]


def import_pyplot():
    """matplotlib.pyplot with the file-only Agg backend, installing matplotlib if needed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("plot_bench: installing matplotlib with pip", file=sys.stderr)
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"]
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_results(paths):
    """Every JSON object of the files, in order; other lines are skipped with a note."""
    results = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    print(f"{path}:{number}: not JSON, skipped", file=sys.stderr)
                    continue
                if isinstance(obj, dict) and "name" in obj:
                    results.append(obj)
                    RATES[obj["name"]] = obj.get("target_rate")
    return results


RATES = {}


def closed_loop(result):
    """A producer run without a target rate (or the consumer side of such an e2e run): its
    latencies measure the client's own queue, not the broker."""
    name = result["name"]
    if name.startswith("e2e.consume."):
        return not RATES.get("e2e.produce." + name[len("e2e.consume."):])
    return name.startswith(("produce", "e2e.produce")) and not result.get("target_rate")


def latencies(result):
    """(label, summary) for every latency summary in a result (none for closed-loop
    producer runs, whose send → ack times are the client's queueing)."""
    if closed_loop(result):
        return []
    return [
        (key, value)
        for key, value in result.items()
        if isinstance(value, dict) and "p50_us" in value and value.get("count", 0) > 0
    ]


def split(results):
    """(limits {name: MB/s}, cores or None, the other results)."""
    limits, cores, others = {}, None, []
    for r in results:
        name = r["name"]
        if name in LIMITS:
            limits[name] = r.get("mb_per_s") or 0.0
        elif name == "machine.cores":
            cores = r.get("cores")
        elif name.startswith("disk."):
            continue  # fdatasync and other disk lines are not throughput results
        else:
            others.append(r)
    return limits, cores, others


def plot(results, output, title):
    plt = import_pyplot()
    limits, cores, others = split(results)
    with_latency = [(r, label, s) for r in others for label, s in latencies(r)]
    panels = 2 if with_latency else 1
    fig, axes = plt.subplots(panels, 1, figsize=(11, 4.5 * panels), squeeze=False)

    ax = axes[0][0]
    names = [r["name"] for r in others]
    mbps = [r.get("mb_per_s") or 0.0 for r in others]
    bars = ax.bar(range(len(names)), mbps, color="tab:blue")
    for bar, r in zip(bars, others):
        ops = r.get("ops_per_s") or 0.0
        ax.annotate(
            f"{bar.get_height():.0f} MB/s\n{ops:,.0f}/s",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    colors = {"disk.write": "tab:red", "net.loopback_tcp": "tab:green"}
    for name, value in limits.items():
        ax.axhline(
            value,
            color=colors[name],
            linestyle="--",
            linewidth=1.2,
            label=f"limit: {LIMITS[name]} {value:.0f} MB/s",
        )
    if limits:
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("MB/s (10^6 bytes)")
    top = max(mbps + list(limits.values()) + [1.0])
    ax.set_ylim(0, top * 1.2)
    heading = title or "sluice-bench"
    if cores:
        heading += f" ({cores:.0f} cores)"
    ax.set_title(heading)

    if with_latency:
        ax = axes[1][0]
        xs = range(len(PERCENTILES))
        for r, label, summary in with_latency:
            values = [max(summary.get(key, 0.0), 0.001) / 1000.0 for key, _ in PERCENTILES]
            ax.plot(xs, values, marker="o", label=f"{r['name']} {label}")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([name for _, name in PERCENTILES])
        ax.set_yscale("log")
        plain = plt.FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_ylabel("latency (ms, log scale)")
        ax.set_title("latency percentiles")
        ax.grid(True, which="both", axis="y", alpha=0.3)
        ax.legend(fontsize=8)

    fig.tight_layout()
    fig.savefig(output, dpi=120)
    print(f"wrote {output}", file=sys.stderr)


def ms(summary, key):
    return f"{summary[key] / 1000.0:.1f}" if summary and key in summary else "-"


def markdown(results):
    """The results as Markdown: a limits table, then one row per result."""
    limits, cores, others = split(results)
    lines = ["| limit (same run) | value |", "| --- | --- |"]
    for r in results:
        if r["name"] == "disk.write":
            lines.append(f"| raw O_DIRECT sequential write | {r['mb_per_s']:.0f} MB/s |")
        elif r["name"] == "disk.fdatasync" and "fdatasync" in r:
            lines.append(f"| fdatasync p50 / p99 | {ms(r['fdatasync'], 'p50_us')} / {ms(r['fdatasync'], 'p99_us')} ms |")
        elif r["name"] == "net.loopback_tcp":
            lines.append(f"| loopback TCP | {r['mb_per_s']:.0f} MB/s |")
    if cores:
        lines.append(f"| cores | {cores:.0f} |")
    lines += [
        "",
        "| case | records/s | MB/s | ÷ disk | ÷ loopback | latency p50 / p99 / p99.9 ms | broker CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    disk = limits.get("disk.write")
    net = limits.get("net.loopback_tcp")
    for r in others:
        mbps = r.get("mb_per_s") or 0.0
        ratio = lambda limit: f"{mbps / limit:.2f}" if limit else "-"  # noqa: E731
        parts = ["closed loop: queueing"] if closed_loop(r) else []
        for key, label in (("ack", "ack"), ("e2e", "e2e")):
            if closed_loop(r):
                break
            summary = r.get(key)
            if isinstance(summary, dict) and summary.get("count", 0) > 0:
                parts.append(
                    f"{label} {ms(summary, 'p50_us')} / {ms(summary, 'p99_us')} / {ms(summary, 'p999_us')}"
                )
        cpu = "-"
        if "broker_cpu_cores" in r:
            cpu = f"{r['broker_cpu_cores']:.2f} cores, {r['broker_cpu_s_per_gb']:.2f} s/GB"
        lines.append(
            f"| {r['name']} | {r.get('ops_per_s') or 0:,.0f} | {mbps:.0f} | {ratio(disk)} | "
            f"{ratio(net)} | {'; '.join(parts) or '-'} | {cpu} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="files of sluice-bench --json lines")
    parser.add_argument("-o", "--output", default="bench.png", help="PNG to write")
    parser.add_argument("--title", default=None, help="chart title")
    parser.add_argument("--markdown", default=None, help="also write a Markdown table here")
    args = parser.parse_args()
    results = read_results(args.inputs)
    if not results:
        sys.exit("plot_bench: no sluice-bench JSON results in the input")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(markdown(results))
    plot(results, args.output, args.title)


if __name__ == "__main__":
    main()
