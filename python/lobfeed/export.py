"""``lobfeed export TAPE --parquet DIR`` and ``--format tardis-csv DIR``: a tape's books, trades
and candles as files, through the same sessions as ``lobfeed replay`` and the same writers as
the live sinks.

The tape is replayed in-process (:class:`lobfeed.replay.TapeReplayer`: one session per recorded
connection, REST snapshots handed in where they were recorded) and every event goes to a
:class:`~lobfeed.sinks.parquet.ParquetSink` or :class:`~lobfeed.sinks.tardis.TardisCsvSink`
exactly as a live feed would hand it over, except that nothing is dropped (the sink waits for
its writer) and the clock that rolls files is the tape's own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lobfeed._native import (
    BookUpdate,
    Candle,
    ChecksumMismatch,
    GapDetected,
    NeedResubscribe,
    NeedSnapshot,
    Resynced,
    SyncLost,
    Trade,
)
from lobfeed.exceptions import ConfigError, LobfeedError
from lobfeed.sinks.rows import BOOK, BOOK_SNAPSHOT, CANDLES, CHANNELS, TRADES, RowSink

__all__ = ["ExportResult", "add_parser", "export_tape"]

PARQUET = "parquet"
TARDIS_CSV = "tardis-csv"
FORMATS = (PARQUET, TARDIS_CSV)
#: What each format writes unless ``--channels`` says otherwise (Tardis has no candle layout).
DEFAULT_CHANNELS = {PARQUET: CHANNELS, TARDIS_CSV: (BOOK, BOOK_SNAPSHOT, TRADES)}

_SYNC_EVENTS = (
    GapDetected,
    Resynced,
    SyncLost,
    ChecksumMismatch,
    NeedSnapshot,
    NeedResubscribe,
)


@dataclass
class ExportResult:
    """What an export wrote: the sink's counters, and the tape's event counts."""

    book_updates: int
    trades: int
    candles: int
    rejected_frames: int
    stats: dict[str, int]


def export_tape(tape_path: str | Path, sink: RowSink) -> ExportResult:
    """Replays a tape into ``sink`` (opened and finished here) and returns the counts."""
    from lobfeed.replay import Rejected, TapeReplayer
    from lobfeed.tape import Tape

    tape = Tape.open(tape_path)
    books = trades = candles = rejected = 0
    sink.open()
    try:
        for _record, ev in TapeReplayer(tape).events():
            kind = type(ev)
            if kind is BookUpdate:
                books += 1
                sink.on_book(ev)
            elif kind is Trade:
                trades += 1
                sink.on_trade(ev)
            elif kind is Candle:
                candles += 1
                sink.on_candle(ev)
            elif isinstance(ev, _SYNC_EVENTS):
                sink.on_event(ev)
            elif kind is Rejected:
                # The session dropped the book of that symbol: the next one starts whole.
                rejected += 1
                sink.on_event(ev)
    finally:
        sink.finish()
    return ExportResult(books, trades, candles, rejected, sink.stats())


# -- command line ---------------------------------------------------------------------------


def _channels(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    for channel in chosen:
        if channel not in CHANNELS:
            raise ConfigError(
                f"--channels: unknown channel {channel!r}; choose from {','.join(CHANNELS)}"
            )
    if not chosen:
        raise ConfigError(f"--channels: none given; choose from {','.join(CHANNELS)}")
    return chosen


def _integer(option: str, text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{option}: not an integer: {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{option}: must be >= {minimum}, got {value}")
    return value


def _seconds(option: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{option}: not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise ConfigError(f"{option}: must be a number of seconds > 0, got {text}")
    return value


@dataclass(frozen=True)
class _Options:
    channels: tuple[str, ...] | None
    depth: int | None
    snapshot_depth: int
    snapshot_every_ms: int
    roll_bytes: int
    roll_seconds: float
    flush_rows: int


def _options(args: argparse.Namespace) -> _Options:
    # Checked here rather than by argparse, so that a bad value is one line, not a usage dump.
    return _Options(
        channels=_channels(args.channels) if args.channels is not None else None,
        depth=_integer("--depth", args.depth, 1) if args.depth is not None else None,
        snapshot_depth=_integer("--snapshot-depth", args.snapshot_depth, 1),
        snapshot_every_ms=_integer("--snapshot-every-ms", args.snapshot_every_ms, 0),
        roll_bytes=_integer("--roll-bytes", args.roll_bytes, 1),
        roll_seconds=_seconds("--roll-seconds", args.roll_seconds),
        flush_rows=_integer("--flush-rows", args.flush_rows, 1),
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``export`` to the ``lobfeed`` command line."""
    p = sub.add_parser(
        "export",
        help="write a tape's books, trades and candles as Parquet or Tardis CSV files",
        description="Replay a tape through the sync code and write its books, trades and "
        "closed candles as a Parquet dataset (--parquet DIR) or as Tardis-style CSV files "
        "(--format tardis-csv DIR).",
    )
    p.add_argument("tape", help="the tape (lobfeed-tape/1, .jsonl or .jsonl.gz) to export")
    p.add_argument("--parquet", metavar="DIR", help="write a Parquet dataset under DIR")
    p.add_argument(
        "--format",
        nargs=2,
        metavar=("FORMAT", "DIR"),
        help=f"write FORMAT ({', '.join(FORMATS)}) under DIR; tardis-csv writes "
        "incremental_book_L2, trades and book_snapshot_<N> CSV files",
    )
    p.add_argument(
        "--channels",
        help=f"comma-separated tables of {','.join(CHANNELS)} (default: all for parquet; "
        "book,book_snapshot,trades for tardis-csv)",
    )
    p.add_argument(
        "--depth",
        help="levels a side the incremental book follows (default: the whole book)",
    )
    p.add_argument(
        "--snapshot-depth",
        default="25",
        help="levels a side of the book snapshot table (default 25)",
    )
    p.add_argument(
        "--snapshot-every-ms",
        default="0",
        help="one book snapshot row per this many ms of tape time; 0 (default): whenever "
        "the top levels change",
    )
    p.add_argument(
        "--roll-bytes",
        default=str(128 * 1024 * 1024),
        help="parquet: start a new file once one reaches this size (default 128 MiB)",
    )
    p.add_argument(
        "--roll-seconds",
        default="3600",
        help="parquet: start a new file after this many seconds of tape time (default 3600)",
    )
    p.add_argument(
        "--flush-rows",
        default="100000",
        help="rows of one partition per row group (default 100000)",
    )
    p.add_argument(
        "--append",
        action="store_true",
        help="write into a directory that already holds files (another tape's, say)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Mistakes raise ConfigError, which cli.main prints as one line with exit code 2."""
    fmt, out = _format_and_dir(args)
    options = _options(args)
    channels: Sequence[str] = options.channels or DEFAULT_CHANNELS[fmt]
    if fmt == TARDIS_CSV and CANDLES in channels:
        raise ConfigError("--channels candles: tardis-csv has no candle layout; use --parquet")
    tape = Path(args.tape)
    if not tape.is_file():
        raise ConfigError(f"no such tape: {args.tape}")
    if out.is_dir() and any(out.iterdir()) and not args.append:
        raise ConfigError(
            f"{out} is not empty: the export would add to what is there; give a new "
            "directory, or --append"
        )
    try:
        sink = _make_sink(fmt, out, channels, options, args.tape)
        result = export_tape(tape, sink)
    except ConfigError:
        raise
    except LobfeedError as exc:
        # A tape that cannot be exported is the argument's fault here: exit 2, as before.
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        print(f"lobfeed export: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    written = ", ".join(
        f"{key[5:]} {value}"
        for key, value in sorted(result.stats.items())
        if key.startswith("rows_") and key not in ("rows_dropped", "rows_unwritten", "rows_written")
    )
    files = result.stats.get("files_closed", 0)
    print(
        f"{tape.name}: {result.book_updates} book updates, {result.trades} trades, "
        f"{result.candles} candles -> {files} {fmt} files in {out} ({written or 'no rows'})"
    )
    return 0


def _make_sink(
    fmt: str, out: Path, channels: Sequence[str], options: _Options, tape: str
) -> RowSink:
    from lobfeed.tape import Tape

    venue = Tape.open(tape).header.venue
    if fmt == PARQUET:
        from lobfeed.sinks.parquet import ParquetSink

        return ParquetSink(
            out,
            venue=venue,
            channels=channels,
            depth=options.depth,
            snapshot_depth=options.snapshot_depth,
            book_snapshot_every_ms=options.snapshot_every_ms,
            roll_bytes=options.roll_bytes,
            roll_seconds=options.roll_seconds,
            flush_rows=options.flush_rows,
            flush_seconds=None,
            when_full="wait",
            clock="data",
        )
    from lobfeed.sinks.tardis import TardisCsvSink

    return TardisCsvSink(
        out,
        venue=venue,
        channels=channels,
        depth=options.depth,
        snapshot_depth=options.snapshot_depth,
        book_snapshot_every_ms=options.snapshot_every_ms,
        flush_rows=options.flush_rows,
        flush_seconds=None,
        when_full="wait",
        clock="data",
    )


def _format_and_dir(args: argparse.Namespace) -> tuple[str, Path]:
    if args.parquet is not None and args.format is not None:
        raise ConfigError("give --parquet DIR or --format FORMAT DIR, not both")
    if args.parquet is not None:
        return PARQUET, Path(args.parquet)
    if args.format is None:
        raise ConfigError("where to? give --parquet DIR or --format FORMAT DIR")
    fmt, out = args.format
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return fmt, Path(out)
