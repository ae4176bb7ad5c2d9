"""Markdown tables, the machine, the command, and PNG plots for ``--report DIR``.

``throughput.md`` + ``throughput.png`` (frames/s per implementation, per tape) and
``latency.md`` + ``latency-cdf.png`` (one CDF per rate, every client). matplotlib is imported
only when a plot is drawn, with the non-interactive Agg backend.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lobfeed.bench.latency import ClientRun
    from lobfeed.bench.throughput import TapeResult

__all__ = [
    "command_line",
    "latency_tables",
    "machine",
    "throughput_table",
    "write_latency",
    "write_throughput",
]

_DESCRIPTIONS: Mapping[str, str] = {
    "lobfeed": "Feed hot path: Session.receive_routed (Rust decodes, applies and calls the "
    "callback) + a callback reading the book; live: the default transport (picows if installed)",
    "lobfeed_receive": "Session.receive per frame from Python, events dropped",
    "lobfeed_core": "Session.receive_batch: Rust core, no Python object per frame",
    "cryptofeed": "cryptofeed's feed for the venue: message_handler + order_book + callback "
    "reading the best bid",
    "cryptofeed_noread": "the same, the callback not reading the book",
    "naive": "orjson + dicts of floats + sort on every update (per-venue parser, bench/naive.py)",
    "transport": "websockets recv loop alone (same connect as the Feed)",
    "transport_picows": "picows frame callback alone",
    "lobfeed_picows": 'lobfeed Feed(transport="picows"): the same hot path on the picows client',
    "lobfeed_websockets": 'lobfeed Feed(transport="websockets"): the fallback client',
}


# --------------------------------------------------------------------------------------------
# The machine and the command
# --------------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _run(*cmd: str) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _join(values: Sequence[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in values)


def _cpu_pressure() -> str | None:
    """How much of the time some runnable task waited for a CPU (Linux PSI): other work."""
    try:
        with open("/proc/pressure/cpu", encoding="utf-8") as f:
            line = f.readline()
    except OSError:
        return None
    fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
    values = [fields.get(k) for k in ("avg10", "avg60", "avg300")]
    return ", ".join(v for v in values if v is not None) or None


def machine() -> list[tuple[str, str]]:
    """(label, value) rows describing where the numbers were measured."""
    from lobfeed import __version__ as lobfeed_version
    from lobfeed._native import __version__ as native_version

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = f"{os.cpu_count()} logical" + (f" ({usable} usable)" if usable is not None else "")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    commit = _run("git", "rev-parse", "--short", "HEAD")
    pressure = _cpu_pressure()
    rows = [
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", _cpu_model()),
        ("cores", cores),
        ("load average (1, 5, 15 min) at the end", _join(load) if load else "n/a"),
        ("CPU pressure at the end (PSI some avg10/60/300 %)", pressure or "n/a"),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("Rust", _run("rustc", "--version") or "rustc not found"),
        ("lobfeed", f"{lobfeed_version} (extension {native_version})"),
        ("git commit", commit or "n/a"),
    ]
    for dist in ("cryptofeed", "order_book", "websockets", "orjson", "uvloop", "picows"):
        rows.append((dist, _version(dist)))
    return rows


def command_line(argv: Sequence[str] | None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return "lobfeed " + shlex.join(args)


def _machine_section(argv: Sequence[str] | None) -> list[str]:
    lines = ["## Command", "", "```", command_line(argv), "```", "", "## Machine", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in machine()]
    return lines


# --------------------------------------------------------------------------------------------
# Throughput
# --------------------------------------------------------------------------------------------


def throughput_table(result: TapeResult) -> str:
    base = result.results["lobfeed"].ns_per_frame
    lines = [
        f"### {result.tape.name} ({result.tape.venue}, {result.frames} frames, "
        f"median of {result.repeats} after {result.warmup} warm-up)",
        "",
        "| implementation | ns/frame | frames/s | time vs lobfeed | runs min-max ns/frame |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in result.results.items():
        per_run = [ns / r.frames for ns in r.runs_ns]
        lines.append(
            f"| {name} | {r.ns_per_frame:,.0f} | {r.frames_per_s:,.0f} | "
            f"{r.ns_per_frame / base:.2f}x | {min(per_run):,.0f}-{max(per_run):,.0f} |"
        )
    for name, why in result.skipped.items():
        lines.append(f"| {name} | not run: {why} | | | |")
    agree = "yes" if not result.disagreements else "NO: " + "; ".join(result.disagreements)
    lines += ["", f"Final best bid/ask of every symbol equal to lobfeed's: {agree}"]
    return "\n".join(lines)


def _where_time_goes(result: TapeResult) -> list[str]:
    r = result.results
    if not {"lobfeed", "lobfeed_receive", "lobfeed_core"} <= r.keys():
        return []
    full = r["lobfeed"].ns_per_frame
    core = r["lobfeed_core"].ns_per_frame
    receive = r["lobfeed_receive"].ns_per_frame
    crossing = max(0.0, receive - core)
    dispatch = max(0.0, full - receive)
    return [
        f"- {result.tape.name}: Rust core {core:,.0f} ns ({100 * core / full:.0f}%), "
        f"one Python call into Rust and the event objects back {crossing:,.0f} ns "
        f"({100 * crossing / full:.0f}%), Feed dispatch + user callback {dispatch:,.0f} ns "
        f"({100 * dispatch / full:.0f}%) of {full:,.0f} ns per frame",
    ]


def _throughput_plot(path: Path, results: Sequence[TapeResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []
    for result in results:
        for name in result.results:
            if name not in names:
                names.append(name)
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(7.0, 2.2 * len(results) + 3), 4.8))
    for k, name in enumerate(names):
        xs = []
        ys = []
        for i, result in enumerate(results):
            if name in result.results:
                xs.append(i + (k - (len(names) - 1) / 2) * width)
                ys.append(result.results[name].frames_per_s)
        bars = ax.bar(xs, ys, width * 0.95, label=name)
        for bar, y in zip(bars, ys, strict=True):
            ax.annotate(
                f"{y / 1e3:,.0f}k" if y >= 1e4 else f"{y:,.0f}",
                (bar.get_x() + bar.get_width() / 2, y),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_yscale("log")
    ax.set_ylabel("book frames per second (log scale, higher is better)")
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels([f"{r.tape.name}\n({r.frames} frames)" for r in results], fontsize=8)
    ax.set_title("Throughput: depth frames through decode, sync, apply and a callback")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_throughput(
    directory: Path,
    results: Sequence[TapeResult],
    argv: Sequence[str] | None,
    profiles: Mapping[str, str] | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    plot = directory / "throughput.png"
    _throughput_plot(plot, results)
    lines = [
        "# lobfeed throughput",
        "",
        "Each tape's `depthUpdate` frames, in-process (no network), through each implementation."
        " Every symbol is first synced on its REST snapshot (untimed); the frames after that are"
        " timed. The figure is the median of the timed rounds; implementations alternate within"
        " a round. After the last round every implementation's final best bid and ask must equal"
        " lobfeed's.",
        "",
        "| implementation | what is timed per frame |",
        "|---|---|",
    ]
    shown = {n for r in results for n in r.results}
    lines += [f"| {n} | {d} |" for n, d in _DESCRIPTIONS.items() if n in shown]
    lines += ["", "## Results", ""]
    for result in results:
        lines += [throughput_table(result), ""]
    breakdown = [line for r in results for line in _where_time_goes(r)]
    if breakdown:
        lines += ["## Where lobfeed's time goes", "", *breakdown, ""]
    lines += [f"![throughput]({plot.name})", ""]
    if profiles:
        lines += ["## cProfile of lobfeed's loop (own time)", ""]
        for name, text in profiles.items():
            lines += [f"### {name}", "", "```", text.strip(), "```", ""]
    lines += _machine_section(argv)
    path = directory / "throughput.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Latency
# --------------------------------------------------------------------------------------------


def _fmt_us(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def latency_tables(summary: Mapping[str, Any]) -> str:
    lines: list[str] = []
    for rate, clients in summary["rates"].items():
        burst = summary.get("burst", 1)
        shape = f", bursts of {burst}" if burst > 1 else ", evenly spaced"
        lines += [
            f"### {float(rate):,.0f} frames/s{shape}",
            "",
            "| client | p50 us | p90 us | p99 us | p99.9 us | max us | frames | missing "
            "| client kept /s | server sent /s | server late p99 us |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, s in clients.items():
            sent = s.get("send_rate")
            kept = s.get("client_rate")
            lines.append(
                f"| {name} | {_fmt_us(s['p50_us'])} | {_fmt_us(s['p90_us'])} | "
                f"{_fmt_us(s['p99_us'])} | {_fmt_us(s['p999_us'])} | {_fmt_us(s['max_us'])} | "
                f"{s['frames']} | {s['missing']} | {f'{kept:,}' if kept else 'n/a'} | "
                f"{f'{sent:,}' if sent else 'n/a'} | "
                f"{_fmt_us(s.get('server_lag_p99_us'))} |"
            )
        lines.append("")
    return "\n".join(lines)


def _latency_plot(path: Path, runs: Sequence[ClientRun], loops: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lobfeed.bench.latency import result_key

    rates = sorted({run.rate for run in runs})
    clients = list(dict.fromkeys(run.client for run in runs))
    colors = {name: f"C{i % 10}" for i, name in enumerate(clients)}
    styles = ["-", "--", ":", "-."]
    # One line per client and loop per rate: the frames of all its repeats together.
    merged: dict[tuple[float, str], list[int]] = {}
    looks: dict[str, tuple[str, str]] = {}
    for run in runs:
        key = result_key(run, loops)
        merged.setdefault((run.rate, key), []).extend(run.latencies_ns)
        looks[key] = (colors[run.client], styles[list(loops).index(run.loop) % len(styles)])
    fig, axes = plt.subplots(
        2, len(rates), figsize=(4.4 * len(rates) + 2.2, 7.2), squeeze=False, sharey="row"
    )
    for col, rate in enumerate(rates):
        top, bottom = axes[0][col], axes[1][col]
        for (run_rate, key), values in merged.items():
            if run_rate != rate or not values:
                continue
            xs = sorted(v / 1e3 for v in values)
            n = len(xs)
            cdf = [(i + 1) / n for i in range(n)]
            tail = [1 - (i / n) for i in range(n)]  # fraction of frames at least this late
            color, style = looks[key]
            top.plot(xs, cdf, label=key, color=color, ls=style, lw=1.4)
            bottom.plot(xs, tail, label=key, color=color, ls=style, lw=1.4)
        top.set_xscale("log")
        bottom.set_xscale("log")
        bottom.set_yscale("log")
        top.set_title(f"{rate:,.0f} frames/s")
        top.set_ylim(0, 1.0)
        bottom.set_xlabel("send to callback, us (log)")
        top.grid(which="both", alpha=0.3)
        bottom.grid(which="both", alpha=0.3)
    axes[0][0].set_ylabel("fraction of frames at most this late (CDF)")
    axes[1][0].set_ylabel("fraction at least this late (tail, log)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.suptitle("Latency CDF per rate, all repeats (left is better)")
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / (4.4 * len(rates) + 2.2), 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_latency(
    directory: Path,
    summary: Mapping[str, Any],
    runs: Sequence[ClientRun],
    loops: Sequence[str],
    argv: Sequence[str] | None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    plot = directory / "latency-cdf.png"
    _latency_plot(plot, runs, loops)
    shown = {r.client for r in runs}
    lines = [
        "# lobfeed latency",
        "",
        f"The local exchange server (a separate process, on {summary['server_loop']}) sends"
        f" real depth frames of `{summary['tape']}` ({summary['venue']} {summary['symbol']})"
        " at each rate over loopback websockets. Latency is from the server's"
        " `time.perf_counter_ns()` right before it writes a frame to the socket to the same"
        " clock read when the client's callback runs. The clients run one at a time, on"
        f" {', '.join(loops)} (a client on a loop other than the first is shown as"
        " `name@loop`), taking turns. Each figure is the median over"
        f" {summary.get('repeats', 1)} repeat(s) (`frames` and `missing` are totals); the plot"
        " shows every frame of every repeat. `client kept /s` is the rate the client handled"
        " frames at (frames over first send to last callback): the send rate while it keeps"
        " up, its capacity once it does not. `server sent /s` is the rate the server actually"
        " kept, `server late p99` how late it was against its schedule: a late server means"
        " the machine was short of CPU for both processes.",
        "",
        "| client | what runs per frame |",
        "|---|---|",
    ]
    lines += [f"| {n} | {d} |" for n, d in _DESCRIPTIONS.items() if n in shown]
    lines += ["", "## Results", "", latency_tables(summary), f"![latency CDF]({plot.name})", ""]
    lines += _machine_section(argv)
    path = directory / "latency.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
