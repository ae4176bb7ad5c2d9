"""Parquet datasets of books, trades and candles, from a live feed or a tape (``lobfeed export``).

Layout: ``DIR/channel=<table>/venue=<venue>/symbol=<symbol>/date=<YYYY-MM-DD>/part-*.parquet``
(hive partitions; a venue or symbol is percent-encoded where it holds ``/`` or other reserved
characters, which pyarrow and polars decode). The tables and their columns are in
``docs/parquet.md``.

Files: each flush of a partition is one row group of its open file; a file is closed and a new
one started when it reaches ``roll_bytes``, when it is ``roll_seconds`` old, or when a decimal
column must widen. zstd. A file is written under a hidden temporary name (``.part-*.tmp``)
beside its final one and renamed when complete: a writer killed at any moment leaves complete
files and at most one temporary file per partition, which the dataset readers of pyarrow,
pandas and polars (``**/*.parquet``) do not pick up.

Decimals: prices and sizes are ``decimal128`` holding the venue's digits exactly. The scale of
a column is the most digits after the point among the values written so far for that table,
venue, symbol and kind (price or size), so within a file every value fits without rounding;
precision is 18 (stored as 64-bit integers) while the digits fit, else 38. A value needing a
larger scale or precision closes the file and starts one of the wider type: files of one
dataset may then differ in decimal type, which :func:`read_table` unifies.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lobfeed.exceptions import ConfigError
from lobfeed.sinks.rows import (
    BOOK,
    BOOK_SNAPSHOT,
    CANDLES,
    CHANNELS,
    TRADES,
    Batch,
    PartitionKey,
    RowSink,
    seconds_ns,
)

__all__ = ["ParquetDataset", "ParquetSink", "partition_dir", "read_table"]

TIMESTAMP = pa.timestamp("ns", tz="UTC")
# Venue and symbol are dictionary-typed, as pandas' and pyarrow's hive discovery type the
# partition columns of the same names: the two then merge.
NAME = pa.dictionary(pa.int32(), pa.string())
FORMAT = "lobfeed-parquet/1"
#: Most digits a ``decimal128`` holds; up to 18 they are stored as 64-bit integers.
MAX_PRECISION = 38
COMPACT_PRECISION = 18

PRICE = "price"
SIZE = "size"


def partition_dir(directory: str | os.PathLike[str], key: PartitionKey) -> Path:
    """The directory of one partition."""
    return (
        Path(directory)
        / f"channel={key.table}"
        / f"venue={quote(key.venue, safe='')}"
        / f"symbol={quote(key.symbol, safe='')}"
        / f"date={key.date}"
    )


# -- decimals -------------------------------------------------------------------------------


def _digits(values: pa.Array) -> tuple[int, int]:
    """(most digits before the point, most after) among decimal strings; nulls ignored."""
    length = pc.binary_length(values)
    dot = pc.find_substring(values, pattern=".")
    has_dot = pc.greater_equal(dot, 0)
    after = pc.if_else(has_dot, pc.subtract(pc.subtract(length, dot), 1), 0)
    before = pc.if_else(has_dot, dot, length)
    sign = pc.cast(pc.starts_with(values, pattern="-"), pa.int32())
    before = pc.subtract(before, sign)
    return int(pc.max(before).as_py() or 0), int(pc.max(after).as_py() or 0)


class _DecimalTypes:
    """The decimal type of each (table, venue, symbol, kind): widened as values need, never
    narrowed, so that consecutive files of a partition keep one type."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str, str], tuple[int, int]] = {}
        self.widenings = 0

    def type_for(self, key: PartitionKey, kind: str, columns: Sequence[pa.Array]) -> pa.DataType:
        slot = (key.table, key.venue, key.symbol, kind)
        before, after = self._seen.get(slot, (1, 0))
        grown = False
        for column in columns:
            b, a = _digits(column)
            if b > before or a > after:
                grown = slot in self._seen
                before, after = max(before, b), max(after, a)
        if before + after > MAX_PRECISION:
            raise ValueError(
                f"{key.table} {key.venue} {key.symbol}: a {kind} needs {before} digits before "
                f"the point and {after} after, more than decimal128's {MAX_PRECISION}"
            )
        self._seen[slot] = (before, after)
        self.widenings += grown
        precision = COMPACT_PRECISION if before + after <= COMPACT_PRECISION else MAX_PRECISION
        return pa.decimal128(precision, after)


def _strings(values: list[Any]) -> pa.Array:
    return pa.array(values, pa.string())


# -- tables ---------------------------------------------------------------------------------


def _names(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()), pa.array([value]))


def _book_table(batch: Batch, types: _DecimalTypes) -> pa.Table:
    is_snapshot: list[bool] = []
    side: list[str] = []
    price: list[str] = []
    size: list[str] = []
    seq: list[int | None] = []
    exchange_ts: list[int | None] = []
    ts: list[int] = []
    for snap, update_seq, update_exchange_ts, update_ts, bids, asks in batch.records:
        n = len(bids) + len(asks)
        is_snapshot += [snap] * n
        seq += [update_seq] * n
        exchange_ts += [update_exchange_ts] * n
        ts += [update_ts] * n
        side += ["bid"] * len(bids)
        side += ["ask"] * len(asks)
        for levels in (bids, asks):
            if levels:
                prices, sizes = zip(*levels, strict=True)
                price += prices
                size += sizes
    key = batch.key
    price_text, size_text = _strings(price), _strings(size)
    price_type = types.type_for(key, PRICE, [price_text])
    size_type = types.type_for(key, SIZE, [size_text])
    rows = len(ts)
    return pa.table(
        {
            "venue": _names(key.venue, rows),
            "symbol": _names(key.symbol, rows),
            "is_snapshot": pa.array(is_snapshot, pa.bool_()),
            "side": pa.array(side, pa.string()),
            "price": price_text.cast(price_type),
            "size": size_text.cast(size_type),
            "seq": pa.array(seq, pa.int64()),
            "exchange_ts": pa.array(exchange_ts, TIMESTAMP),
            "ts": pa.array(ts, TIMESTAMP),
        }
    )


def _snapshot_table(batch: Batch, types: _DecimalTypes) -> pa.Table:
    levels = int(batch.key.table.rsplit("_", 1)[1])
    seq: list[int | None] = []
    exchange_ts: list[int | None] = []
    ts: list[int] = []
    # Per level: bid price, bid size, ask price, ask size.
    columns: list[list[list[str | None]]] = [[[], [], [], []] for _ in range(levels)]
    missing: tuple[None, None] = (None, None)
    for row_seq, row_exchange_ts, row_ts, bids, asks in batch.records:
        seq.append(row_seq)
        exchange_ts.append(row_exchange_ts)
        ts.append(row_ts)
        for i, level in enumerate(columns):
            bid = bids[i] if i < len(bids) else missing
            ask = asks[i] if i < len(asks) else missing
            level[0].append(bid[0])
            level[1].append(bid[1])
            level[2].append(ask[0])
            level[3].append(ask[1])
    key = batch.key
    text = [[_strings(values) for values in level] for level in columns]
    price_type = types.type_for(key, PRICE, [c for level in text for c in (level[0], level[2])])
    size_type = types.type_for(key, SIZE, [c for level in text for c in (level[1], level[3])])
    rows = len(ts)
    data: dict[str, pa.Array] = {
        "venue": _names(key.venue, rows),
        "symbol": _names(key.symbol, rows),
        "seq": pa.array(seq, pa.int64()),
        "exchange_ts": pa.array(exchange_ts, TIMESTAMP),
        "ts": pa.array(ts, TIMESTAMP),
    }
    for i, (bid_price, bid_size, ask_price, ask_size) in enumerate(text):
        data[f"bid_price_{i}"] = bid_price.cast(price_type)
        data[f"bid_size_{i}"] = bid_size.cast(size_type)
        data[f"ask_price_{i}"] = ask_price.cast(price_type)
        data[f"ask_size_{i}"] = ask_size.cast(size_type)
    return pa.table(data)


def _trades_table(batch: Batch, types: _DecimalTypes) -> pa.Table:
    trade_id, side, price, size, exchange_ts, ts, is_snapshot = (
        list(column) for column in zip(*batch.records, strict=True)
    )
    key = batch.key
    price_text, size_text = _strings(price), _strings(size)
    rows = len(ts)
    return pa.table(
        {
            "venue": _names(key.venue, rows),
            "symbol": _names(key.symbol, rows),
            "trade_id": pa.array(trade_id, pa.string()),
            "side": pa.array(side, pa.string()),
            "price": price_text.cast(types.type_for(key, PRICE, [price_text])),
            "size": size_text.cast(types.type_for(key, SIZE, [size_text])),
            "exchange_ts": pa.array(exchange_ts, TIMESTAMP),
            "ts": pa.array(ts, TIMESTAMP),
            "is_snapshot": pa.array(is_snapshot, pa.bool_()),
        }
    )


def _candles_table(batch: Batch, types: _DecimalTypes) -> pa.Table:
    (
        interval,
        open_ts,
        close_ts,
        open_,
        high,
        low,
        close,
        volume,
        trades,
        exchange_ts,
        ts,
    ) = (list(column) for column in zip(*batch.records, strict=True))
    key = batch.key
    prices = [_strings(values) for values in (open_, high, low, close)]
    price_type = types.type_for(key, PRICE, prices)
    volume_text = _strings(volume)
    rows = len(ts)
    return pa.table(
        {
            "venue": _names(key.venue, rows),
            "symbol": _names(key.symbol, rows),
            "interval": pa.array(interval, pa.string()),
            "open_time": pa.array(open_ts, TIMESTAMP),
            "close_time": pa.array(close_ts, TIMESTAMP),
            "open": prices[0].cast(price_type),
            "high": prices[1].cast(price_type),
            "low": prices[2].cast(price_type),
            "close": prices[3].cast(price_type),
            "volume": volume_text.cast(types.type_for(key, SIZE, [volume_text])),
            "trades": pa.array(trades, pa.int64()),
            "exchange_ts": pa.array(exchange_ts, TIMESTAMP),
            "ts": pa.array(ts, TIMESTAMP),
        }
    )


def arrow_table(batch: Batch, types: _DecimalTypes) -> pa.Table:
    """A batch as an Arrow table (the schema of its table, decimals as ``types`` says)."""
    table = batch.key.table
    if table == BOOK:
        out = _book_table(batch, types)
    elif table == TRADES:
        out = _trades_table(batch, types)
    elif table == CANDLES:
        out = _candles_table(batch, types)
    elif table.startswith(BOOK_SNAPSHOT + "_"):
        out = _snapshot_table(batch, types)
    else:
        raise ValueError(f"no Parquet layout for table {table!r}")
    return out.replace_schema_metadata({"lobfeed.format": FORMAT, "lobfeed.table": table})


# -- files ----------------------------------------------------------------------------------


@dataclass
class _OpenFile:
    final: Path
    temp: Path
    out: pa.NativeFile
    writer: pq.ParquetWriter
    schema: pa.Schema
    opened_ns: int
    rows: int = 0


class ParquetDataset:
    """Writes batches into a partitioned dataset; one thread uses it (the sink's writer).

    A batch is one row group of its partition's open file. A file is closed (renamed to its
    final name) when it holds ``roll_bytes`` or more, when it is ``roll_seconds`` old (on the
    sink's clock), or when a batch needs a wider decimal type than the file has.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        roll_bytes: int,
        roll_seconds: float,
        compression_level: int | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.roll_bytes = roll_bytes
        self.roll_ns = seconds_ns(roll_seconds)
        self.compression_level = compression_level
        self._types = _DecimalTypes()
        self._files: dict[PartitionKey, _OpenFile] = {}
        self.files_closed = 0
        self.bytes_closed = 0
        self.row_groups = 0
        self.rows_written = 0
        #: Paths of the files closed so far, oldest first (for callers that list them).
        self.closed_paths: list[Path] = []

    def write(self, batch: Batch, now_ns: int) -> None:
        if not batch.records:
            return
        table = arrow_table(batch, self._types)
        key = batch.key
        file = self._files.get(key)
        if file is not None and (
            not file.schema.equals(table.schema) or now_ns - file.opened_ns >= self.roll_ns
        ):
            self._close(key)
            file = None
        if file is None:
            file = self._open(key, table.schema, now_ns)
        file.writer.write_table(table, row_group_size=max(1, table.num_rows))
        file.rows += table.num_rows
        self.row_groups += 1
        self.rows_written += table.num_rows
        if file.out.tell() >= self.roll_bytes:
            self._close(key)

    def roll_idle(self, now_ns: int) -> None:
        for key, file in list(self._files.items()):
            if now_ns - file.opened_ns >= self.roll_ns:
                self._close(key)

    def close(self) -> None:
        errors: list[BaseException] = []
        for key in list(self._files):
            try:
                self._close(key)
            except BaseException as exc:  # close the others, then say what failed
                errors.append(exc)
        if errors:
            raise errors[0]

    def stats(self) -> dict[str, int]:
        return {
            "files_closed": self.files_closed,
            "files_open": len(self._files),
            "bytes_closed": self.bytes_closed,
            "row_groups": self.row_groups,
            "rows_written": self.rows_written,
            "decimal_widenings": self._types.widenings,
        }

    def _open(self, key: PartitionKey, schema: pa.Schema, now_ns: int) -> _OpenFile:
        folder = partition_dir(self.directory, key)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"part-{stamp}-{secrets.token_hex(4)}.parquet"
        final = folder / name
        # A leading dot hides it from pyarrow's discovery; the suffix from *.parquet globs.
        temp = folder / f".{name}.tmp"
        out = pa.OSFile(str(temp), "wb")
        writer = pq.ParquetWriter(
            out,
            schema,
            compression="zstd",
            compression_level=self.compression_level,
            store_decimal_as_integer=True,
        )
        file = self._files[key] = _OpenFile(final, temp, out, writer, schema, now_ns)
        return file

    def _close(self, key: PartitionKey) -> None:
        file = self._files.pop(key)
        try:
            file.writer.close()
        finally:
            file.out.close()
        size = file.temp.stat().st_size
        os.replace(file.temp, file.final)
        self.files_closed += 1
        self.bytes_closed += size
        self.closed_paths.append(file.final)


# -- the sink -------------------------------------------------------------------------------


class ParquetSink(RowSink):
    """Writes a feed's books, trades and candles as Parquet datasets under ``directory``.

    ``channels``: the tables, of ``book`` (incremental L2), ``book_snapshot`` (top
    ``snapshot_depth`` levels, table ``book_snapshot_<N>``), ``trades``, ``candles`` (closed
    ones, each open time once). ``depth``: levels a side the incremental book follows (None:
    the whole book). ``book_snapshot_every_ms``: 0 writes a snapshot row whenever the top
    levels change, T a row at the first update of each T ms. ``roll_bytes``/``roll_seconds``:
    when a file is closed and the next started. ``flush_rows``/``flush_seconds``: when the rows
    of a partition become a row group. ``venue`` names the venue for events that carry none.
    See :class:`lobfeed.sinks.rows.RowSink` for ``when_full``, ``clock`` and the queue.
    """

    name = "parquet"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        venue: str | None = None,
        channels: Iterable[str] = CHANNELS,
        depth: int | None = None,
        snapshot_depth: int = 25,
        book_snapshot_every_ms: int = 0,
        roll_bytes: int = 128 * 1024 * 1024,
        roll_seconds: float = 3600.0,
        flush_rows: int = 100_000,
        flush_seconds: float | None = 5.0,
        compression_level: int | None = None,
        max_queued_batches: int = 256,
        when_full: str = "drop",
        clock: str = "wall",
    ) -> None:
        super().__init__(
            venue=venue,
            channels=channels,
            depth=depth,
            snapshot_depth=snapshot_depth,
            book_snapshot_every_ms=book_snapshot_every_ms,
            flush_rows=flush_rows,
            flush_seconds=flush_seconds,
            max_queued_batches=max_queued_batches,
            when_full=when_full,
            clock=clock,
        )
        if not isinstance(roll_bytes, int) or isinstance(roll_bytes, bool) or roll_bytes < 1:
            raise ConfigError(f"roll_bytes must be an integer >= 1, got {roll_bytes!r}")
        if (
            not isinstance(roll_seconds, int | float)
            or isinstance(roll_seconds, bool)
            or not 0 < roll_seconds < float("inf")
        ):
            raise ConfigError(f"roll_seconds must be a number of seconds > 0, got {roll_seconds!r}")
        if compression_level is not None and (
            not isinstance(compression_level, int) or not 1 <= compression_level <= 22
        ):
            raise ConfigError(
                f"compression_level must be a zstd level from 1 to 22, got {compression_level!r}"
            )
        path = Path(directory)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{str(path)!r} exists and is not a directory")
        self.directory = path
        self.roll_bytes = roll_bytes
        self.roll_seconds = float(roll_seconds)
        self.compression_level = compression_level

    def _make_writer(self) -> ParquetDataset:
        return ParquetDataset(
            self.directory,
            roll_bytes=self.roll_bytes,
            roll_seconds=self.roll_seconds,
            compression_level=self.compression_level,
        )

    def roll_interval(self) -> float | None:
        return self.roll_seconds


# -- reading --------------------------------------------------------------------------------


def dataset_files(directory: str | os.PathLike[str], channel: str) -> list[Path]:
    """The complete files of one table (temporary files of a running writer left out)."""
    root = Path(directory) / f"channel={channel}"
    return sorted(
        path
        for path in root.rglob("*.parquet")
        if not path.name.startswith((".", "_")) and path.is_file()
    )


def read_table(
    directory: str | os.PathLike[str],
    channel: str,
    *,
    columns: Sequence[str] | None = None,
    filter: ds.Expression | None = None,
) -> pa.Table:
    """One table of a dataset as a single Arrow table, decimal columns widened to a type that
    holds every file's values exactly (files of different symbols, or written before and after
    a widening, can differ). ``pl.from_arrow(...)`` and ``.to_pandas()`` take it from there.

    ``channel`` is a directory name under ``directory``: ``book``, ``book_snapshot_25``,
    ``trades``, ``candles``. Rows come file by file, each file in the order it was written.
    """
    files = dataset_files(directory, channel)
    if not files:
        raise ConfigError(
            f"no Parquet files for channel {channel!r} under {str(directory)!r}; "
            f"tables there: {', '.join(_tables(directory)) or 'none'}"
        )
    schema = pa.unify_schemas(
        [pq.read_schema(path) for path in files], promote_options="permissive"
    )
    dataset = ds.dataset([str(path) for path in files], schema=schema, format="parquet")
    return dataset.to_table(columns=list(columns) if columns else None, filter=filter)


def _tables(directory: str | os.PathLike[str]) -> list[str]:
    root = Path(directory)
    if not root.is_dir():
        return []
    return sorted(p.name.split("=", 1)[1] for p in root.glob("channel=*") if p.is_dir())
