"""``Dispatcher``: delivers a feed's events to user callbacks without letting them sink it.

The ``Feed`` hands every ``Session.receive`` result to :meth:`Dispatcher.dispatch`. Data
events go to the user's callbacks; every other event (``NeedSnapshot``, ``NeedResubscribe``,
``GapDetected``, ``ChecksumMismatch``, ``Resynced`` and any type a later session adds) goes,
in order and synchronously, to the ``control`` hook the Feed gives the constructor, which
resyncs with them and calls :meth:`Dispatcher.emit_event` for the ones the user should see.

=================  ===============================================================
event              where it goes
=================  ===============================================================
``BookUpdate``     ``on_book``
``Trade``          ``on_trade`` (live only: history sent on subscribe unless ``history``)
``Candle``         ``on_candle`` (live and closed unless ``history``/``closed_candles_only``)
``Quote``          ``on_quote``
anything else      ``control`` (never a user callback from ``dispatch``)
``emit_event(e)``  ``on_event``
``emit_status(e)`` ``on_status``
=================  ===============================================================

How a callback is called:

- A plain function is called inline, in frame order. On the default path (plain functions,
  ``conflate=False``) ``dispatch`` does what the Feed always did: one dict lookup by
  ``type(ev)`` and one call per event, with no wrapper in between.
- An ``async def`` callback is awaited by one worker task per dispatcher, in order, from one
  bounded queue (``async_queue`` items), never one task per event. A book update of a symbol
  that already has one waiting in the queue replaces it in place (``stats.conflated``): only
  the newest book matters, and an older ``BookUpdate``'s view would be stale anyway. When the
  queue is full the oldest trade/candle/quote is dropped (``stats.dropped``); events and
  status changes are dropped only when nothing else is left to drop.
- ``conflate=True`` with a plain ``on_book``: a book update only marks its symbol dirty with
  the newest ``BookUpdate``; one ``call_soon`` flush then delivers each dirty symbol's newest
  update once. When a slow callback blocks the loop, the frames that piled up meanwhile are all
  read before the flush runs, so the consumer gets the newest book, not the backlog. Trades,
  candles and quotes are never conflated. Books may thus arrive after trades that followed
  them on the wire.

Lag: ``ts_ns`` is stamped when a frame is read, so ``now - ts_ns`` hides a backlog waiting in
the socket. The dispatcher compares delivery time with the exchange's own timestamp instead:
per symbol it keeps the minimum of ``ts_ns - exchange_ts_ns`` over ``lag_window`` seconds as
the clock offset (exchange clocks, and replayed tapes, differ from ours by an unknown amount)
and reports ``lag = (now - exchange_ts_ns) - offset`` for the last delivered update. Queued
and conflated deliveries are measured when they are delivered. Inline deliveries happen right
after their frame was read, at ``ts_ns``: to keep the hot path free, ``dispatch`` only keeps a
reference to the frame's events and :meth:`Dispatcher.sample_lag` measures the last one every
``LAG_SAMPLE_INTERVAL`` seconds (a timer armed by ``start()``); a loop blocked by a slow
callback runs the timer late, but the frame it then finds still carries its late ``ts_ns``.
Past ``lag_warning`` seconds one WARNING is logged per symbol, and again only after it fell
below half of that and rose again.
A backlog lasting longer than ``lag_window`` is partly taken for clock offset: lag then
under-reports, but still shows the growth within the window.

Callback errors never stop the feed: the first exception of each callback is logged with its
traceback, later ones are counted (``stats.callback_errors``) and summed up in one WARNING line
at most every ``error_log_interval`` seconds.

Log records carry ``extra={"venue": ..., "symbol": ..., ...}`` beside a readable message.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from lobfeed._native import BookUpdate, Candle, Quote, Session, Trade
from lobfeed.exceptions import ConfigError

log = logging.getLogger("lobfeed.dispatch")

E = TypeVar("E")
Callback = Callable[[E], object] | Callable[[E], Awaitable[object]]
"""A plain function or an ``async def`` taking one event."""

Control = Callable[[Any], object]
"""The Feed's hook for non-data events; a plain function, called inline."""

BOOK = "book"
TRADE = "trade"
CANDLE = "candle"
QUOTE = "quote"

# Kinds of queued items: what may be replaced, what is dropped first when the queue is full.
_Q_BOOK = 0  # replaced in place by a newer update of its symbol
_Q_DATA = 1  # trades, candles, quotes: dropped oldest first when full
_Q_EVENT = 2  # on_event / on_status: dropped only when nothing else is left


@dataclass
class DispatchStats:
    """Counters of one dispatcher; read them at any time."""

    queued: int = 0
    """Items waiting in the async queue now."""
    queued_total: int = 0
    """Items ever put in the async queue (replacements of a queued book not included)."""
    queued_high_water: int = 0
    """The most items the async queue ever held."""
    async_delivered: int = 0
    """Async callbacks awaited to the end (raising ones included)."""
    dropped: int = 0
    """Items dropped because the async queue was full."""
    conflated: int = 0
    """Book updates replaced by a newer one of their symbol before being delivered."""
    flushes: int = 0
    """Conflated books delivered by ``conflate=True`` flushes."""
    discarded: int = 0
    """Items still undelivered when ``stop()`` ended the worker."""
    callback_errors: int = 0
    """Exceptions raised by callbacks (and by the control hook)."""
    lag_warnings: int = 0
    """Times a symbol's lag crossed ``lag_warning``."""
    max_lag_ns: int = 0
    """The largest lag measured, in nanoseconds."""
    history_skipped: int = 0
    """Trades and candles the venue sent as history on subscribe, not delivered (``history``)."""


class _Lag:
    """Per-symbol clock offset estimate and last lag."""

    __slots__ = ("lag", "mins", "offset", "warned")

    def __init__(self) -> None:
        self.mins: list[list[int]] = []  # [bucket, min(ts_ns - exchange_ts_ns)], oldest first
        self.offset = 0
        self.lag = 0
        self.warned = False


class _Errors:
    """What one callback's exceptions have been."""

    __slots__ = ("last_summary", "since_summary", "total")

    def __init__(self) -> None:
        self.total = 0
        self.since_summary = 0
        self.last_summary = 0.0


def is_async_callback(callback: object) -> bool:
    """Whether ``callback`` is an ``async def`` (a function, a partial, or an object whose
    ``__call__`` is one): those go through the queue, everything else is called inline."""
    if inspect.iscoroutinefunction(callback):
        return True
    call = getattr(type(callback), "__call__", None)  # noqa: B004 - the method, not callable()
    return call is not None and inspect.iscoroutinefunction(call)


class Dispatcher:
    """Routes a feed's events to its callbacks; see the module docstring for the rules.

    ``control`` receives every event of ``dispatch`` that is not market data, inline and in
    order, before the events after it in the same frame are delivered. ``clock`` gives the
    delivery time in Unix nanoseconds (``time.time_ns``; tests pass their own).
    """

    ROUTES: ClassVar[Mapping[type, str]] = {
        BookUpdate: BOOK,
        Trade: TRADE,
        Candle: CANDLE,
        Quote: QUOTE,
    }
    """Data event types and the callback each goes to; every other type goes to ``control``."""

    LAG_SAMPLE_INTERVAL: ClassVar[float] = 0.1
    """Seconds between two measures of the lag of inline deliveries."""

    def __init__(
        self,
        venue: str,
        *,
        on_book: Callback[BookUpdate] | None = None,
        on_trade: Callback[Trade] | None = None,
        on_candle: Callback[Candle] | None = None,
        on_quote: Callback[Quote] | None = None,
        on_event: Callback[Any] | None = None,
        on_status: Callback[Any] | None = None,
        control: Control | None = None,
        closed_candles_only: bool = True,
        history: bool = False,
        history_channels: Iterable[str] = (),
        conflate: bool = False,
        async_queue: int = 10_000,
        lag_warning: float = 5.0,
        lag_window: float = 60.0,
        error_log_interval: float = 10.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if async_queue < 1:
            raise ConfigError(f"async_queue must be at least 1, not {async_queue}")
        if lag_warning <= 0 or lag_window <= 0:
            raise ConfigError(
                f"lag_warning and lag_window must be positive, got {lag_warning}, {lag_window}"
            )
        self.venue = venue
        self.closed_candles_only = closed_candles_only
        self.history = history
        # Only the channels where the venue sends history pay for the check.
        self.history_channels = frozenset(history_channels)
        self.conflate = conflate
        self.async_queue = async_queue
        self.lag_warning = lag_warning
        self.error_log_interval = error_log_interval
        self.stats = DispatchStats()
        self._clock = clock
        self._control = control
        self._callbacks: dict[str, Any] = {
            BOOK: on_book,
            TRADE: on_trade,
            CANDLE: on_candle,
            QUOTE: on_quote,
            "event": on_event,
            "status": on_status,
        }
        # Where an exception raised by a handler comes from: id(handler) -> (name, callback).
        self._origins: dict[int, tuple[str, object]] = {}
        self._names: dict[int, str] = {
            id(callback): f"on_{channel}"
            for channel, callback in reversed(self._callbacks.items())
            if callback is not None
        }
        self._errors: dict[int, _Errors] = {}
        # The async queue: items are [kind, callback, event, symbol] lists, so that a queued
        # book can be replaced in place; _queued_books finds a symbol's queued book.
        self._queue: deque[list[Any]] = deque()
        self._queued_books: dict[str, list[Any]] = {}
        self._wakeup: asyncio.Future[None] | None = None
        self._idle: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._needs_worker = False
        # conflate=True with a plain on_book: symbol -> newest undelivered BookUpdate.
        self._dirty: dict[str, Any] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Lag.
        self._lags: dict[str, _Lag] = {}
        self._warn_ns = int(lag_warning * 1e9)
        self._bucket_ns = max(1, int(lag_window * 1e9) // 6)
        self._buckets = 6
        self._last: tuple[object, ...] | None = None
        # Sessions delivering through ``route``: their last event is the lag sample.
        self._routed: weakref.WeakSet[Session] = weakref.WeakSet()
        self._lag_timer: asyncio.TimerHandle | None = None
        self._direct: frozenset[type] = frozenset()
        self._handlers = self._build_handlers()
        self._emit_event = self._emitter("event", on_event)
        self._emit_status = self._emitter("status", on_status)

    # -- hot path -----------------------------------------------------------------------

    def dispatch(self, events: tuple[object, ...]) -> None:
        """Delivers one frame's events (``Session.receive``'s result), in order."""
        handlers = self._handlers
        for ev in events:
            try:
                handler = handlers[type(ev)]
            except KeyError:  # (free when nothing is raised) a type first seen: not data
                handler = self._learn(type(ev))
            if handler is not None:
                try:
                    handler(ev)
                except Exception as exc:
                    self._callback_failed(handler, ev, exc)
        self._last = events

    def route(
        self, session: Session, on_rejected: Callable[[Any], object]
    ) -> Callable[[bytes, int], None]:
        """The hot path for ``session``'s frames: ``session.receive_routed``, which hands each
        event straight to what ``dispatch`` would call (same table, same error handling) with
        no Python in between; a frame that fails goes to ``on_rejected(frame_error)``.
        Returns it, for the transport to call with each frame and its ``ts_ns``."""
        session.set_routes(dict(self._handlers), self._control, self._callback_failed, on_rejected)
        self._routed.add(session)
        return session.receive_routed

    def emit_event(self, event: object) -> None:
        """Delivers a sync event (one the control hook passes on, or the Feed's own) to
        ``on_event``."""
        if self._emit_event is not None:
            self._emit_event(event)

    def emit_status(self, event: object) -> None:
        """Delivers a connection status change to ``on_status``."""
        if self._emit_status is not None:
            self._emit_status(event)

    def lag(self, symbol: str) -> int | None:
        """How far behind the exchange ``symbol``'s last measured delivery was, in ns; ``None``
        before the first one (or for a symbol whose events carry no exchange timestamp)."""
        state = self._lags.get(symbol)
        return None if state is None else state.lag

    # -- life ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts the worker that awaits async callbacks (if any callback is async); events
        queued before are delivered from now on. Starting twice does nothing."""
        self._loop = asyncio.get_running_loop()
        if self._direct and self._lag_timer is None:
            self._lag_timer = self._loop.call_later(self.LAG_SAMPLE_INTERVAL, self._lag_tick)
        if self._needs_worker and (self._worker is None or self._worker.done()):
            self._idle = asyncio.Event()
            self._worker = asyncio.create_task(self._work(), name=f"lobfeed-dispatch-{self.venue}")
            self._worker.add_done_callback(self._worker_done)

    async def stop(self, *, drain: float = 0.0) -> None:
        """Ends the worker, leaving no task behind. With ``drain`` > 0, pending conflated books
        are delivered and the queue is given up to ``drain`` seconds to empty first; what is
        left is discarded (``stats.discarded``)."""
        if drain > 0:
            self._flush()
            if self._worker is not None and not self._worker.done() and self._idle is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wait_drained(), drain)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._lag_timer is not None:
            self._lag_timer.cancel()
            self._lag_timer = None
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        self._wakeup = None
        left = len(self._queue) + len(self._dirty)
        self.stats.discarded += left
        self._queue.clear()
        self._queued_books.clear()
        self._dirty.clear()
        self.stats.queued = 0
        self._loop = None

    async def _wait_drained(self) -> None:
        assert self._idle is not None
        while self._queue or not self._idle.is_set():
            self._idle.clear()
            await self._idle.wait()

    # -- building -----------------------------------------------------------------------

    def _build_handlers(self) -> dict[type, Callable[[Any], object] | None]:
        """Event type to what delivers it; data types nobody asked for map to ``None`` (so that
        they do not fall through to ``control``). Other types are added as they come."""
        handlers: dict[type, Callable[[Any], object] | None] = {}
        direct: set[type] = set()
        for kind, channel in self.ROUTES.items():
            callback = self._callbacks[channel]
            handler: Callable[[Any], object] | None
            if callback is None:
                handler = None
            elif is_async_callback(callback):
                self._needs_worker = True
                handler = self._enqueuer(channel, callback)
            elif channel == BOOK and self.conflate:
                handler = self._mark_dirty
            elif self._keeps(channel) is not None:
                handler = self._filtered(channel, callback)
                direct.add(kind)
            else:
                handler = callback  # the default path: the user's own function, nothing else
                direct.add(kind)
            if handler is not None:
                self._origins[id(handler)] = (f"on_{channel}", callback)
            handlers[kind] = handler
        if self._control is not None:
            self._origins[id(self._control)] = ("control", self._control)
        self._direct = frozenset(direct)
        return handlers

    def _learn(self, kind: type) -> Callable[[Any], object] | None:
        """A type that is not data (a sync event) goes to ``control`` from now on."""
        handler = self._handlers[kind] = self._control
        return handler

    def _keeps(self, channel: str) -> Callable[[Any], bool] | None:
        """What a trade or candle must be to be delivered: live unless ``history`` (history
        sent on subscribe is counted and skipped), closed if ``closed_candles_only``."""
        closed_only = channel == CANDLE and self.closed_candles_only
        live_only = channel in self.history_channels and not self.history
        stats = self.stats
        if not (closed_only or live_only):
            return None

        def keep(ev: Any) -> bool:
            if live_only and ev.is_snapshot:
                stats.history_skipped += 1
                return False
            return not closed_only or bool(ev.closed)

        return keep

    def _filtered(self, channel: str, callback: Callable[[Any], object]) -> Callable[[Any], object]:
        keep = self._keeps(channel)
        assert keep is not None

        def filtered(ev: Any) -> object:
            return callback(ev) if keep(ev) else None

        return filtered

    def _enqueuer(self, channel: str, callback: Any) -> Callable[[Any], None]:
        if channel == BOOK:

            def put_book(update: Any) -> None:
                self._put_book(callback, update)

            return put_book
        keep = self._keeps(channel)

        def put(ev: Any) -> None:
            if keep is not None and not keep(ev):
                return
            self._put([_Q_DATA, callback, ev, None])

        return put

    def _emitter(self, channel: str, callback: Any) -> Callable[[Any], None] | None:
        if callback is None:
            return None
        if is_async_callback(callback):
            self._needs_worker = True

            def put(ev: Any) -> None:
                self._put([_Q_EVENT, callback, ev, None])

            self._origins[id(put)] = (f"on_{channel}", callback)
            return put

        def call(ev: Any) -> None:
            try:
                callback(ev)
            except Exception as exc:
                self._callback_failed(call, ev, exc)

        self._origins[id(call)] = (f"on_{channel}", callback)
        return call

    # -- the async queue ----------------------------------------------------------------

    def _put_book(self, callback: Any, update: Any) -> None:
        symbol = update.symbol
        queued = self._queued_books.get(symbol)
        if queued is not None and queued[1] is callback:
            queued[2] = update
            self.stats.conflated += 1
            return
        item = [_Q_BOOK, callback, update, symbol]
        self._queued_books[symbol] = item
        self._put(item)

    def _put(self, item: list[Any]) -> None:
        queue = self._queue
        if len(queue) >= self.async_queue:
            self._drop_one()
        queue.append(item)
        stats = self.stats
        stats.queued_total += 1
        n = stats.queued = len(queue)
        if n > stats.queued_high_water:
            stats.queued_high_water = n
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _drop_one(self) -> None:
        """Makes room: the oldest trade/candle/quote, else the oldest item of any kind. Books
        are at most one per symbol in the queue, so the scan stays short."""
        queue = self._queue
        for index, item in enumerate(queue):
            if item[0] == _Q_DATA:
                del queue[index]
                break
        else:
            item = queue.popleft()
            if item[0] == _Q_BOOK and self._queued_books.get(item[3]) is item:
                del self._queued_books[item[3]]
        self.stats.dropped += 1

    async def _work(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        idle = self._idle
        assert idle is not None
        while True:
            if not queue:
                idle.set()
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
                continue
            idle.clear()
            item = queue.popleft()
            self.stats.queued = len(queue)
            kind, callback, ev, symbol = item
            if kind == _Q_BOOK and self._queued_books.get(symbol) is item:
                del self._queued_books[symbol]
            if kind != _Q_EVENT:
                self._observe(ev, self._clock())
            try:
                await callback(ev)
            except Exception as exc:
                self._report_error(self._names.get(id(callback), "callback"), callback, ev, exc)
            self.stats.async_delivered += 1

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "%s: dispatch worker failed; async callbacks are no longer called",
                self.venue,
                exc_info=task.exception(),
                extra={"venue": self.venue},
            )

    # -- conflation of plain on_book ----------------------------------------------------

    def _mark_dirty(self, update: Any) -> None:
        symbol = update.symbol
        dirty = self._dirty
        if symbol in dirty:
            self.stats.conflated += 1
        dirty[symbol] = update
        if self._flush_handle is None:
            loop = self._loop
            if loop is None:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    self._flush()  # no loop to defer to: deliver now
                    return
            self._flush_handle = loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Delivers each dirty symbol's newest book once."""
        self._flush_handle = None
        if not self._dirty:
            return
        callback = self._callbacks[BOOK]
        dirty = self._dirty
        self._dirty = {}
        for update in dirty.values():
            self._observe(update, self._clock())
            self.stats.flushes += 1
            try:
                callback(update)
            except Exception as exc:
                self._report_error("on_book", callback, update, exc)

    # -- lag ----------------------------------------------------------------------------

    def sample_lag(self) -> None:
        """Measures the lag of the last frame ``dispatch`` delivered inline (to plain
        callbacks), delivered when it was read, at ``ts_ns``. ``start()`` arms a timer calling
        this every ``LAG_SAMPLE_INTERVAL`` seconds; without a running loop, call it yourself."""
        direct = self._direct
        events = self._last
        self._last = None
        for ev in events or ():
            if type(ev) in direct:
                self._observe(ev, ev.ts_ns)  # type: ignore[attr-defined]
        for session in list(self._routed):
            last = session.take_last_event()
            if last is not None and type(last) in direct:
                self._observe(last, last.ts_ns)  # type: ignore[union-attr]

    def _lag_tick(self) -> None:
        self.sample_lag()
        if self._loop is not None:
            self._lag_timer = self._loop.call_later(self.LAG_SAMPLE_INTERVAL, self._lag_tick)

    def _observe(self, ev: Any, now: int) -> None:
        exchange_ts = ev.exchange_ts_ns
        if not exchange_ts:
            return
        symbol = ev.symbol
        state = self._lags.get(symbol)
        if state is None:
            state = self._lags[symbol] = _Lag()
        ts_ns = ev.ts_ns
        delta = ts_ns - exchange_ts
        bucket = ts_ns // self._bucket_ns
        mins = state.mins
        if mins and mins[-1][0] == bucket:
            if delta < mins[-1][1]:
                mins[-1][1] = delta
            if delta < state.offset:
                state.offset = delta
        else:
            mins.append([bucket, delta])
            oldest = bucket - self._buckets
            while mins[0][0] <= oldest:
                del mins[0]
            state.offset = min(m[1] for m in mins)
        lag = now - exchange_ts - state.offset
        if lag < 0:
            lag = 0
        state.lag = lag
        if lag > self.stats.max_lag_ns:
            self.stats.max_lag_ns = lag
        if lag > self._warn_ns:
            if not state.warned:
                state.warned = True
                self.stats.lag_warnings += 1
                log.warning(
                    "%s %s: delivering %.1fs behind the exchange (warning at %gs): callbacks "
                    "are slower than the feed; make them faster, async, or use conflate=True",
                    self.venue,
                    symbol,
                    lag / 1e9,
                    self.lag_warning,
                    extra={"venue": self.venue, "symbol": symbol, "lag_s": lag / 1e9},
                )
        elif state.warned and lag < self._warn_ns // 2:
            state.warned = False
            log.info(
                "%s %s: caught up, %.1fs behind the exchange",
                self.venue,
                symbol,
                lag / 1e9,
                extra={"venue": self.venue, "symbol": symbol, "lag_s": lag / 1e9},
            )

    # -- errors -------------------------------------------------------------------------

    def _callback_failed(self, handler: object, ev: object, exc: Exception) -> None:
        name, callback = self._origins.get(id(handler), ("callback", handler))
        self._report_error(name, callback, ev, exc)

    def _report_error(self, name: str, callback: object, ev: object, exc: Exception) -> None:
        """The first exception of a callback: its traceback; later ones: a count, summed up in
        one line at most every ``error_log_interval`` seconds."""
        self.stats.callback_errors += 1
        key = id(callback)
        errors = self._errors.get(key)
        symbol = getattr(ev, "symbol", None)
        extra = {"venue": self.venue, "symbol": symbol, "callback": name}
        now = time.monotonic()
        if errors is None:
            errors = self._errors[key] = _Errors()
            errors.total = 1
            errors.last_summary = now
            log.error(
                "%s: %s %r raised on %s; the feed goes on (later errors of this callback are "
                "counted, not traced)",
                self.venue,
                name,
                callback,
                type(ev).__name__,
                exc_info=exc,
                extra=extra,
            )
            return
        errors.total += 1
        errors.since_summary += 1
        if now - errors.last_summary >= self.error_log_interval:
            log.warning(
                "%s: %s raised %d more times in %.0fs (%d in all); last: %s: %s",
                self.venue,
                name,
                errors.since_summary,
                now - errors.last_summary,
                errors.total,
                type(exc).__name__,
                exc,
                extra={**extra, "count": errors.since_summary, "total": errors.total},
            )
            errors.since_summary = 0
            errors.last_summary = now
