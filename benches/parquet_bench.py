"""Rows per second of ``lobfeed export`` on a real tape: Parquet and Tardis CSV, and the replay
alone that both start from.

    PYTHONPATH=python python benches/parquet_bench.py [TAPE] [--repeat 3] [--depth N] [--json]

Each case exports the whole tape into a fresh temporary directory, end to end: reading the
gzip tape, the Rust sessions, the row maker (book diffs included), the writer thread, and
closing the files. ``replay`` runs the same tape through the same sessions and drops the events:
the part of every export that is not ours to speed up here. Cases take turns within each
round and the median of ``repeat`` rounds is reported; on a shared machine compare rows of one
run, not runs of different days.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lobfeed.export import export_tape
from lobfeed.replay import TapeReplayer
from lobfeed.sinks.parquet import ParquetSink
from lobfeed.sinks.rows import CHANNELS, RowSink
from lobfeed.sinks.tardis import TardisCsvSink
from lobfeed.tape import Tape

DEFAULT_TAPE = (
    Path(__file__).resolve().parents[2] / "shared/data/tapes/binance-ethusdt-20240808.jsonl.gz"
)


def _replay(tape: Path) -> tuple[int, int]:
    for _ in TapeReplayer(Tape.open(tape)).events():
        pass
    return 0, 0


def _export(make: Callable[[Path], RowSink], tape: Path) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as out:
        sink = make(Path(out))
        result = export_tape(tape, sink)
        rows = result.stats["rows_written"]
        size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    return rows, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tape", nargs="?", type=Path, default=DEFAULT_TAPE, help="the tape")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is kept")
    parser.add_argument(
        "--depth", type=int, default=None, help="incremental book levels (default: whole book)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = parser.parse_args()
    tape: Path = args.tape
    venue = Tape.open(tape).header.venue
    common = {
        "venue": venue,
        "depth": args.depth,
        "flush_seconds": None,
        "when_full": "wait",
        "clock": "data",
    }

    def parquet(out: Path) -> RowSink:
        return ParquetSink(out, channels=CHANNELS, **common)

    def tardis(out: Path) -> RowSink:
        return TardisCsvSink(out, **common)

    cases: dict[str, Callable[[], tuple[int, int]]] = {
        "replay": lambda: _replay(tape),
        "parquet": lambda: _export(parquet, tape),
        "tardis-csv": lambda: _export(tardis, tape),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    counts: dict[str, tuple[int, int]] = {}
    for _ in range(args.repeat):
        for name, run in cases.items():
            start = time.perf_counter()
            counts[name] = run()
            times[name].append(time.perf_counter() - start)
    book_updates = sum(
        1 for _, ev in TapeReplayer(Tape.open(tape)).events() if type(ev).__name__ == "BookUpdate"
    )
    results = {}
    for name, runs in times.items():
        seconds = statistics.median(runs)
        rows, size = counts[name]
        results[name] = {
            "seconds": round(seconds, 3),
            "rows": rows,
            "rows_per_s": round(rows / seconds) if rows else None,
            "book_updates_per_s": round(book_updates / seconds),
            "bytes": size,
        }
    report = {
        "tape": tape.name,
        "venue": venue,
        "book_updates": book_updates,
        "depth": args.depth,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "results": results,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{tape.name} ({venue}): {book_updates} book updates, depth {args.depth or 'whole'}")
    print(f"{'case':<12}{'seconds':>9}{'rows':>10}{'rows/s':>10}{'updates/s':>11}{'bytes':>11}")
    for name, r in results.items():
        print(
            f"{name:<12}{r['seconds']:>9}{r['rows'] or '-':>10}{r['rows_per_s'] or '-':>10}"
            f"{r['book_updates_per_s']:>11}{r['bytes']:>11}"
        )


if __name__ == "__main__":
    main()
