"""Tardis-style CSV files (``lobfeed export TAPE --format tardis-csv DIR``): the layouts of
Tardis.dev's downloadable ``incremental_book_L2``, ``trades`` and ``book_snapshot_<N>`` files,
which hftbacktest and nautilus_trader load.

Same rows as the Parquet tables (one :class:`~lobfeed.sinks.rows.RowMaker`), written as
gzip-compressed CSV, one file per data type, exchange, symbol and UTC day of the receive time:
``DIR/<exchange>_<data type>_<YYYY-MM-DD>_<SYMBOL>.csv.gz``. Times are microseconds since the
epoch; ``timestamp`` is the venue's time, or the receive time where the venue gives none;
``local_timestamp`` the receive time. Prices and amounts are the venue's digits. The files are
written under a hidden temporary name and renamed when the sink finishes.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lobfeed.exceptions import ConfigError
from lobfeed.sinks.rows import (
    BOOK,
    BOOK_SNAPSHOT,
    CANDLES,
    TRADES,
    Batch,
    PartitionKey,
    RowSink,
)

__all__ = ["TardisCsvSink", "TardisCsvWriter", "tardis_exchange", "tardis_header"]

INCREMENTAL_BOOK_L2 = "incremental_book_L2"

_COMMON = ["exchange", "symbol", "timestamp", "local_timestamp"]

# Tardis's exchange ids for lobfeed's venues; OKX's depend on the instrument.
_EXCHANGES = {
    "binance": "binance",
    "binance-usdm": "binance-futures",
    "binance-coinm": "binance-delivery",
    "bybit": "bybit",
    "bybit-linear": "bybit",
    "bybit-inverse": "bybit",
    "bybit-spot": "bybit-spot",
    "kraken": "kraken",
    "kraken-v2": "kraken",
    "coinbase": "coinbase",
    "gemini": "gemini",
    "bitfinex": "bitfinex",
}
_OKX_FUTURE = re.compile(r"-\d{6}$")
_OKX_OPTION = re.compile(r"-\d{6}-[\d.]+-[CP]$")


def tardis_exchange(venue: str, symbol: str) -> str:
    """Tardis's exchange id for a lobfeed venue and symbol (the venue's name if it has none)."""
    if venue == "okx":
        if symbol.endswith("-SWAP"):
            return "okex-swap"
        if _OKX_OPTION.search(symbol):
            return "okex-options"
        if _OKX_FUTURE.search(symbol):
            return "okex-futures"
        return "okex"
    return _EXCHANGES.get(venue, venue)


def data_type(table: str) -> str:
    """The Tardis data type of a row table (``book`` is ``incremental_book_L2``)."""
    if table == BOOK:
        return INCREMENTAL_BOOK_L2
    if table == TRADES or table.startswith(BOOK_SNAPSHOT + "_"):
        return table
    raise ValueError(f"Tardis CSV has no layout for {table!r}")


def tardis_header(table: str) -> list[str]:
    """The header row of a data type's file."""
    if table == BOOK:
        return [*_COMMON, "is_snapshot", "side", "price", "amount"]
    if table == TRADES:
        return [*_COMMON, "id", "side", "price", "amount"]
    if table.startswith(BOOK_SNAPSHOT + "_"):
        levels = int(table.rsplit("_", 1)[1])
        header = list(_COMMON)
        for i in range(levels):
            header += [f"asks[{i}].price", f"asks[{i}].amount"]
            header += [f"bids[{i}].price", f"bids[{i}].amount"]
        return header
    raise ValueError(f"Tardis CSV has no layout for {table!r}")


def _us(ns: int) -> int:
    return ns // 1000


def _rows(key: PartitionKey, exchange: str, symbol: str, batch: Batch) -> Iterable[list[Any]]:
    table = key.table
    if table == BOOK:
        for is_snapshot, _seq, exchange_ts, ts, bids, asks in batch.records:
            head = [exchange, symbol, _us(exchange_ts or ts), _us(ts)]
            flag = "true" if is_snapshot else "false"
            for price, size in bids:
                yield [*head, flag, "bid", price, size]
            for price, size in asks:
                yield [*head, flag, "ask", price, size]
    elif table == TRADES:
        for trade_id, side, price, size, exchange_ts, ts, _snap in batch.records:
            yield [
                exchange,
                symbol,
                _us(exchange_ts or ts),
                _us(ts),
                trade_id,
                side or "unknown",
                price,
                size,
            ]
    else:
        levels = int(table.rsplit("_", 1)[1])
        empty = ("", "")
        for _seq, exchange_ts, ts, bids, asks in batch.records:
            row: list[Any] = [exchange, symbol, _us(exchange_ts or ts), _us(ts)]
            for i in range(levels):
                row += asks[i] if i < len(asks) else empty
                row += bids[i] if i < len(bids) else empty
            yield row


@dataclass
class _OpenCsv:
    final: Path
    temp: Path
    gz: gzip.GzipFile
    text: io.TextIOWrapper
    writer: Any
    rows: int = 0


class TardisCsvWriter:
    """Writes batches as Tardis CSV files; the files stay open until :meth:`close`."""

    def __init__(self, directory: str | os.PathLike[str], *, compresslevel: int = 6) -> None:
        self.directory = Path(directory)
        self.compresslevel = compresslevel
        self._files: dict[PartitionKey, _OpenCsv] = {}
        self.files_closed = 0
        self.rows_written = 0
        self.closed_paths: list[Path] = []

    def write(self, batch: Batch, now_ns: int) -> None:
        key = batch.key
        file = self._files.get(key) or self._open(key)
        exchange = tardis_exchange(key.venue, key.symbol)
        before = file.rows
        for row in _rows(key, exchange, key.symbol.upper(), batch):
            file.writer.writerow(row)
            file.rows += 1
        self.rows_written += file.rows - before

    def roll_idle(self, now_ns: int) -> None:
        """Tardis files are one a day: nothing rolls before the end."""

    def close(self) -> None:
        for key in list(self._files):
            file = self._files.pop(key)
            file.text.close()
            os.replace(file.temp, file.final)
            self.files_closed += 1
            self.closed_paths.append(file.final)

    def stats(self) -> dict[str, int]:
        return {
            "files_closed": self.files_closed,
            "files_open": len(self._files),
            "rows_written": self.rows_written,
        }

    def _open(self, key: PartitionKey) -> _OpenCsv:
        self.directory.mkdir(parents=True, exist_ok=True)
        exchange = tardis_exchange(key.venue, key.symbol)
        # A symbol's "/" or ":" (Kraken's XBT/USD) cannot be in a file name.
        symbol = re.sub(r"[/:\\]", "-", key.symbol.upper())
        name = f"{exchange}_{data_type(key.table)}_{key.date}_{symbol}.csv.gz"
        final = self.directory / name
        temp = self.directory / f".{name}.tmp"
        gz = gzip.GzipFile(temp, "wb", compresslevel=self.compresslevel, mtime=0)
        text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(tardis_header(key.table))
        file = self._files[key] = _OpenCsv(final, temp, gz, text, writer)
        return file


class TardisCsvSink(RowSink):
    """A feed's (or a tape's) books and trades as Tardis CSV files under ``directory``.

    ``channels`` of ``book`` (``incremental_book_L2``), ``book_snapshot``
    (``book_snapshot_<snapshot_depth>``) and ``trades``; the other arguments are those of
    :class:`~lobfeed.sinks.rows.RowSink`. Files are complete once the sink finishes.
    """

    name = "tardis-csv"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        venue: str | None = None,
        channels: Iterable[str] = (BOOK, BOOK_SNAPSHOT, TRADES),
        depth: int | None = None,
        snapshot_depth: int = 25,
        book_snapshot_every_ms: int = 0,
        flush_rows: int = 100_000,
        flush_seconds: float | None = 5.0,
        max_queued_batches: int = 256,
        when_full: str = "drop",
        clock: str = "wall",
    ) -> None:
        if isinstance(channels, str):
            channels = [part for part in channels.split(",") if part]
        channels = tuple(channels)
        if CANDLES in channels:
            raise ConfigError(
                "channel 'candles' has no Tardis CSV layout; choose from book, book_snapshot, "
                "trades"
            )
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
        path = Path(directory)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{str(path)!r} exists and is not a directory")
        self.directory = path

    def _make_writer(self) -> TardisCsvWriter:
        return TardisCsvWriter(self.directory)
