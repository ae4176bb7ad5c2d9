"""The README's performance tables, written from one ``make bench`` run's JSON.

    python -m lobfeed.bench.readme REPORT_DIR README.md

reads ``REPORT_DIR/throughput.jsonl`` (``lobfeed bench throughput --json``) and
``REPORT_DIR/latency.json`` (``lobfeed bench latency --json``) and replaces what lies between
each pair of markers in the README (``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->``):

- ``targets``: issue 11's table, each row measured in this run, met or the gap;
- ``throughput``: frames/s of every implementation on every tape;
- ``latency``: p50 / p99 per client and rate.

The why of each gap is prose around the markers, written by a person: a number can be
regenerated, an explanation has to be re-read against it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["latency_table", "replace_block", "targets_table", "throughput_table", "update"]

# Issue 11's targets.
CORE_MB_S = {"spot": 1000.0, "usdm": 1000.0, "coinm": 650.0}
FEED_FRAMES_S = {"coinm": 1_000_000.0, "spot": 400_000.0, "usdm": 400_000.0}
CRYPTOFEED_RATIO = 20.0
LATENCY_P50_US = 30.0
LATENCY_P99_US = 100.0
LATENCY_RATE = "10000"

_TAPES_2024 = {
    "spot": "binance-ethusdt-20240808",
    "usdm": "binance-usdm-ethusdt-20240808",
    "coinm": "binance-coinm-ethusd_perp-20240808",
}
_COLUMNS = (
    "lobfeed",
    "lobfeed_receive",
    "lobfeed_core",
    "cryptofeed",
    "cryptofeed_noread",
    "naive",
)


def _fps(tape: Mapping[str, Any], name: str) -> float | None:
    result = tape["results"].get(name)
    return None if result is None else float(result["frames_per_s"])


def _ns(tape: Mapping[str, Any], name: str) -> float | None:
    result = tape["results"].get(name)
    return None if result is None else float(result["ns_per_frame"])


def _mb_s(tape: Mapping[str, Any], name: str) -> float | None:
    ns = _ns(tape, name)
    size = tape.get("timed_bytes")
    if ns is None or not size:
        return None
    frames = int(tape["frames"])
    return float(size) / frames / ns * 1e3  # bytes per ns = GB/s; x1000 = MB/s


def _verdict(ok: bool, gap: str) -> str:
    return "met" if ok else f"missed: {gap}"


def _core_row(tapes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    measured: list[str] = []
    gaps: list[str] = []
    for kind, name in _TAPES_2024.items():
        tape = tapes.get(name)
        mb = None if tape is None else _mb_s(tape, "lobfeed_core")
        ns = None if tape is None else _ns(tape, "lobfeed_core")
        if mb is None or ns is None:
            measured.append(f"{kind}: not run")
            gaps.append(f"{kind} not run")
            continue
        measured.append(f"{kind} {mb:,.0f} MB/s ({ns:,.0f} ns/frame)")
        if mb < CORE_MB_S[kind]:
            gaps.append(f"{kind} at {100 * mb / CORE_MB_S[kind]:.0f}% of {CORE_MB_S[kind]:,.0f}")
    return [
        "Rust decode+validate+apply (`receive_batch`), 2024 Binance spot / USDⓈ-M / COIN-M",
        ">= 1 GB/s spot and USDⓈ-M, >= 650 MB/s COIN-M",
        "; ".join(measured),
        _verdict(not gaps, ", ".join(gaps)),
    ]


def _feed_row(tapes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    measured: list[str] = []
    gaps: list[str] = []
    for kind in ("coinm", "spot", "usdm"):
        tape = tapes.get(_TAPES_2024[kind])
        fps = None if tape is None else _fps(tape, "lobfeed")
        if fps is None:
            gaps.append(f"{kind} not run")
            continue
        measured.append(f"{kind} 2024 {fps / 1e3:,.0f}k")
        if fps < FEED_FRAMES_S[kind]:
            gaps.append(f"{kind} at {100 * fps / FEED_FRAMES_S[kind]:.0f}%")
    small = [
        f"{name.split('-')[1]} 2021 {_fps(t, 'lobfeed') or 0:,.0f}"
        for name, t in tapes.items()
        if name.startswith("binance-") and name.endswith("2021")
    ]
    if small:
        measured.append("small frames: " + ", ".join(small))
    return [
        "whole `Feed` path, trivial callback, frames/s",
        ">= 1 M on COIN-M, >= 400k on spot/USDⓈ-M",
        "; ".join(measured),
        _verdict(not gaps, ", ".join(gaps)),
    ]


def _cryptofeed_row(tapes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    ratios: list[tuple[float, str]] = []
    for name, tape in tapes.items():
        ours = _ns(tape, "lobfeed")
        theirs = _ns(tape, "cryptofeed")
        if ours and theirs:
            ratios.append((theirs / ours, name))
    if not ratios:
        return ["per frame vs cryptofeed", ">= 20x", "not run", "missed: not run"]
    ratios.sort()
    low, high = ratios[0], ratios[-1]
    below = [f"{n} {r:.1f}x" for r, n in ratios if r < CRYPTOFEED_RATIO]
    return [
        "per frame vs cryptofeed, every tape both read",
        f">= {CRYPTOFEED_RATIO:.0f}x on every tape",
        f"{low[0]:.1f}x ({low[1]}) to {high[0]:.1f}x ({high[1]}) over {len(ratios)} tapes",
        _verdict(not below, "below on " + ", ".join(below)),
    ]


def _latency_gaps(stats: Mapping[str, Any]) -> list[str]:
    p50, p99 = float(stats["p50_us"]), float(stats["p99_us"])
    gaps = []
    if p50 > LATENCY_P50_US:
        gaps.append(f"p50 {p50 - LATENCY_P50_US:.0f} us over")
    if p99 > LATENCY_P99_US:
        gaps.append(f"p99 {p99 - LATENCY_P99_US:.0f} us over")
    return gaps


def _latency_row(latency: Mapping[str, Any] | None) -> list[str]:
    what = "loopback tick-to-callback at 10k frames/s, p50 / p99, default install"
    target = f"<= {LATENCY_P50_US:.0f} / <= {LATENCY_P99_US:.0f} us"
    at_rate = {} if latency is None else latency["rates"].get(LATENCY_RATE, {})
    stats = at_rate.get("lobfeed")
    if stats is None:
        return [what, target, "not run", "missed: not run"]
    gaps = _latency_gaps(stats)
    shown = [f"{float(stats['p50_us']):.0f} / {float(stats['p99_us']):.0f} us"]
    bare = at_rate.get("transport_picows")
    if bare is not None:
        shown.append(f"picows alone {bare['p50_us']:.0f} / {bare['p99_us']:.0f}")
    polled = at_rate.get("lobfeed_busy_poll")
    if polled is not None:
        shown.append(f"`busy_poll=True` {polled['p50_us']:.0f} / {polled['p99_us']:.0f}")
    measured = shown[0] + (f" ({'; '.join(shown[1:])})" if shown[1:] else "")
    if gaps and polled is not None and not _latency_gaps(polled):
        verdict = f"met with `busy_poll=True` (one core kept busy); by default {', '.join(gaps)}"
    else:
        verdict = _verdict(not gaps, ", ".join(gaps))
    return [what, target, measured, verdict]


def _venues_row(tapes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    venues = sorted({t["venue"] for t in tapes.values()})
    # Binance's three markets count as one venue.
    with_peer = {t["venue"].split("-")[0] for t in tapes.values() if "cryptofeed" in t["results"]}
    agree = all(t["books_agree"] for t in tapes.values())
    families = {v.split("-")[0] for v in venues}
    return [
        "`lobfeed bench throughput` on every venue",
        "every venue's tapes, cryptofeed beside it where it reads the venue",
        f"{len(tapes)} tapes, {len(families)} venues; cryptofeed on {len(with_peer)}; "
        f"every book agrees: {'yes' if agree else 'NO'}",
        _verdict(len(families) >= 7 and agree, f"{len(families)} venues"),
    ]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], right: int = 0) -> list[str]:
    align = ["---"] * (len(header) - right) + ["---:"] * right
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def targets_table(
    tapes: Mapping[str, Mapping[str, Any]], latency: Mapping[str, Any] | None
) -> list[str]:
    rows = [
        _core_row(tapes),
        _feed_row(tapes),
        _cryptofeed_row(tapes),
        _latency_row(latency),
        _venues_row(tapes),
    ]
    return _table(("what", "target", "measured (this run)", "verdict"), rows)


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def throughput_table(tapes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    header = ("tape", "frames", *_COLUMNS, "cryptofeed time / lobfeed", "books agree")
    rows = []
    for name, tape in tapes.items():
        ours, theirs = _ns(tape, "lobfeed"), _ns(tape, "cryptofeed")
        ratio = f"{theirs / ours:.1f}x" if ours and theirs else "n/a"
        rows.append(
            [
                f"{name} ({tape['venue']})",
                f"{tape['frames']:,}",
                *(_cell(_fps(tape, c)) for c in _COLUMNS),
                ratio,
                "yes" if tape["books_agree"] else "NO",
            ]
        )
    lines = _table(header, rows, right=len(header) - 1)
    # A row a tape lacks is said so, with the reason, never left as a bare "n/a".
    reasons: dict[str, list[str]] = {}
    for name, tape in tapes.items():
        for impl, why in tape.get("skipped", {}).items():
            reasons.setdefault(f"{impl}: {why}", []).append(name)
    if reasons:
        lines += ["", "Not run (n/a above):"]
        lines += [f"- {why} ({', '.join(names)})" for why, names in reasons.items()]
    return lines


def latency_table(latency: Mapping[str, Any]) -> list[str]:
    rates = list(latency["rates"])
    clients = list(dict.fromkeys(c for rate in rates for c in latency["rates"][rate]))
    rows = []
    for client in clients:
        cells = []
        for rate in rates:
            stats = latency["rates"][rate].get(client)
            if stats is None:
                cells.append("n/a")
                continue
            cell = f"{stats['p50_us']:,.0f} / {stats['p99_us']:,.0f}"
            kept = stats.get("client_rate")
            if kept and kept < 0.95 * float(rate):
                cell += f" (kept {kept / 1e3:,.1f}k/s)"
            cells.append(cell)
        rows.append([client, *cells])
    header = ("client", *(f"{float(r) / 1e3:g}k/s" for r in rates))
    return _table(header, rows, right=len(rates))


def replace_block(text: str, name: str, lines: Sequence[str]) -> str:
    """``text`` with the lines between ``name``'s markers replaced; a ``ValueError`` when the
    markers are missing (a README edit lost them: say so rather than append somewhere)."""
    pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", flags=re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README has no <!-- bench:{name} --> ... <!-- /bench:{name} --> block")
    body = "\n".join(lines) + "\n"
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text, count=1)


def update(report_dir: Path, readme: Path) -> None:
    tapes: dict[str, dict[str, Any]] = {}
    for line in (report_dir / "throughput.jsonl").read_bytes().splitlines():
        if line.strip():
            obj = orjson.loads(line)
            tapes[obj["tape"]] = obj
    latency_path = report_dir / "latency.json"
    latency = orjson.loads(latency_path.read_bytes()) if latency_path.exists() else None
    text = readme.read_text(encoding="utf-8")
    text = replace_block(text, "targets", targets_table(tapes, latency))
    text = replace_block(text, "throughput", throughput_table(tapes))
    if latency is not None:
        text = replace_block(text, "latency", latency_table(latency))
    readme.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m lobfeed.bench.readme REPORT_DIR README.md", file=sys.stderr)
        return 2
    update(Path(args[0]), Path(args[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
