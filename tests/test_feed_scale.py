"""Hundreds of symbols on one Feed against the local exchange enforcing Binance's limits.

The 10-symbol COIN-M tape is served with clones (``C1BCHUSD_PERP``, ...: full copies of each
symbol's real stream), so 300 symbols stream real, internally consistent books. The exchange
enforces 200 streams per futures connection and a REST request-weight limit with 429/418,
with the weight window shortened from 60 s to a few seconds so the test runs quickly; the
Feed's budget is given the same window.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from lobfeed import Feed
from lobfeed.aio import Backoff
from lobfeed.aio.options import ConnectOptions
from lobfeed.events import Connected, Disconnected
from lobfeed.testing import ExchangeServer, FaultPlan
from lobfeed.venues import spec_for
from lobfeed.venues.base import Subscription, WeightLimit

COINM = "binance-coinm-10sym-2021.jsonl.gz"
SYMBOLS = (
    "BCHUSD_210924",
    "BCHUSD_PERP",
    "BTCUSD_211231",
    "EOSUSD_PERP",
    "ETCUSD_PERP",
    "ETHUSD_210924",
    "LINKUSD_211231",
    "LINKUSD_PERP",
    "TRXUSD_PERP",
    "XRPUSD_PERP",
)
WINDOW = 3.0
TIMEOUT = 120.0


def cloned(count: int) -> tuple[str, ...]:
    """``count`` symbols: the tape's own, then their clones ``C1...``, ``C2...``."""
    names = [*SYMBOLS]
    n = 1
    while len(names) < count:
        names += [f"C{n}{s}" for s in SYMBOLS]
        n += 1
    return tuple(names[:count])


def options(**overrides: object) -> ConnectOptions:
    base: dict[str, object] = {
        "backoff": Backoff(initial=0.05, maximum=0.5),
        "rest_weight": WeightLimit(2400, WINDOW, 20, "Binance COIN-M, window shortened"),
        "stale_after": 60.0,
        "healthy_after": 1.0,
    }
    base.update(overrides)
    return ConnectOptions(**base)  # type: ignore[arg-type]


async def until(check: Callable[[], bool], what: str) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < TIMEOUT, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def all_live(feed: Feed) -> bool:
    return all(h.state == "live" for h in feed.health().values())


async def test_300_symbols_by_4_channels_split_over_the_connections_binance_allows(
    tape_path: Callable[[str], Path],
) -> None:
    symbols = cloned(300)
    statuses: list[object] = []
    async with ExchangeServer(
        tape_path(COINM), speed=2, loop=True, live=True, clones=29, rest_window_s=WINDOW
    ) as server:
        feed = Feed(
            "binance-coinm",
            symbols,
            channels=("book", "trades", "quotes", "candles"),
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            options=options(),
            on_status=statuses.append,
        )
        # 1,200 streams, 200 a connection: six connections of 50 symbols.
        assert [len(slot.symbols) for slot in feed.slots] == [50] * 6
        run = asyncio.ensure_future(feed.run())
        took = await until(lambda: all_live(feed), "300 books live")
        health = feed.health()
        feed.stop()
        await asyncio.wait_for(run, TIMEOUT)
    assert server.stats.connections == 6
    assert server.stats.refused == {}
    assert server.stats.weight_429s == 0 and server.stats.weight_418s == 0
    # Each symbol on one connection, 50 on each, and health says which.
    assert sorted(Counter(h.connection for h in health.values()).values()) == [50] * 6
    assert len([s for s in statuses if isinstance(s, Connected)]) == 6
    # 300 snapshots of weight 20 at 80% of 2,400 a window: 96 a window, at least 3 windows.
    assert took >= 2 * WINDOW
    print(f"300 symbols x 4 channels: all live after {took:.1f}s")


async def test_a_fault_on_one_connection_resyncs_only_its_symbols(
    tape_path: Callable[[str], Path],
) -> None:
    symbols = cloned(120)
    plan = FaultPlan.parse("close=1006@4s,conns=1")
    async with ExchangeServer(
        tape_path(COINM),
        speed=2,
        loop=True,
        live=True,
        clones=11,
        faults=plan,
        rest_window_s=WINDOW,
    ) as server:
        statuses: list[object] = []
        feed = Feed(
            "binance-coinm",
            symbols,
            channels=("book", "trades"),
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            options=options(),
            on_status=statuses.append,
        )
        assert [len(slot.symbols) for slot in feed.slots] == [100, 20]
        run = asyncio.ensure_future(feed.run())
        await until(lambda: any(isinstance(s, Disconnected) for s in statuses), "the drop")
        await until(lambda: all_live(feed), "every book live again")
        health = feed.health()
        feed.stop()
        await asyncio.wait_for(run, TIMEOUT)
    dropped = next(s for s in statuses if isinstance(s, Disconnected))
    hit = {h.symbol for h in health.values() if h.reconnects}
    first = {h.symbol for h in health.values() if h.connection and h.reconnects == 0}
    # Only the symbols of the dropped connection were reconnected.
    assert dropped.connection in ("c1", "c2")
    assert len(hit) in (100, 20) and len(first) == 120 - len(hit)


async def test_a_reconnect_of_200_symbols_draws_no_429(tape_path: Callable[[str], Path]) -> None:
    symbols = cloned(200)
    async with ExchangeServer(
        tape_path(COINM), speed=2, loop=True, live=True, clones=19, rest_window_s=WINDOW
    ) as server:
        statuses: list[object] = []
        feed = Feed(
            "binance-coinm",
            symbols,
            channels=("book",),
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            options=options(),
            on_status=statuses.append,
        )
        run = asyncio.ensure_future(feed.run())
        first = await until(lambda: all_live(feed), "200 books live")
        # The network drops the connection once every book is live.
        conn = feed.slots[0].conn
        assert conn is not None
        conn.link.abort()
        await until(lambda: any(isinstance(s, Disconnected) for s in statuses), "the drop")
        again = await until(lambda: all_live(feed), "200 books live again")
        feed.stop()
        await asyncio.wait_for(run, TIMEOUT)
    assert server.stats.weight_429s == 0 and server.stats.weight_418s == 0
    assert server.stats.snapshot_requests == 400
    assert feed.stats.budget_waits > 0
    # 200 snapshots at 96 a window, the window still holding the first 200's weight.
    assert again >= WINDOW
    print(f"200 symbols: live after {first:.1f}s, again {again:.1f}s after the drop")


async def test_200_bybit_symbols_on_the_local_exchange(tape_path: Callable[[str], Path]) -> None:
    """Bybit spot: the tape's two symbols and 99 clones of each, subscribed ten topics a
    message (the exchange refuses more) within 21,000 characters a connection."""
    symbols = tuple(
        f"C{n}{base}" if n else base for base in ("BTCUSDT", "ETHUSDT") for n in range(100)
    )
    async with ExchangeServer(
        tape_path("bybit-2026.jsonl.gz"), speed=4, loop=True, clones=99
    ) as server:
        feed = Feed(
            "bybit-spot",
            symbols,
            channels=("book", "trades"),
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            options=options(),
        )
        # 400 topics of about 20 characters: one connection.
        assert len(feed.slots) == 1
        run = asyncio.ensure_future(feed.run())
        took = await until(lambda: all_live(feed), "200 Bybit books live")
        feed.stop()
        await asyncio.wait_for(run, TIMEOUT)
    assert server.stats.refused == {}
    assert server.stats.connections == 1
    print(f"200 Bybit symbols: all live after {took:.1f}s")


def test_bybit_splits_past_21000_topic_characters() -> None:
    spec = spec_for("bybit")
    subscription = Subscription(
        symbols=tuple(f"SYMBOL{n:04d}USDT" for n in range(600)),
        channels=frozenset({"book", "trades", "candles", "quotes"}),
    )
    groups = spec.split(subscription)
    assert len(groups) > 1
    assert all(sum(len(t) for t in spec.streams(g)) <= 21_000 for g in groups)
    assert [s for g in groups for s in g.symbols] == list(subscription.symbols)


def test_bitfinex_keeps_to_25_channels_a_connection() -> None:
    spec = spec_for("bitfinex")
    subscription = Subscription(
        symbols=tuple(f"tSYM{n:02d}USD" for n in range(20)), channels=frozenset({"book", "trades"})
    )
    assert [len(g.symbols) for g in spec.split(subscription)] == [12, 8]
