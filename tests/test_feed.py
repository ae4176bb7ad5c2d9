"""`Feed` end to end against the local exchange server replaying real Binance tapes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lobfeed import BookUpdate, Candle, ConnectionLostError, Feed, GapDetected, Quote, Trade
from lobfeed.aio import Backoff
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer, FaultPlan

ETH_TAPE = "binance-ethusdt-20240808.jsonl.gz"
FAST = Backoff(initial=0.01, maximum=0.05)
TIMEOUT = 60


Top = tuple[tuple[str, str] | None, tuple[str, str] | None]


@dataclass
class Collected:
    tops: dict[tuple[str, int], Top] = field(default_factory=dict)
    quotes: dict[tuple[str, int], Top] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    candles: list[Candle] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    updates: int = 0
    crossed: int = 0
    latencies_ns: list[int] = field(default_factory=list)

    def on_book(self, update: BookUpdate) -> None:
        self.updates += 1
        book = update.book
        if book.crossed:
            self.crossed += 1
        assert update.seq is not None
        self.tops[(update.symbol, update.seq)] = (book.best_bid_exact(), book.best_ask_exact())

    def on_quote(self, quote: Quote) -> None:
        assert quote.seq is not None
        self.quotes[(quote.symbol, quote.seq)] = (
            (quote.bid_price, quote.bid_size),
            (quote.ask_price, quote.ask_size),
        )

    def agreement(self) -> tuple[int, int]:
        checked = agreed = 0
        for key, quote in self.quotes.items():
            top = self.tops.get(key)
            if top is not None:
                checked += 1
                agreed += top == quote
        return agreed, checked


def make_feed(server: ExchangeServer, got: Collected, **kwargs: Any) -> Feed:
    options: dict[str, Any] = {
        "channels": ("book", "trades", "quotes"),
        "on_book": got.on_book,
        "on_quote": got.on_quote,
        "on_trade": got.trades.append,
        "on_event": got.events.append,
        "ws_url": server.ws_url,
        "rest_url": server.rest_url,
        "reconnect": False,
        "backoff": FAST,
    }
    options.update(kwargs)
    return Feed("binance", ["ETHUSDT"], **options)


async def test_books_agree_with_the_venue_ticker_over_loopback(
    tape_path: Callable[[str], Path],
) -> None:
    tape = Tape.open(tape_path(ETH_TAPE))
    got = Collected()
    async with ExchangeServer(tape, speed=float("inf")) as server:
        feed = make_feed(server, got)
        await asyncio.wait_for(feed.run(), TIMEOUT)
    agreed, checked = got.agreement()
    assert checked > 400
    assert agreed == checked
    assert got.crossed == 0
    assert got.updates > 2000
    assert len(got.trades) == 6106
    assert all(t.symbol == "ETHUSDT" and t.side in ("buy", "sell") for t in got.trades)
    assert feed.stats.snapshots == 1
    assert feed.stats.frame_errors == 0
    assert feed.stats.gaps == 0


async def test_rate_limited_snapshot_is_retried_after_retry_after(
    tape_path: Callable[[str], Path],
) -> None:
    got = Collected()
    faults = FaultPlan(rest_429_first_n=2)
    async with ExchangeServer(tape_path(ETH_TAPE), speed=40, faults=faults) as server:

        def stop_when_synced(update: BookUpdate) -> None:
            got.on_book(update)
            if got.updates >= 50:
                feed.stop()

        feed = make_feed(server, got, on_book=stop_when_synced)
        await asyncio.wait_for(feed.run(), TIMEOUT)
    assert feed.stats.rate_limited == 2
    assert server.stats.rejected_requests == 2
    assert got.updates >= 50
    agreed, checked = got.agreement()
    assert agreed == checked


async def test_dropped_connection_reconnects_and_rebuilds(
    tape_path: Callable[[str], Path],
) -> None:
    got = Collected()
    faults = FaultPlan(drop_after_frames=3000)
    async with ExchangeServer(tape_path(ETH_TAPE), speed=float("inf"), faults=faults) as server:
        per_connection: dict[int, int] = {}

        def on_book(update: BookUpdate) -> None:
            got.on_book(update)
            n = feed.stats.connections
            per_connection[n] = per_connection.get(n, 0) + 1
            if per_connection.get(2, 0) >= 100:
                feed.stop()

        feed = make_feed(server, got, reconnect=True, on_book=on_book)
        await asyncio.wait_for(feed.run(), TIMEOUT)
    assert feed.stats.reconnects == 1
    assert feed.stats.snapshots == 2
    assert per_connection[1] > 0 and per_connection[2] >= 100
    agreed, checked = got.agreement()
    assert checked > 0 and agreed == checked
    assert got.crossed == 0


async def test_without_reconnect_a_dropped_connection_is_an_error(
    tape_path: Callable[[str], Path],
) -> None:
    got = Collected()
    faults = FaultPlan(drop_after_frames=200)
    async with ExchangeServer(tape_path(ETH_TAPE), speed=float("inf"), faults=faults) as server:
        feed = make_feed(server, got)
        with pytest.raises(ConnectionLostError):
            await asyncio.wait_for(feed.run(), TIMEOUT)


async def test_malformed_frame_is_logged_and_the_feed_goes_on(
    tape_path: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    got = Collected()
    faults = FaultPlan(malformed_after=1000)
    async with ExchangeServer(tape_path(ETH_TAPE), speed=float("inf"), faults=faults) as server:
        feed = make_feed(server, got)
        with caplog.at_level(logging.WARNING, logger="lobfeed.feed"):
            await asyncio.wait_for(feed.run(), TIMEOUT)
    assert feed.stats.frame_errors == 1
    assert any("frame rejected" in r.message for r in caplog.records)
    agreed, checked = got.agreement()
    assert checked > 400 and agreed == checked


async def test_oversized_frame_closes_and_the_feed_reconnects(
    tape_path: Callable[[str], Path],
) -> None:
    got = Collected()
    faults = FaultPlan(oversized_frame_bytes=256 * 1024)
    async with ExchangeServer(tape_path(ETH_TAPE), speed=float("inf"), faults=faults) as server:

        def on_book(update: BookUpdate) -> None:
            got.on_book(update)
            if got.updates >= 500:
                feed.stop()

        feed = make_feed(server, got, reconnect=True, max_frame_bytes=128 * 1024, on_book=on_book)
        await asyncio.wait_for(feed.run(), TIMEOUT)
    assert feed.stats.reconnects == 1
    assert feed.stats.connections == 2
    agreed, checked = got.agreement()
    assert checked > 0 and agreed == checked


async def test_gap_drops_the_book_and_refuses_a_stale_snapshot(
    tape_path: Callable[[str], Path],
) -> None:
    """Frames lost mid-stream: the book must stop, not go on wrong.

    The tape has only one REST snapshot, older than the stream after the gap, so the feed
    detects the gap, asks for a snapshot, refuses the stale one, and delivers no book until
    a usable snapshot exists.
    """
    got = Collected()
    faults = FaultPlan(drop_frames=frozenset(range(5000, 5200)))
    async with ExchangeServer(tape_path(ETH_TAPE), speed=float("inf"), faults=faults) as server:
        feed = make_feed(server, got)
        await asyncio.wait_for(feed.run(), TIMEOUT)
    gaps = [e for e in got.events if isinstance(e, GapDetected)]
    assert len(gaps) == 1
    assert feed.stats.gaps == 1
    assert gaps[0].received > gaps[0].expected
    # Every update delivered came before the gap, and agreed with the venue.
    agreed, checked = got.agreement()
    assert checked > 0 and agreed == checked
    assert max(seq for _, seq in got.tops) < gaps[0].received
    assert got.crossed == 0


async def test_a_raising_callback_is_logged_and_does_not_stop_the_feed(
    tape_path: Callable[[str], Path],
) -> None:
    got = Collected()
    calls = 0

    def flaky(update: BookUpdate) -> None:
        nonlocal calls
        calls += 1
        if calls % 10 == 0:
            raise RuntimeError("user bug")
        got.on_book(update)

    async with ExchangeServer(tape_path(ETH_TAPE), speed=float("inf")) as server:
        feed = make_feed(server, got, on_book=flaky)
        await asyncio.wait_for(feed.run(), TIMEOUT)
    # Every frame was handled to the end of the tape despite the raising callback.
    assert feed.stats.frames == server.stats.frames_sent
    assert calls > 1000
    assert feed.stats.callback_errors == calls // 10
    agreed, checked = got.agreement()
    assert checked > 0 and agreed == checked


async def test_closed_candles_by_default(tape_path: Callable[[str], Path]) -> None:
    tape = Tape.open(tape_path("binance-usdm-4sym-2021.jsonl.gz"))
    closed: list[Candle] = []
    every: list[Candle] = []
    symbols = ["SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"]
    async with ExchangeServer(tape, speed=float("inf")) as server:
        feeds = [
            Feed(
                "binance-usdm",
                symbols,
                channels=("candles",),
                on_candle=sink.append,
                closed_candles_only=only_closed,
                ws_url=server.ws_url,
                rest_url=server.rest_url,
                reconnect=False,
            )
            for sink, only_closed in ((closed, True), (every, False))
        ]
        await asyncio.wait_for(asyncio.gather(*(f.run() for f in feeds)), TIMEOUT)
    assert len(every) == 67
    assert len(closed) == 4
    assert all(c.closed for c in closed)
    assert len(closed) == sum(c.closed for c in every)
    assert {c.interval for c in every} == {"1m"}


async def test_a_silent_connection_is_dropped_after_idle_timeout(
    tape_path: Callable[[str], Path],
) -> None:
    got = Collected()
    # At this speed the tape's second frame is hours away: the feed hears nothing.
    async with ExchangeServer(tape_path(ETH_TAPE), speed=1e-4) as server:
        feed = make_feed(server, got, idle_timeout=0.3)
        with pytest.raises(ConnectionLostError, match=r"no frame for 0\.3s"):
            await asyncio.wait_for(feed.run(), TIMEOUT)
    assert feed.stats.idle_timeouts == 1


async def test_idle_timeout_reconnects_when_allowed(tape_path: Callable[[str], Path]) -> None:
    got = Collected()
    async with ExchangeServer(tape_path(ETH_TAPE), speed=1e-4) as server:
        feed = make_feed(server, got, idle_timeout=0.2, reconnect=True)
        run = asyncio.ensure_future(feed.run())
        while feed.stats.connections < 2:
            await asyncio.sleep(0.05)
            assert not run.done(), run
        feed.stop()
        await asyncio.wait_for(run, TIMEOUT)
    assert feed.stats.idle_timeouts >= 1
    assert feed.stats.reconnects >= 1


async def test_picows_transport_gives_the_same_books(tape_path: Callable[[str], Path]) -> None:
    tape = Tape.open(tape_path(ETH_TAPE))
    got = Collected()
    async with ExchangeServer(tape, speed=float("inf")) as server:
        feed = make_feed(server, got, transport="picows")
        await asyncio.wait_for(feed.run(), TIMEOUT)
    agreed, checked = got.agreement()
    assert checked > 400 and agreed == checked
    assert got.crossed == 0
    assert len(got.trades) == 6106
    assert feed.stats.snapshots == 1 and feed.stats.frame_errors == 0


async def test_picows_transport_reconnects_after_a_drop(tape_path: Callable[[str], Path]) -> None:
    got = Collected()
    faults = FaultPlan(drop_after_frames=3000)
    async with ExchangeServer(tape_path(ETH_TAPE), speed=float("inf"), faults=faults) as server:

        def on_book(update: BookUpdate) -> None:
            got.on_book(update)
            if feed.stats.connections >= 2 and got.updates >= 200:
                feed.stop()

        feed = make_feed(server, got, reconnect=True, on_book=on_book, transport="picows")
        await asyncio.wait_for(feed.run(), TIMEOUT)
    assert feed.stats.reconnects >= 1
    agreed, checked = got.agreement()
    assert checked > 0 and agreed == checked


def test_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport"):
        Feed("binance", ["ETHUSDT"], transport="carrier-pigeon")
