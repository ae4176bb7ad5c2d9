"""The REST snapshot budget: never over the venue's weight in any window, longest-waiting first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lobfeed import Feed
from lobfeed.aio import Backoff
from lobfeed.aio.budget import RequestBudget
from lobfeed.aio.options import ConnectOptions
from lobfeed.exceptions import ConfigError
from lobfeed.testing import ExchangeServer
from lobfeed.venues import spec_for
from lobfeed.venues.base import WeightLimit

COINM = "binance-coinm-10sym-2021.jsonl.gz"


async def test_no_window_ever_holds_more_than_the_limit() -> None:
    budget = RequestBudget(limit=60, window=0.3)
    granted: list[tuple[float, int, str]] = []

    async def ask(name: str, weight: int, since: float) -> None:
        await budget.acquire(weight, since)
        granted.append((time.monotonic(), weight, name))

    await asyncio.gather(*(ask(f"s{i}", 20, float(i)) for i in range(12)))
    # Every grant, with those of the window before it, stays within the limit.
    for t, _, _ in granted:
        assert sum(w for u, w, _ in granted if t - 0.3 < u <= t) <= 60
    # Longest waiting first: granted in the order of ``since``.
    assert [name for _, _, name in granted] == [f"s{i}" for i in range(12)]
    assert budget.waited >= 9 and budget.longest_wait >= 0.6


async def test_a_late_symbol_that_waited_longer_goes_first() -> None:
    budget = RequestBudget(limit=1, window=0.2)
    order: list[str] = []

    async def ask(name: str, since: float) -> None:
        await budget.acquire(1, since)
        order.append(name)

    first = asyncio.ensure_future(ask("first", 0.0))
    await asyncio.sleep(0)
    # Both wait for the next window; "old" lost its book before "new" did.
    await asyncio.gather(ask("new", 5.0), ask("old", 1.0), first)
    assert order == ["first", "old", "new"]


async def test_a_cancelled_waiter_gives_its_place_up() -> None:
    budget = RequestBudget(limit=1, window=0.2)
    await budget.acquire(1, 0.0)
    gone = asyncio.ensure_future(budget.acquire(1, 1.0))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.wait_for(budget.acquire(1, 2.0), 5)
    assert budget.used == 1


def test_venue_limits_have_sources() -> None:
    for venue in ("binance", "binance-usdm", "binance-coinm", "okx"):
        weight = spec_for(venue).rest_weight
        assert weight is not None and weight.source
    usdm = spec_for("binance-usdm").rest_weight
    assert usdm is not None and (usdm.limit, usdm.window, usdm.snapshot_weight) == (2400, 60.0, 20)
    with pytest.raises(ConfigError):
        WeightLimit(10, 60.0, 20, "a snapshot heavier than the limit")


async def test_a_feed_spreads_its_snapshots_over_the_budget(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(COINM)
    options = ConnectOptions(
        rest_weight=WeightLimit(40, 1.0, 20, "two snapshots a second, for the test"),
        rest_budget_share=1.0,
        stale_after=30,
    )
    # Slow enough that the tape does not wrap (its ids would go back) before all are live.
    async with ExchangeServer(path, speed=2, loop=True, live=True) as server:
        symbols = (
            "BCHUSD_PERP",
            "BTCUSD_211231",
            "EOSUSD_PERP",
            "ETCUSD_PERP",
            "LINKUSD_PERP",
            "XRPUSD_PERP",
        )
        feed = Feed(
            "binance-coinm",
            symbols,
            channels=("book",),
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            options=options,
        )
        run = asyncio.ensure_future(feed.run())
        started = time.monotonic()
        seen_waiting = False
        while not all(h.state == "live" for h in feed.health().values()):
            seen_waiting |= any(
                h.reason == "waiting for snapshot budget" for h in feed.health().values()
            )
            assert time.monotonic() - started < 60, [
                (h.symbol, h.state, h.reason) for h in feed.health().values()
            ]
            await asyncio.sleep(0.01)
        took = time.monotonic() - started
        feed.stop()
        await asyncio.wait_for(run, 30)
    assert seen_waiting
    assert feed.stats.budget_waits >= 2
    assert server.stats.snapshot_requests == len(symbols)
    # Six snapshots at two a second: the last goes out two windows after the first.
    assert took >= 2.0


def test_backoff_delays_grow_by_attempt_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, factor=2.0, jitter=0.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5, 1000)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    with pytest.raises(ConfigError):
        Backoff(initial=2.0, maximum=1.0)
