"""Feed events as table rows, batched per partition, written by a thread: what the Parquet and
Tardis CSV sinks share.

:class:`RowMaker` turns events into records, on the event loop and in order: the level changes
between consecutive views of a book (the binding gives views, not deltas), top-N book
snapshots, trades, and closed candles deduplicated on their open time. Records collect in one
:class:`Batch` per partition (table, venue, symbol, UTC date). :class:`RowSink` hands full or
timed-out batches to a writer thread through a bounded queue; a format only supplies the
:class:`BatchWriter` that turns a batch into its files.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from lobfeed.events import Disconnected, StatusChanged
from lobfeed.exceptions import ConfigError
from lobfeed.sinks.base import Sink

log = logging.getLogger(__name__)

#: The tables a row sink can write (``channels=``): incremental L2 levels, top-N snapshots of
#: the book, trades, closed candles.
BOOK = "book"
BOOK_SNAPSHOT = "book_snapshot"
TRADES = "trades"
CANDLES = "candles"
CHANNELS = (BOOK, BOOK_SNAPSHOT, TRADES, CANDLES)

DAY_NS = 86_400 * 1_000_000_000
_SECOND_NS = 1_000_000_000
# Open times of closed candles remembered per (venue, symbol, interval) to drop repeats; a
# repeat older than this many candles is not expected from any venue.
_CANDLES_REMEMBERED = 4096

Level = tuple[str, str]


def snapshot_table(levels: int) -> str:
    """The table name of top-``levels`` book snapshots (``book_snapshot_25``)."""
    return f"{BOOK_SNAPSHOT}_{levels}"


class PartitionKey(NamedTuple):
    """Where a row goes: one directory of a dataset (or one CSV file)."""

    table: str
    venue: str
    symbol: str
    date: str


@dataclass(slots=True)
class Batch:
    """Records of one partition, in arrival order. ``rows`` counts output rows (levels, for
    the incremental book), which is what ``flush_rows`` bounds.

    Record shapes, by table:

    - ``book``: ``(is_snapshot, seq, exchange_ts_ns, ts_ns, bid_levels, ask_levels)``, each
      level a ``(price, size)`` pair of decimal strings, size ``"0"`` for a removed level;
    - ``book_snapshot_N``: ``(seq, exchange_ts_ns, ts_ns, bids, asks)``, up to N levels a side;
    - ``trades``: ``(trade_id, side, price, size, exchange_ts_ns, ts_ns, is_snapshot)``;
    - ``candles``: ``(interval, open_ts_ns, close_ts_ns, open, high, low, close, volume,
      trades, exchange_ts_ns, ts_ns)``.

    ``exchange_ts_ns`` is ``None`` where the venue gives no time.
    """

    key: PartitionKey
    records: list[tuple[Any, ...]] = field(default_factory=list)
    rows: int = 0


class BatchWriter(Protocol):
    """Writes batches to files; runs on the sink's writer thread only."""

    def write(self, batch: Batch, now_ns: int) -> None:
        """Writes one batch (one row group, for Parquet); ``now_ns`` is the sink's clock."""

    def roll_idle(self, now_ns: int) -> None:
        """Closes the files that are old enough to roll even if nothing more comes."""

    def close(self) -> None:
        """Closes every open file so that it is complete under its final name."""

    def stats(self) -> dict[str, int]:
        """Counters of files and rows written."""


class _BookState:
    """What the maker remembers of one book: the last view written, and when the next
    snapshot row is due."""

    __slots__ = ("asks", "bids", "fresh", "next_snapshot_ns", "top")

    def __init__(self) -> None:
        self.bids: set[Level] = set()
        self.asks: set[Level] = set()
        # The next incremental rows must be a full book (first book, or after a resync).
        self.fresh = True
        self.next_snapshot_ns = 0
        self.top: tuple[list[Level], list[Level]] | None = None


def _price_order(level: Level) -> float:
    # Only orders the rows of one update; the values themselves stay strings.
    return float(level[0])


def _changes(old: set[Level], new: set[Level], descending: bool) -> list[Level]:
    """The levels that differ from ``old`` to ``new``: new or resized ones with their size,
    removed ones with size ``"0"``; in book order. Sets of (price, size) pairs: on books of
    thousands of levels, two set differences are the cheapest exact diff Python has."""
    added = new - old
    if not added and len(old) == len(new):
        return []
    out = list(added)
    gone = old - new
    if gone:
        resized = {price for price, _ in added}
        out.extend((price, "0") for price, _ in gone if price not in resized)
    out.sort(key=_price_order, reverse=descending)
    return out


class RowMaker:
    """Events in, records out, batched per partition. Not thread-safe: the event loop owns it.

    ``depth`` bounds the levels a side that the incremental book follows (``None``: the whole
    book the session keeps); a level pushed out of the top ``depth`` is written as removed.
    ``snapshot_depth`` is N of the snapshot table; ``snapshot_every_ms`` 0 writes a snapshot
    row whenever the top N changed, T > 0 at the first update at or after each multiple of T
    ms. ``venue`` names the venue of events that do not carry one.
    """

    def __init__(
        self,
        *,
        venue: str | None,
        channels: Iterable[str],
        depth: int | None,
        snapshot_depth: int,
        snapshot_every_ms: int,
        flush_rows: int,
    ) -> None:
        self.venue = venue
        self.channels = frozenset(channels)
        self.depth = depth
        self.snapshot_depth = snapshot_depth
        self.snapshot_every_ns = snapshot_every_ms * 1_000_000
        self.flush_rows = flush_rows
        self.snapshot_table = snapshot_table(snapshot_depth)
        self.want_levels = BOOK in self.channels
        self.want_snapshots = BOOK_SNAPSHOT in self.channels
        self.want_trades = TRADES in self.channels
        self.want_candles = CANDLES in self.channels
        #: Batches that reached ``flush_rows``, taken out of the open ones, to be written.
        self.ready: list[Batch] = []
        #: The receive time of the newest event: the data's own clock (export uses it).
        self.last_ts_ns = 0
        #: Rows made per table, and closed candles dropped as repeats.
        self.rows: dict[str, int] = {}
        self.candle_repeats = 0
        self._open: dict[PartitionKey, Batch] = {}
        self._books: dict[tuple[str, str], _BookState] = {}
        self._candles: dict[tuple[str, str, str], set[int]] = {}
        self._dates: dict[int, str] = {}

    # -- events -------------------------------------------------------------------------------

    def book(self, update: Any) -> None:
        """A ``BookUpdate``: read its book view now (it is only valid during the call)."""
        venue = self._venue_of(update)
        symbol: str = update.symbol
        key = (venue, symbol)
        state = self._books.get(key)
        if state is None:
            state = self._books[key] = _BookState()
        ts_ns: int = update.ts_ns
        self.last_ts_ns = ts_ns
        book = update.book
        bids: list[Level] | None = None
        asks: list[Level] | None = None
        if self.want_levels:
            if self.depth is None:
                n_bids, n_asks = book.depth()
                bids, asks = book.bids(n_bids), book.asks(n_asks)
            else:
                bids, asks = book.bids(self.depth), book.asks(self.depth)
            self._levels(state, venue, symbol, update, bids, asks)
        if self.want_snapshots and ts_ns >= state.next_snapshot_ns:
            n = self.snapshot_depth
            if bids is None or asks is None or (self.depth is not None and self.depth < n):
                top = (book.bids(n), book.asks(n))
            else:
                top = (bids[:n], asks[:n])
            if self.snapshot_every_ns:
                state.next_snapshot_ns = (ts_ns // self.snapshot_every_ns + 1) * (
                    self.snapshot_every_ns
                )
            elif top == state.top:
                return
            state.top = top
            batch = self._batch(self.snapshot_table, venue, symbol, ts_ns)
            batch.records.append((update.seq, update.exchange_ts_ns or None, ts_ns, top[0], top[1]))
            self._grew(batch, 1)

    def _levels(
        self,
        state: _BookState,
        venue: str,
        symbol: str,
        update: Any,
        bids: list[Level],
        asks: list[Level],
    ) -> None:
        new_bids, new_asks = set(bids), set(asks)
        if state.fresh:
            if not bids and not asks:
                return
            state.fresh = False
            bid_rows, ask_rows, is_snapshot = bids, asks, True
        else:
            bid_rows = _changes(state.bids, new_bids, descending=True)
            ask_rows = _changes(state.asks, new_asks, descending=False)
            is_snapshot = False
        state.bids, state.asks = new_bids, new_asks
        n = len(bid_rows) + len(ask_rows)
        if not n:
            return
        batch = self._batch(BOOK, venue, symbol, update.ts_ns)
        batch.records.append(
            (
                is_snapshot,
                update.seq,
                update.exchange_ts_ns or None,
                update.ts_ns,
                bid_rows,
                ask_rows,
            )
        )
        self._grew(batch, n)

    def trade(self, trade: Any) -> None:
        ts_ns: int = trade.ts_ns
        self.last_ts_ns = ts_ns
        if not self.want_trades:
            return
        batch = self._batch(TRADES, self._venue_of(trade), trade.symbol, ts_ns)
        batch.records.append(
            (
                trade.trade_id,
                trade.side,
                trade.price,
                trade.size,
                trade.exchange_ts_ns or None,
                ts_ns,
                getattr(trade, "is_snapshot", None),
            )
        )
        self._grew(batch, 1)

    def candle(self, candle: Any) -> None:
        """Closed candles only, each (venue, symbol, interval, open time) once."""
        self.last_ts_ns = candle.ts_ns
        if not self.want_candles or not candle.closed:
            return
        venue = self._venue_of(candle)
        symbol: str = candle.symbol
        interval: str = candle.interval
        open_ts: int = candle.open_ts_ns
        seen = self._candles.setdefault((venue, symbol, interval), set())
        if open_ts in seen:
            self.candle_repeats += 1
            return
        seen.add(open_ts)
        if len(seen) > 2 * _CANDLES_REMEMBERED:
            keep = sorted(seen)[-_CANDLES_REMEMBERED:]
            seen.clear()
            seen.update(keep)
        # A candle belongs to the day it opened, wherever its close falls.
        batch = self._batch(CANDLES, venue, symbol, open_ts)
        batch.records.append(
            (
                interval,
                open_ts,
                candle.close_ts_ns,
                candle.open,
                candle.high,
                candle.low,
                candle.close,
                candle.volume,
                candle.trades,
                candle.exchange_ts_ns or None,
                candle.ts_ns,
            )
        )
        self._grew(batch, 1)

    def sync_event(self, event: Any) -> None:
        """A sync event about one symbol (gap, resync, lost sync, needed snapshot): its next
        book is written whole, marked ``is_snapshot``."""
        symbol = getattr(event, "symbol", None)
        if symbol is None:
            return
        venue = self._venue_of(event)
        state = self._books.get((venue, symbol))
        if state is not None:
            state.fresh = True

    def status(self, status: Any) -> None:
        """A status event: a lost connection or a book that left ``live`` restarts books."""
        if isinstance(status, Disconnected):
            venue = status.venue
            for (book_venue, _), state in self._books.items():
                if book_venue == venue:
                    state.fresh = True
        elif isinstance(status, StatusChanged) and status.new != "live":
            self.sync_event(status)

    # -- batches ------------------------------------------------------------------------------

    def take_all(self) -> list[Batch]:
        """Every batch with records (the ready ones first); the maker starts new ones."""
        out = self.ready
        out.extend(b for b in self._open.values() if b.records)
        self.ready = []
        self._open = {}
        return out

    def _venue_of(self, obj: Any) -> str:
        venue = getattr(obj, "venue", None) or self.venue
        if not venue:
            raise ConfigError(
                f"{type(obj).__name__} carries no venue and the sink was given none: "
                "pass venue= to the sink"
            )
        return str(venue)

    def _batch(self, table: str, venue: str, symbol: str, ts_ns: int) -> Batch:
        day = ts_ns // DAY_NS
        date = self._dates.get(day)
        if date is None:
            date = self._dates[day] = dt.datetime.fromtimestamp(day * 86_400, dt.UTC).strftime(
                "%Y-%m-%d"
            )
        key = PartitionKey(table, venue, symbol, date)
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = Batch(key)
        return batch

    def _grew(self, batch: Batch, rows: int) -> None:
        batch.rows += rows
        table = batch.key.table
        self.rows[table] = self.rows.get(table, 0) + rows
        if batch.rows >= self.flush_rows:
            del self._open[batch.key]
            self.ready.append(batch)


# -- the sink -------------------------------------------------------------------------------

_WRITE = "write"
_ROLL = "roll"


def _positive_int(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


def _positive_seconds(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not value > 0
        or value == float("inf")
    ):
        raise ConfigError(f"{name} must be a number of seconds > 0, got {value!r}")


class RowSink(Sink, abc.ABC):
    """A :class:`Sink` that makes rows on the event loop and writes them on its own thread.

    ``on_*`` only copy the event into a batch (and, for books, diff two views); a batch goes to
    the writer thread when it holds ``flush_rows`` rows, and every batch with rows goes every
    ``flush_seconds``. The queue to the thread holds ``max_queued_batches``: when it is full a
    batch is dropped and counted (``when_full="drop"``, for live feeds), or the caller waits
    (``"wait"``, for exports, which must lose nothing). ``clock="data"`` makes the newest
    event's receive time the clock of rolling and file names (exports); ``"wall"`` the
    machine's.

    Use ``await start()`` / ``await close()`` with a feed, or ``open()`` / ``finish()`` from
    plain code. A failed write (a full disk, a value that does not fit) stops the writing;
    ``finish()`` and ``close()`` raise it after closing the files already complete.
    """

    def __init__(
        self,
        *,
        venue: str | None = None,
        channels: Iterable[str] = CHANNELS,
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
        chosen = tuple(channels)
        for channel in chosen:
            if channel not in CHANNELS:
                raise ConfigError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
        if not chosen:
            raise ConfigError(f"channels is empty; choose from {', '.join(CHANNELS)}")
        _positive_int("depth", depth, allow_none=True)
        _positive_int("snapshot_depth", snapshot_depth)
        if (
            not isinstance(book_snapshot_every_ms, int)
            or isinstance(book_snapshot_every_ms, bool)
            or book_snapshot_every_ms < 0
        ):
            raise ConfigError(
                "book_snapshot_every_ms must be an integer >= 0 (0: whenever the top levels "
                f"change), got {book_snapshot_every_ms!r}"
            )
        _positive_int("flush_rows", flush_rows)
        _positive_seconds("flush_seconds", flush_seconds, allow_none=True)
        _positive_int("max_queued_batches", max_queued_batches)
        if when_full not in ("drop", "wait"):
            raise ConfigError(f"when_full must be 'drop' or 'wait', got {when_full!r}")
        if clock not in ("wall", "data"):
            raise ConfigError(f"clock must be 'wall' or 'data', got {clock!r}")
        self.channels = chosen
        self.flush_seconds = flush_seconds
        self._maker = RowMaker(
            venue=venue,
            channels=chosen,
            depth=depth,
            snapshot_depth=snapshot_depth,
            snapshot_every_ms=book_snapshot_every_ms,
            flush_rows=flush_rows,
        )
        self._wait_when_full = when_full == "wait"
        self._data_clock = clock == "data"
        self._queue: queue.Queue[tuple[str, Batch | None, int] | None] = queue.Queue(
            max_queued_batches
        )
        self._thread: threading.Thread | None = None
        self._writer: BatchWriter | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._finished = False
        # Between open() and finish(): events are taken.
        self._taking = False
        self.batches_dropped = 0
        self.rows_dropped = 0
        # Counted by the writer thread: rows of batches that came after a write error.
        self._rows_unwritten = 0

    @abc.abstractmethod
    def _make_writer(self) -> BatchWriter:
        """The writer the thread hands batches to (Parquet files, Tardis CSV files)."""

    def roll_interval(self) -> float | None:
        """Seconds between checks for files old enough to close (None: no such files)."""
        return None

    # -- life ---------------------------------------------------------------------------------

    def open(self) -> None:
        """Starts the writer thread; for use without an event loop (``finish()`` ends it)."""
        if self._thread is not None:
            return
        self._writer = self._make_writer()
        self._taking = True
        self._thread = threading.Thread(
            target=self._write_loop, args=(self._writer,), name=f"lobfeed-{self.name}", daemon=True
        )
        self._thread.start()

    async def start(self) -> None:
        self.open()
        periods = [p for p in (self.flush_seconds, self.roll_interval()) if p is not None]
        if periods:
            self._ticker = asyncio.create_task(self._tick(min(periods)))

    def flush(self) -> None:
        """Hands every batch with rows to the writer thread (one row group each)."""
        if not self._taking:
            return
        for batch in self._maker.take_all():
            self._put(_WRITE, batch)

    def finish(self) -> None:
        """Writes what is left, closes every file, stops the thread; raises a write error."""
        self.flush()
        self._stop_writer()

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        # The rows are taken here, on the loop that makes them; the thread is waited for off it.
        self.flush()
        await asyncio.to_thread(self._stop_writer)

    def _stop_writer(self) -> None:
        self._taking = False
        if not self._finished:
            self._finished = True
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
        if self._error is not None:
            raise self._error

    # -- Sink ---------------------------------------------------------------------------------

    def on_book(self, update: Any) -> None:
        if not self._taking:
            self._refuse()
        self._maker.book(update)
        if self._maker.ready:
            self._hand_ready()

    def on_trade(self, trade: Any) -> None:
        if not self._taking:
            self._refuse()
        self._maker.trade(trade)
        if self._maker.ready:
            self._hand_ready()

    def on_candle(self, candle: Any) -> None:
        if not self._taking:
            self._refuse()
        self._maker.candle(candle)
        if self._maker.ready:
            self._hand_ready()

    def on_event(self, event: Any) -> None:
        self._maker.sync_event(event)

    def on_status(self, status: Any) -> None:
        self._maker.status(status)

    def stats(self) -> dict[str, int]:
        out = {f"rows_{table}": n for table, n in self._maker.rows.items()}
        out["candle_repeats"] = self._maker.candle_repeats
        out["batches_dropped"] = self.batches_dropped
        out["rows_dropped"] = self.rows_dropped
        out["rows_unwritten"] = self._rows_unwritten
        out["write_errors"] = int(self._error is not None)
        if self._writer is not None:
            out.update(self._writer.stats())
        return out

    @property
    def error(self) -> BaseException | None:
        """The write error that stopped the writer, if one did."""
        return self._error

    # -- internals ----------------------------------------------------------------------------

    def _now(self) -> int:
        return self._maker.last_ts_ns if self._data_clock else time.time_ns()

    def _refuse(self) -> None:
        state = "finished" if self._finished else "not started"
        raise ConfigError(
            f"{type(self).__name__} is {state}: await start() (or call open()) before handing "
            "it events, and hand it none after close()"
        )

    def _hand_ready(self) -> None:
        ready, self._maker.ready = self._maker.ready, []
        for batch in ready:
            self._put(_WRITE, batch)

    def _put(self, kind: str, batch: Batch | None) -> None:
        job = (kind, batch, self._now())
        if self._wait_when_full:
            self._queue.put(job)
            return
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            if batch is not None:
                self.batches_dropped += 1
                self.rows_dropped += batch.rows

    async def _tick(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            self.flush()
            self._put(_ROLL, None)

    def _write_loop(self, writer: BatchWriter) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                break
            _kind, batch, now_ns = job
            if self._error is not None:
                if batch is not None:
                    self._rows_unwritten += batch.rows
                continue
            try:
                if batch is not None:
                    writer.write(batch, now_ns)
                else:
                    writer.roll_idle(now_ns)
            except BaseException as exc:
                log.exception("%s sink: writing failed; it writes nothing more", self.name)
                self._error = exc
        try:
            writer.close()
        except BaseException as exc:
            log.exception("%s sink: closing the files failed", self.name)
            if self._error is None:
                self._error = exc


def seconds_ns(seconds: float) -> int:
    return int(seconds * _SECOND_NS)
