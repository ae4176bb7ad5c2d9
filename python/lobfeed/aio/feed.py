"""``Feed``: connect to a venue, keep its books in sync, call the user back.

The Rust ``Session`` does all decoding and sync decisions; this module only moves bytes:
it opens the websocket, hands every frame to ``Session.receive`` with the time it arrived,
fetches REST snapshots or resubscribes when the session asks, reconnects with backoff, and
dispatches events to callbacks. A callback that raises is logged and the feed goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection, connect

from lobfeed._native import (
    BookUpdate,
    BookView,
    Candle,
    ChecksumMismatch,
    GapDetected,
    NeedResubscribe,
    NeedSnapshot,
    Quote,
    Resynced,
    Session,
    Trade,
)
from lobfeed.aio.backoff import Backoff
from lobfeed.aio.rest import fetch_snapshot
from lobfeed.exceptions import (
    ConnectionLostError,
    FrameError,
    RateLimitedError,
    SnapshotError,
)
from lobfeed.tape import TapeWriter
from lobfeed.venues import BOOK, TRADES, Subscription, VenueSpec, spec_for

log = logging.getLogger("lobfeed.feed")

E = TypeVar("E")
T = TypeVar("T")
Callback = Callable[[E], object] | Callable[[E], Awaitable[object]]

DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024


@dataclass
class FeedStats:
    """What happened since the feed started; read it at any time."""

    frames: int = 0
    frame_errors: int = 0
    connections: int = 0
    reconnects: int = 0
    snapshots: int = 0
    snapshot_failures: int = 0
    rate_limited: int = 0
    resubscribes: int = 0
    idle_timeouts: int = 0
    gaps: int = 0
    resyncs: int = 0
    checksum_mismatches: int = 0
    callback_errors: int = 0


class Feed:
    """Books, trades, candles and quotes of one venue, delivered to callbacks.

    ``venue`` is a name of ``lobfeed.venues.SPECS`` (``binance``, ``bybit-spot``, ``okx``,
    ``kraken``, ``coinbase``, ...); ``symbols`` are spelled the way that venue spells them.
    A channel the venue does not offer is refused with ``ValueError``.

    ``on_book`` gets a ``BookUpdate`` (``.symbol``, ``.seq``, ``.exchange_ts_ns``, ``.ts_ns``
    when the frame arrived, and ``.book``, a lazy view of the Rust book). ``on_candle`` gets
    only closed candles unless ``closed_candles_only=False``. ``on_event`` gets the sync
    events: ``GapDetected``, ``Resynced``, ``ChecksumMismatch``, ``NeedSnapshot``,
    ``NeedResubscribe``. ``ws_url``/``rest_url`` point the feed at another server (the local
    exchange server in tests). ``record`` writes every frame to a lobfeed-tape/1 file.
    ``resync`` picks how a book that lost sync is rebuilt where the venue offers a choice
    (``"snapshot"``: a REST fetch, ``"resubscribe"``: in-band; ``None``: the venue's way); a
    way the venue does not offer raises ``UnsupportedOptionError`` here.
    """

    def __init__(
        self,
        venue: str,
        symbols: Iterable[str],
        *,
        channels: Iterable[str] = (BOOK, TRADES),
        depth: int | None = None,
        on_book: Callback[BookUpdate] | None = None,
        on_trade: Callback[Trade] | None = None,
        on_candle: Callback[Candle] | None = None,
        on_quote: Callback[Quote] | None = None,
        on_event: Callback[Any] | None = None,
        closed_candles_only: bool = True,
        candle_interval: str = "1m",
        ws_url: str | None = None,
        rest_url: str | None = None,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        idle_timeout: float = 60.0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        snapshot_timeout: float = 10.0,
        record: str | None = None,
        resync: str | None = None,
        transport: str = "websockets",
    ) -> None:
        if transport not in ("websockets", "picows"):
            raise ValueError(f"transport is 'websockets' or 'picows', not {transport!r}")
        if transport == "picows":
            import importlib.util

            if importlib.util.find_spec("picows") is None:
                raise ValueError("transport='picows' needs the picows package (pip install picows)")
        self.transport = transport
        self.spec: VenueSpec = spec_for(venue)
        self.venue = venue
        self.subscription = Subscription(
            symbols=tuple(symbols),
            channels=frozenset(channels),
            depth=depth,
            candle_interval=candle_interval,
        )
        self.spec.check(self.subscription)
        self.ws_url = ws_url or self.spec.ws_url
        self.rest_url = rest_url or self.spec.rest_url
        self.reconnect = reconnect
        self.backoff = backoff or Backoff()
        self.idle_timeout = idle_timeout
        self.max_frame_bytes = max_frame_bytes
        self.snapshot_timeout = snapshot_timeout
        self.closed_candles_only = closed_candles_only
        self.stats = FeedStats()
        self._on_book = self._wrap(on_book)
        self._on_trade = self._wrap(on_trade)
        self._on_candle = self._wrap(on_candle)
        self._on_quote = self._wrap(on_quote)
        self._on_event = self._wrap(on_event)
        self._handlers = self._build_handlers()
        self._record_path = record
        self.resync = resync
        # Refuse a resync choice the venue cannot honour now, not at the first connection.
        Session(self.spec.session_venue, resync=resync)
        self._tape: TapeWriter | None = None
        self._session: Session | None = None
        self._ws: Any = None
        self._http: aiohttp.ClientSession | None = None
        self._generation = 0
        # The connection generation already being closed to resync (a venue that cannot
        # resubscribe one book resyncs every book by reconnecting once).
        self._closing_generation = 0
        self._pending_snapshots: dict[str, asyncio.Task[None]] = {}
        self._snapshot_attempts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._last_frame_at = 0.0
        self._idle_aborted = False

    # -- public -------------------------------------------------------------------------

    @property
    def session(self) -> Session | None:
        """The current connection's session (a new one after each reconnect)."""
        return self._session

    def book(self, symbol: str) -> BookView:
        """A view of a symbol's current book."""
        if self._session is None:
            raise KeyError(symbol)
        return self._session.book(symbol)

    def stop(self) -> None:
        """Ends ``run()`` after the frame being handled."""
        self._stopping.set()
        if self._ws is not None:
            self._spawn(self._ws.close())

    async def run(self) -> None:
        """Connects and dispatches until ``stop()``; reconnects unless ``reconnect=False``."""
        self._stopping = asyncio.Event()
        delays: Iterator[float] = self.backoff.delays()
        with self._recording():
            async with aiohttp.ClientSession() as http:
                self._http = http
                try:
                    while not self._stopping.is_set():
                        try:
                            received = await (
                                self._connect_once_picows()
                                if self.transport == "picows"
                                else self._connect_once()
                            )
                        except (
                            OSError,
                            TimeoutError,
                            websockets.InvalidHandshake,
                            websockets.ConnectionClosedError,
                        ) as e:
                            if not self.reconnect:
                                raise ConnectionLostError(f"{self.venue}: {e!r}") from e
                            log.warning("%s: connection lost: %r", self.venue, e)
                        else:
                            if not self.reconnect or self._stopping.is_set():
                                return
                            log.info("%s: connection closed by the server", self.venue)
                            if received:
                                delays = self.backoff.delays()
                        self.stats.reconnects += 1
                        delay = next(delays)
                        log.info("%s: reconnecting in %.2fs", self.venue, delay)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stopping.wait(), delay)
                finally:
                    await self._cancel_tasks()
                    self._http = None

    # -- connection ---------------------------------------------------------------------

    async def _connect_once(self) -> bool:
        """One connection's life; returns whether any frame arrived."""
        url = self.spec.connect_url(self.ws_url, self.subscription)
        session = self._new_session()
        # A short close_timeout: when we leave, a server still streaming at us may not read
        # our close frame for a while, and waiting for its answer gains nothing.
        async with connect(
            url,
            max_size=self.max_frame_bytes,
            open_timeout=10,
            close_timeout=1,
            compression=None,
        ) as ws:
            self._start_connection(session, ws, url)
            conn = f"c{self._generation}"
            for message in self.spec.subscribe_messages(self.subscription):
                await self._send(ws, conn, message)
            heartbeat = self._start_heartbeat(ws, conn)
            # A watchdog task rather than a timeout around each recv: arming and cancelling a
            # timer per frame would cost more than handling the frame.
            self._last_frame_at = time.monotonic()
            watchdog = self._spawn(self._watch_idle(ws))
            received = False
            try:
                while True:
                    try:
                        raw = await ws.recv(decode=False)
                    except websockets.ConnectionClosedOK:
                        return received
                    except websockets.ConnectionClosedError:
                        if self._idle_aborted:
                            raise TimeoutError(f"no frame for {self.idle_timeout:g}s") from None
                        raise
                    ts_ns = time.time_ns()
                    self._last_frame_at = time.monotonic()
                    received = True
                    if self._tape is not None:
                        self._tape.recv(conn, raw.decode("utf-8", "replace"), ts_ns)
                    self._on_frame(session, raw, ts_ns)
                    if self._stopping.is_set():
                        return received
            finally:
                watchdog.cancel()
                if heartbeat is not None:
                    heartbeat.cancel()
                self._ws = None

    def _new_session(self) -> Session:
        return Session(
            self.spec.session_venue,
            depth=self.subscription.depth,
            max_frame_bytes=self.max_frame_bytes,
            resync=self.resync,
        )

    def _start_connection(self, session: Session, link: Any, url: str) -> None:
        """A new connection: a fresh session (books are rebuilt), counters, the tape."""
        self._generation += 1
        self._session = session
        self._ws = link
        self._pending_snapshots.clear()
        self._snapshot_attempts.clear()
        self._idle_aborted = False
        self.stats.connections += 1
        if self._tape is not None:
            self._tape.open(f"c{self._generation}", url)
        log.info("%s: connected to %s", self.venue, url)

    async def _connect_once_picows(self) -> bool:
        """One connection's life on the picows client; frames arrive by callback."""
        from lobfeed.aio import picows_link

        url = self.spec.connect_url(self.ws_url, self.subscription)
        session = self._new_session()
        conn = f"c{self._generation + 1}"
        received = False
        # Frames that arrive before the connection is set up wait here, so that the snapshot
        # requests they cause belong to this connection.
        early: list[tuple[bytes, int]] | None = []

        def on_frame(raw: bytes) -> None:
            nonlocal received
            ts_ns = time.time_ns()
            self._last_frame_at = time.monotonic()
            received = True
            if early is not None:
                early.append((raw, ts_ns))
                return
            handle(raw, ts_ns)

        def handle(raw: bytes, ts_ns: int) -> None:
            if self._tape is not None:
                self._tape.recv(conn, raw.decode("utf-8", "replace"), ts_ns)
            self._on_frame(session, raw, ts_ns)
            if self._stopping.is_set() and self._ws is not None:
                self._ws.abort()

        try:
            link = await picows_link.connect(url, on_frame, max_frame_bytes=self.max_frame_bytes)
        except Exception as e:
            raise ConnectionError(f"{self.venue}: cannot connect to {url}: {e!r}") from e
        self._start_connection(session, link, url)
        pending = early or []
        early = None
        for raw, ts_ns in pending:
            handle(raw, ts_ns)
        for message in self.spec.subscribe_messages(self.subscription):
            await self._send(link, conn, message)
        heartbeat = self._start_heartbeat(link, conn)
        self._last_frame_at = time.monotonic()
        watchdog = self._spawn(self._watch_idle(link))
        try:
            clean = await link.closed
        finally:
            watchdog.cancel()
            if heartbeat is not None:
                heartbeat.cancel()
            self._ws = None
        if self._idle_aborted:
            raise TimeoutError(f"no frame for {self.idle_timeout:g}s")
        if not clean and not self._stopping.is_set():
            raise ConnectionError(f"{self.venue}: connection lost")
        return received

    async def _watch_idle(self, ws: Any) -> None:
        """Drops a connection that has sent nothing for ``idle_timeout`` seconds."""
        self._idle_aborted = False
        while True:
            idle = time.monotonic() - self._last_frame_at
            if idle >= self.idle_timeout:
                self.stats.idle_timeouts += 1
                log.warning("%s: no frame for %.1fs, dropping the connection", self.venue, idle)
                self._idle_aborted = True
                if isinstance(ws, ClientConnection):
                    ws.transport.abort()
                else:
                    ws.abort()
                return
            await asyncio.sleep(self.idle_timeout - idle)

    async def _send(self, ws: Any, conn: str, message: str) -> None:
        if self._tape is not None:
            self._tape.send(conn, message)
        await ws.send(message)

    def _start_heartbeat(self, ws: Any, conn: str) -> asyncio.Task[None] | None:
        interval = self.spec.heartbeat_interval
        message = self.spec.heartbeat_message()
        if interval is None or message is None:
            return None

        async def beat() -> None:
            while True:
                await asyncio.sleep(interval)
                await self._send(ws, conn, message)

        return self._spawn(beat())

    # -- frames and events --------------------------------------------------------------

    def _on_frame(self, session: Session, raw: bytes, ts_ns: int) -> None:
        self.stats.frames += 1
        try:
            events = session.receive(raw, ts_ns)
        except FrameError as e:
            self.stats.frame_errors += 1
            log.warning("%s: frame rejected: %s", self.venue, e)
            events = e.events
        if events:
            self._dispatch(events)

    def _dispatch(self, events: tuple[Any, ...]) -> None:
        # The hot path: one dict lookup and one call per event, no wrapper frames.
        handlers = self._handlers
        for ev in events:
            handler = handlers.get(type(ev))
            if handler is not None:
                try:
                    handler(ev)
                except Exception:
                    self._callback_failed(handler)

    def _build_handlers(self) -> dict[type, Callable[[Any], object]]:
        """Event type to what handles it; types nobody asked for are simply absent."""
        handlers: dict[type, Callable[[Any], object]] = {
            kind: self._on_sync_event
            for kind in (NeedSnapshot, NeedResubscribe, GapDetected, ChecksumMismatch, Resynced)
        }
        for kind, callback in (
            (BookUpdate, self._on_book),
            (Trade, self._on_trade),
            (Quote, self._on_quote),
        ):
            if callback is not None:
                handlers[kind] = callback
        if self._on_candle is not None:
            handlers[Candle] = self._candle
        return handlers

    def _candle(self, candle: Candle) -> None:
        if self._on_candle is not None and (candle.closed or not self.closed_candles_only):
            self._on_candle(candle)

    def _on_sync_event(self, ev: Any) -> None:
        if isinstance(ev, NeedSnapshot):
            self._request_snapshot(ev.symbol)
        elif isinstance(ev, NeedResubscribe):
            self._resubscribe(ev.symbol)
        elif isinstance(ev, GapDetected):
            self.stats.gaps += 1
            log.warning(
                "%s %s: sequence gap (expected %d, got %d); resyncing",
                self.venue,
                ev.symbol,
                ev.expected,
                ev.received,
            )
        elif isinstance(ev, ChecksumMismatch):
            self.stats.checksum_mismatches += 1
            log.warning(
                "%s %s: checksum mismatch (venue %d, ours %d); resyncing",
                self.venue,
                ev.symbol,
                ev.expected,
                ev.computed,
            )
        elif isinstance(ev, Resynced):
            self.stats.resyncs += 1
            log.info("%s %s: resynced at seq %s", self.venue, ev.symbol, ev.seq)
        if self._on_event is not None:
            self._call(self._on_event, ev)

    def _call(self, callback: Callable[[Any], object], arg: Any) -> None:
        try:
            callback(arg)
        except Exception:
            self._callback_failed(callback)

    def _callback_failed(self, callback: Callable[[Any], object]) -> None:
        """Called from an `except` block: logs the exception being handled."""
        self.stats.callback_errors += 1
        log.exception("%s: callback %r raised; the feed goes on", self.venue, callback)

    def _wrap(self, callback: Callback[Any] | None) -> Callable[[Any], object] | None:
        if callback is None or not asyncio.iscoroutinefunction(callback):
            return callback
        coroutine_fn = callback

        def schedule(arg: Any) -> None:
            self._spawn(self._guard(coroutine_fn(arg)))

        return schedule

    async def _guard(self, awaitable: Awaitable[object]) -> None:
        try:
            await awaitable
        except Exception:
            self.stats.callback_errors += 1
            log.exception("%s: async callback raised; the feed goes on", self.venue)

    # -- resync -------------------------------------------------------------------------

    def _request_snapshot(self, symbol: str) -> None:
        if symbol in self._pending_snapshots or self._session is None:
            return
        task = self._spawn(self._snapshot(self._session, self._generation, symbol))
        self._pending_snapshots[symbol] = task

    async def _snapshot(self, session: Session, generation: int, symbol: str) -> None:
        url = self.spec.snapshot_url(self.rest_url or "", symbol, self.subscription)
        if url is None or self._http is None:
            log.error("%s %s: the venue has no REST snapshot", self.venue, symbol)
            return
        attempts = self._snapshot_attempts.get(symbol, 0)
        delays = self.backoff.delays()
        if attempts:
            # Asked again right after a snapshot: it was older than the stream. Let it move on.
            await asyncio.sleep(next(delays))
        body: bytes | None = None
        while body is None:
            try:
                body = await fetch_snapshot(self._http, url, symbol, timeout=self.snapshot_timeout)
            except RateLimitedError as e:
                self.stats.rate_limited += 1
                wait = e.retry_after if e.retry_after is not None else next(delays)
                log.warning("%s; retrying in %.1fs", e, wait)
                await asyncio.sleep(wait)
            except SnapshotError as e:
                self.stats.snapshot_failures += 1
                wait = next(delays)
                log.warning("%s; retrying in %.1fs", e, wait)
                await asyncio.sleep(wait)
            if generation != self._generation:
                return
        if self._tape is not None:
            self._tape.http(url, body.decode("utf-8", "replace"))
        self._pending_snapshots.pop(symbol, None)
        self._snapshot_attempts[symbol] = attempts + 1
        self.stats.snapshots += 1
        try:
            events = session.receive_snapshot(symbol, body, time.time_ns())
        except FrameError as e:
            self.stats.frame_errors += 1
            log.warning("%s: snapshot rejected: %s", self.venue, e)
            events = e.events
        if any(isinstance(ev, BookUpdate) for ev in events):
            self._snapshot_attempts.pop(symbol, None)
        self._dispatch(events)

    def _resubscribe(self, symbol: str) -> None:
        ws = self._ws
        if ws is None:
            return
        # Venues that unsubscribe by channel id (Bitfinex) need the id the session holds.
        channel = self._session.channel(symbol) if self._session is not None else None
        messages = self.spec.resubscribe_messages(symbol, self.subscription, channel=channel)
        if not messages:
            if self._closing_generation != self._generation:
                self._closing_generation = self._generation
                log.warning("%s %s: cannot resubscribe, reconnecting", self.venue, symbol)
                self._spawn(ws.close(code=1011, reason="resync"))
            return
        self.stats.resubscribes += 1
        conn = f"c{self._generation}"

        async def send_all() -> None:
            for message in messages:
                await self._send(ws, conn, message)

        self._spawn(send_all())

    # -- plumbing -----------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[T]) -> asyncio.Task[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background task failed", self.venue, exc_info=task.exception())

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending_snapshots.clear()

    @contextlib.contextmanager
    def _recording(self) -> Iterator[None]:
        if self._record_path is None:
            yield
            return
        # The header names the decoding session's venue (``bybit`` for ``bybit-spot``): the
        # connection URLs in the tape keep what differs, and replay needs the session's name.
        note = f"recorded by lobfeed Feed ({self.venue})"
        with TapeWriter(self._record_path, self.spec.session_venue, note=note) as tape:
            self._tape = tape
            try:
                yield
            finally:
                self._tape = None
