"""``Feed``: connect to a venue, keep its books in sync, call the user back, and say what is wrong.

The Rust ``Session`` decodes every frame and makes every sync decision. Around it this module
keeps one connection loop, written once against :class:`~lobfeed.aio.link.Link` (websockets or
picows): connect, subscribe, hand each frame to the session, reconnect with backoff. The rest
is delegated: :mod:`~lobfeed.aio.resync` gets books back (snapshots, resubscribes),
:mod:`~lobfeed.aio.dispatch` delivers events to callbacks (bounded, conflated on request), and
:mod:`~lobfeed.aio.health` keeps each symbol's state for ``health()`` and ``on_status``.

Which failures end ``run()`` and which are retried:

- retried, with capped jittered backoff that starts again only after a healthy period: every
  close code, a close during a send, refused connections, DNS failures, timeouts, handshake
  429/5xx, unusable snapshot bodies, rate limits;
- raised: a handshake refused with 400/401/403/404/414 (``HandshakeRejectedError``), a snapshot
  answered 400/404 (``SymbolRejectedError``), ``max_attempts`` failed connections in a row
  (``ConnectError``), and with ``reconnect=False`` any connection loss (``ConnectionLostError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

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
    SyncLost,
    Trade,
)
from lobfeed.aio import link as links
from lobfeed.aio.backoff import Backoff
from lobfeed.aio.busy_poll import BusyPoll
from lobfeed.aio.dispatch import Callback, Dispatcher
from lobfeed.aio.health import HealthTracker, SymbolHealth, spellings
from lobfeed.aio.options import ConnectOptions
from lobfeed.aio.rest import fetch_snapshot, open_session
from lobfeed.aio.resync import Resync
from lobfeed.events import CONNECTING, LIVE, SILENT, SYNCING, Connected, Disconnected
from lobfeed.exceptions import (
    BookUnavailableError,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    FrameError,
    HandshakeRejectedError,
    LobfeedError,
    SnapshotError,
    SubscriptionRejectedError,
    SymbolRejectedError,
    VenueErrorMessage,
)
from lobfeed.sinks.base import Sink, feed_callbacks
from lobfeed.tape import Recording, TapeWriter
from lobfeed.venues import BOOK, CANDLES, TRADES, Subscription, VenueSpec, spec_for

log = logging.getLogger("lobfeed.feed")

T = TypeVar("T")

DEFAULT_MAX_FRAME_BYTES = ConnectOptions().max_frame_bytes
# A connection is replaced this long before the venue's lifetime for it runs out.
ROTATION_MARGIN = 600.0


@dataclass
class FeedStats:
    """What happened since the feed started; read it at any time."""

    frames: int = 0
    """Frames received (read from the sessions a few times a second, and when the feed ends)."""
    frame_errors: int = 0
    connections: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    snapshots: int = 0
    snapshot_failures: int = 0
    snapshot_retries: int = 0
    stale_snapshots: int = 0
    rate_limited: int = 0
    budget_waits: int = 0
    """Snapshot requests that waited for the venue's request-weight budget."""
    resubscribes: int = 0
    resync_timeouts: int = 0
    replaced_connections: int = 0
    rotations: int = 0
    """Connections replaced make-before-break before the venue's lifetime ran out."""
    closing_notices: int = 0
    """Notices from the venue that it would close a connection soon (each starts a rotation)."""
    idle_timeouts: int = 0
    gaps: int = 0
    resyncs: int = 0
    sync_lost: int = 0
    checksum_mismatches: int = 0
    unsubscribed_frames: int = 0
    """Frames about symbols this feed did not subscribe to: dropped, never given a book."""
    callback_errors: int = 0
    """Exceptions raised by callbacks (each logged; the feed goes on)."""
    replies: int = 0
    """Answers sent because the venue asked for them (its application-level pings)."""


# Events that carry data for the user (the rest are sync signals for the feed itself).
DATA_EVENTS = frozenset({BookUpdate, Trade, Candle, Quote})


def _numeric(trade_id: str) -> int | None:
    """A trade id as a number, for venues whose ids increase (``None`` otherwise)."""
    return int(trade_id) if trade_id.isdigit() else None


class Connection:
    """One websocket connection's life: its link, its session, the tasks that die with it."""

    def __init__(
        self, feed: Feed, slot: Slot, number: int, link: links.Link, session: Session
    ) -> None:
        self.feed = feed
        self.slot = slot
        self.name = f"c{number}"
        self.link = link
        self.session = session
        session.set_replier(self.reply)
        #: Seconds between our pings on this connection (a token answer may set it).
        self.heartbeat_interval = feed.spec.heartbeat_interval
        self.opened = time.monotonic()
        #: Why we are closing it ourselves, if we are.
        self.replacing: str | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        # Resync state of this connection's session (see ``Resync``): the snapshot request
        # and the resubscribe watch under way per symbol.
        self.snapshots: dict[str, asyncio.Task[None]] = {}
        self.watches: dict[str, asyncio.Task[None]] = {}
        #: How the events of this connection's frames and snapshots reach the user: the
        #: dispatcher, unless a rotation is under way (see ``Slot.rotate``).
        self.deliver: Callable[[tuple[Any, ...]], None] = feed.dispatcher.dispatch
        #: The connection that replaced this one (make-before-break), once it has.
        self.rotated_to: Connection | None = None
        self.run_task: asyncio.Task[links.CloseInfo] | None = None
        # While a rotation is under way: the newest book id and trade id delivered per
        # symbol by the old connection, which the new one must not deliver again.
        self.seen_seq: dict[str, int] = {}
        self.seen_trade: dict[str, int] = {}
        #: The venue's closing notices already acted on.
        self.notices_seen = 0

    def plain_handler(self) -> links.OnFrame:
        """The hot path: frames straight to the session and the dispatcher."""
        feed = self.feed
        receive = feed.frame_handler(self.session)
        tape = feed._tape
        if tape is None:
            return receive

        link = self.link
        link.keep_kinds = True

        def recorded(raw: bytes, ts_ns: int) -> None:
            tape.recv_frame(self.name, raw, ts_ns, binary=link.binary)
            receive(raw, ts_ns)

        return recorded

    def filtered_handler(self) -> links.OnFrame:
        """Frames to the session, their events to ``deliver`` (a rotation's filters)."""
        feed, session = self.feed, self.session

        link = self.link
        if feed._tape is not None:
            link.keep_kinds = True

        def handle(raw: bytes, ts_ns: int) -> None:
            if feed._tape is not None:
                feed._tape.recv_frame(self.name, raw, ts_ns, binary=link.binary)
            events = feed._receive(session, raw, ts_ns)
            if events:
                self.deliver(events)

        return handle

    # -- delivery modes during a rotation ------------------------------------------------

    def warming(self, events: tuple[Any, ...]) -> None:
        """A new connection syncing beside the old one: nothing reaches the user yet; its
        snapshot requests and resubscribes are made for it."""
        for ev in events:
            if type(ev) not in DATA_EVENTS:
                self.feed._control_on(self, ev, quiet=True)

    def tracking(self, events: tuple[Any, ...]) -> None:
        """The old connection while its successor warms: delivered, and remembered."""
        for ev in events:
            kind = type(ev)
            if kind is BookUpdate and ev.seq is not None:
                self.seen_seq[ev.symbol] = ev.seq
            elif kind is Trade:
                trade_id = _numeric(ev.trade_id)
                if trade_id is not None:
                    self.seen_trade[ev.symbol] = trade_id
        self.feed.dispatcher.dispatch(events)

    def deduplicating(self, events: tuple[Any, ...]) -> None:
        """The new connection just after the switch: what the old one already delivered is
        left out, so the callbacks see no update twice; once every symbol has moved past the
        old connection, the hot path takes over."""
        kept: list[Any] = []
        for ev in events:
            kind = type(ev)
            if kind is BookUpdate:
                floor = self.seen_seq.get(ev.symbol)
                if floor is not None and ev.seq is not None:
                    if ev.seq <= floor:
                        continue
                    del self.seen_seq[ev.symbol]
            elif kind is Trade:
                floor = self.seen_trade.get(ev.symbol)
                trade_id = _numeric(ev.trade_id)
                if floor is not None and trade_id is not None:
                    if trade_id <= floor:
                        continue
                    del self.seen_trade[ev.symbol]
            kept.append(ev)
        if kept:
            self.feed.dispatcher.dispatch(tuple(kept))
        if not self.seen_seq and not self.seen_trade:
            self.deliver = self.feed.dispatcher.dispatch
            self.link.set_handler(self.plain_handler())

    @staticmethod
    def muted(events: tuple[Any, ...]) -> None:
        """The old connection after the switch: it is being closed; nothing more from it."""

    @staticmethod
    def muted_frames(raw: bytes, ts_ns: int) -> None:
        """Frames of a connection that was replaced: not even decoded."""

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "%s %s: background task failed",
                self.feed.venue,
                self.name,
                exc_info=task.exception(),
            )

    def reply(self, text: str) -> None:
        """The venue asked this connection for an answer (a ping): sent as soon as the loop
        runs; a connection that is gone by then ends the send quietly, it is being replaced."""
        self.feed.stats.replies += 1

        async def answer() -> None:
            with contextlib.suppress(ConnectionError):
                await self.send(text)

        self.spawn(answer())

    async def send(self, message: str) -> None:
        tape = self.feed._tape
        if tape is not None:
            tape.send(self.name, message)
        await self.link.send(message)

    def replace(self, reason: str) -> None:
        """Closes this connection so that the feed opens a new one (books are rebuilt)."""
        if self.replacing is not None:
            return
        self.replacing = reason
        self.feed.stats.replaced_connections += 1
        log.warning(
            "%s %s: replacing the connection: %s",
            self.feed.venue,
            self.name,
            reason,
            extra={"venue": self.feed.venue, "connection": self.name},
        )
        self.spawn(self.link.close(1000, "resync"))

    async def end(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _frame_counts(session: Session) -> dict[str, int]:
    stats = session.stats()
    return {"frames": stats["frames"], "unsubscribed": stats["unsubscribed"]}


def _all_live(session: Session, symbols: Iterable[str]) -> bool:
    """Whether ``session`` holds a live book of every one of ``symbols`` (any case)."""
    known = spellings(session)
    for symbol in symbols:
        name = known.get(symbol.lower())
        if name is None or session.state(name) != "live":
            return False
    return True


class Slot:
    """A group of symbols that share one connection at a time, with its reconnect loop.

    The venue's limits (streams per connection, URL length, arguments per message) decide
    the groups (``VenueSpec.split``); each group reconnects on its own, with its own backoff,
    so a fault on one connection touches only its symbols.
    """

    def __init__(self, feed: Feed, index: int, subscription: Subscription) -> None:
        self.feed = feed
        self.index = index
        self.subscription = subscription
        self.symbols = subscription.symbols
        self.conn: Connection | None = None
        self.last_session: Session | None = None
        #: Since when every symbol of the current connection is live (None: not all are).
        self.live_since: float | None = None
        self.healthy = False
        #: A make-before-break replacement is under way.
        self.rotating = False

    @property
    def session(self) -> Session | None:
        return self.conn.session if self.conn is not None else self.last_session

    def check_healthy(self) -> None:
        """A connection is healthy once all its books stayed live for ``healthy_after``."""
        if self.conn is None:
            return
        if self.feed.tracker.all_in(LIVE, self.symbols):
            now = time.monotonic()
            if self.live_since is None:
                self.live_since = now
            elif now - self.live_since >= self.feed.options.healthy_after:
                self.healthy = True
        else:
            self.live_since = None

    async def run(self) -> None:
        """Connects, serves and reconnects until the feed stops; raises what must end it."""
        feed = self.feed
        backoff = feed.options.backoff
        delays: Iterator[float] = backoff.delays()
        failures = 0
        while not feed._stopping.is_set():
            self.healthy, self.live_since = False, None
            done = await self._life()
            if done or feed._stopping.is_set() or feed._fatal is not None:
                return
            if self.healthy:
                delays, failures = backoff.delays(), 0
            else:
                failures += 1
                limit = feed.options.max_attempts
                if limit is not None and failures >= limit:
                    raise ConnectError(
                        f"{feed.venue}: {failures} connection attempts in a row never "
                        f"became healthy (max_attempts {limit})",
                        url=feed.ws_url,
                    )
            feed.stats.reconnects += 1
            delay = next(delays)
            log.info(
                "%s: reconnecting in %.2fs (attempt %d)",
                feed.venue,
                delay,
                failures + 1,
                extra={"venue": feed.venue, "slot": self.index},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed._stopping.wait(), delay)

    async def _life(self) -> bool:
        """One connection, from opening to its end; returns True when this group is done
        (a clean end with ``reconnect=False``). Raises a permanent handshake refusal, or any
        loss when ``reconnect=False``."""
        feed = self.feed
        url = feed.spec.connect_url(feed.ws_url, self.subscription)
        number = feed._next_number()
        name = f"c{number}"
        feed.tracker.connecting(self.symbols, f"connecting {name} to {links.short_url(url, 80)}")
        try:
            url, beat = await feed._endpoint(url)
            link = await links.connect(url, feed.options)
        except ConnectError as e:
            feed.stats.connect_failures += 1
            final = isinstance(e, HandshakeRejectedError) or not feed.reconnect
            self._disconnected(name, e.status, str(e), final=final)
            if final:
                raise
            log.warning("%s: %s", feed.venue, e, extra={"venue": feed.venue})
            return False
        session = feed._new_session(self.symbols)
        conn = Connection(feed, self, number, link, session)
        conn.heartbeat_interval = beat
        self.conn = conn
        self._opened(conn, url)
        feed.tracker.connected(session, conn.name, self.symbols)
        rotate_after = feed.rotate_after
        if rotate_after is not None:
            conn.spawn(self._rotate_when_due(conn, rotate_after))
        try:
            conn.run_task = asyncio.ensure_future(link.run(conn.plain_handler()))
            await self._subscribe(conn)
            while True:
                info = await asyncio.shield(conn.run_task)
                successor = conn.rotated_to
                if successor is None:
                    break
                # Replaced make-before-break: the successor already serves the symbols.
                await self._retire(conn, info)
                conn = successor
                session = conn.session
            code, reason = info.code, info.reason
            if conn.replacing is not None:
                reason = conn.replacing
            elif info.by_us and not feed._stopping.is_set():
                reason = f"dropped by us: {reason or 'no frame'}"
        finally:
            if conn.run_task is not None and not conn.run_task.done():
                conn.link.abort()
                await asyncio.gather(conn.run_task, return_exceptions=True)
            self.check_healthy()
            await conn.end()
            feed._retire_session(session)
            self.conn = None
            self.last_session = session
            feed._sync_stats()
        stopping = feed._stopping.is_set() or feed._fatal is not None
        final = stopping or not feed.reconnect
        self._disconnected(conn.name, code, reason, final=final)
        if stopping:
            return True
        if not feed.reconnect:
            if info.clean and not info.by_us:
                return True
            raise ConnectionLostError(
                f"{feed.venue}: connection {conn.name} to {links.short_url(url)} lost "
                f"(code {code}: {reason or 'no reason given'})"
            )
        log.warning(
            "%s: %s closed (code %s: %s)",
            feed.venue,
            conn.name,
            code,
            reason or "no reason given",
            extra={"venue": feed.venue, "connection": conn.name, "code": code},
        )
        return False

    def _opened(self, conn: Connection, url: str) -> None:
        feed = self.feed
        feed.stats.connections += 1
        if feed._tape is not None:
            feed._tape.open(conn.name, url)
        log.info("%s: %s connected to %s", feed.venue, conn.name, links.short_url(url))
        feed.dispatcher.emit_status(Connected(feed.venue, conn.name, url, time.time_ns()))
        conn.spawn(feed._watch_idle(conn))
        feed._start_heartbeat(conn)

    async def _subscribe(self, conn: Connection) -> None:
        try:
            for message in self.feed.spec.subscribe_messages(self.subscription):
                await conn.send(message)
        except ConnectionError:
            pass  # closed while subscribing: the link's run() reports how

    # -- rotation ---------------------------------------------------------------------

    def check_notices(self) -> None:
        """A venue's notice that it will soon close the connection (OKX's service upgrade)
        starts a rotation at once, instead of a drop when it closes."""
        conn = self.conn
        if conn is None or self.rotating:
            return
        notices = conn.session.stats().get("closing_notices", 0)
        if notices > conn.notices_seen:
            conn.notices_seen = notices
            self.feed.stats.closing_notices += 1
            conn.spawn(self.rotate(conn, "the venue said it will close the connection"))

    async def _rotate_when_due(self, conn: Connection, after: float) -> None:
        """Replaces ``conn`` before the venue's connection lifetime runs out; retried with
        backoff if the new connection cannot be made ready, the old one serving meanwhile."""
        await asyncio.sleep(after)
        delays = self.feed.options.backoff.delays()
        while self.conn is conn and not self.feed._stopping.is_set():
            if await self.rotate(conn, f"connection age {after:g}s (rotate_after)"):
                return
            await asyncio.sleep(next(delays))

    async def rotate(self, old: Connection, why: str) -> bool:
        """Make-before-break: opens a new connection for this group, syncs every book on it
        while ``old`` goes on delivering, then switches and closes ``old``. No update is
        delivered twice (book ids and trade ids the old one delivered are left out) and none
        is missed (the old one delivers until the new one is live). Returns False, leaving
        ``old`` in place, when the new connection could not be made ready."""
        if self.rotating:
            return False
        self.rotating = True
        try:
            return await self._rotate(old, why)
        finally:
            self.rotating = False

    async def _rotate(self, old: Connection, why: str) -> bool:
        feed = self.feed
        url = feed.spec.connect_url(feed.ws_url, self.subscription)
        log.info("%s %s: rotating: %s", feed.venue, old.name, why)
        try:
            url, beat = await feed._endpoint(url)
            link = await links.connect(url, feed.options)
        except ConnectError as e:
            log.warning("%s %s: rotation failed to connect: %s", feed.venue, old.name, e)
            return False
        fresh = Connection(feed, self, feed._next_number(), link, feed._new_session(self.symbols))
        fresh.heartbeat_interval = beat
        fresh.deliver = fresh.warming
        old.deliver = old.tracking
        old.link.set_handler(old.filtered_handler())
        self._opened(fresh, url)
        fresh.run_task = asyncio.ensure_future(link.run(fresh.filtered_handler()))
        await self._subscribe(fresh)
        deadline = time.monotonic() + feed.options.open_timeout + feed.options.snapshot_timeout
        while not _all_live(fresh.session, self.symbols):
            if fresh.run_task.done() or time.monotonic() > deadline or self.conn is not old:
                log.warning(
                    "%s %s: rotation abandoned: %s did not get every book in time",
                    feed.venue,
                    old.name,
                    fresh.name,
                )
                old.deliver = feed.dispatcher.dispatch
                old.link.set_handler(old.plain_handler())
                fresh.deliver = fresh.muted
                await fresh.link.close(1000, "rotation abandoned")
                await fresh.end()
                return False
            await asyncio.sleep(0.02)
        # The switch, between two frames: from here the new connection delivers, without
        # what the old one already did.
        fresh.seen_seq, fresh.seen_trade = dict(old.seen_seq), dict(old.seen_trade)
        fresh.deliver = fresh.deduplicating
        old.deliver = old.muted
        old.link.set_handler(old.muted_frames)
        old.rotated_to = fresh
        self.conn = fresh
        feed.tracker.moved(fresh.session, fresh.name, self.symbols)
        feed.stats.rotations += 1
        old.spawn(old.link.close(1000, "rotated"))
        if feed.rotate_after is not None:
            fresh.spawn(self._rotate_when_due(fresh, feed.rotate_after))
        return True

    async def _retire(self, old: Connection, info: links.CloseInfo) -> None:
        """The connection a rotation replaced has closed."""
        feed = self.feed
        await old.end()
        feed._retire_session(old.session)
        reason = f"rotated to {old.rotated_to.name if old.rotated_to else '?'}"
        feed.dispatcher.emit_status(
            Disconnected(feed.venue, old.name, info.code, reason, time.time_ns())
        )
        log.info("%s: %s closed (%s)", feed.venue, old.name, reason)

    def _disconnected(self, name: str, code: int | None, reason: str, *, final: bool) -> None:
        feed = self.feed
        feed.tracker.disconnected(
            self.symbols, f"{name} closed (code {code}): {reason}", final=final
        )
        feed.dispatcher.emit_status(Disconnected(feed.venue, name, code, reason, time.time_ns()))


class Feed:
    """Books, trades, candles and quotes of one venue, delivered to callbacks.

    ``venue`` is a name of ``lobfeed.venues.SPECS`` (``binance``, ``bybit-spot``, ``okx``,
    ``kraken``, ``coinbase``, ...); ``symbols`` are spelled the way that venue spells them.
    A channel the venue does not offer is refused with ``ValueError``.

    ``on_book`` gets a ``BookUpdate`` (``.symbol``, ``.seq``, ``.exchange_ts_ns``, ``.ts_ns``
    when the frame arrived, and ``.book``, a lazy view of the Rust book). ``on_candle`` gets
    only closed candles unless ``closed_candles_only=False``. History a venue sends on
    subscribe (Bitfinex and Gemini trades, Coinbase candles; ``is_snapshot`` set) is skipped
    unless ``history=True``. ``on_event`` gets the sync
    events: ``SyncLost`` (why a book was dropped), ``GapDetected``, ``Resynced``,
    ``ChecksumMismatch``, ``NeedSnapshot``, ``NeedResubscribe``. ``on_status`` gets
    ``StatusChanged`` on every change of a symbol's health and ``Connected``/``Disconnected``
    per connection. Callbacks may be ``async``; they then run in order through one bounded
    queue. ``conflate=True`` delivers only the newest book of a symbol when the callback falls
    behind.

    ``ws_url``/``rest_url`` point the feed at another server (the local exchange server in
    tests). ``record`` (a path, or a :class:`~lobfeed.tape.Recording` for rotation and
    flushing choices) writes every frame sent and received, every snapshot and every connection
    opened to a lobfeed-tape/1 file, which a crash cuts only at its last second; a path that
    cannot be written raises ``ConfigError`` here. ``resync`` picks how a book
    that lost sync is rebuilt where the venue offers a choice (``"snapshot"``, ``"resubscribe"``;
    ``None``: the venue's way). ``options`` (a :class:`ConnectOptions`) holds every timeout,
    limit and the backoff; the keyword arguments ``backoff``, ``idle_timeout``,
    ``max_frame_bytes``, ``snapshot_timeout``, ``stale_after``, ``transport`` and ``proxy``
    override its fields of the same name (``None``: keep the field's value).
    ``busy_poll=True`` keeps the event loop polling its sockets instead of sleeping between
    frames while ``run()`` runs: the lowest latency from socket to callback, for one core kept
    busy (see ``lobfeed.aio.busy_poll``).
    ``venue_options`` are the venue's own choices (``{"trade_stream": "aggTrade"}`` on
    Binance); each spec lists what it takes, and anything else is refused.
    """

    def __init__(
        self,
        venue: str,
        symbols: Iterable[str],
        *,
        channels: Iterable[str] = (BOOK, TRADES),
        depth: int | None = None,
        on_book: Callback[Any] | None = None,
        on_trade: Callback[Any] | None = None,
        on_candle: Callback[Any] | None = None,
        on_quote: Callback[Any] | None = None,
        on_event: Callback[Any] | None = None,
        on_status: Callback[Any] | None = None,
        closed_candles_only: bool = True,
        history: bool = False,
        candle_interval: str | None = None,
        ws_url: str | None = None,
        rest_url: str | None = None,
        reconnect: bool = True,
        options: ConnectOptions | None = None,
        backoff: Backoff | None = None,
        idle_timeout: float | None = None,
        max_frame_bytes: int | None = None,
        snapshot_timeout: float | None = None,
        stale_after: float | None = None,
        transport: str | None = None,
        proxy: str | None = None,
        conflate: bool = False,
        async_queue: int = 10_000,
        lag_warning: float = 5.0,
        record: str | os.PathLike[str] | Recording | None = None,
        resync: str | None = None,
        venue_options: Mapping[str, str] | None = None,
        sinks: Iterable[Sink] = (),
        busy_poll: bool = False,
    ) -> None:
        if not isinstance(busy_poll, bool):
            raise ConfigError(f"busy_poll must be True or False, got {busy_poll!r}")
        #: Keep the event loop polling while ``run()`` runs (see :mod:`lobfeed.aio.busy_poll`).
        self.busy_poll = busy_poll
        overrides: dict[str, Any] = {
            name: value
            for name, value in (
                ("backoff", backoff),
                ("idle_timeout", idle_timeout),
                ("max_frame_bytes", max_frame_bytes),
                ("snapshot_timeout", snapshot_timeout),
                ("stale_after", stale_after),
                ("transport", transport),
                ("proxy", proxy),
            )
            if value is not None
        }
        self.options = replace(options or ConnectOptions(), **overrides)
        if self.options.transport == "picows":
            import importlib.util

            if importlib.util.find_spec("picows") is None:
                raise ConfigError(
                    "transport='picows' needs the picows package (pip install picows)"
                )
        self.spec: VenueSpec = spec_for(venue)
        self.venue = venue
        if isinstance(symbols, (str, bytes)):
            # tuple("NKNUSDT") would be seven one-letter symbols.
            raise ConfigError(
                f"symbols must be a list of symbols, not the string {symbols!r}: "
                f"write [{symbols!r}]"
            )
        names = tuple(symbols)
        for name in names:
            if not isinstance(name, str):
                raise ConfigError(f"symbol {name!r} is not a venue symbol (a non-empty string)")
        try:
            self.subscription = self._subscription(
                names, channels, depth, candle_interval, venue_options
            )
        except ConfigError as e:
            raise ConfigError(f"{venue}: {e}") from None
        self.spec.check(self.subscription)
        self.ws_url = ws_url or self.spec.ws_url
        self.rest_url = rest_url or self.spec.rest_url
        self.reconnect = reconnect
        self.resync = resync
        # Refuse a resync choice the venue cannot honour now, not at the first connection.
        self._new_session()
        self.stats = FeedStats()
        #: Where the feed's data also goes (Parquet, ZeroMQ, NATS, ...): each gets every
        #: object before the user's callback of its kind, is started by ``run()`` and closed
        #: when it ends.
        self.sinks: list[Sink] = list(sinks)
        callbacks = feed_callbacks(
            self.sinks,
            on_book=on_book,
            on_trade=on_trade,
            on_candle=on_candle,
            on_quote=on_quote,
            on_event=on_event,
            on_status=on_status,
        )
        self.dispatcher = Dispatcher(
            venue,
            on_book=callbacks["on_book"],
            on_trade=callbacks["on_trade"],
            on_candle=callbacks["on_candle"],
            on_quote=callbacks["on_quote"],
            on_event=callbacks["on_event"],
            on_status=callbacks["on_status"],
            closed_candles_only=closed_candles_only,
            history=history,
            history_channels=[
                kind
                for channel, kind in ((TRADES, "trade"), (CANDLES, "candle"))
                if channel in self.spec.history_channels
            ],
            conflate=conflate,
            async_queue=async_queue,
            lag_warning=lag_warning,
            control=self._control,
        )
        stale = self.options.stale_after or self.spec.stale_after
        self.tracker = HealthTracker(
            venue,
            self.subscription.symbols,
            stale_after=stale,
            emit=self.dispatcher.emit_status,
            lag=self.dispatcher.lag,
            has_book=BOOK in self.subscription.channels,
        )
        self.resyncer = Resync(self)
        lifetime = self.spec.connection_lifetime
        #: Seconds after which a connection is replaced make-before-break (None: never).
        self.rotate_after: float | None = self.options.rotate_after
        if self.rotate_after is None and lifetime is not None:
            self.rotate_after = max(lifetime - ROTATION_MARGIN, lifetime / 2)
        # The venue's limits decide how many connections the symbols need.
        self.slots = [
            Slot(self, index, sub) for index, sub in enumerate(self.spec.split(self.subscription))
        ]
        self._slot_of = {
            symbol.lower(): slot for slot in self.slots for symbol in slot.subscription.symbols
        }
        # A tape that cannot be created is refused now, not when run() starts.
        self._record = Recording.of(record) if record is not None else None
        self._tape: TapeWriter | None = None
        #: The files the recording wrote, in order (more than one when it rotates).
        self.tape_paths: list[Path] = []
        self._http: aiohttp.ClientSession | None = None
        self._number = 0
        self._fatal: LobfeedError | None = None
        # Frame counters of the sessions of connections that are gone.
        self._retired: Counter[str] = Counter()
        self._stopping = asyncio.Event()

    # -- public -------------------------------------------------------------------------

    @property
    def session(self) -> Session | None:
        """The session of the first connection (a new one after each reconnect); during an
        outage, the last one, its books marked ``disconnected``. ``session_for(symbol)`` when
        the symbols are split over several connections."""
        return self.slots[0].session

    def session_for(self, symbol: str) -> Session | None:
        """The session holding ``symbol``'s book (its connection's, or the last one's)."""
        slot = self._slot_of.get(symbol.lower())
        return slot.session if slot is not None else None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("the feed is not running")
        return self._http

    def book(self, symbol: str) -> BookView:
        """A view of a symbol's current book. ``view.state`` says whether it is ``live``; a
        book kept from a connection that is down reads ``disconnected``."""
        session = self.session_for(symbol)
        state = self.tracker.state(symbol)
        if session is None:
            known = "not connected" if symbol.lower() in self._slot_of else "not subscribed"
            raise BookUnavailableError(
                f"{self.venue} {symbol}: no book yet ({known})", symbol=symbol, state=state
            )
        name = spellings(session).get(symbol.lower())
        if name is not None:
            return session.book(name)
        raise BookUnavailableError(
            f"{self.venue} {symbol}: no book (state {state or 'not subscribed'})",
            symbol=symbol,
            state=state,
        )

    def health(self) -> dict[str, SymbolHealth]:
        """Each subscribed symbol's state, counters, last update, lag and connection."""
        self._sync_stats()
        return self.tracker.snapshot()

    def stop(self) -> None:
        """Ends ``run()`` after the frame being handled."""
        self._stopping.set()
        for slot in self.slots:
            conn = slot.conn
            if conn is not None:
                conn.spawn(conn.link.close())

    async def run(self) -> None:
        """Connects and dispatches until ``stop()``; reconnects unless ``reconnect=False``.

        Each group of symbols the venue's limits allow on one connection gets its own
        connection, reconnected on its own: a fault on one resyncs only its symbols.
        """
        self._stopping = asyncio.Event()
        self._fatal = None
        polling = BusyPoll() if self.busy_poll else contextlib.nullcontext()
        with self._recording(), polling:
            async with open_session(self.options.proxy, self.rest_url) as http:
                self._http = http
                await self.dispatcher.start()
                sinks = contextlib.AsyncExitStack()
                try:
                    for sink in self.sinks:
                        await sink.start()
                        sinks.push_async_callback(sink.close)
                    await self._check_listed()
                except BaseException:
                    await sinks.aclose()
                    await self.dispatcher.stop()
                    raise
                watcher = asyncio.ensure_future(self._watch_health())
                lives = [asyncio.ensure_future(slot.run()) for slot in self.slots]
                try:
                    done, _ = await asyncio.wait(lives, return_when=asyncio.FIRST_EXCEPTION)
                    for task in done:
                        if not task.cancelled() and task.exception() is not None:
                            raise task.exception()  # type: ignore[misc]
                    if self._fatal is not None:
                        raise self._fatal
                finally:
                    self._stopping.set()
                    for slot in self.slots:
                        if slot.conn is not None:
                            slot.conn.link.abort()
                    await asyncio.gather(*lives, return_exceptions=True)
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
                    self.resyncer.forget(self.subscription.symbols)
                    await self.dispatcher.stop()
                    await sinks.aclose()
                    self._sync_stats()
                    self._http = None

    def _subscription(
        self,
        names: tuple[str, ...],
        channels: Iterable[str],
        depth: int | None,
        candle_interval: str | None,
        venue_options: Mapping[str, str] | None,
    ) -> Subscription:
        return Subscription(
            symbols=tuple(self.spec.normalize_symbol(s) for s in names),
            channels=frozenset(channels),
            depth=depth,
            candle_interval=candle_interval or self._default_interval(),
            options=tuple(sorted((venue_options or {}).items())),
        )

    async def _check_listed(self) -> None:
        """Symbols the venue's instrument list does not have end ``run()`` before anything is
        subscribed (``SymbolRejectedError``), where the venue has such a list. A list that
        cannot be read leaves the check to what streams (``silent``), with a warning."""
        url = self.spec.instruments_url(self.rest_url or "", self.subscription)
        if url is None or self.rest_url is None:
            return
        try:
            body = await fetch_snapshot(
                self.http,
                url,
                "instruments",
                timeout=self.options.snapshot_timeout,
                max_bytes=self.options.max_body_bytes,
            )
        except SnapshotError as e:
            log.warning("%s: the instrument list could not be read (%s)", self.venue, e)
            return
        listed = self.spec.listed_symbols(body)
        if listed is None:
            log.warning(
                "%s: the instrument list from %s did not say which symbols exist", self.venue, url
            )
            return
        missing = [s for s in self.subscription.symbols if s not in listed]
        if not missing:
            return
        for symbol in missing:
            self.tracker.failed(symbol, f"not in the venue's instrument list ({url})")
        raise SymbolRejectedError(
            f"{self.venue} does not list {', '.join(missing)} (its instrument list: {url})",
            symbol=missing[0],
        )

    def _default_interval(self) -> str:
        """1 m candles, or the venue's own interval where it has no 1 m (Coinbase: 5 m)."""
        intervals = self.spec.candle_intervals
        return "1m" if not intervals or "1m" in intervals else intervals[0]

    # -- connection ---------------------------------------------------------------------

    def _new_session(self, symbols: Iterable[str] | None = None) -> Session:
        return Session(
            self.spec.session_venue,
            name=self.spec.name,
            depth=self.subscription.depth,
            max_frame_bytes=self.options.max_frame_bytes,
            resync=self.resync,
            symbols=list(symbols if symbols is not None else self.subscription.symbols),
            max_buffer_bytes=self.options.max_buffer_bytes,
        )

    def _next_number(self) -> int:
        self._number += 1
        return self._number

    async def _watch_idle(self, conn: Connection) -> None:
        """Drops a connection that has sent nothing for ``idle_timeout`` seconds.

        It watches the session's frame counter rather than timing each frame: reading the
        clock per frame would cost more than the check.
        """
        timeout = self.options.idle_timeout
        step = max(timeout / 8, 0.01)
        stats = conn.session.stats
        seen, quiet_since = stats()["frames"], time.monotonic()
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            frames = stats()["frames"]
            if frames != seen:
                seen, quiet_since = frames, now
            elif now - quiet_since >= timeout:
                self.stats.idle_timeouts += 1
                conn.replacing = f"no frame for {now - quiet_since:.1f}s (idle_timeout)"
                log.warning(
                    "%s %s: %s; dropping the connection",
                    self.venue,
                    conn.name,
                    conn.replacing,
                    extra={"venue": self.venue, "connection": conn.name},
                )
                conn.link.abort()
                return

    async def _endpoint(self, url: str) -> tuple[str, float | None]:
        """Where a connection goes and how often it pings: ``url`` and the spec's interval,
        or, for venues that hand out a token per connection (KuCoin), what the token answer
        fetched now says. A token that cannot be had is a ``ConnectError`` (retried like a
        refused connection; a 4xx answer is a ``HandshakeRejectedError``)."""
        token_url = self.spec.token_url(self.rest_url or "")
        if token_url is None or self.rest_url is None:
            return url, self.spec.heartbeat_interval
        try:
            body = await fetch_snapshot(
                self.http,
                token_url,
                "connection token",
                timeout=self.options.open_timeout,
                max_bytes=self.options.max_body_bytes,
                method="POST",
            )
        except SnapshotError as e:
            kind = HandshakeRejectedError if isinstance(e, SymbolRejectedError) else ConnectError
            raise kind(
                f"{self.venue}: no connection token: {e}", url=token_url, status=e.status
            ) from e
        endpoint = self.spec.endpoint(body, self.subscription)
        return endpoint.url, endpoint.heartbeat_interval

    def _start_heartbeat(self, conn: Connection) -> None:
        interval = conn.heartbeat_interval
        message = self.spec.heartbeat_message()
        if interval is None or message is None:
            return

        async def beat() -> None:
            with contextlib.suppress(ConnectionError):
                while True:
                    await asyncio.sleep(interval)
                    await conn.send(message)

        conn.spawn(beat())

    async def _watch_health(self) -> None:
        """Polls health a few times a second: live and stale transitions, healthy connections."""
        period = min(0.25, self.tracker.stale_after_ns / 4e9)
        while True:
            await asyncio.sleep(period)
            self.tracker.poll()
            for slot in self.slots:
                slot.check_healthy()
                slot.check_notices()
            self._sync_stats()

    def _sync_stats(self) -> None:
        """Copies counters kept elsewhere (dispatcher, sessions) into ``stats``: the hot path
        counts nothing itself."""
        self.stats.callback_errors = self.dispatcher.stats.callback_errors
        counts = Counter(self._retired)
        for slot in self.slots:
            if slot.conn is not None:
                counts.update(_frame_counts(slot.conn.session))
        self.stats.frames = counts["frames"]
        self.stats.unsubscribed_frames = counts["unsubscribed"]

    def _retire_session(self, session: Session) -> None:
        self._retired.update(_frame_counts(session))

    # -- frames and events --------------------------------------------------------------

    def frame_handler(self, session: Session) -> links.OnFrame:
        """The hot path for ``session``'s frames: one call into Rust, which decodes, applies
        and calls the user's callbacks itself (see ``Dispatcher.route``)."""
        return self.dispatcher.route(session, self._rejected_routed)

    def _rejected_routed(self, e: FrameError) -> None:
        events = self._rejected(e)
        if events:
            self.dispatcher.dispatch(events)

    def _receive(self, session: Session, raw: bytes, ts_ns: int) -> tuple[Any, ...]:
        """A frame's events, for connections whose events are filtered (rotations)."""
        try:
            return session.receive(raw, ts_ns)
        except FrameError as e:
            return self._rejected(e)

    def _rejected(self, e: FrameError) -> tuple[Any, ...]:
        self.stats.frame_errors += 1
        log.warning(
            "%s: frame rejected: %s",
            self.venue,
            e,
            extra={"venue": self.venue, "symbol": e.symbol},
        )
        if isinstance(e, VenueErrorMessage):
            self._venue_error(e)
        return e.events

    def snapshot_received(self, conn: Connection, symbol: str, url: str, body: bytes) -> None:
        """A REST snapshot body for ``symbol``; a ``FrameError`` if it is not a usable one."""
        if self._tape is not None:
            self._tape.http(url, body.decode("utf-8", "replace"))
        events = conn.session.receive_snapshot(symbol, body, time.time_ns())
        self.stats.snapshots += 1
        conn.deliver(events)

    def _conn_for(self, symbol: str) -> Connection | None:
        slot = self._slot_of.get(symbol.lower())
        return slot.conn if slot is not None else None

    def _control(self, ev: Any) -> None:
        """The session's sync events, as the dispatcher hands them over (never user data)."""
        self._control_on(self._conn_for(ev.symbol), ev)

    def _control_on(self, conn: Connection | None, ev: Any, *, quiet: bool = False) -> None:
        """A sync event of ``conn``'s session. ``quiet``: a connection still warming up beside
        the one in use, whose events get it a book but are not the user's concern yet."""
        kind = type(ev)
        if quiet:
            if conn is not None and kind is NeedSnapshot:
                self.resyncer.need_snapshot(conn, ev.symbol)
            elif conn is not None and kind is NeedResubscribe:
                self.resyncer.need_resubscribe(conn, ev.symbol)
            return
        if kind is NeedSnapshot:
            if conn is not None:
                self.resyncer.need_snapshot(conn, ev.symbol)
        elif kind is NeedResubscribe:
            if conn is not None:
                self.resyncer.need_resubscribe(conn, ev.symbol)
        elif kind is SyncLost:
            self.stats.sync_lost += 1
            if conn is not None:
                conn.slot.live_since = None
            self.tracker.resyncing(ev.symbol, f"{ev.reason}: {ev.detail}")
        elif kind is GapDetected:
            self.stats.gaps += 1
            log.warning(
                "%s %s: sequence gap (expected %d, got %d); resyncing",
                self.venue,
                ev.symbol,
                ev.expected,
                ev.received,
                extra={"venue": self.venue, "symbol": ev.symbol},
            )
        elif kind is ChecksumMismatch:
            self.stats.checksum_mismatches += 1
            log.warning(
                "%s %s: checksum mismatch (venue %d, ours %d); resyncing",
                self.venue,
                ev.symbol,
                ev.expected,
                ev.computed,
                extra={"venue": self.venue, "symbol": ev.symbol},
            )
        elif kind is Resynced:
            self.stats.resyncs += 1
            if conn is not None:
                self.resyncer.synced(conn, ev.symbol)
            log.info("%s %s: resynced at seq %s", self.venue, ev.symbol, ev.seq)
        self.dispatcher.emit_event(ev)

    def _venue_error(self, error: VenueErrorMessage) -> None:
        """A venue error naming a symbol that has not streamed on this connection is its
        answer to our subscription: the symbol does not exist there, and retrying cannot help.
        Errors naming no symbol, or a symbol that was live, are logged and counted only."""
        symbol = error.symbol
        if symbol is None:
            return
        state = self.tracker.state_of(symbol)
        if state in (CONNECTING, SYNCING, SILENT):
            self.symbol_failed(
                symbol,
                SubscriptionRejectedError(
                    f"{self.venue} refused to stream {symbol}: {error}", symbol=symbol
                ),
            )

    def symbol_failed(self, symbol: str, error: LobfeedError) -> None:
        """A symbol cannot be served, and asking again will not change it: the feed ends."""
        self.tracker.failed(symbol, str(error))
        log.error("%s %s: %s; stopping the feed", self.venue, symbol, error)
        if self._fatal is None:
            self._fatal = error
        self._stopping.set()
        for slot in self.slots:
            if slot.conn is not None:
                slot.conn.spawn(slot.conn.link.close(1000, "symbol failed"))

    # -- plumbing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _recording(self) -> Iterator[None]:
        if self._record is None:
            yield
            return
        # The header names the feed (``bybit-spot``), so replay and serve know the market;
        # its spec names the session that decodes it.
        note = f"recorded by lobfeed Feed ({self.venue})"
        with self._record.writer(self.spec.name, note=note) as tape:
            self._tape = tape
            self.tape_paths = tape.paths
            try:
                yield
            finally:
                self._tape = None
