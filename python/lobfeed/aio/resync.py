"""Getting a symbol a fresh book: REST snapshots and in-band resubscribes, with their timeouts,
retries and escalation.

The session says *that* a symbol needs a book (``NeedSnapshot``, ``NeedResubscribe``); this
module gets one, never for ever without saying so:

- a snapshot request is retried with capped, jittered backoff when it fails or its body is not
  a usable snapshot (an HTML page, truncated JSON, a venue error, an oversized body); a 429 or
  418 ``Retry-After`` holds back every request of the feed, across reconnects; a snapshot older
  than the stream is asked for again after a backoff delay, with a warning; a 400/404 answer
  ends the feed with ``SymbolRejectedError``;
- a resubscribe that brings no fresh book within ``resync_timeout`` is sent again, and after
  ``resubscribe_attempts`` the connection is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from lobfeed.aio.budget import RequestBudget
from lobfeed.aio.rest import fetch_snapshot
from lobfeed.exceptions import (
    FrameError,
    RateLimitedError,
    SnapshotError,
    SymbolRejectedError,
)

if TYPE_CHECKING:
    from lobfeed.aio.feed import Connection, Feed

log = logging.getLogger("lobfeed.resync")


class Resync:
    """The snapshots and resubscribes of one Feed; lives as long as the Feed."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.options = feed.options
        #: Monotonic time before which no snapshot request goes out (a 429/418 ``Retry-After``).
        self.hold_until = 0.0
        weight = self.options.rest_weight or feed.spec.rest_weight
        self.weight = weight
        #: Every snapshot request of the feed goes through it (None: the venue sets no limit).
        self.budget = (
            RequestBudget(weight.limit * self.options.rest_budget_share, weight.window)
            if weight is not None
            else None
        )
        # When each symbol started waiting for a book: the longest waiting go first.
        self._since: dict[str, float] = {}

    def forget(self, symbols: Iterable[str]) -> None:
        """These symbols are no longer waiting for a book (the feed ended)."""
        gone = {symbol.lower() for symbol in symbols}
        for symbol in [s for s in self._since if s.lower() in gone]:
            del self._since[symbol]

    def synced(self, conn: Connection, symbol: str) -> None:
        """The symbol's book is in sync again: its resubscribe watch is done."""
        watch = conn.watches.pop(symbol, None)
        if watch is not None:
            watch.cancel()
        self._since.pop(symbol, None)

    # -- snapshots ----------------------------------------------------------------------

    def need_snapshot(self, conn: Connection, symbol: str) -> None:
        if symbol in conn.snapshots:
            return
        conn.snapshots[symbol] = conn.spawn(self._snapshot(conn, symbol))

    async def _snapshot(self, conn: Connection, symbol: str) -> None:
        """Asks until the symbol's book is live. The task stays registered for the symbol
        meanwhile, so the ``NeedSnapshot`` a stale or unusable body causes is answered here,
        by the next round, not by a second task."""
        feed = self.feed
        try:
            url = feed.spec.snapshot_url(feed.rest_url or "", symbol, feed.subscription)
            if url is None:
                feed.symbol_failed(
                    symbol, SnapshotError(f"{feed.venue} has no REST snapshot", symbol=symbol)
                )
                return
            delays = self.options.backoff.delays()
            stale = 0
            while True:
                await self._hold()
                await self._budget(symbol)
                try:
                    body = await fetch_snapshot(
                        feed.http,
                        url,
                        symbol,
                        timeout=self.options.snapshot_timeout,
                        max_bytes=self.options.max_body_bytes,
                    )
                    feed.snapshot_received(conn, symbol, url, body)
                except RateLimitedError as e:
                    feed.stats.rate_limited += 1
                    wait = e.retry_after if e.retry_after is not None else next(delays)
                    # Jittered, so that every symbol held back does not come back at once.
                    wait *= 1 + 0.2 * self.options.backoff.rng.random()
                    self.hold_until = max(self.hold_until, time.monotonic() + wait)
                    self._retry(symbol, str(e), wait)
                    continue
                except SymbolRejectedError as e:
                    feed.stats.snapshot_failures += 1
                    feed.symbol_failed(symbol, e)
                    return
                except (SnapshotError, FrameError) as e:
                    feed.stats.snapshot_failures += 1
                    wait = next(delays)
                    why = (
                        str(e) if isinstance(e, SnapshotError) else f"unusable body from {url}: {e}"
                    )
                    self._retry(symbol, why, wait)
                    await asyncio.sleep(wait)
                    continue
                if conn.session.state(symbol) == "live":
                    self._since.pop(symbol, None)
                    return
                # Older than the stream: each such snapshot in a row waits longer for the
                # next, up to the backoff's cap.
                stale += 1
                wait = self.options.backoff.delay(stale)
                feed.stats.stale_snapshots += 1
                log.warning(
                    "%s %s: the snapshot was older than the stream (%d in a row); asking "
                    "again in %.2fs",
                    feed.venue,
                    symbol,
                    stale,
                    wait,
                    extra={"venue": feed.venue, "symbol": symbol},
                )
                await asyncio.sleep(wait)
        finally:
            if conn.snapshots.get(symbol) is asyncio.current_task():
                conn.snapshots.pop(symbol, None)

    async def _budget(self, symbol: str) -> None:
        budget, weight = self.budget, self.weight
        if budget is None or weight is None:
            return
        since = self._since.setdefault(symbol, time.monotonic())
        if budget.would_wait(weight.snapshot_weight):
            self.feed.stats.budget_waits += 1
            self.feed.tracker.note(symbol, "waiting for snapshot budget")
        await budget.acquire(weight.snapshot_weight, since)

    async def _hold(self) -> None:
        wait = self.hold_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _retry(self, symbol: str, why: str, wait: float) -> None:
        feed = self.feed
        feed.stats.snapshot_retries += 1
        log.warning(
            "%s; retrying in %.2fs",
            why,
            wait,
            extra={"venue": feed.venue, "symbol": symbol},
        )
        feed.tracker.resyncing(symbol, f"snapshot retry in {wait:.2f}s: {why}")

    # -- resubscribes -------------------------------------------------------------------

    def need_resubscribe(self, conn: Connection, symbol: str) -> None:
        if symbol in conn.watches:
            return  # the watch already resends and escalates
        if not self._resubscribe(conn, symbol):
            return
        conn.watches[symbol] = conn.spawn(self._watch(conn, symbol))

    def _resubscribe(self, conn: Connection, symbol: str) -> bool:
        feed = self.feed
        channel = conn.session.channel(symbol)
        messages = feed.spec.resubscribe_messages(symbol, feed.subscription, channel=channel)
        if not messages:
            # The venue cannot resubscribe one book: a new connection rebuilds them all.
            conn.replace(f"{symbol} lost sync and {feed.venue} cannot resubscribe one book")
            return False
        feed.stats.resubscribes += 1

        async def send_all() -> None:
            # A connection that closes meanwhile is reported by its own end; the resubscribe
            # is moot then.
            with contextlib.suppress(ConnectionError):
                for message in messages:
                    await conn.send(message)

        conn.spawn(send_all())
        return True

    async def _watch(self, conn: Connection, symbol: str) -> None:
        feed = self.feed
        timeout = self.options.resync_timeout
        for attempt in range(1, self.options.resubscribe_attempts + 1):
            await asyncio.sleep(timeout)
            if conn.session.state(symbol) == "live":
                return
            feed.stats.resync_timeouts += 1
            if attempt < self.options.resubscribe_attempts:
                log.warning(
                    "%s %s: no fresh book %.1fs after resubscribing; resubscribing again",
                    feed.venue,
                    symbol,
                    timeout,
                    extra={"venue": feed.venue, "symbol": symbol},
                )
                feed.tracker.resyncing(symbol, f"resubscribe {attempt} brought no book")
                self._resubscribe(conn, symbol)
        conn.watches.pop(symbol, None)
        conn.replace(
            f"{symbol}: {self.options.resubscribe_attempts} resubscribes brought no fresh book "
            f"within {timeout:g}s each"
        )
