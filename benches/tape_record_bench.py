"""What recording costs the feed: ``TapeWriter.recv_frame`` per frame, on the caller's thread.

    PYTHONPATH=python python benches/tape_record_bench.py [TAPE] [--repeat 5] [--fsync]

The tape's received frames are recorded into a new gzip tape in a temporary directory, as a
``Feed(record=...)`` records them: each frame handed over as bytes with its receive time. What
is timed is the caller's side (formatting a line and appending it to the buffer); the writer's
thread compresses and writes meanwhile, as it does in a feed, and ``finish`` (the last flush,
the end mark) is timed apart. Each case keeps the best of ``repeat`` runs.

``one stream`` is the writer this project had before crash-safe tapes, copied here for the
comparison: one gzip stream written on the caller's thread, frames decoded with "replace".
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from lobfeed.tape import Tape, TapeWriter

DEFAULT_TAPE = (
    Path(__file__).resolve().parents[2] / "shared/data/tapes/binance-usdm-ethusdt-20240808.jsonl.gz"
)


def one_stream(path: Path, frames: list[tuple[bytes, int]]) -> float:
    """The former writer: a gzip stream on the caller's thread, flushed by size only."""
    start = time.perf_counter()
    with open(path, "wb") as file, gzip.GzipFile(fileobj=file, mode="wb", mtime=0) as out:
        buffer = bytearray()
        for raw, ts_ns in frames:
            obj = {
                "type": "recv",
                "ts_ns": ts_ns,
                "conn": "c1",
                "data": raw.decode("utf-8", "replace"),
            }
            buffer += orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
            if len(buffer) >= 1 << 16:
                out.write(buffer)
                buffer.clear()
        out.write(buffer)
    return time.perf_counter() - start


def members(path: Path, frames: list[tuple[bytes, int]], fsync: bool) -> tuple[float, float]:
    """The crash-safe writer: (caller's time for every frame, time of finish)."""
    writer = TapeWriter(path, "binance-usdm", fsync=fsync)
    record = writer.recv_frame
    start = time.perf_counter()
    for raw, ts_ns in frames:
        record("c1", raw, ts_ns)
    recorded = time.perf_counter() - start
    start = time.perf_counter()
    writer.finish()
    return recorded, time.perf_counter() - start


def best(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tape", nargs="?", type=Path, default=DEFAULT_TAPE)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fsync", action="store_true", help="sync every flush to disk")
    args = parser.parse_args()
    frames = [(r.payload, r.ts_ns) for r in Tape.open(args.tape).iter_records("recv")]
    size = sum(len(raw) for raw, _ in frames)
    span = (frames[-1][1] - frames[0][1]) / 1e9
    print(f"{args.tape.name}: {len(frames):,} frames, {size / 1e6:.1f} MB, {span:.0f} s of market")
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old.jsonl.gz"
        new = Path(tmp) / "new.jsonl.gz"
        old_s = best(args.repeat, lambda: one_stream(old, frames))
        runs = [members(new, frames, args.fsync) for _ in range(args.repeat)]
        new_s = min(r[0] for r in runs)
        finish_s = min(r[1] for r in runs)
        flushes = Tape.open(new, strict=True)  # whole, with its end mark
        assert len(flushes.records) == len(frames)
        rows = [
            ("one stream (before)", old_s, old.stat().st_size),
            ("member per flush", new_s, new.stat().st_size),
        ]
    print(f"{'writer':<22}{'ns/frame':>10}{'frames/s':>14}{'file MB':>10}")
    for name, seconds, file_size in rows:
        per = seconds / len(frames)
        print(f"{name:<22}{per * 1e9:>10.0f}{1 / per:>14,.0f}{file_size / 1e6:>10.2f}")
    print(
        f"finish (last flush, end mark{', fsync' if args.fsync else ''}): {finish_s * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
